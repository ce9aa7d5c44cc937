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

import orjson

from shared import errors
from shared.events import END, RESYNC, Event, Hub, Listener
from shared.model import iso_time
from shared.queue import Queue, Snapshot

from .http import track_json

RETRY_SNAPSHOT = 0.5
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _frame(version: int, kind: str, body: dict) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (version, kind.encode(), orjson.dumps(body))


def snapshot_frame(snapshot: Snapshot) -> bytes:
    now = snapshot.now_playing
    return _frame(snapshot.version, "snapshot", {
        "type": "snapshot", "version": snapshot.version, "length": snapshot.length,
        "queue": [track_json(t) for t in snapshot.head],
        "now_playing": track_json(now) if now else None,
        "server_time": iso_time(int(time.time() * 1000)),
    })


def event_frame(event: Event) -> bytes:
    change = event.change
    body = {"type": change.kind, "version": change.version, "length": change.length,
            "queue": [track_json(t) for t in change.head]}
    if change.track is not None:
        body["track"] = track_json(change.track)
        if change.kind == "play":
            body["now_playing"] = body["track"]
    return _frame(change.version, change.kind, body)


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
