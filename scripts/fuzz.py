"""Fuzz a real server process with the schemathesis command line, over loopback HTTP.

    python -m scripts.fuzz [--max-time 120] [--max-examples 40] [--seed N] [--url URL]
                           [-- more schemathesis run options]

The pytest fuzzer (tests/reliability/test_fuzz.py) drives the app in process; this one goes
through uvicorn as clients do, so it also meets what only a real server does (request-line and
header limits, the HTTP parser). Without ``--url`` it starts ``python -m service serve`` on a
free 127.0.0.1 port with a fresh SQLite registry. Every phase (examples, coverage, fuzzing,
stateful), positive and negative data, and the checks the pytest fuzzer runs: no 5xx, only
documented statuses and content types, bodies that match the documented schemas, and a 4xx
for every request that breaks the schema. Bounded by ``--max-time`` (and ``--max-examples``
per operation); exit status 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from scripts.load import Config, server

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]
# Any 4xx rejects a schema-violating request (412 too: If-Match is checked before the body).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["4xx"]
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--max-time", type=int, default=120, help="seconds in all (120)")
    parser.add_argument("--max-examples", type=int, default=40, help="per operation (40)")
    parser.add_argument("--seed", type=int, help="seed, to repeat a run")
    parser.add_argument("--url", help="fuzz this running server (loopback only)")
    parser.add_argument("--registry", help="registry URL of the server started here")
    parser.add_argument(
        "extra",
        nargs=argparse.REMAINDER,
        help="after --, more options for `schemathesis run` (e.g. --include-path-regex)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.max_time <= 3600:
        parser.error("--max-time must be in (0, 3600] seconds")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with (
        server(Config(url=args.url, registry=args.registry)) as (url, _pid),
        tempfile.TemporaryDirectory(prefix="backprop-fuzz-") as tmp,
    ):
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(CONFIG)
        command = [
            str(schemathesis),
            *("--config-file", str(config), "--no-color", "run", f"{url}/openapi.json"),
            *("--checks", ",".join(CHECKS), "--mode", "all"),
            *("--max-examples", str(args.max_examples), "--max-time", str(args.max_time)),
            "--continue-on-failure",
            *(("--seed", str(args.seed)) if args.seed is not None else ()),
            *(arg for arg in args.extra if arg != "--"),
        ]
        print(" ".join(command), flush=True)
        # A hard stop a little after schemathesis's own time budget, in case it overruns.
        result = subprocess.run(command, cwd=tmp, timeout=args.max_time + 120, check=False)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
