"""The playground: ``GET /playground``, an interactive page for learners that draws a network,
runs forward, backward and gradient-descent steps on it, and explains any gradient by the chain
rule, all through the service's public API (the page is an example client of it).

The page is plain HTML, CSS and ES modules in ``static/`` (no build step, no library), served by
the service itself with a Content-Security-Policy that lets the browser load nothing from
elsewhere, so that the page works where no outside address can be reached.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "static"
PAGE_URL = "/playground"
STATIC_URL = "/static/playground"

# Only the service's own files and API: no inline script or style, no outside address.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def install(app: FastAPI) -> None:
    """Serve the page's files under ``/static/playground`` and the page at ``/playground``
    (left out of the OpenAPI operations, like ``/docs``)."""
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="playground-assets")

    @app.get(PAGE_URL, include_in_schema=False)
    async def playground() -> FileResponse:
        # The page refers to its files and to the API by relative URLs, so that it works under
        # a root path (behind a proxy's prefix) as well.
        return FileResponse(
            ASSETS / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )
