"""Serving the web dashboard (``webui/``'s production build) from admin, beside the API.

``GET /`` and every ``GET /ui/...`` answer the single-page app's ``index.html`` (the app's router takes the
path from there); files of the build (``/ui/assets/...``) are served as they are. The API keeps its own
paths: none of them starts with ``/ui``. Without a build, these paths answer a short HTML page that says
how to build one (503), never a 500.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "webui" / "dist"
PREFIX = "/ui"

MISSING_BUILD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Easel dashboard: not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The Easel dashboard is not built</h1>
<p>Admin looked for the dashboard's build in <code>{dist}</code> and found no <code>index.html</code>.</p>
<p>Build it with <code>make webui</code> (or <code>cd webui &amp;&amp; npm ci &amp;&amp; npm run build</code>), or
point <code>EASEL_WEBUI_DIST</code> at a build. The REST API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>
"""

# Hashed file names (Vite's assets/) never change content; index.html must be re-read on every load.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
NO_CACHE = {"Cache-Control": "no-cache"}


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.relative_to(root)
    except ValueError:
        return False
    return True


def mount_dashboard(app: FastAPI, dist: Path | None) -> None:
    """Add ``GET /`` and ``GET /ui/{path}`` to ``app`` serving the build in ``dist`` (kept out of OpenAPI)."""
    root = (dist or DEFAULT_DIST).resolve()

    def index() -> Response:
        page = root / "index.html"
        if not page.is_file():
            return HTMLResponse(MISSING_BUILD.format(dist=root), status_code=503, headers=NO_CACHE)
        return FileResponse(page, media_type="text/html", headers=NO_CACHE)

    @app.get("/", include_in_schema=False)
    def dashboard_root() -> Response:
        return index()

    @app.get(PREFIX, include_in_schema=False)
    @app.get(PREFIX + "/{path:path}", include_in_schema=False)
    def dashboard_path(path: str = "") -> Response:
        if path:
            candidate = (root / path).resolve()
            if _inside(root, candidate) and candidate.is_file() and candidate.name != "index.html":
                headers = IMMUTABLE if path.startswith("assets/") else NO_CACHE
                return FileResponse(candidate, headers=headers)
            if path.startswith("assets/"):  # a missing asset is a 404, not the app's page
                return Response(status_code=404, content=f"no such file: {PREFIX}/{path}", media_type="text/plain")
        return index()
