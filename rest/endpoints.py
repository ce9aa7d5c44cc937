"""The endpoints: each parses and validates its input, runs ONE shared operation (one
atomic Redis step) and renders the result. What they share (the queue, the settings, the
live rooms) comes from the app's lifespan state."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from shared import metrics, validation
from shared.model import Change
from shared.queue import Queue

from . import live
from .catalogue import catalogue_of
from .http import JSONResponse, json_body, query_params, track_bytes, tracks_bytes


def room_of(request: Request) -> str:
    room = request.path_params.get("room")
    return validation.DEFAULT_ROOM if room is None else validation.room(room)


def queue_of(request: Request) -> Queue:
    queue: Queue = request.state.queue
    return queue


def head_of(request: Request) -> int:
    return validation.head_size(validation.query_int(
        "head", query_params(request).get("head"), None, 0, validation.MAX_HEAD))


def idempotency_key(request: Request) -> str | None:
    return validation.idempotency_key(request.headers.get("idempotency-key"))


def page_of(request: Request) -> tuple[int, int | None]:
    params = query_params(request)
    offset = validation.query_int("offset", params.get("offset"), 0, 0)
    return offset or 0, validation.query_int("limit", params.get("limit"), None, 1)


def authorization(request: Request) -> str | None:
    """The Authorization header: the functions decide what it may do (``shared.auth``)."""
    return request.headers.get("authorization")


def written(message: bytes, change: Change) -> JSONResponse:
    return JSONResponse(b'{"message":"%s","track":%s,"queue":%s}'
                        % (message, track_bytes(change.track), tracks_bytes(change.head)))


async def add_track(request: Request) -> Response:
    body = await json_body(request)
    room = room_of(request)  # (checked before the catalogue is asked)
    queue = queue_of(request)
    if body.get("title") is None and body.get("artist") is None:  # a catalogue track
        change = await queue.add_from_catalogue(
            room, catalogue_of(request), validation.track_id(body.get("id")),
            body.get("duration"), head=head_of(request),
            idempotency_key=idempotency_key(request), authorization=authorization(request))
        return written(b"Track added", change)
    track = validation.new_track(body.get("id"), body.get("title"), body.get("artist"),
                                 body.get("duration"))
    change = await queue.add(room, track, head=head_of(request),
                             idempotency_key=idempotency_key(request),
                             authorization=authorization(request))
    return written(b"Track added", change)


async def remove_track(request: Request) -> Response:
    params = query_params(request)
    body = await json_body(request, required="id" not in params)
    track_id = validation.track_id(params.get("id", body.get("id")))
    change = await queue_of(request).remove(room_of(request), track_id, head=head_of(request),
                                            idempotency_key=idempotency_key(request),
                                            authorization=authorization(request))
    return written(b"Track removed", change)


async def vote(request: Request) -> Response:
    params = query_params(request)
    body = await json_body(request, required=False)
    track_id = validation.track_id(params.get("id", body.get("id")))
    up = validation.up(params.get("up", body.get("up")))
    voter = validation.voter(params.get("voter", body.get("voter")),  # (a guest: their own)
                             request.state.settings.require_voter
                             and authorization(request) is None)
    change = await queue_of(request).vote(room_of(request), track_id, up, voter,
                                          head=head_of(request),
                                          idempotency_key=idempotency_key(request),
                                          authorization=authorization(request))
    return written(b"Vote recorded", change)


async def queue(request: Request) -> Response:
    room = room_of(request)
    offset, limit = page_of(request)
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


async def history(request: Request) -> Response:
    offset, limit = page_of(request)
    tracks = await queue_of(request).history(room_of(request), offset, limit)
    return JSONResponse(tracks_bytes(tracks))


async def clear(request: Request) -> Response:
    head_of(request)  # checked like any write's
    await queue_of(request).clear(room_of(request), idempotency_key=idempotency_key(request),
                                  authorization=authorization(request))
    return JSONResponse({"message": "Room cleared", "queue": []})


async def events(request: Request) -> Response:
    from .rooms import stream_guest

    room = room_of(request)
    guest = await stream_guest(request, room)
    stream = await live.open_stream(request.state.live, room,
                                    request.headers.get("last-event-id"),
                                    request.state.settings.sse_heartbeat, guest)
    return StreamingResponse(stream, media_type="text/event-stream", headers=live.HEADERS)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": request.state.settings.node_id})


async def readyz(request: Request) -> Response:
    await request.state.redis.execute("PING")  # StoreUnavailable (503) if Redis does not answer
    return JSONResponse({"status": "ready", "node": request.state.settings.node_id})


async def metrics_text(request: Request) -> Response:
    return Response(metrics.exposition(request.app.state.metrics),
                    media_type=metrics.CONTENT_TYPE)
