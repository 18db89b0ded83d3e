"""The README's Python client example, run as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.client import Client
from tests.api.support import SEED, SEED_NETWORK, SEED_PARAMETERS, assert_close
from tests.client.conftest import Unique
from tests.servers import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    """The first Python block of the README's "Python client" section."""
    section = README.read_text().split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the Python client section has no python block"
    return match.group(1)


def test_the_readme_example_runs_as_written(
    server: Server, unique: Unique, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique("seed")
    code = example()
    assert 'Client("http://127.0.0.1:8000")' in code and '"seed"' in code
    code = code.replace("http://127.0.0.1:8000", server.url).replace('"seed"', f'"{name}"')
    with Client(server.url) as client:
        client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)

    assert namespace["outputs"] == [[0.8034818811389179]]
    assert_close(namespace["gradients"]["w17"], 0.1408132011062524)
    assert_close(namespace["gradients"], SEED["gradients_named"])
    assert (namespace["model"].version, namespace["step"].version) == (1, 2)
    batch = namespace["batch"]
    assert isinstance(batch, np.ndarray) and batch.shape == (10_000, 1)
    assert namespace["pointers"] == ["/inputs/0"]
    assert namespace["final"].state == "succeeded"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("state 0 ") and printed[-1].startswith("end 50 ")
    assert len(printed) == 2 + 50 + 1  # queued, running, a progress per epoch, the end
