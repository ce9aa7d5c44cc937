"""Server-Sent Events: GET /events (and /rooms/{room}/events), rendering
``shared.live.follow``.

The stream opens with ``retry:`` and a snapshot of the room (queue head, now playing with
its clock, settings, version and Redis's time), then carries one event per change, each
with the room's version as its id, and a comment line every SSE_HEARTBEAT_MS (10 s; at
most 15 s) so that proxies and browsers keep it open. A client that reconnects with
``Last-Event-ID`` gets a fresh snapshot if the room changed meanwhile, and none if it did
not. Each event is encoded once per node, however many streams carry it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from shared.errors import Banned
from shared.live import Event, Live, follow
from shared.model import Snapshot, iso_time
from shared.settings import effective

from .http import dumps, now_bytes, track_bytes, tracks_bytes

PLAYBACK = ("play", "pause", "resume", "skip")  # changes that carry now playing
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def snapshot_frame(snapshot: Snapshot) -> bytes:
    v = snapshot.version
    return (b'id: %d\nevent: snapshot\ndata: {"type":"snapshot","version":%d,"length":%d,'
            b'"queue":%s,"now_playing":%s,"settings":%s,"server_time":"%s"}\n\n'
            % (v, v, snapshot.length, tracks_bytes(snapshot.head),
               now_bytes(snapshot.now_playing), dumps(effective(snapshot.settings)),
               iso_time(snapshot.time).encode()))


def event_frame(event: Event) -> bytes:
    change = event.change
    v, kind = change.version, change.kind.encode()
    extra = b""
    if change.track is not None:
        extra = b',"track":%s' % track_bytes(change.track)
    if change.kind in PLAYBACK:
        extra += b',"now_playing":%s' % now_bytes(change.now)
        if change.now is not None:
            extra += b',"server_time":"%s"' % iso_time(change.now.clock.now).encode()
    elif change.settings is not None:
        extra += b',"settings":%s' % dumps(effective(change.settings))
    elif change.guest is not None:
        extra += b',"guest":%s' % dumps(change.guest)
    return (b'id: %d\nevent: %s\ndata: {"type":"%s","version":%d,"length":%d,"queue":%s%s}\n\n'
            % (v, kind, kind, v, change.length, tracks_bytes(change.head), extra))


def _last_event_id(header: str | None) -> int | None:
    try:
        return int(header) if header else None
    except ValueError:
        return None


async def open_stream(live: Live, room: str, last_event_id: str | None,
                      heartbeat: float, guest: str | None = None) -> AsyncIterator[bytes]:
    """Subscribe and take the first snapshot (errors here are ordinary responses: 503 when
    Redis is down), and return the stream's body (a guest's ends when they are banned)."""
    items = follow(live, room, idle=heartbeat, guest=guest)
    first = await anext(items)
    assert isinstance(first, Snapshot)
    return _frames(items, first, _last_event_id(last_event_id))


async def _frames(items: AsyncGenerator[Snapshot | Event | None, None], first: Snapshot,
                  last_seen: int | None) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 1000\n\n"
        if last_seen != first.version:
            yield snapshot_frame(first)
        async for item in items:
            if item is None:
                yield b": keep-alive\n\n"
            elif isinstance(item, Snapshot):
                yield snapshot_frame(item)
            else:
                yield item.rendered("sse", event_frame)
    except Banned as exc:  # this guest was banned: say so, and end the stream
        yield b"event: banned\ndata: %s\n\n" % dumps({"detail": exc.detail})
    finally:
        await items.aclose()
