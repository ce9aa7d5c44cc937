"""The pages a person opens in a browser: the queue page and the API docs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared import validation

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Music queue: {room}</title></head>
<body><h1>Music queue: {room}</h1>
<p>The API lives under <code>{base}</code>; see <a href="/docs">the API docs</a>.</p>
</body></html>
"""

_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Music queue API</title></head>
<body><h1>Music queue API</h1>
<p>The OpenAPI 3 document: <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
"""


async def index(request: Request) -> Response:
    room = validation.room(request.path_params.get("room", validation.DEFAULT_ROOM))
    base = "/" if "room" not in request.path_params else f"/rooms/{room}/"
    return HTMLResponse(_INDEX.format(room=room, base=base))


async def room_redirect(request: Request) -> Response:
    room = validation.room(request.path_params["room"])
    return RedirectResponse(f"/rooms/{room}/", status_code=308)


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS)
