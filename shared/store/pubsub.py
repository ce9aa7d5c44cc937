"""Live changes: one Redis subscription per node, fanned out to local listeners.

Every write script publishes its change on the room's channel in the same atomic step
that made it (``shared.scripts``). A node holds ONE pub/sub connection, subscribes to a
room's channel while at least one local listener (an SSE stream, a gRPC Watch) follows the
room, decodes each event once, and hands it to every listener of the room.

A listener receives ``Event`` objects in version order, ``RESYNC``: "you may have
missed changes, take a fresh snapshot", or ``END`` when the node stops. RESYNC comes
after the subscription was lost and made again (Redis restarted, network cut) and when a
listener fell more than ``MAX_PENDING`` events behind (a slow client), so a slow or
cut-off client costs bounded memory and still ends up right.

The connection speaks RESP directly (hiredis parses it): it needs only SUBSCRIBE,
UNSUBSCRIBE and PING, with its own liveness check instead of a read timeout that an idle
channel would trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import hiredis

from .. import keys
from ..config import Settings
from ..model import Change
from ..queue import decode_event
from .address import Address

log = logging.getLogger("events")

MAX_PENDING = 256
PING_EVERY = 5.0  # seconds between liveness pings on an idle connection
RECONNECT_DELAY = 0.25
SUBSCRIBE_WAIT = 2.0

RESYNC = "resync"
END = "end"  # the node is stopping: finish the stream


class Event:
    """One change of a room, decoded once per node; ``cache`` keeps renderings (SSE bytes,
    protobuf) so that a thousand listeners cost one encoding."""

    __slots__ = ("room", "change", "cache")

    def __init__(self, room: str, change: Change):
        self.room = room
        self.change = change
        self.cache: dict[str, Any] = {}

    def rendered(self, kind: str, render: Callable[[Event], Any]) -> Any:
        try:
            return self.cache[kind]
        except KeyError:
            value = self.cache[kind] = render(self)
            return value


Item = Event | str  # an Event, RESYNC or END


class Listener:
    __slots__ = ("room", "queue")

    def __init__(self, room: str):
        self.room = room
        self.queue: asyncio.Queue[Item] = asyncio.Queue()

    def push(self, item: Item) -> None:
        if self.queue.qsize() >= MAX_PENDING:
            while not self.queue.empty():
                self.queue.get_nowait()
            item = RESYNC
        self.queue.put_nowait(item)

    async def get(self, timeout: float | None = None) -> Item | None:
        """The next Event, RESYNC or END; None when ``timeout`` passes first."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


def _command(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Hub:
    def __init__(self, settings: Settings):
        self._address = Address.from_url(settings.redis_url)
        self._timeout = max(settings.redis_timeout, 1.0)
        self._rooms: dict[str, set[Listener]] = {}
        self._confirmed: dict[str, asyncio.Future[bool]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = asyncio.Event()

    # -- listeners --------------------------------------------------------------------

    async def listen(self, room: str) -> Listener:
        """Follow a room. Returns once the subscription is confirmed (so a snapshot taken
        afterwards misses nothing), or after a short wait when Redis is unreachable (the
        listener then gets RESYNC once it is back)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="events-hub")
        listener = Listener(room)
        members = self._rooms.setdefault(room, set())
        members.add(listener)
        if len(members) == 1:
            self._confirmed[room] = asyncio.get_running_loop().create_future()
            self._send(_command("SUBSCRIBE", keys.events_channel(room)))
        confirmed = self._confirmed.get(room)
        if confirmed is not None and not confirmed.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
        return listener

    def leave(self, listener: Listener) -> None:
        members = self._rooms.get(listener.room)
        if members is None:
            return
        members.discard(listener)
        if not members:
            del self._rooms[listener.room]
            self._confirmed.pop(listener.room, None)
            self._send(_command("UNSUBSCRIBE", keys.events_channel(listener.room)))

    @contextlib.asynccontextmanager
    async def listening(self, room: str) -> AsyncIterator[Listener]:
        listener = await self.listen(room)
        try:
            yield listener
        finally:
            self.leave(listener)

    def end_all(self) -> None:
        """Tell every listener to finish (the node is stopping)."""
        for members in self._rooms.values():
            for listener in members:
                listener.queue.put_nowait(END)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._drop_connection()

    # -- the connection ---------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _drop_connection(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.connected.clear()

    async def _connect(self) -> asyncio.StreamReader:
        reader, writer = await asyncio.wait_for(self._address.open_connection(), self._timeout)
        for step in self._address.greeting():
            writer.write(_command(*map(str, step)))
            parser = hiredis.Reader()
            while (reply := parser.gets()) is False:
                data = await asyncio.wait_for(reader.read(4096), self._timeout)
                if not data:
                    raise ConnectionError(f"closed during {step[0]}")
                parser.feed(data)
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectionError(f"{step[0]} refused: {reply}")
        self._writer = writer
        rooms = list(self._rooms)
        if rooms:
            writer.write(_command("SUBSCRIBE", *(keys.events_channel(r) for r in rooms)))
        return reader

    async def _run(self) -> None:
        first = True
        while not self._closed:
            try:
                reader = await self._connect()
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("events: cannot reach Redis (%s); retrying", exc)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            self.connected.set()
            if not first:
                log.info("events: subscription restored; listeners resync")
                for members in self._rooms.values():
                    for listener in members:
                        listener.push(RESYNC)
            first = False
            try:
                await self._read(reader)
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("events: subscription lost (%s)", exc)
            self._drop_connection()
            for room in self._rooms:
                self._confirmed[room] = asyncio.get_running_loop().create_future()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8")
        pinged = False
        while True:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), PING_EVERY)
            except TimeoutError:
                if pinged:
                    raise ConnectionError("no answer to PING") from None
                self._send(_command("PING"))
                pinged = True
                continue
            if not data:
                raise ConnectionError("closed by Redis")
            pinged = False
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            log.error("events: Redis said %s", reply)
            return
        if not isinstance(reply, list) or not reply:
            return
        kind = reply[0]
        if kind == "message":
            room = keys.channel_room(reply[1])
            members = self._rooms.get(room)
            if members:
                event = Event(room, decode_event(reply[2]))
                for listener in members:
                    listener.push(event)
        elif kind == "subscribe":
            room = keys.channel_room(reply[1])
            confirmed = self._confirmed.get(room)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(True)
