"""The parts of the service use only the parts below them.

``MAY_USE`` is the rule: the table of the team's design notes (shared/design/LAYOUT.md, beside
the repository, not in it; a change to one is a change to both), as the README's "Layout"
says it. Every ``import`` and ``from ... import`` of every module under ``service/``, read
from the source (also those inside functions and under ``TYPE_CHECKING``), is checked against
it: a part may import itself and what ``MAY_USE`` lists for it, nothing else of the service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"

#: The part each module belongs to: by package, else by top-level module.
PACKAGES = {
    "core": "core",
    "registry": "registry",
    "interop": "interop",
    "learn": "learn",
    "jobs": "jobs",
    "operations": "operations",
    "api": "http",
    "client": "client",
}
MODULES = {
    "settings": "settings",
    "store": "store",
    "cache": "store",
    "specs": "store",
    "workers": "store",
    "threads": "store",
    "memory": "cli",  # the allocator tuned where a serving process starts
    "cli": "cli",
    "cli_train": "cli",
    "__main__": "cli",
    "": "package",  # service/__init__.py: the name and __version__, importing nothing
    "__version__": "package",
}

#: Who may use whom. The HTTP layer uses Operations "and what they return" (records, core
#: types, the errors its problem table maps), so everything but the client and the CLI.
LOWER = {"store", "registry", "core", "settings"}
MAY_USE: dict[str, set[str]] = {
    "cli": {"http", "client", "operations", "jobs", "learn", "interop"} | LOWER,
    "client": set(),
    "http": {"operations", "jobs", "learn", "interop"} | LOWER,
    "operations": {"jobs", "learn", "interop"} | LOWER,
    "jobs": LOWER,
    "store": {"registry", "core", "settings"},
    "learn": {"core"},
    "interop": {"core"},
    "registry": set(),
    "core": set(),
    "settings": set(),
    "package": set(),
}


def part_of(module: str) -> str:
    """``service.api.routes.v2`` -> ``http``; ``service.cache`` -> ``store``."""
    names = module.split(".")[1:]
    first = names[0] if names else ""
    if first in PACKAGES:
        return PACKAGES[first]
    return MODULES[first]


def module_name(path: Path) -> tuple[str, str]:
    """The module's dotted name and the package its relative imports start from."""
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rsplit(".", 1)[0]


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``service`` module in ``source``, whose relative
    imports start from ``package``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "service":  # from service import specs: the modules named
                found += [(node.lineno, f"service.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, target) for line, target in found if target.split(".")[0] == "service"]


MODULE_FILES = sorted(SERVICE.rglob("*.py"))


def test_every_module_belongs_to_a_part() -> None:
    assert len(MODULE_FILES) > 100
    for path in MODULE_FILES:
        assert part_of(module_name(path)[0]) in MAY_USE, path


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(SERVICE)))
def test_a_part_imports_only_the_parts_below_it(path: Path) -> None:
    name, package = module_name(path)
    mine = part_of(name)
    wrong = [
        f"{path.relative_to(SERVICE.parent)}:{line} imports {target} ({part_of(target)})"
        for line, target in imports(path.read_text(), package)
        if part_of(target) not in {mine, "package"} and part_of(target) not in MAY_USE[mine]
    ]
    assert not wrong, f"{mine} may use {sorted(MAY_USE[mine]) or 'nothing'} of the service"


def test_the_checker_sees_a_wrong_import() -> None:
    """The parse finds an upward import where it hides: relative, inside a function."""
    source = "import numpy\ndef f():\n    from ..api import app\n    return app\n"
    assert imports(source, "service.core") == [(3, "service.api")]
    assert part_of("service.api") not in MAY_USE[part_of("service.core.network")]
    assert imports("from .errors import X\n", "service.registry") == [
        (1, "service.registry.errors")
    ]
