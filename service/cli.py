"""The command line: ``backprop-service serve`` (also ``python -m service``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from service.settings import Settings


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
        help="registry URL: memory://, sqlite:///relative.db or sqlite:////absolute.db "
        "(BACKPROP_REGISTRY, default sqlite:///data/backprop.db)",
    )
    serve.add_argument("--workers", type=int, help="worker processes (BACKPROP_WORKERS)")
    args = parser.parse_args(argv)
    if args.command in (None, "serve"):
        return _serve(args)
    parser.error(f"unknown command {args.command}")
    return 2


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
    uvicorn.run(
        "service.api.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
