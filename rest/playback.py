"""The playback endpoints: play next (with its compare-and-set form), now playing with its
clock, pause, resume, skip votes and the room's settings. Each is one atomic step
(``shared.playback``, ``shared.queue``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared import validation
from shared.model import NowPlaying
from shared.playback import Playback

from .endpoints import authorization, head_of, idempotency_key, queue_of, room_of
from .http import JSONResponse, dumps, json_body, now_bytes, query_params


def playback_of(request: Request) -> Playback:
    playback: Playback = request.state.playback
    return playback


def playing(now: NowPlaying | None) -> JSONResponse:
    return JSONResponse(b'{"now_playing":%s}' % now_bytes(now))


async def play_next(request: Request) -> Response:
    head_of(request)  # checked like any write's, though the answer is now playing alone
    expected = validation.play_id(request.headers.get("if-match"))
    change = await queue_of(request).play_next(
        room_of(request), head=0, idempotency_key=idempotency_key(request),
        expected_play_id=expected, authorization=authorization(request))
    return playing(change.now)


async def now_playing(request: Request) -> Response:
    now, _, _ = await queue_of(request).now_playing(room_of(request))
    return playing(now)


async def pause(request: Request) -> Response:
    change = await playback_of(request).pause(room_of(request),
                                              idempotency_key=idempotency_key(request),
                                              authorization=authorization(request))
    return playing(change.now)


async def resume(request: Request) -> Response:
    change = await playback_of(request).resume(room_of(request),
                                               idempotency_key=idempotency_key(request),
                                               authorization=authorization(request))
    return playing(change.now)


async def skip(request: Request) -> Response:
    body = await json_body(request, required=False)
    given = authorization(request)
    # (none and no guest token: the function refuses, after the room's own rules)
    voter = validation.voter(query_params(request).get("voter", body.get("voter")))
    change = await playback_of(request).skip(room_of(request), voter,
                                             idempotency_key=idempotency_key(request),
                                             authorization=given)
    skipped = change.kind == "play"
    return JSONResponse(b'{"message":"%s","skipped":%s,"now_playing":%s}' % (
        b"Track skipped" if skipped else b"Skip vote recorded",
        b"true" if skipped else b"false", now_bytes(change.now)))


async def get_settings(request: Request) -> Response:
    return JSONResponse(dumps(await playback_of(request).settings(room_of(request))))


async def patch_settings(request: Request) -> Response:
    updates = await json_body(request)
    changed = await playback_of(request).configure(
        room_of(request), updates, idempotency_key=idempotency_key(request),
        authorization=authorization(request))
    return JSONResponse(dumps(changed))

