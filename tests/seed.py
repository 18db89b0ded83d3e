"""The seed's worked example: the reference every numeric test checks against.

``tests/data/worked-example.json`` is a byte-for-byte copy of ``shared/seed/worked-example.json``
(the seed folder beside the repository), kept here so that a clone anywhere runs the tests;
``$BACKPROP_SEED_DIR`` points them at another seed folder. ``tests/test_seed.py`` checks the
copy against the original wherever the original is found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "tests" / "data" / "worked-example.json"
ORIGINAL = ROOT.parent / "shared" / "seed" / "worked-example.json"


def seed_file() -> Path:
    """``$BACKPROP_SEED_DIR/worked-example.json`` if set, else the copy in this repository."""
    override = os.environ.get("BACKPROP_SEED_DIR")
    return Path(override) / "worked-example.json" if override else COPY


SEED: dict[str, Any] = json.loads(seed_file().read_text())
