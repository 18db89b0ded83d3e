"""The docs pages name only the service's own assets, and the service serves them."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.anyio

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def referenced(html: str) -> list[str]:
    return [a or b for a, b in URL.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_assets_of_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    urls = referenced(response.text)
    assert urls, response.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "googleapis" not in response.text and "cdn." not in response.text
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_forbid_loading_from_other_hosts(
    client: httpx.AsyncClient, page: str
) -> None:
    policy = (await client.get(page)).headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' data:" in policy


async def test_docs_assets_are_served_with_their_media_types(client: httpx.AsyncClient) -> None:
    types = {
        "swagger-ui-bundle.js": "javascript",
        "swagger-ui.css": "text/css",
        "redoc.standalone.js": "javascript",
        "favicon.png": "image/png",
    }
    for name, media in types.items():
        response = await client.get(f"/static/docs/{name}")
        assert response.status_code == 200, name
        assert media in response.headers["content-type"], name
        assert len(response.content) > 1000, name


async def test_swagger_ui_does_not_ask_an_outside_validator(client: httpx.AsyncClient) -> None:
    assert '"validatorUrl": null' in (await client.get("/docs")).text
