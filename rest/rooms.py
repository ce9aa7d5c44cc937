"""Rooms with their own hosts and guests (CONTRACT §7): create a room, co-hosts, guest
sessions, bans and a guest's own tracks. Every token is shown once, in the answer that
made it; Redis keeps its SHA-256 only (``shared.rooms``)."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from shared import validation
from shared.errors import AdminTokenWrong, Banned, InvalidField
from shared.playback import Playback
from shared.rooms import JoinLimit, Rooms

from .endpoints import authorization, idempotency_key, room_of
from .http import JSONResponse, dumps, json_body, track_json

NO_STORE = {"Cache-Control": "no-store"}  # answers that carry a token


def rooms_of(request: Request) -> Rooms:
    rooms: Rooms = request.state.rooms
    return rooms


async def create_room(request: Request) -> Response:
    body = await json_body(request, required=False)
    unknown = sorted(set(body) - {"room"})  # ("name" for "room": a typo would make one up)
    if unknown:
        raise InvalidField(unknown[0], 'is not a field of a new room (it takes "room")')
    name = body.get("room")
    room = validation.room(name) if name not in (None, "") else f"room-{secrets.token_hex(4)}"
    token = await rooms_of(request).create(room)
    return JSONResponse(dumps({"room": room, "host_token": token}), 201, NO_STORE)


async def add_cohost(request: Request) -> Response:
    cohost, token = await rooms_of(request).add_cohost(room_of(request), authorization(request))
    return JSONResponse(dumps({"cohost": cohost, "token": token}), 201, NO_STORE)


async def revoke_cohost(request: Request) -> Response:
    cohost = validation.member_id("cohost", request.path_params["cohost"])
    await rooms_of(request).revoke_cohost(room_of(request), cohost, authorization(request))
    return JSONResponse({"message": "Co-host revoked", "cohost": cohost})


async def join(request: Request) -> Response:
    body = await json_body(request)
    name = validation.guest_name(body.get("name"))
    room = room_of(request)
    limit: JoinLimit = request.state.join_limit
    limit.take(request.client.host if request.client else "")
    guest, token = await rooms_of(request).join(room, name)
    response = JSONResponse(dumps({"guest": guest, "guest_token": token, "name": name}), 201,
                            NO_STORE)
    # The page's live stream (EventSource sends no headers) knows its guest by this cookie;
    # it is sent with that stream only, and never read for a write.
    response.set_cookie(f"mq_guest_{room}", token, httponly=True, samesite="strict",
                        path=f"/rooms/{room}/events", max_age=7 * 86400)
    return response


async def ban(request: Request) -> Response:
    guest = validation.member_id("guest", request.path_params["guest"])
    playback: Playback = request.state.playback
    change = await playback.ban(room_of(request), guest, idempotency_key=idempotency_key(request),
                                authorization=authorization(request))
    return JSONResponse({"message": "Guest banned", "guest": guest, "version": change.version})


async def unban(request: Request) -> Response:
    guest = validation.member_id("guest", request.path_params["guest"])
    playback: Playback = request.state.playback
    await playback.unban(room_of(request), guest, idempotency_key=idempotency_key(request),
                         authorization=authorization(request))
    return JSONResponse({"message": "Ban lifted", "guest": guest})


async def me(request: Request) -> Response:
    mine = await rooms_of(request).mine(room_of(request), authorization(request))
    return JSONResponse(dumps({
        "guest": mine.guest, "name": mine.name,
        "tracks": [{**track_json(track), "position": position}
                   for position, track in mine.tracks]}))


async def stream_guest(request: Request, room: str) -> str | None:
    """Whose stream this is: the guest of the Authorization header or of the page's cookie
    (None for anyone else). A banned guest's is refused (403) before it opens, and so is an
    Authorization header that is not this room's; a stale cookie is ignored."""
    given, cookie = authorization(request), None
    if given is None:
        cookie = request.cookies.get(f"mq_guest_{room}")
        given = f"Bearer {cookie}" if cookie else None
    if given is None:
        return None
    try:
        role, guest, _ = await rooms_of(request).whoami(room, given)
    except AdminTokenWrong:
        if cookie is None:
            raise
        return None
    if role == "banned":
        raise Banned()
    return guest if role == "guest" else None
