"""The REST node: a bare Starlette app over the shared queue core.

Every endpoint parses and validates its input, runs ONE shared operation (one atomic
Redis step) and renders the result. Each endpoint answers at the root (room ``default``)
and under ``/rooms/{room}``.
"""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shared import errors, store, validation
from shared.auth import check_admin
from shared.config import Settings
from shared.events import Hub
from shared.queue import Change, Queue

from . import live, pages
from .http import (JSONResponse, Lifecycle, NodeHeader, http_error, json_body, queue_error,
                   server_error, track_bytes, tracks_bytes)
from .openapi import openapi_json

settings = Settings.from_env()


# -- request helpers --------------------------------------------------------------------

def room_of(request: Request) -> str:
    room = request.path_params.get("room")
    return validation.DEFAULT_ROOM if room is None else validation.room(room)


def queue_of(request: Request) -> Queue:
    return request.state.queue


def write_options(request: Request) -> dict:
    head = validation.query_int("head", request.query_params.get("head"), None, 0,
                                validation.MAX_HEAD)
    return {"head": validation.head_size(head),
            "idempotency_key": validation.idempotency_key(request.headers.get("idempotency-key"))}


def page_options(request: Request) -> tuple[int, int | None]:
    params = request.query_params
    return (validation.query_int("offset", params.get("offset"), 0, 0),
            validation.query_int("limit", params.get("limit"), None, 1))


def require_admin(request: Request) -> None:
    check_admin(settings.admin_token, request.headers.get("authorization"))


def written(message: bytes, change: Change) -> JSONResponse:
    return JSONResponse(b'{"message":"%s","track":%s,"queue":%s}'
                        % (message, track_bytes(change.track), tracks_bytes(change.head)))


# -- endpoints --------------------------------------------------------------------------

async def add_track(request: Request) -> Response:
    body = await json_body(request)
    track = validation.new_track(body.get("id"), body.get("title"), body.get("artist"),
                                 body.get("duration"))
    change = await queue_of(request).add(room_of(request), track, **write_options(request))
    return written(b"Track added", change)


async def remove_track(request: Request) -> Response:
    require_admin(request)
    body = await json_body(request, required="id" not in request.query_params)
    track_id = validation.track_id(request.query_params.get("id", body.get("id")))
    change = await queue_of(request).remove(room_of(request), track_id, **write_options(request))
    return written(b"Track removed", change)


async def vote(request: Request) -> Response:
    params = request.query_params
    body = await json_body(request, required=False)
    track_id = validation.track_id(params.get("id", body.get("id")))
    up = validation.up(params.get("up", body.get("up")))
    voter = validation.voter(params.get("voter", body.get("voter")), settings.require_voter)
    change = await queue_of(request).vote(room_of(request), track_id, up, voter,
                                          **write_options(request))
    return written(b"Vote recorded", change)


async def queue(request: Request) -> Response:
    room = room_of(request)
    offset, limit = page_options(request)
    wanted = request.headers.get("if-none-match")
    if wanted:
        version = await queue_of(request).version(room)
        if _etag_matches(wanted, version):
            return Response(status_code=304, headers={"ETag": f'"{version}"'})
    page = await queue_of(request).page(room, offset, limit)
    return JSONResponse(tracks_bytes(page.tracks),
                        headers={"ETag": f'"{page.version}"', "X-Queue-Length": str(page.length)})


def _etag_matches(header: str, version: int) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or f'"{version}"' in tags


async def metadata(request: Request) -> Response:
    track_id = validation.track_id(request.path_params["track_id"])
    return JSONResponse(track_bytes(await queue_of(request).metadata(room_of(request), track_id)))


async def play_next(request: Request) -> Response:
    require_admin(request)
    options = write_options(request)
    change = await queue_of(request).play_next(  # answers with the track alone: no head
        room_of(request), head=0, idempotency_key=options["idempotency_key"])
    return JSONResponse(b'{"now_playing":%s}' % track_bytes(change.track))


async def now_playing(request: Request) -> Response:
    track = await queue_of(request).now_playing(room_of(request))
    return JSONResponse(b'{"now_playing":%s}' % track_bytes(track))


async def history(request: Request) -> Response:
    offset, limit = page_options(request)
    tracks = await queue_of(request).history(room_of(request), offset, limit)
    return JSONResponse(tracks_bytes(tracks))


async def clear(request: Request) -> Response:
    require_admin(request)
    options = write_options(request)
    await queue_of(request).clear(room_of(request), idempotency_key=options["idempotency_key"])
    return JSONResponse({"message": "Room cleared", "queue": []})


async def events(request: Request) -> Response:
    room = room_of(request)
    stream = await live.open_stream(request.state.hub, queue_of(request), room,
                                    request.headers.get("last-event-id"), settings.sse_heartbeat)
    return StreamingResponse(stream, media_type="text/event-stream", headers=live.HEADERS)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": settings.node_id})


async def readyz(request: Request) -> Response:
    await request.state.redis.execute("PING")  # StoreUnavailable (503) if Redis does not answer
    return JSONResponse({"status": "ready", "node": settings.node_id})


async def openapi(request: Request) -> Response:
    return Response(openapi_json(), media_type="application/json")


# -- the app ----------------------------------------------------------------------------

ROOM_ENDPOINTS = [
    ("/add_track", add_track, ["POST"]),
    ("/remove_track", remove_track, ["POST"]),
    ("/vote", vote, ["POST"]),
    ("/queue", queue, ["GET"]),
    ("/metadata/{track_id}", metadata, ["GET"]),
    ("/play_next", play_next, ["POST"]),
    ("/now_playing", now_playing, ["GET"]),
    ("/history", history, ["GET"]),
    ("/clear", clear, ["POST"]),
    ("/events", events, ["GET"]),
]

routes = [
    *(Route(path, endpoint, methods=methods) for path, endpoint, methods in ROOM_ENDPOINTS),
    *(Route("/rooms/{room}" + path, endpoint, methods=methods)
      for path, endpoint, methods in ROOM_ENDPOINTS),
    Route("/", pages.index, methods=["GET"]),
    Route("/rooms/{room}/", pages.index, methods=["GET"]),
    Route("/rooms/{room}", pages.room_redirect, methods=["GET"]),
    Route("/docs", pages.docs, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/static/{name}", pages.asset, methods=["GET"]),
]


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    client = store.async_client(settings)
    hub = Hub(settings)
    Lifecycle.on_drain.append(hub.end_all)
    try:
        yield {"queue": Queue(store.AsyncRunner(client), settings), "redis": client, "hub": hub}
    finally:
        Lifecycle.on_drain.remove(hub.end_all)
        await hub.close()
        await client.aclose()


app = Starlette(
    routes=routes,
    middleware=[Middleware(NodeHeader, node_id=settings.node_id)],
    exception_handlers={
        errors.QueueError: queue_error,
        HTTPException: http_error,
        Exception: server_error(settings.node_id),
    },
    lifespan=lifespan,
)
