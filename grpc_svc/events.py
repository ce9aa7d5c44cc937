"""The server-streaming Watch method: a snapshot of the room, then one event per change."""

from __future__ import annotations

import asyncio

import grpc

from proto import queue_pb2 as pb
from shared import errors
from shared.events import RESYNC, Event, Hub
from shared.queue import Snapshot

from .service import (QueueMethods, _message, _number, _tracks, parse, room_of, status_of,
                      track_bytes)

RETRY_SNAPSHOT = 0.5  # seconds between snapshot attempts while Redis is unreachable


def _event(kind: str, version: int, track, head, length: int, now) -> bytes:
    """A serialized QueueEvent: type 1, version 2, track 3, queue 4, length 5,
    now_playing 6."""
    return b"".join((_message(0x0A, kind.encode()), _number(0x10, version),
                     _message(0x1A, track_bytes(track)) if track else b"",
                     _tracks(0x22, head), _number(0x28, length),
                     _message(0x32, track_bytes(now)) if now else b""))


def snapshot_pb(snapshot: Snapshot) -> bytes:
    return _event("snapshot", snapshot.version, None, snapshot.head, snapshot.length,
                  snapshot.now_playing)


def event_pb(event: Event) -> bytes:
    change = event.change
    return _event(change.kind, change.version, change.track, change.head, change.length,
                  change.track if change.kind == "play" else None)


def aio_watch_handler(methods: QueueMethods, run, node: tuple, hub: Hub):
    """Events are serialized once per node (Event.rendered) and sent as bytes."""

    async def watch(raw: bytes, context: grpc.aio.ServicerContext):
        await context.send_initial_metadata(node)
        try:
            room = room_of(parse(pb.Empty, raw).room)
        except errors.QueueError as exc:
            await context.abort(status_of(exc), exc.detail)
        async with hub.follow(room) as listener:
            try:
                snapshot = await run(methods.plan.snapshot(room))
            except errors.QueueError as exc:
                await context.abort(status_of(exc), exc.detail)
            version = snapshot.version
            yield snapshot_pb(snapshot)
            while True:
                item = await listener.get()
                if item is RESYNC:
                    while True:
                        try:
                            snapshot = await run(methods.plan.snapshot(room))
                            break
                        except errors.StoreUnavailable:
                            await asyncio.sleep(RETRY_SNAPSHOT)
                    version = snapshot.version
                    yield snapshot_pb(snapshot)
                elif item.change.version > version:
                    version = item.change.version
                    yield item.rendered("grpc", event_pb)

    return grpc.unary_stream_rpc_method_handler(watch, response_serializer=bytes)
