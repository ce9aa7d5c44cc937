"""HTTP plumbing: JSON in and out, the error mapping, rendering tracks."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from shared import errors, validation
from shared.logs import REQUEST_ID
from shared.model import NowPlaying, Track, iso_time

log = logging.getLogger("rest")

CACHED_QUERY = 128  # bytes: a query string up to this long is parsed once per node (below)


def query_params(request: Request) -> QueryParams:
    """The request's query parameters, as ``request.query_params`` has them. Clients send
    the same few query strings again and again (a queue's ``limit``, the letters everyone
    types first), and parsing one took 14 us, about a twelfth of a search's time on the
    node: short ones are parsed once (QueryParams is immutable, so it can be shared), 1,024
    of them at most (a few MB however they are made). MalformedRequest for a parameter
    whose %-escapes are not UTF-8 (Starlette would read them as U+FFFD)."""
    raw: bytes = request.scope["query_string"]
    return _parsed(raw) if len(raw) <= CACHED_QUERY else _parse(raw)


@lru_cache(maxsize=1024)
def _parsed(raw: bytes) -> QueryParams:
    return _parse(raw)


def _parse(raw: bytes) -> QueryParams:
    text = raw.decode("latin-1")
    try:
        return QueryParams(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        pass
    pairs, bad = [], set()
    for pair in text.split("&"):
        try:
            pairs += parse_qsl(pair, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            try:
                bad.add(unquote_plus(pair.partition("=")[0], errors="strict"))
            except UnicodeDecodeError:
                pass  # a name no endpoint reads
    return Params(pairs, bad=bad)


class Params(QueryParams):
    """Query parameters some of whose values were not UTF-8: reading one of those is a
    MalformedRequest naming it (Starlette would give U+FFFD in their place); one nobody
    reads is ignored, as any unknown parameter is."""

    def __init__(self, pairs: list[tuple[str, str]], bad: set[str]):
        super().__init__(pairs)
        self.bad = frozenset(bad)

    def _check(self, key: Any) -> None:
        if key in self.bad:
            name = "".join(c for c in str(key)[:40] if c.isprintable())
            raise errors.MalformedRequest(f"{name}: is not valid UTF-8 (its %-escapes must "
                                          "spell UTF-8 bytes)")

    def get(self, key: Any, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> str:
        self._check(key)
        return super().__getitem__(key)

    def getlist(self, key: Any) -> list[str]:
        self._check(key)
        return super().getlist(key)

    def __contains__(self, key: Any) -> bool:
        self._check(key)
        return super().__contains__(key)


class BodyTooLarge(errors.QueueError):
    def __init__(self) -> None:
        super().__init__(f"the request body is over {validation.MAX_BODY // 1024} KiB")


STATUS = {
    errors.MalformedRequest: 400,
    errors.InvalidField: 422,
    errors.IdempotencyKeyReused: 422,
    errors.TrackNotFound: 404,
    errors.DuplicateTrack: 409,
    errors.QueueEmpty: 409,
    errors.QueueFull: 409,
    errors.AdminTokenMissing: 401,
    errors.AdminTokenWrong: 403,
    errors.StoreUnavailable: 503,
    errors.RecentlyPlayed: 409,
    errors.GuestFull: 409,
    errors.RoomTaken: 409,
    errors.NotCreated: 409,
    errors.UnknownMember: 404,
    errors.TooManyRequests: 429,
    errors.PlayChanged: 412,
    errors.NothingPlaying: 409,
    errors.SkippingOff: 409,
    BodyTooLarge: 413,
}


def dumps(content) -> bytes:
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:  # ids of more than 19 digits are bigger than int64
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"detail": detail}, status, headers)


async def queue_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.QueueError)
    status = next(STATUS[k] for k in type(exc).__mro__ if k in STATUS)
    headers = None
    if status == 503:
        headers = {"Retry-After": "1"}
    elif status == 429:
        headers = {"Retry-After": "60"}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="music-queue"'}
    elif isinstance(exc, errors.PlayChanged):  # what is current instead
        return JSONResponse({"detail": exc.detail, "now_playing": now_json(exc.now)}, 412)
    return error_response(status, exc.detail, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path} (see /docs)"
    return error_response(exc.status_code, detail, exc.headers)


def server_error(node_id: str):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error: the node logged it",
                              {"X-Node-Id": node_id, "X-Request-Id": REQUEST_ID.get()})
    return handler


async def json_body(request: Request, required: bool = True) -> dict:
    """The body as a JSON object, whatever the Content-Type; {} if empty and not required."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > validation.MAX_BODY:
            raise BodyTooLarge()
    if not body.strip():
        if required:
            raise errors.MalformedRequest("the request needs a JSON object body")
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = _lenient_loads(bytes(body))
    else:  # orjson turns integers past 64 bits into floats
        if isinstance(data, dict) and any(type(v) is float and abs(v) >= 2**63
                                          for v in data.values()):
            data = _lenient_loads(bytes(body))
    if not isinstance(data, dict):
        raise errors.MalformedRequest("the request body must be a JSON object, like {\"id\": 123}")
    return data


def _lenient_loads(body: bytes):
    """The standard library's parser: exact for integers of any size, which JSON allows."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.MalformedRequest(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_Unreadable.constant, parse_int=_Unreadable.integer)
    except RecursionError:
        raise errors.MalformedRequest("the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise errors.MalformedRequest(f"the body is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        for key, value in data.items():
            if type(value) is _Unreadable:
                raise errors.MalformedRequest(f'the body cannot be read: "{key}" is {value}')
    return data


class _Unreadable:
    """What the standard parser takes but JSON has not (NaN, Infinity), or a number too long
    to convert: refused as soon as the field that holds it is known (deeper down, it breaks
    that field's rules)."""

    def __init__(self, token: str, why: str):
        self.token, self.why = token, why

    def __repr__(self) -> str:
        return self.token

    def __str__(self) -> str:
        return f"{self.token}, {self.why}"

    @classmethod
    def constant(cls, name: str) -> _Unreadable:
        return cls(name, "which is not a JSON number")

    @classmethod
    def integer(cls, digits: str):
        if len(digits) > 4300:  # Python's own limit on converting digits (a DoS guard)
            return cls(f"a number of {len(digits):,} digits",
                       f"too long (no field takes more than {validation.MAX_ID})")
        return int(digits)


def rest_id(track_id: str):
    """Digits without a leading zero render as a JSON integer, so {"id": 123} round-trips."""
    if track_id.isdigit() and (track_id[0] != "0" or track_id == "0"):
        return int(track_id)
    return track_id


def track_bytes(track: Track | None) -> bytes:
    """The track as JSON, rendered once per decoded track (tracks are shared, see
    shared.model), so a queue head costs a join, not 25 encodings."""
    if track is None:
        return b"null"
    rendered: bytes | None = track.rendered.get("rest")
    if rendered is None:
        # A copy: orjson's own result keeps a 4 KiB allocation behind a 150-byte track,
        # which made the cache of 20,000 tracks cost 80 MiB.
        rendered = track.rendered["rest"] = bytes(memoryview(dumps(track_json(track))))
    return rendered


def tracks_bytes(tracks) -> bytes:
    return b"[" + b",".join([track_bytes(t) for t in tracks]) + b"]"


def track_json(track: Track) -> dict:
    out = {
        "id": rest_id(track.id),
        "title": track.title,
        "artist": track.artist,
        "duration": track.duration,
        "votes": track.votes,
        "added_at": iso_time(track.added_at),
    }
    if track.added_by is not None:
        out["added_by"] = {"guest": track.added_by[0], "name": track.added_by[1]}
    if track.played_at is not None:
        out["played_at"] = iso_time(track.played_at)
    if track.play_id is not None:
        out["play_id"] = track.play_id
    if track.skipped:
        out["skipped"] = True
    if track.fallback:
        out["fallback"] = True
    return out


def now_json(now: NowPlaying | None) -> dict[str, Any] | None:
    """What plays now, with its clock at Redis's time of the read or change."""
    if now is None:
        return None
    track, clock = now.track, now.clock
    ends = clock.ends_at(track.duration)
    return {**track_json(track), "play_id": clock.play_id,
            "started_at": iso_time(clock.started),
            "ends_at": None if ends is None else iso_time(ends), "paused": clock.paused,
            "position": clock.position_ms(track.duration) / 1000,
            "skip_votes": clock.skips, "skip_threshold": clock.skip_threshold,
            "fallback": track.fallback}


def now_bytes(now: NowPlaying | None) -> bytes:
    return dumps(now_json(now))
