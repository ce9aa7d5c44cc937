"""One pipelined connection to Redis, shared by every request of an asyncio node.

Why not redis-py's pool: it costs a pool checkout, a retry wrapper and instrumentation per
command (about a tenth of a REST node's CPU in a profile), and one connection per
concurrent request. Here every command is packed by hiredis and appended to a buffer that
is written once per event-loop turn, so commands from concurrent requests travel together;
replies come back in order and are matched to their callers from a queue. Redis runs
commands one at a time anyway, so one connection per node loses nothing.

Failures: if Redis does not answer the oldest command within ``timeout`` seconds, the
connection is dropped and every waiting caller gets ``StoreUnavailable``; so does every
caller while Redis cannot be reached (refused or timed out connects are retried at most
every RECONNECT_PAUSE seconds). The next command after that dials again, so the node
recovers by itself. Nothing is retried: a lost reply may belong to a write that happened.
Scripts go by their SHA1 (``EVALSHA``); a Redis that does not know one yet (restarted,
flushed) answers NOSCRIPT and gets the source once (``EVAL``), which also loads it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from typing import Any, cast

import hiredis

from ..errors import StoreUnavailable
from ..scripts import Script
from .address import Address

ReplyError = hiredis.ReplyError
RECONNECT_PAUSE = 0.1
WATCHDOG_EVERY = 0.05
# Error replies that mean "Redis cannot serve right now", not "this command is wrong".
TRANSIENT = ("LOADING", "BUSY", "OOM", "MISCONF", "READONLY", "MASTERDOWN", "TRYAGAIN",
             "CLUSTERDOWN", "NOREPLICAS")


Command = tuple[Any, ...]


def transient(reply: Exception) -> StoreUnavailable | None:
    """``StoreUnavailable`` if an error reply says that Redis cannot serve right now
    (still loading its data, out of memory, ...), else None."""
    text = str(reply)
    return StoreUnavailable(text.split(" ", 1)[0].lower()) if text.startswith(TRANSIENT) else None


def error(reply: Exception) -> Exception:
    """What an error reply amounts to: a transient one is ``StoreUnavailable``."""
    return transient(reply) or reply


Waiter = tuple["asyncio.Future[Any] | None", float]  # (who gets the reply, when sent)


class _Protocol(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self, owner: PipelinedRedis):
        self.owner = owner
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiters: collections.deque[Waiter] = collections.deque()
        self.buffer: list[bytes] = []
        self.flush_scheduled = False
        self.lost = False
        self.refused: ReplyError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader, waiters = self.reader, self.waiters
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            future = waiters.popleft()[0]
            if future is None:
                # a reply nobody awaits: MULTI's +OK or a command's +QUEUED, or the error
                # that refused to queue it; keep the first error for EXEC's EXECABORT
                if type(reply) is ReplyError and self.refused is None:
                    self.refused = reply
                continue
            if self.refused is not None:
                if type(reply) is ReplyError and str(reply).startswith("EXECABORT"):
                    reply = self.refused  # say why (e.g. LOADING), not just "discarded"
                self.refused = None
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(StoreUnavailable("no connection"))
        self.owner._forget(self)

    def fail(self, error: Exception) -> None:
        while self.waiters:
            future = self.waiters.popleft()[0]
            if future is not None and not future.done():
                future.set_exception(error)

    def send(self, packed: bytes, future: asyncio.Future[Any] | None) -> None:
        """Queue one command; its reply goes to ``future`` (None: nobody needs it)."""
        self.buffer.append(packed)
        self.waiters.append((future, time.monotonic()))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.buffer and not self.lost:
            self.transport.write(b"".join(self.buffer))
        self.buffer.clear()


class PipelinedRedis:
    def __init__(self, url: str, timeout: float = 0.75):
        self.address = Address.from_url(url)
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._failed_at = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; a Redis error reply is raised as
        ``ReplyError``, trouble reaching Redis (or a transient error reply) as
        ``StoreUnavailable``."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        future = asyncio.get_running_loop().create_future()
        protocol.send(hiredis.pack_command(args), future)
        reply = await future
        if type(reply) is ReplyError:
            raise error(reply)
        return reply

    async def transaction(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` in one MULTI/EXEC and return their replies (a failed one as a
        ``ReplyError`` in its place). Everything is queued in one go, so no other caller's
        command can land inside the transaction."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        future = asyncio.get_running_loop().create_future()
        protocol.send(b"*1\r\n$5\r\nMULTI\r\n", None)
        for command in commands:
            protocol.send(hiredis.pack_command(command), None)
        protocol.send(b"*1\r\n$4\r\nEXEC\r\n", future)
        reply = await future
        if type(reply) is ReplyError:  # a command was refused while queued (e.g. LOADING)
            raise error(reply)
        assert isinstance(reply, list)
        return reply

    async def script(self, script: Script, args: Command, more: Sequence[Command] = ()
                     ) -> Any:
        """Run ``script`` with ``args`` (numkeys, keys, argv), then the commands ``more`` in
        the same MULTI/EXEC: one atomic step. Returns the script's reply, or with ``more``
        every reply (an error reply of the script raised)."""
        if not more:
            try:
                return await self.execute("EVALSHA", script.sha, *args)
            except ReplyError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                return await self.execute("EVAL", script.source, *args)
        replies = await self.transaction([("EVALSHA", script.sha, *args), *more])
        if type(replies[0]) is ReplyError and str(replies[0]).startswith("NOSCRIPT"):
            replies = await self.transaction([("EVAL", script.source, *args), *more])
        if type(replies[0]) is ReplyError:
            raise error(replies[0])
        return replies

    async def aclose(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    # -- connecting -------------------------------------------------------------------

    async def _connect(self) -> _Protocol:
        if self._closed:
            raise StoreUnavailable("client closed")
        if self._connecting is None:
            if time.monotonic() - self._failed_at < RECONNECT_PAUSE:
                raise StoreUnavailable("no connection")
            self._connecting = asyncio.ensure_future(self._dial())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _dial(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        address = self.address
        try:
            if address.path:
                opened = loop.create_unix_connection(lambda: _Protocol(self), address.path)
            else:
                opened = loop.create_connection(lambda: _Protocol(self), address.host,
                                                address.port, ssl=address.ssl())
            _, protocol = await asyncio.wait_for(opened, self.timeout)
            await self._handshake(protocol)
        except (TimeoutError, OSError, ReplyError, StoreUnavailable) as exc:
            self._failed_at = time.monotonic()
            raise StoreUnavailable("timed out" if isinstance(exc, asyncio.TimeoutError)
                                   else "no connection") from exc
        self._protocol = protocol
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCHDOG_EVERY, self._watch)
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        loop = asyncio.get_running_loop()
        for step in self.address.greeting():
            future = loop.create_future()
            protocol.send(hiredis.pack_command(step), future)
            reply = await asyncio.wait_for(future, self.timeout)
            if type(reply) is ReplyError:
                protocol.transport.close()
                raise reply

    def _forget(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None

    def _watch(self) -> None:
        """Drop the connection when its oldest command has waited longer than the timeout."""
        self._watchdog = None
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            if protocol.waiters and time.monotonic() - protocol.waiters[0][1] > self.timeout:
                protocol.fail(StoreUnavailable("timed out"))
                protocol.transport.abort()
            if not self._closed:
                self._watchdog = asyncio.get_running_loop().call_later(WATCHDOG_EVERY, self._watch)
