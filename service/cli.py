"""The command line: ``backprop-service serve`` (also ``python -m service``) and
``backprop-service train MODEL DATASET ...`` (a training job through a running server)."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from service import cli_train
from service.memory import tune_malloc_mib
from service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

#: How long the server lets the requests in flight finish after SIGTERM (uvicorn's graceful
#: shutdown); deployments give it longer before they kill it (deploy/kubernetes).
DRAIN_SECONDS = 30


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="backprop-service",
        description="The mathematics of neural networks over HTTP and JSON.",
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="start the HTTP server (the default command)")
    serve.add_argument("--host", help="address to listen on (BACKPROP_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (BACKPROP_PORT, default 8000)")
    serve.add_argument(
        "--registry",
        help="registry URL: memory://, sqlite:///relative.db, sqlite:////absolute.db or "
        "postgresql://user@host:5432/database (BACKPROP_REGISTRY, default "
        "sqlite:///data/backprop.db)",
    )
    serve.add_argument("--workers", type=int, help="worker processes (BACKPROP_WORKERS)")
    _add_train(commands)
    args = parser.parse_args(argv)
    if args.command in (None, "serve"):
        return _serve(args)
    if args.command == "train":
        return _train(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _add_train(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser(
        "train",
        help="train a model on a dataset through a running server, showing the progress",
        description="Start a training job through the HTTP API and follow it to its end "
        "(exit status 0 if it succeeded). Ctrl-C cancels the job.",
    )
    train.add_argument("model", help="the model's name")
    train.add_argument("dataset", help="the dataset's name (POST /v1/datasets)")
    train.add_argument("--epochs", type=int, required=True, help="passes over the dataset")
    train.add_argument("--batch-size", type=int, required=True, help="rows per mini-batch")
    train.add_argument("--learning-rate", type=float, required=True, help="the step size")
    train.add_argument(
        "--optimizer", choices=["sgd", "adam"], help="default: the model's optimizer"
    )
    train.add_argument("--seed", type=int, help="seed of the shuffling (drawn if absent)")
    train.add_argument("--validation-split", type=float, help="fraction of rows held out")
    train.add_argument("--patience", type=int, help="stop after this many epochs without gain")
    train.add_argument(
        "--no-restore-best",
        dest="restore_best",
        action="store_false",
        help="with --patience, end at the last epoch's parameters, not the best epoch's",
    )
    train.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)"
    )


def _train(args: argparse.Namespace) -> int:
    return cli_train.train(
        args.url,
        args.model,
        args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        seed=args.seed,
        validation_split=args.validation_split,
        patience=args.patience,
        restore_best=args.restore_best,
    )


def _serve(args: argparse.Namespace) -> int:
    # Command-line options become settings through the environment, so that every worker
    # process uvicorn starts builds the same Settings.
    for option in ("host", "port", "registry", "workers"):
        value = getattr(args, option, None)
        if value is not None:
            os.environ[f"BACKPROP_{option.upper()}"] = str(value)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"backprop-service: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if settings.workers > 1 and settings.registry.startswith("memory://"):
        print(
            "backprop-service: memory:// keeps models inside one process, so several workers "
            "would each see different models; use --workers 1 or a sqlite:/// registry",
            file=sys.stderr,
        )
        return 2
    from service.api.auth import InvalidApiKeys, load_keys
    from service.api.logging import log_config
    from service.api.metrics import multiprocess_dir

    try:
        keys = load_keys(settings)
    except InvalidApiKeys as exc:
        print(f"backprop-service: invalid API keys: {exc}", file=sys.stderr)
        return 2
    logging.config.dictConfig(log_config(settings.log_level))
    if not keys and not _loopback(settings.host):
        logging.getLogger("backprop.cli").warning(
            "listening on %s with no API keys: anyone who can reach this address can create, "
            "train and delete models; set BACKPROP_API_KEYS or BACKPROP_API_KEYS_FILE",
            settings.host,
        )
    with multiprocess_dir(settings.workers):
        uvicorn.run(
            "service.cli:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level),
            access_log=False,  # service.api.logging writes one JSON line per request
            timeout_graceful_shutdown=DRAIN_SECONDS,
            # The fast event loop and HTTP parser (uvicorn[standard]) wherever they install.
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
        )
    return 0


def app_from_env() -> FastAPI:
    """The factory uvicorn calls (``--factory``) in each serving process: settings from
    ``BACKPROP_*``, and the process tuned for serving (:func:`tune_process`)."""
    from service.api.app import create_app

    settings = Settings()
    tune_process(settings)
    return create_app(settings)


def tune_process(settings: Settings) -> None:
    """Tune the process for serving: the longest a thread holds the interpreter lock while
    the event loop waits, and the C allocator's thresholds. Process-wide, so done where a
    serving process starts (:func:`app_from_env`), not by every app: a program or a test that
    builds apps keeps its own process's settings."""
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    tune_malloc_mib(settings.malloc_mmap_threshold_mb)


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


if __name__ == "__main__":
    sys.exit(main())
