"""A node's pub/sub connection to one Redis, with sharded pub/sub (``SSUBSCRIBE``): a
room's channel carries its hash tag, so in a cluster its messages come from the shard that
holds the room, and cost no other shard anything (``cluster.ShardedSubscriber`` keeps one
``Subscriber`` per shard). One Redis serves sharded channels just the same.

It subscribes to a channel while somebody on the node wants it, hands every message to
``on_message(channel, payload)``, and calls ``on_restored(channels)`` for the channels
whose messages may have been missed: all of them after it had to connect again (Redis
restarted, network cut), or one that Redis unsubscribed by itself (its slot moved to
another shard). What the messages mean is ``shared.live``'s business.

The connection speaks RESP directly (hiredis parses it): it needs only SSUBSCRIBE,
SUNSUBSCRIBE and PING, with its own liveness check instead of a read timeout that an idle
channel would trip.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import hiredis

from ..stats import StoreStats
from .address import Address

log = logging.getLogger("events")

PING_EVERY = 5.0  # seconds between liveness pings on an idle connection
RECONNECT_DELAY = 0.25
REPEAT_WARNING = 30.0  # seconds between two warnings that Redis still cannot be reached
SUBSCRIBE_WAIT = 2.0


def command_bytes(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


Restored = Callable[[Sequence[str]], None]


async def next_data(reader: asyncio.StreamReader, ping: Callable[[], None]) -> bytes:
    """The next bytes from ``reader``. After PING_EVERY of silence ``ping()`` is called (a
    quiet channel is no dead one); ConnectionError after as long again without an answer
    (a connection that is half gone), or when the server closed it."""
    for pinged in (False, True):
        try:
            async with asyncio.timeout(PING_EVERY):
                data = await reader.read(1 << 16)
        except TimeoutError:
            if pinged:
                break
            ping()
            continue
        if not data:
            raise ConnectionError("closed by Redis")
        return data
    raise ConnectionError("no answer to PING")


class Subscriber:
    def __init__(self, address: Address, timeout: float, on_message: Callable[[str, str], None],
                 on_restored: Restored, on_moved: Callable[[str], None] | None = None,
                 stats: StoreStats | None = None):
        self._address = address
        self._stats = stats or StoreStats()
        self._timeout = max(timeout, 1.0)
        self._on_message = on_message
        self._on_restored = on_restored
        self._on_moved = on_moved or self._again
        self._channels: dict[str, asyncio.Future[bool]] = {}  # -> confirmed
        self._leaving: collections.Counter[str] = collections.Counter()  # SUNSUBSCRIBEs sent
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = False

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    def confirmed(self, channel: str) -> bool:
        """Whether Redis confirmed the subscription to ``channel``."""
        future = self._channels.get(channel)
        return future is not None and future.done()

    async def subscribe(self, channel: str) -> bool:
        """Subscribe, and return once Redis confirmed it (True: a read made afterwards
        misses no message), or after a short wait when Redis is unreachable (False: the
        subscription is made, and ``on_restored`` called, once it is back)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="events-subscriber")
        confirmed = self._channels.get(channel)
        if confirmed is None:
            confirmed = self._channels[channel] = asyncio.get_running_loop().create_future()
            self._send(command_bytes("SSUBSCRIBE", channel))
        if not confirmed.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUBSCRIBE_WAIT):
                    await asyncio.shield(confirmed)
        return confirmed.done()

    def unsubscribe(self, channel: str) -> None:
        if self._channels.pop(channel, None) is not None and self.connected:
            self._leaving[channel] += 1
            self._send(command_bytes("SUNSUBSCRIBE", channel))

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            # its end (asyncio.wait neither raises what it raised nor swallows a cancel of
            # this close)
            await asyncio.wait([self._task])
            if not self._task.cancelled() and self._task.exception() is not None:
                log.warning("events: the subscriber had failed: %r", self._task.exception())
        self._drop_connection()

    # -- the connection ---------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _drop_connection(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.connected = False
        self._leaving.clear()

    async def _connect(self) -> asyncio.StreamReader:
        async with asyncio.timeout(self._timeout):
            reader, writer = await self._address.open_connection()
        try:
            for step in self._address.greeting():
                writer.write(command_bytes(*map(str, step)))
                parser = hiredis.Reader()
                while (reply := parser.gets()) is False:
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(4096)
                    if not data:
                        raise ConnectionError(f"closed during {step[0]}")
                    parser.feed(data)
                if isinstance(reply, hiredis.ReplyError):
                    raise ConnectionError(f"{step[0]} refused: {reply}")
        except BaseException:
            writer.close()  # a refused password is retried every RECONNECT_DELAY
            raise
        self._writer = writer
        if self._channels:
            writer.write(command_bytes("SSUBSCRIBE", *self._channels))
        return reader

    async def _run(self) -> None:
        first = True
        warned = -REPEAT_WARNING  # (loop time) once per REPEAT_WARNING while it lasts
        while not self._closed:
            try:
                reader = await self._connect()
            except (TimeoutError, OSError, ConnectionError) as exc:
                now = asyncio.get_running_loop().time()
                if now - warned >= REPEAT_WARNING:
                    warned = now
                    log.warning("events: cannot reach Redis (%s); retrying every %g s",
                                exc, RECONNECT_DELAY)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            warned = -REPEAT_WARNING
            self.connected = True
            if not first:
                log.info("events: subscription to %s restored", self._address)
                self._stats.subscription_restores += 1
                self._on_restored(list(self._channels))
            first = False
            try:
                await self._read(reader)
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("events: subscription lost (%s)", exc)
            except Exception:  # bytes hiredis cannot parse, a failing callback: connect again
                log.exception("events: subscription dropped")
            self._drop_connection()
            loop = asyncio.get_running_loop()
            for channel, confirmed in self._channels.items():
                if confirmed.done():
                    self._channels[channel] = loop.create_future()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8")
        while True:
            parser.feed(await next_data(reader, lambda: self._send(command_bytes("PING"))))
            while (reply := parser.gets()) is not False:
                self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            log.error("events: Redis said %s", reply)
        elif isinstance(reply, list) and reply:
            kind = reply[0]
            if kind == "smessage":
                try:
                    self._on_message(reply[1], reply[2])
                except Exception:  # one bad message must not end the subscription
                    log.exception("events: could not handle a message on %s", reply[1])
            elif kind == "ssubscribe":
                confirmed = self._channels.get(reply[1])
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(True)
            elif kind == "sunsubscribe":
                if self._leaving[reply[1]] > 0:
                    self._leaving[reply[1]] -= 1  # the answer to our own SUNSUBSCRIBE
                elif reply[1] in self._channels:
                    # not asked for: Redis no longer serves the channel's slot (it moved)
                    del self._channels[reply[1]]
                    self._on_moved(reply[1])

    def _again(self, channel: str) -> None:
        """Subscribe again to a channel Redis dropped, then say it may have missed
        messages."""
        async def again() -> None:
            if await self.subscribe(channel):
                self._on_restored([channel])

        asyncio.ensure_future(again())
