"""Server-Sent Events: GET /events (and /rooms/{room}/events).

The stream opens with ``retry:`` and a snapshot of the room (queue head, now playing,
version), then carries one event per change, each with the room's version as its id, and a
comment line every SSE_HEARTBEAT_MS (10 s; at most 15 s) so that proxies and browsers keep it open. A client that
reconnects with ``Last-Event-ID`` gets a fresh snapshot if the room changed meanwhile, and
none if it did not. After a Redis outage (or when the client fell behind) it gets a fresh
snapshot too. Each event is encoded once per node, however many streams carry it.
"""

from __future__ import annotations

import asyncio
import time

from shared import errors
from shared.events import END, RESYNC, Event, Hub, Listener
from shared.model import iso_time
from shared.queue import Queue, Snapshot

from .http import track_bytes, tracks_bytes

RETRY_SNAPSHOT = 0.5
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def snapshot_frame(snapshot: Snapshot) -> bytes:
    v = snapshot.version
    return (b'id: %d\nevent: snapshot\ndata: {"type":"snapshot","version":%d,"length":%d,'
            b'"queue":%s,"now_playing":%s,"server_time":"%s"}\n\n'
            % (v, v, snapshot.length, tracks_bytes(snapshot.head),
               track_bytes(snapshot.now_playing), iso_time(int(time.time() * 1000)).encode()))


def event_frame(event: Event) -> bytes:
    change = event.change
    v, kind = change.version, change.kind.encode()
    extra = b""
    if change.track is not None:
        extra = b',"track":%s' % track_bytes(change.track)
        if change.kind == "play":
            extra += b',"now_playing":%s' % track_bytes(change.track)
    return (b'id: %d\nevent: %s\ndata: {"type":"%s","version":%d,"length":%d,"queue":%s%s}\n\n'
            % (v, kind, kind, v, change.length, tracks_bytes(change.head), extra))


def _last_event_id(header: str | None) -> int | None:
    try:
        return int(header) if header else None
    except ValueError:
        return None


async def open_stream(hub: Hub, queue: Queue, room: str, last_event_id: str | None,
                      heartbeat: float):
    """Subscribe, take the snapshot (errors here are ordinary responses: 503 when Redis is
    down), and return the stream's body."""
    listener = await hub.listen(room)
    try:
        snapshot = await queue.snapshot(room)
    except BaseException:
        hub.leave(listener)
        raise
    return _stream(hub, queue, listener, snapshot, _last_event_id(last_event_id), heartbeat)


async def _fresh_snapshot(queue: Queue, room: str) -> Snapshot:
    while True:
        try:
            return await queue.snapshot(room)
        except errors.StoreUnavailable:
            await asyncio.sleep(RETRY_SNAPSHOT)


async def _stream(hub: Hub, queue: Queue, listener: Listener, snapshot: Snapshot,
                  last_seen: int | None, heartbeat: float):
    try:
        yield b"retry: 1000\n\n"
        version = snapshot.version
        if last_seen != version:
            yield snapshot_frame(snapshot)
        while True:
            item = await listener.get(heartbeat)
            if item is None:
                yield b": keep-alive\n\n"
            elif item is END:
                return
            elif item is RESYNC:
                snapshot = await _fresh_snapshot(queue, listener.room)
                version = snapshot.version
                yield snapshot_frame(snapshot)
            elif item.change.version > version:
                version = item.change.version
                yield item.rendered("sse", event_frame)
    finally:
        hub.leave(listener)
