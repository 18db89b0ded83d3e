"""The README's examples, run as written, in order, against a live server.

Every ```sh and ```python block of README.md runs in document order against one server started
as the Quick start says (``.venv/bin/backprop-service serve``, on the embedded default registry:
a new ``./data/`` in a fresh temporary working directory), on a free loopback port.

What the README may say to this test, invisibly when rendered:

- ``<!-- readme-test: skip: <reason> -->`` on the line right before a block: the block is not
  run (an install from the network, a benchmark, a placeholder host, ...). The reason is
  required. An unmarked block is run, and fails the test if it fails; a few commands a test
  must never run (``sudo``, ``apt-get``, ``pip install``, a second ``serve``, ...) fail it
  without running when unmarked.
- A plain ``` block right after a runnable block (nothing but blank lines between) shows that
  block's standard output. A line ``...`` in it stands for any number of lines.
- In a Python block, a trailing comment that is a Python literal shows a value: on a line that
  is one expression, ``f(x)  # [[0.8]]`` says that the expression's value is ``[[0.8]]``; on a
  line that assigns one name, ``y = f(x)  # 2`` says it of ``y`` after the assignment. Values
  with ``tolist()`` (NumPy arrays) are compared as lists; the comparison is ``==``, exact. Any
  other comment is prose. Every such line must be reached.

How the examples run: the only rewrites are the server's address for ``127.0.0.1:8000`` and
``.venv/bin/`` (in the temporary directory, a link to the bin directory of the venv running the
tests). Shell blocks run with ``bash`` under ``set -euo pipefail`` in the temporary directory,
with that venv off the PATH (as for a reader who has not activated it) and no ``BACKPROP_*``
variables. Python blocks run in this process, in the temporary directory, each in a new
namespace, with their standard output captured.

How outputs compare: as a terminal shows them (a carriage return rewrites its line; trailing
spaces and blank lines at either end are ignored), after replacing what changes from run to
run: timestamps (ISO 8601), the ids the server draws (request ids, job ids) and durations
(``*_ms`` and ``*_seconds`` members). For a ``curl -i`` output the README shows a subset of the
headers: the status line must be equal, each shown header present with the shown value, and
the body equal.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from contextlib import chdir, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, Server, free_port

README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the bin directory of the venv running the tests
SHOWN_ADDRESS = "127.0.0.1:8000"
RUNNABLE = {"sh", "python"}
PROSE = {"", "json"}  # plain blocks (outputs, the layout) and JSON documents: never run
CHECK = "__readme_check__"

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*skip:\s*(?P<reason>.*?)\s*-->\s*$")
# Commands a test must never run: they need root or the network, or never return.
NOT_IN_A_TEST = re.compile(
    r"\b(sudo|apt-get|pip install|podman|docker|python -m pytest|python -m benchmarks|serve)\b"
)

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")
RANDOM_ID = re.compile(r"\b[0-9a-f]{24}(?:[0-9a-f]{8})?\b")  # job ids (24), request ids (32)
DURATION = re.compile(r'("\w*(?:_ms|_seconds)":\s*)-?[0-9.eE+-]+')


@dataclass(frozen=True)
class Block:
    """A runnable block of the README: its language, code (unindented), line of its opening
    fence, the reason it is skipped (if it is) and the output the README shows (if any)."""

    lang: str
    code: str
    line: int
    skip: str | None = None
    output: str | None = None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


# ---------------------------------------------------------------------------------------------
# Reading the README


@dataclass(frozen=True)
class _Fence:
    lang: str
    code: str
    start: int  # index of the opening line
    end: int  # index of the closing line


def _fences(lines: list[str]) -> list[_Fence]:
    fences, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start = match["indent"], i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            raise ValueError(f"README.md:{start + 1}: a block that is never closed")
        body = [line.removeprefix(indent) for line in lines[start + 1 : i]]
        fences.append(_Fence(match["lang"], "".join(f"{line}\n" for line in body), start, i))
        i += 1
    return fences


def blocks(text: str) -> list[Block]:
    """The runnable blocks of a README, in order, with their skip reasons and outputs."""
    lines = text.splitlines()
    fences = _fences(lines)
    opening = {fence.start: fence for fence in fences}
    for number, line in enumerate(lines, 1):
        if not (line.lstrip().startswith("<!--") and "readme-test" in line):
            continue  # mentions in prose are not markers
        match = MARKER.match(line)
        if not match or not match["reason"]:
            raise ValueError(
                f"README.md:{number}: write a marker as <!-- readme-test: skip: <the reason> -->"
            )
        after = opening.get(number)  # the fence on the next line, index `number`
        if after is None or after.lang not in RUNNABLE:
            raise ValueError(
                f"README.md:{number}: a skip marker not right before an sh or python block"
            )
    found: list[Block] = []
    previous: _Fence | None = None
    for fence in fences:
        if fence.lang not in RUNNABLE | PROSE:
            raise ValueError(
                f"README.md:{fence.start + 1}: a ```{fence.lang} block: tag examples sh or "
                f"python (the languages this test runs), or add the language to PROSE"
            )
        if fence.lang == "" and previous and previous.lang in RUNNABLE:
            between = lines[previous.end + 1 : fence.start]
            if not any(line.strip() for line in between):  # the output of the block before
                found[-1] = replace(found[-1], output=fence.code)
        if fence.lang in RUNNABLE:
            marker = MARKER.match(lines[fence.start - 1]) if fence.start else None
            reason = marker["reason"] if marker else None
            found.append(Block(fence.lang, fence.code, fence.start + 1, reason))
        previous = fence
    return found


# ---------------------------------------------------------------------------------------------
# Comparing outputs


def as_shown(text: str) -> str:
    """``text`` as a terminal shows it, with what changes from run to run replaced."""
    text = text.replace("\r\n", "\n")
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    text = TIMESTAMP.sub("<timestamp>", text)
    text = RANDOM_ID.sub("<id>", text)
    return DURATION.sub(r"\1<duration>", text)


def _lines_match(shown: str, actual: str) -> bool:
    """Whether ``actual`` has the lines of ``shown``, where a line ``...`` is any lines."""
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == "..." else re.escape(line) + r"\n"
        for line in shown.split("\n")
    )
    return re.fullmatch(pattern, actual + "\n") is not None


def mismatch(shown: str, actual: str) -> str | None:
    """Why ``actual`` (real output) is not what ``shown`` (the README's) shows, or None."""
    shown, actual = as_shown(shown), as_shown(actual)
    if shown.startswith("HTTP/"):
        return _http_mismatch(shown, actual)
    if _lines_match(shown, actual):
        return None
    return _diff(shown, actual)


def _http_mismatch(shown: str, actual: str) -> str | None:
    shown_head, _, shown_body = shown.partition("\n\n")
    actual_head, _, actual_body = actual.partition("\n\n")
    shown_status, *shown_headers = shown_head.split("\n")
    actual_status, *actual_headers = actual_head.split("\n")
    if shown_status != actual_status:
        return f"status line: shown {shown_status!r}, got {actual_status!r}"
    headers = {}
    for line in actual_headers:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    for line in shown_headers:
        name, _, value = line.partition(":")
        got = headers.get(name.strip().lower())
        if got != value.strip():
            return f"header {name.strip()}: shown {value.strip()!r}, got {got!r}"
    if _lines_match(shown_body, actual_body):
        return None
    return _diff(shown_body, actual_body)


def _diff(shown: str, actual: str) -> str:
    diff = "\n".join(
        difflib.unified_diff(shown.split("\n"), actual.split("\n"), "shown", "real", lineterm="")
    )
    where = next(
        (i for i, (a, b) in enumerate(zip(shown, actual, strict=False)) if a != b),
        min(len(shown), len(actual)),
    )
    return f"{diff}\nfirst difference at character {where}: {actual[where : where + 60]!r}"


# ---------------------------------------------------------------------------------------------
# Running blocks


class ExampleFailed(AssertionError):
    pass


def shown_values(code: str) -> dict[int, Any]:
    """The values shown by trailing literal comments: {line of the block: value}."""
    values = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type != tokenize.COMMENT or token.line.lstrip().startswith("#"):
            continue
        try:
            values[token.start[0]] = ast.literal_eval(token.string[1:].strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # prose
    return values


def _check_call(value: ast.expr, line: int) -> ast.stmt:
    call = ast.Call(ast.Name(CHECK, ast.Load()), [value, ast.Constant(line)], [])
    return ast.Expr(call)


def instrument(tree: ast.Module, values: dict[int, Any]) -> None:
    """Add a check of every shown value to ``tree`` (in place)."""
    claimed: set[int] = set()
    lists = [
        getattr(node, field)
        for node in ast.walk(tree)
        for field in ("body", "orelse", "finalbody")
        if isinstance(getattr(node, field, None), list)
    ]
    for statements in lists:
        for i, stmt in reversed(list(enumerate(statements))):
            line = stmt.end_lineno
            if line not in values or not isinstance(stmt, ast.Expr | ast.Assign):
                continue
            claimed.add(line)
            if isinstance(stmt, ast.Expr):
                statements[i] = ast.copy_location(_check_call(stmt.value, line), stmt)
            elif len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name = ast.Name(stmt.targets[0].id, ast.Load())
                statements.insert(i + 1, ast.copy_location(_check_call(name, line), stmt))
            else:
                raise ExampleFailed(f"line {line}: a value shown after an assignment to a non-name")
    if unclaimed := sorted(set(values) - claimed):
        raise ExampleFailed(
            f"lines {unclaimed}: a value shown on a line that is not one expression or one "
            "assignment to a name"
        )
    ast.fix_missing_locations(tree)


def run_python(block: Block, code: str, workdir: Path) -> str:
    """Run a Python block in a new namespace in ``workdir``, checking its shown values; returns
    what it printed. Tracebacks and messages give the README's line numbers."""
    tree = ast.parse(code, str(README))
    ast.increment_lineno(tree, block.line)
    values = {block.line + line: value for line, value in shown_values(code).items()}
    instrument(tree, values)
    reached: set[int] = set()

    def check(value: Any, line: int) -> None:
        reached.add(line)
        actual = value.tolist() if hasattr(value, "tolist") else value
        if actual != values[line]:
            raise ExampleFailed(f"README.md:{line}: shown {values[line]!r}, got {actual!r}")

    printed = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__main__", CHECK: check}
    with chdir(workdir), redirect_stdout(printed):
        exec(compile(tree, str(README), "exec", dont_inherit=True), namespace)
    if missed := sorted(set(values) - reached):
        raise ExampleFailed(f"{block}: lines {missed} show values but were never reached")
    return printed.getvalue()


def run_shell(block: Block, code: str, workdir: Path) -> str:
    """Run a shell block with bash in ``workdir``; returns its standard output."""
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + code],
        cwd=workdir,
        env=reader_env(),
        capture_output=True,
        timeout=120,
    )
    # Bytes, decoded here: text mode would turn the carriage returns of a progress line into
    # line ends.
    stdout, stderr = (stream.decode(errors="replace") for stream in (done.stdout, done.stderr))
    if done.returncode != 0:
        raise ExampleFailed(
            f"{block} exited with status {done.returncode}:\n{code}\n"
            f"standard output:\n{stdout}\nstandard error:\n{stderr}"
        )
    return stdout


def reader_env() -> dict[str, str]:
    """The environment of a reader's shell: no BACKPROP_* settings, the venv not activated."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BACKPROP_") and key != "VIRTUAL_ENV"
    }
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p and Path(p).resolve() != BIN.resolve())
    return env


def unrunnable(block: Block) -> str | None:
    """Why an unmarked block cannot run in a test, or None."""
    if block.skip is None and (command := NOT_IN_A_TEST.search(block.code)):
        return (
            f"{block} runs {command[0]!r}, which a test cannot: mark it "
            "<!-- readme-test: skip: <the reason> -->"
        )
    return None


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh working directory whose ``.venv/bin`` is the venv running the tests."""
    path = tmp_path_factory.mktemp("readme")
    (path / ".venv").mkdir()
    (path / ".venv" / "bin").symlink_to(BIN, target_is_directory=True)
    return path


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[Server]:
    """``.venv/bin/backprop-service serve`` in ``workdir``, as the Quick start says, on a free
    port."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "backprop-service"), "serve", "--port", str(port)],
        cwd=workdir,
        env=reader_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    running = Server(process, f"http://127.0.0.1:{port}")
    running.wait_ready()
    try:
        yield running
    finally:
        running.stop()


def test_the_readme_runs_as_written(server: Server, workdir: Path) -> None:
    assert shutil.which("curl"), "the README's examples use curl: install it (apt-get install curl)"
    examples = blocks(README.read_text())
    problems = [reason for block in examples if (reason := unrunnable(block))]
    assert not problems, "\n".join(problems)
    address = server.url.removeprefix("http://")
    differences, ran = [], 0
    for block in examples:
        if block.skip is not None:
            continue
        code = block.code.replace(SHOWN_ADDRESS, address)
        try:
            output = (run_python if block.lang == "python" else run_shell)(block, code, workdir)
        except Exception as exc:  # the next examples build on this one: stop here
            raise ExampleFailed(f"{block} failed: {exc}") from exc
        ran += 1
        if block.output is not None:
            why = mismatch(block.output.replace(SHOWN_ADDRESS, address), output)
            if why is not None:
                differences.append(f"{block}: the real output is not the README's:\n{why}")
    assert not differences, "\n\n".join(differences)
    assert ran >= 10 and (workdir / "data" / "backprop.db").is_file()


# ---------------------------------------------------------------------------------------------
# The conventions above, on small examples


def test_blocks_read_markers_and_outputs() -> None:
    text = (
        "<!-- readme-test: skip: needs the network -->\n"
        "```sh\npip install x\n```\n"
        "Prose.\n\n"
        "- A list item:\n\n"
        "  ```sh\n  echo hi\n  ```\n  ```\n  hi\n  ```\n"
        "```json\n{}\n```\n"
        "```\nnot an output\n```\n"
    )
    assert [(b.lang, b.code, b.line, b.skip, b.output) for b in blocks(text)] == [
        ("sh", "pip install x\n", 2, "needs the network", None),
        ("sh", "echo hi\n", 9, None, "hi\n"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "<!-- readme-test: skip -->\n```sh\necho\n```\n",  # no reason
        "<!-- readme-test: skip: why -->\n\n```sh\necho\n```\n",  # not right before the block
        "<!-- readme-test: skip: why -->\n```json\n{}\n```\n",  # before a block never run
        "```bash\necho\n```\n",  # a language the test neither runs nor knows as prose
        "```sh\necho\n",  # never closed
    ],
)
def test_blocks_refuse_what_they_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"README\.md:\d+"):
        blocks(text)


def test_unmarked_blocks_that_cannot_run_are_named() -> None:
    block = Block("sh", "sudo apt-get install -y wrk\n", 3)
    assert "README.md:3 (sh) runs 'sudo'" in str(unrunnable(block))
    assert unrunnable(replace(block, skip="installs as root")) is None
    assert unrunnable(Block("sh", "curl -s http://127.0.0.1:8000/v1/models\n", 5)) is None


def test_outputs_compare_without_what_changes_from_run_to_run() -> None:
    shown = '{"version":1,"created_at":"2026-11-28T12:56:50.293856Z","duration_ms":1.5}'
    real = '{"version":1,"created_at":"2026-12-03T09:00:00Z","duration_ms":22}\n'
    assert mismatch(shown, real) is None
    assert mismatch(shown, real.replace('"version":1', '"version":2')) is not None
    assert mismatch("job 0123456789abcdef01234567 ok", "job fedcba9876543210fedcba98 ok") is None
    assert mismatch("a\n...\nz", "a\nb\nc\nz") is None
    assert mismatch("a\n...\nz", "a\nz") is None
    assert mismatch("a\n...\nz", "a\nb\nc") is not None
    assert mismatch("[###] 100%\ndone", "\r[#..]  33%\r[###] 100%\ndone\n") is None


def test_http_outputs_show_the_status_some_headers_and_the_body() -> None:
    real = 'HTTP/1.1 200 OK\r\ndate: Thu\r\netag: "2"\r\nx-request-id: 1\r\n\r\n{"version":2}'
    assert mismatch('HTTP/1.1 200 OK\nETag: "2"\n\n{"version":2}', real) is None
    assert "header etag" in str(mismatch('HTTP/1.1 200 OK\netag: "3"\n\n{"version":2}', real))
    assert "header location" in str(mismatch('HTTP/1.1 200 OK\nlocation: /\n\n{"version":2}', real))
    assert "status line" in str(mismatch('HTTP/1.1 201 Created\n\n{"version":2}', real))
    assert mismatch('HTTP/1.1 200 OK\n\n{"version":3}', real) is not None


def test_python_blocks_check_the_values_their_comments_show(tmp_path: Path) -> None:
    code = (
        "import numpy as np\n"
        "x = [1, 2]  # [1, 2]\n"
        "np.array([[0.5]]) * 2  # [[1.0]]\n"
        "if x:\n"
        "    y = len(x)  # 2\n"
        "print(x)  # prose, not a value\n"
    )
    assert run_python(Block("python", code, 10), code, tmp_path) == "[1, 2]\n"
    wrong = code.replace("# 2\n", "# 3\n")
    with pytest.raises(ExampleFailed, match=r"README\.md:15: shown 3, got 2"):
        run_python(Block("python", wrong, 10), wrong, tmp_path)
    unreached = code.replace("if x:", "if not x:")
    with pytest.raises(ExampleFailed, match=r"lines \[15\] show values but were never reached"):
        run_python(Block("python", unreached, 10), unreached, tmp_path)
    loop = "for i in range(2):  # 1\n    pass\n"
    with pytest.raises(ExampleFailed, match="not one expression or one assignment"):
        run_python(Block("python", loop, 10), loop, tmp_path)
