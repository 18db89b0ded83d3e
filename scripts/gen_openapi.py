"""Write the app's OpenAPI spec to ``openapi/openapi.json`` (``--check``: fail if it drifted).

The spec is generated with the default settings, whatever ``BACKPROP_*`` variables are set, so
that the committed file does not depend on the machine that wrote it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi" / "openapi.json"


def render() -> str:
    """The spec as committed: sorted keys, two-space indent, a final newline."""
    for key in [k for k in os.environ if k.startswith("BACKPROP_")]:
        del os.environ[key]
    from service.api.app import create_app
    from service.settings import Settings

    app = create_app(Settings(registry="memory://"))
    try:
        spec: dict[str, Any] = app.openapi()
    finally:
        app.state.store.close()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not SPEC.exists() or SPEC.read_text() != text:
            print(f"{SPEC} is stale: run python -m scripts.gen_openapi", file=sys.stderr)
            return 1
        print(f"{SPEC} is up to date")
        return 0
    SPEC.parent.mkdir(parents=True, exist_ok=True)
    SPEC.write_text(text)
    print(f"wrote {SPEC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
