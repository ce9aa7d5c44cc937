"""Following a room live: the one loop behind the SSE stream and the gRPC Watch.

``follow(hub, queue, room)`` subscribes, then yields a ``Snapshot`` of the room, then each
change as an ``Event``, in version order and each once. When the node may have missed
changes (its subscription was lost and made again, or this listener fell behind) it yields a
fresh ``Snapshot`` instead, retrying while Redis is unreachable. With ``idle`` it yields
None after that many seconds without a change (SSE sends a keep-alive then). It ends when
the node stops (``END``).

The first snapshot is read before anything is yielded, so a caller that awaits the first
item gets ``StoreUnavailable`` as an ordinary error while Redis is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from .errors import StoreUnavailable
from .model import Snapshot
from .queue import Queue
from .store.pubsub import END, RESYNC, Event, Hub

RETRY_SNAPSHOT = 0.5  # seconds between snapshot attempts while Redis is unreachable


async def follow(hub: Hub, queue: Queue, room: str, idle: float | None = None
                 ) -> AsyncGenerator[Snapshot | Event | None, None]:
    async with hub.listening(room) as listener:
        snapshot = await queue.snapshot(room)
        version = snapshot.version
        yield snapshot
        while True:
            item = await listener.get(idle)
            if item is None:
                yield None
            elif item is END:
                return
            elif item is RESYNC:
                snapshot = await _snapshot(queue, room)
                version = snapshot.version
                yield snapshot
            elif isinstance(item, Event) and item.change.version > version:
                version = item.change.version
                yield item


async def _snapshot(queue: Queue, room: str) -> Snapshot:
    while True:
        try:
            return await queue.snapshot(room)
        except StoreUnavailable:
            await asyncio.sleep(RETRY_SNAPSHOT)
