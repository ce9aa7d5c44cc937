"""The server-streaming Watch method: a snapshot of the room, then one event per change."""

from __future__ import annotations

import asyncio

import grpc

from proto import queue_pb2 as pb
from shared import errors
from shared.events import RESYNC, Event, Hub
from shared.queue import Snapshot

from .service import QueueMethods, parse, room_of, status_of, track_pb

RETRY_SNAPSHOT = 0.5  # seconds between snapshot attempts while Redis is unreachable


def snapshot_pb(snapshot: Snapshot) -> bytes:
    now = track_pb(snapshot.now_playing) if snapshot.now_playing else None
    return pb.QueueEvent(type="snapshot", version=snapshot.version, length=snapshot.length,
                         queue=[track_pb(t) for t in snapshot.head],
                         now_playing=now).SerializeToString()


def event_pb(event: Event) -> bytes:
    change = event.change
    track = track_pb(change.track) if change.track else None
    return pb.QueueEvent(type=change.kind, version=change.version, length=change.length,
                         track=track, queue=[track_pb(t) for t in change.head],
                         now_playing=track if change.kind == "play" else None
                         ).SerializeToString()


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
