"""A Redis Cluster client: each command goes to the primary that serves its key's slot, over
one pipelined connection per primary (``pipe.Connection``), as a node talks to one Redis.

Every key of a room carries the room's hash tag (``mq:{party42}:queue``), so a room lives
in one slot and each of its atomic steps (a function call, a MULTI/EXEC) goes to one
primary. The slot map comes from ``CLUSTER SLOTS`` of any node that answers (the seeds,
then every primary seen since), and is read again after a redirect or a lost connection.

Redirects are followed, because a redirected command did not run: ``MOVED`` (the slot has
a new owner: update the map, send it there), ``ASK`` (the slot is being migrated and this
key is already on the target: ``ASKING``, then the command, there). ``TRYAGAIN`` (some keys
of a multi-key command are on each side of a migration) and ``CLUSTERDOWN`` (a shard
without a primary) are tried again for up to the client's timeout, then are 503. A command
whose connection was lost may have run: it is never sent again here (the caller's
idempotency key makes the retry safe), and the slot map is read again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StoreUnavailable
from ..stats import StoreStats
from .address import Address
from .client import Client, ReplyError, key_of
from .pipe import Command, Connection
from .pubsub import Restored, Subscriber

log = logging.getLogger("store")

SLOTS = 16384
MAX_REDIRECTS = 5
RETRY_PAUSE = 0.02  # seconds between tries of a TRYAGAIN or CLUSTERDOWN
REFRESH_PAUSE = 0.1  # seconds: the slot map is read again at most this often


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def slot_of(key: str) -> int:
    """The cluster slot of a key: CRC16 (XMODEM) of its hash tag (the part between the
    first ``{`` and the next ``}``, if not empty), else of the whole key, mod 16384."""
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc % SLOTS


class Cluster(Client):
    def __init__(self, seeds: Sequence[Address], timeout: float = 0.75, library: str = "",
                 replicas: int = 0, wait_ms: int = 500, stats: StoreStats | None = None):
        super().__init__(timeout, library, stats)
        self.replicas, self.wait_ms = replicas, wait_ms
        self.seeds = list(seeds)
        self.slots: list[Address | None] = [None] * SLOTS
        self.connections: dict[Address, Connection] = {}
        self._refreshing: asyncio.Future[None] | None = None
        self._refreshed_at = 0.0
        self._mapped = False  # a slot map was read: changes from here on are failovers
        self._closed = False
        self.on_change: list[Callable[[], None]] = []  # called when a slot's owner changed

    def address(self, host: str, port: int) -> Address:
        """A node's address, with the credentials the seeds carry."""
        return dataclasses.replace(self.seeds[0], host=host, port=port)

    def connection(self, address: Address) -> Connection:
        connection = self.connections.get(address)
        if connection is None:
            connection = self.connections[address] = Connection(
                address, self.timeout, self.replicas, self.wait_ms, self.stats)
        return connection

    def primaries(self) -> list[Address]:
        return list(dict.fromkeys(a for a in self.slots if a is not None))

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        key = key_of(commands[0])
        slot = slot_of(key) if key is not None else 0
        deadline = time.monotonic() + self.timeout
        asking: Address | None = None
        reply: Any = None
        moved = 0  # MOVED replies followed: at most MAX_REDIRECTS (a map gone round in circles)
        while True:  # ASK and TRYAGAIN: followed until the deadline (a slot being moved)
            target = asking or self.slots[slot]
            if target is None:
                await self.refresh()
                target = self.slots[slot]
                if target is None:
                    raise StoreUnavailable(f"no primary serves slot {slot}")
            connection = self.connection(target)
            try:
                if multi:
                    reply = await connection.multi(commands, asking is not None, confirm)
                else:
                    reply = await connection.call(commands[0], asking is not None, confirm)
            except StoreUnavailable:
                self.refresh_soon()  # the primary may have died, or lost its slots
                raise
            asking = None
            if type(reply) is not ReplyError:
                return reply
            text = str(reply)
            if text.startswith("MOVED ") and moved < MAX_REDIRECTS:
                moved += 1
                _, to_slot, where = text.split()
                host, _, port = where.rpartition(":")
                self.slots[int(to_slot)] = self.address(host, int(port))
                self._changed()
                self.refresh_soon()
            elif text.startswith("ASK ") and time.monotonic() < deadline:
                _, _, where = text.split()
                host, _, port = where.rpartition(":")
                asking = self.address(host, int(port))
            elif text.startswith(("TRYAGAIN", "CLUSTERDOWN")) and time.monotonic() < deadline:
                await asyncio.sleep(RETRY_PAUSE)
            else:
                return reply

    async def everywhere(self, command: Command) -> list[Any]:
        if not any(self.slots):
            await self.refresh()
        return list(await asyncio.gather(*(self.connection(a).call(command)
                                           for a in self.primaries())))

    # -- the slot map -----------------------------------------------------------------

    def refresh_soon(self) -> None:
        """Read the slot map again in the background (at most every REFRESH_PAUSE)."""
        if self._refreshing is None and not self._closed and \
                time.monotonic() - self._refreshed_at > REFRESH_PAUSE:
            asyncio.ensure_future(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except StoreUnavailable as exc:
            log.warning("cluster: cannot read the slot map (%s)", exc.detail)

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers: the primaries known, then
        the seeds. One read at a time; callers meanwhile wait for it."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read_slots())
            # forgotten when it ends, even if every caller waiting for it was cancelled
            self._refreshing.add_done_callback(self._refreshed)
        await asyncio.shield(self._refreshing)

    def _refreshed(self, task: asyncio.Future[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # its callers were told; retrieved so that nothing is logged

    async def _read_slots(self) -> None:
        problems = []
        for address in dict.fromkeys([*self.primaries(), *self.seeds]):
            try:
                reply = await self.connection(address).call(("CLUSTER", "SLOTS"))
            except StoreUnavailable as exc:
                problems.append(f"{address}: {exc.detail}")
                continue
            if type(reply) is ReplyError:
                problems.append(f"{address}: {reply}")
                continue
            slots: list[Address | None] = [None] * SLOTS
            for start, end, primary, *_ in reply:
                owner = self.address(primary[0] or address.host, int(primary[1]))
                slots[int(start):int(end) + 1] = [owner] * (int(end) - int(start) + 1)
            changed, self.slots = slots != self.slots, slots
            self._refreshed_at = time.monotonic()
            if changed:
                self._changed()
            self._mapped = True
            return
        raise StoreUnavailable("no cluster node answered: " + "; ".join(problems))

    def _changed(self) -> None:
        if self._mapped:  # a slot has a new owner: a failover (or a resharding)
            self.stats.failovers += 1
        for callback in self.on_change:
            callback()

    async def aclose(self) -> None:
        self._closed = True
        for connection in self.connections.values():
            await connection.aclose()


class ShardedSubscriber:
    """Sharded pub/sub over a cluster: one ``Subscriber`` per primary, each channel on the
    primary that serves its slot. When a channel's slot moves (Redis unsubscribes it), a
    shard's connection is lost, or a failover gives the slot a new primary, the channel is
    subscribed where it now lives and ``on_restored`` says it may have missed messages."""

    CHECK_EVERY = 0.5  # seconds between looks at disconnected shards

    def __init__(self, cluster: Cluster, on_message: Callable[[str, str], None],
                 on_restored: Restored):
        self.cluster = cluster
        self._on_message = on_message
        self._on_restored = on_restored
        self.shards: dict[Address, Subscriber] = {}
        self.where: dict[str, Address] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._moving = asyncio.Lock()
        cluster.on_change.append(self._topology_changed)

    def _shard(self, address: Address) -> Subscriber:
        shard = self.shards.get(address)
        if shard is None:
            shard = self.shards[address] = Subscriber(
                address, self.cluster.timeout, self._on_message, self._on_restored,
                on_moved=self._moved, stats=self.cluster.stats)
        return shard

    async def _owner(self, channel: str) -> Address:
        slot = slot_of(channel)
        if self.cluster.slots[slot] is None:
            await self.cluster.refresh()
        owner = self.cluster.slots[slot]
        if owner is None:
            raise StoreUnavailable(f"no primary serves slot {slot}")
        return owner

    async def subscribe(self, channel: str) -> bool:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="sharded-subscriber")
        owner = await self._owner(channel)
        self.where[channel] = owner
        return await self._shard(owner).subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        owner = self.where.pop(channel, None)
        if owner is not None and owner in self.shards:
            self.shards[owner].unsubscribe(channel)

    def _topology_changed(self) -> None:
        if self.where:
            asyncio.ensure_future(self._move(list(self.where)))

    def _moved(self, channel: str) -> None:
        async def move() -> None:
            try:
                await self.cluster.refresh()
            except StoreUnavailable:
                return  # the watcher tries again
            await self._move([channel])

        asyncio.ensure_future(move())

    async def _move(self, channels: Sequence[str]) -> None:
        """Subscribe ``channels`` where their slots live now; those that moved get
        ``on_restored``."""
        async with self._moving:
            await self._move_now(channels)

    async def _move_now(self, channels: Sequence[str]) -> None:
        moved = []
        for channel in channels:
            if channel not in self.where:
                continue  # nobody follows it any more
            try:
                owner = await self._owner(channel)
            except StoreUnavailable:
                continue  # the next look tries again
            old = self.where.get(channel)
            if old is None:
                continue  # unsubscribed while the owner was looked up
            if owner != old or channel not in self._shard(old).channels:
                if old in self.shards:
                    self.shards[old].unsubscribe(channel)
                self.where[channel] = owner
                if await self._shard(owner).subscribe(channel):
                    moved.append(channel)
        if moved:
            self._on_restored(moved)

    async def _watch(self) -> None:
        """A shard that cannot be reached may have failed over: read the slot map and
        move its channels to their new primaries."""
        while True:
            await asyncio.sleep(self.CHECK_EVERY)
            stuck = [c for c, owner in self.where.items()
                     if not self._shard(owner).connected or not self._shard(owner).confirmed(c)]
            if stuck:
                try:
                    await self.cluster.refresh()
                    await self._move(stuck)
                except StoreUnavailable:
                    continue
                except Exception:  # never let one bad look stop the watching
                    log.exception("cluster: moving subscriptions failed")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for shard in list(self.shards.values()):  # (a slot's move may add one meanwhile)
            await shard.close()
