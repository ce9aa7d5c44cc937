"""One primary with replicas, found through Redis Sentinel and followed across failovers.

A node asks the sentinels (``REDIS_SENTINELS``) for the primary of ``REDIS_SENTINEL_MASTER``,
confirms it with ``ROLE`` (a sentinel may still name a primary that was just demoted), and
talks to it over one pipelined connection. It looks again when Sentinel announces a
failover (``+switch-master``, followed on a subscription to the sentinels), when the
primary answers ``READONLY`` (it was demoted) and when the connection is lost. Until a
primary is found, calls are ``StoreUnavailable`` (503), never a hang. As everywhere, a
command whose reply was lost is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import hiredis

from ..errors import StoreUnavailable
from ..stats import StoreStats
from .address import Address
from .client import Client, ReplyError
from .pipe import Command, Connection
from .pubsub import Restored, Subscriber, command_bytes, next_data

log = logging.getLogger("store")

FIND_PAUSE = 0.1  # seconds between rounds of asking the sentinels


class Sentinel(Client):
    def __init__(self, sentinels: Sequence[Address], master: str, primary: Address,
                 timeout: float = 0.75, library: str = "", replicas: int = 0,
                 wait_ms: int = 500, stats: StoreStats | None = None):
        super().__init__(timeout, library, stats)
        self.sentinels = list(sentinels)
        self.master = master
        self.template = primary  # credentials and database for whichever node is primary
        self.replicas, self.wait_ms = replicas, wait_ms
        self.connection: Connection | None = None
        self.primary: Address | None = None  # the last primary found
        self.on_switch: list[Callable[[Address], None]] = []
        self._finding: asyncio.Future[Connection] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def address(self) -> Address | None:
        return self.connection.address if self.connection is not None else None

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        connection = self.connection or await self.find()
        try:
            if multi:
                reply = await connection.multi(commands, confirm=confirm)
            else:
                reply = await connection.call(commands[0], confirm=confirm)
        except StoreUnavailable:
            self.lost(connection)
            raise
        if type(reply) is ReplyError and str(reply).startswith("READONLY"):
            self.lost(connection)  # demoted: the next call asks the sentinels again
        return reply

    async def everywhere(self, command: Command) -> list[Any]:
        return [await (self.connection or await self.find()).call(command)]

    def lost(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
            asyncio.ensure_future(connection.aclose())

    async def find(self) -> Connection:
        """The primary's connection, asking the sentinels if there is none. One search at a
        time; callers meanwhile wait for it, at most the client's timeout."""
        if self._watcher is None and not self._closed:
            self._watcher = asyncio.create_task(self._watch(), name="sentinel-watch")
        if self._finding is None or self._finding.done():
            self._finding = asyncio.ensure_future(self._search())
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(self._finding)
        except TimeoutError:
            raise StoreUnavailable("no primary found through Sentinel yet") from None

    async def _search(self) -> Connection:
        while not self._closed:
            for sentinel in self.sentinels:
                candidate = await self._ask(sentinel)
                if candidate is not None and await self._is_primary(candidate):
                    self._switch(candidate)
                    assert self.connection is not None
                    return self.connection
            await asyncio.sleep(FIND_PAUSE)
        raise StoreUnavailable("client closed")

    async def _ask(self, sentinel: Address) -> Address | None:
        asking = Connection(sentinel, self.timeout)
        try:
            reply = await asking.call(("SENTINEL", "get-master-addr-by-name", self.master))
        except StoreUnavailable:
            return None
        finally:
            await asking.aclose()
        if type(reply) is not list or len(reply) != 2:
            return None
        return dataclasses.replace(self.template, host=reply[0], port=int(reply[1]))

    async def _is_primary(self, address: Address) -> bool:
        probe = Connection(address, self.timeout)
        try:
            for step in address.greeting():
                await probe.call(step)
            role = await probe.call(("ROLE",))
        except StoreUnavailable:
            return False
        finally:
            await probe.aclose()
        return type(role) is list and role[0] == "master"

    def _switch(self, address: Address) -> None:
        if self.connection is not None and self.connection.address == address:
            return
        old, self.connection = self.connection, Connection(address, self.timeout,
                                                           self.replicas, self.wait_ms,
                                                           self.stats)
        if self.primary is not None:  # a new primary, or the old one after a lost connection
            if self.primary != address:
                self.stats.failovers += 1
            else:
                self.stats.reconnects += 1
        self.primary = address
        if old is not None:
            asyncio.ensure_future(old.aclose())
        log.info("sentinel: the primary of %s is %s", self.master, address)
        for callback in self.on_switch:
            callback(address)

    async def _watch(self) -> None:
        """Follow ``+switch-master`` on the first sentinel that answers; on a failover of
        our primary, look for it again (and confirm it with ROLE)."""
        while not self._closed:
            for sentinel in self.sentinels:
                try:
                    async with asyncio.timeout(self.timeout):
                        reader, writer = await sentinel.open_connection()
                except (TimeoutError, OSError):
                    continue
                writer.write(command_bytes("SUBSCRIBE", "+switch-master"))
                parser = hiredis.Reader(encoding="utf-8")
                ping = functools.partial(writer.write, command_bytes("PING"))
                try:
                    while True:  # (a sentinel that answers no PING is half gone: the next)
                        parser.feed(await next_data(reader, ping))
                        while (reply := parser.gets()) is not False:
                            # ["message", "+switch-master", "<name> <old ip> <old port> ..."]
                            if (isinstance(reply, list) and reply[0] == "message"
                                    and reply[2].split(" ", 1)[0] == self.master):
                                log.info("sentinel: %s failed over: %s", self.master, reply[2])
                                if self.connection is not None:
                                    self.lost(self.connection)
                                with contextlib.suppress(StoreUnavailable):
                                    await self.find()
                except OSError:
                    pass
                finally:
                    writer.close()
            await asyncio.sleep(FIND_PAUSE)

    async def aclose(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
        if self.connection is not None:
            await self.connection.aclose()


class FollowingSubscriber:
    """The node's subscription, on whichever node is the primary: after a failover it
    subscribes there and says every channel may have missed messages."""

    def __init__(self, sentinel: Sentinel, on_message: Callable[[str, str], None],
                 on_restored: Restored):
        self.sentinel = sentinel
        self._on_message, self._on_restored = on_message, on_restored
        self.current: Subscriber | None = None
        sentinel.on_switch.append(self._switched)

    def _subscriber(self, address: Address) -> Subscriber:
        return Subscriber(address, self.sentinel.timeout, self._on_message, self._on_restored,
                          stats=self.sentinel.stats)

    async def subscribe(self, channel: str) -> bool:
        if self.current is None:
            if self.sentinel.address is None:
                await self.sentinel.find()
            assert self.sentinel.address is not None
            self.current = self.current or self._subscriber(self.sentinel.address)
        return await self.current.subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        if self.current is not None:
            self.current.unsubscribe(channel)

    def _switched(self, address: Address) -> None:
        old = self.current
        if old is None:
            return
        channels = old.channels
        self.current = self._subscriber(address)

        async def move() -> None:
            await old.close()
            assert self.current is not None
            for channel in channels:
                await self.current.subscribe(channel)
            self._on_restored(channels)

        asyncio.ensure_future(move())

    async def close(self) -> None:
        if self.current is not None:
            await self.current.close()
