"""The pages a person opens in a browser: the queue page and the API docs, their assets,
and the OpenAPI document the docs page reads."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared import validation

STATIC = Path(__file__).resolve().parent / "static"

_INDEX = (STATIC / "index.html").read_bytes()
_DOCS = (STATIC / "docs.html").read_bytes()
_ICON = (STATIC / "favicon.svg").read_bytes()


async def index(request: Request) -> Response:
    """The queue page; it finds its room in its own URL."""
    validation.room(request.path_params.get("room", validation.DEFAULT_ROOM))
    return HTMLResponse(_INDEX)


async def room_redirect(request: Request) -> Response:
    room = validation.room(request.path_params["room"])
    return RedirectResponse(f"/rooms/{room}/", status_code=308)


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS)


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The page's scripts and styles, read once; each answer is the whole file (no ranges).
_ASSETS = {path.name: (path.read_bytes(), _TYPES[path.suffix]) for path in STATIC.iterdir()
           if path.suffix in _TYPES}


async def asset(request: Request) -> Response:
    found = _ASSETS.get(request.path_params["name"])
    if found is None:
        raise HTTPException(404)
    body, media_type = found
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=300"})


async def favicon(request: Request) -> Response:
    """The pages' icon, at the address browsers ask for by themselves."""
    return Response(_ICON, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
