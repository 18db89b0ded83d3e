"""The repository's copy of the worked example is the seed's own file."""

from __future__ import annotations

import pytest

from tests.seed import COPY, ORIGINAL


@pytest.mark.skipif(not ORIGINAL.exists(), reason=f"no seed folder beside this clone ({ORIGINAL})")
def test_the_copy_of_the_worked_example_equals_the_seed_file() -> None:
    assert COPY.read_bytes() == ORIGINAL.read_bytes()
