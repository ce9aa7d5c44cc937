"""One pipelined connection to one Redis, shared by every request of an asyncio node.

Why not redis-py's pool: it costs a pool checkout, a retry wrapper and instrumentation per
command (about a tenth of a REST node's CPU in a profile), and one connection per
concurrent request. Here every command is packed by hiredis and appended to a buffer that
is written once per event-loop turn, so commands from concurrent requests travel together;
replies come back in order and are matched to their callers from a queue. Redis runs
commands one at a time anyway, so one connection per node loses nothing. A read-only
function call (a catalogue search, the costliest read) goes out at once, with what is
buffered before it: Redis starts on it while the node serves the rest of the turn, instead
of both taking turns (+7-22% searches per second through one node, measured paired).

Failures: if Redis does not answer the oldest command within ``timeout`` seconds, the
connection is dropped and every waiting caller gets ``StoreUnavailable``; so does every
caller while Redis cannot be reached (refused or timed out connects are retried at most
every RECONNECT_PAUSE seconds). The next command after that dials again, so the node
recovers by itself. Nothing is retried: a lost reply may belong to a write that happened.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from typing import Any, cast

import hiredis

from ..errors import StoreUnavailable
from ..stats import StoreStats
from .address import Address

ReplyError = hiredis.ReplyError
RECONNECT_PAUSE = 0.1
WATCHDOG_EVERY = 0.05

Command = tuple[Any, ...]


Waiter = tuple["asyncio.Future[Any] | None", float]  # (who gets the reply, when sent)


class _Protocol(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self, owner: Connection):
        self.owner = owner
        self.latency = owner.stats.round_trips
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiters: collections.deque[Waiter] = collections.deque()
        self.buffer: list[bytes] = []
        self.flush_scheduled = False
        self.lost = False
        self.refused: ReplyError | None = None
        # writes to be confirmed by replicas: (the write's reply, the caller's answer)
        self.unconfirmed: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader, waiters = self.reader, self.waiters
        reader.feed(data)
        now = time.monotonic()
        while (reply := reader.gets()) is not False:
            future, sent = waiters.popleft()
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
            self.latency.observe(now - sent)
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

    def send(self, packed: bytes, future: asyncio.Future[Any] | None,
             at_once: bool = False) -> None:
        """Queue one command; its reply goes to ``future`` (None: nobody needs it).
        ``at_once``: write it now, with everything queued before it (the turn's flush
        still adds the WAIT that confirms writes)."""
        self.buffer.append(packed)
        self.waiters.append((future, time.monotonic()))
        if at_once and not self.lost:
            self.transport.write(b"".join(self.buffer))
            self.buffer.clear()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.lost:  # lost since these were queued: nobody will ever answer them
            self.buffer.clear()
            lost = StoreUnavailable("no connection")
            self.fail(lost)
            writes, self.unconfirmed = self.unconfirmed, []
            for _, answer in writes:
                if not answer.done():
                    answer.set_exception(lost)
            return
        if self.unconfirmed:
            # one WAIT after every write of this turn: it confirms them all at once
            writes, self.unconfirmed = self.unconfirmed, []
            waited = asyncio.get_running_loop().create_future()
            self.buffer.append(self.owner.wait_command)
            self.waiters.append((waited, time.monotonic()))
            waited.add_done_callback(lambda done: self.owner.confirm(writes, done))
        if self.buffer:
            self.transport.write(b"".join(self.buffer))
        self.buffer.clear()


class Connection:
    """One pipelined connection to one Redis. Replies come back raw: an error reply is
    returned as a ``ReplyError``, not raised; trouble reaching Redis raises
    ``StoreUnavailable``.

    With ``replicas``, a write (``confirm=True``) is answered only once that many replicas
    have it: the writes sent in one event-loop turn are followed by one ``WAIT replicas
    wait_ms`` that covers them all; if fewer confirm in time, each of them is
    ``StoreUnavailable`` (the write happened on the primary: a retry with its idempotency
    key returns its first answer)."""

    def __init__(self, address: Address, timeout: float = 0.75, replicas: int = 0,
                 wait_ms: int = 500, stats: StoreStats | None = None):
        self.address = address
        self.stats = stats or StoreStats()
        self.timeout = timeout
        self.replicas = replicas
        wait: Command = ("WAIT", replicas, wait_ms)
        self.wait_command = hiredis.pack_command(wait)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._failed_at = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self._dialled = False

    async def call(self, command: Command, asking: bool = False, confirm: bool = False) -> Any:
        """Send one command (after ASKING, to follow a cluster's ASK redirect)."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        future = asyncio.get_running_loop().create_future()
        if asking:
            protocol.send(b"*1\r\n$6\r\nASKING\r\n", None)
        protocol.send(hiredis.pack_command(command), future, command[0] == "FCALL_RO")
        return await self._confirmed(protocol, future, confirm)

    async def _confirmed(self, protocol: _Protocol, future: asyncio.Future[Any],
                         confirm: bool) -> Any:
        if not confirm or not self.replicas:
            return await future
        answer = asyncio.get_running_loop().create_future()
        protocol.unconfirmed.append((future, answer))
        return await answer

    def confirm(self, writes: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]],
                waited: asyncio.Future[Any]) -> None:
        """Answer the writes a WAIT covered: their replies if enough replicas have them."""
        failure: BaseException | None = waited.exception()
        if failure is None and (type(waited.result()) is not int
                                or waited.result() < self.replicas):
            failure = StoreUnavailable(f"not confirmed by {self.replicas} replica(s) in time")
        for reply, answer in writes:
            if answer.done():
                continue
            lost = reply.exception() if reply.done() else StoreUnavailable("no connection")
            if lost is not None:
                answer.set_exception(lost)
            elif failure is not None:
                answer.set_exception(failure)
            else:
                answer.set_result(reply.result())

    async def multi(self, commands: Sequence[Command], asking: bool = False,
                    confirm: bool = False) -> Any:
        """Run ``commands`` in one MULTI/EXEC: the list of their replies, or the error that
        refused the transaction (why a command could not be queued, rather than
        EXECABORT). Everything is queued in one go, so no other caller's command can land
        inside the transaction."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        future = asyncio.get_running_loop().create_future()
        if asking:  # one ASKING covers a whole transaction
            protocol.send(b"*1\r\n$6\r\nASKING\r\n", None)
        protocol.send(b"*1\r\n$5\r\nMULTI\r\n", None)
        for command in commands:
            protocol.send(hiredis.pack_command(command), None)
        protocol.send(b"*1\r\n$4\r\nEXEC\r\n", future)
        return await self._confirmed(protocol, future, confirm)

    async def aclose(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            # its callers are told at once (a close waits for the peer to take what is
            # buffered, and without the watchdog nothing bounds that), and what was not
            # sent yet is not sent
            protocol.fail(StoreUnavailable("client closed"))
            protocol.transport.abort()

    # -- connecting -------------------------------------------------------------------

    async def _connect(self) -> _Protocol:
        if self._closed:
            raise StoreUnavailable("client closed")
        if self._connecting is None:
            if time.monotonic() - self._failed_at < RECONNECT_PAUSE:
                raise StoreUnavailable("no connection")
            self._connecting = asyncio.ensure_future(self._dial())
            # forgotten when it ends, even if every caller waiting for it was cancelled
            self._connecting.add_done_callback(self._dialled_one)
        return await asyncio.shield(self._connecting)

    def _dialled_one(self, task: asyncio.Future[_Protocol]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # its callers were told; retrieved so that nothing is logged

    async def _dial(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        address = self.address
        try:
            if address.path:
                opened = loop.create_unix_connection(lambda: _Protocol(self), address.path)
            else:
                opened = loop.create_connection(lambda: _Protocol(self), address.host,
                                                address.port, ssl=address.ssl())
            async with asyncio.timeout(self.timeout):
                _, protocol = await opened
            await self._handshake(protocol)
        except (TimeoutError, OSError, ReplyError, StoreUnavailable) as exc:
            self._failed_at = time.monotonic()
            raise StoreUnavailable("timed out" if isinstance(exc, asyncio.TimeoutError)
                                   else "no connection") from exc
        self._protocol = protocol
        if self._dialled:
            self.stats.reconnects += 1
        self._dialled = True
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCHDOG_EVERY, self._watch)
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        loop = asyncio.get_running_loop()
        try:
            for step in self.address.greeting():
                future = loop.create_future()
                protocol.send(hiredis.pack_command(step), future)
                async with asyncio.timeout(self.timeout):
                    reply = await future
                if type(reply) is ReplyError:
                    raise reply
        except BaseException:
            protocol.transport.close()  # refused or timed out: not left open
            raise

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
