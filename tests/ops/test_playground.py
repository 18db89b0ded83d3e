"""The playground page names only its own files, relative to itself (so that it works under a
root path too), the service serves every one of them, and the browser may load nothing from
elsewhere. Its behaviour in a real browser is tested in tests/browser/test_playground.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from service.api import playground

pytestmark = pytest.mark.anyio

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
IMPORT = re.compile(r"""^import .* from "\./([^"]+)";$""", re.MULTILINE)
MEDIA = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}


async def test_the_page_references_only_its_own_files_relative_to_itself(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = [u for u in URL.findall(page.text) if u != "docs"]  # the link to the docs UI
    assert urls, page.text
    assert all(u.startswith("static/playground/") for u in urls), urls
    for url in urls:
        asset = await client.get(f"/{url}")
        assert asset.status_code == 200, url
        assert MEDIA[Path(url).suffix] in asset.headers["content-type"], url


async def test_every_module_the_scripts_import_is_served(client: httpx.AsyncClient) -> None:
    scripts = sorted(path.name for path in playground.ASSETS.glob("*.js"))
    assert "main.js" in scripts
    for name in scripts:
        text = (await client.get(f"/static/playground/{name}")).text
        for imported in IMPORT.findall(text):
            assert imported in scripts, f"{name} imports {imported}"
            assert (await client.get(f"/static/playground/{imported}")).status_code == 200


async def test_the_page_forbids_loading_from_other_hosts(client: httpx.AsyncClient) -> None:
    policy = (await client.get("/playground")).headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy


async def test_the_page_is_linked_from_the_docs_and_left_out_of_the_operations(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/playground" not in spec["paths"]
    assert "[playground](playground)" in spec["info"]["description"]


def test_the_wheel_declares_the_page_files_as_package_data() -> None:
    """An installed wheel serves the page: pyproject.toml ships static/ with the package."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["service.api.playground"]
    assert "static/*" in data
    assert (playground.ASSETS / "index.html").is_file()
