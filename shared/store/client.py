"""What the domain sends to Redis, whatever the deployment: one Redis, a Cluster, or a
Sentinel-watched primary. ``Client`` turns raw replies into results and errors once;
each kind of deployment only says where a command goes (``_run``).

Errors: a transient error reply (Redis loading its data, out of memory, a failover under
way, ...) or trouble reaching Redis is ``StoreUnavailable`` (503 / UNAVAILABLE); any
other error reply is raised as hiredis's ``ReplyError`` (a bug). Functions are called by
name (``FCALL``); a Redis that lacks them (new, flushed, restored from an old backup)
answers "Function not found" for a call that did not run, and gets the node's function
library (``FUNCTION LOAD``) before the call is sent again. Nothing else is ever sent
twice: a lost reply may belong to a write that happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import hiredis

from ..errors import StoreUnavailable
from ..model import RS
from ..stats import StoreStats
from .address import Address
from .pipe import Command, Connection

ReplyError = hiredis.ReplyError
JOINED = "ok" + RS  # a function's success as one string: its fields joined with RS
# Error replies that mean "Redis cannot serve right now", not "this command is wrong".
TRANSIENT = ("LOADING", "BUSY", "OOM", "MISCONF", "READONLY", "MASTERDOWN", "TRYAGAIN",
             "CLUSTERDOWN", "NOREPLICAS", "MOVED", "ASK")


def transient(reply: Exception) -> StoreUnavailable | None:
    """``StoreUnavailable`` if an error reply says that Redis cannot serve right now
    (still loading its data, out of memory, ...), else None."""
    text = str(reply)
    return StoreUnavailable(text.split(" ", 1)[0].lower()) if text.startswith(TRANSIENT) else None


def error(reply: Exception) -> Exception:
    """What an error reply amounts to: a transient one is ``StoreUnavailable``."""
    return transient(reply) or reply


def missing_function(reply: Any) -> bool:
    return type(reply) is ReplyError and "Function not found" in str(reply)


def key_of(command: Command) -> str | None:
    """The key a command is routed by: an FCALL's first key, else its first argument
    (every command the queue sends names its key first)."""
    if command[0] in ("FCALL", "FCALL_RO"):
        return str(command[3]) if int(command[2]) else None
    return str(command[1]) if len(command) > 1 else None


class Client(ABC):
    def __init__(self, timeout: float, library: str, stats: StoreStats | None = None):
        self.timeout = timeout
        self.library = library  # the function library's source, loaded where missing
        self.stats = stats or StoreStats()  # shared with every connection of the client

    def _failed(self, exc: Exception) -> Exception:
        """Count a failed command (by kind, ``shared.stats``) and return its exception."""
        self.stats.error(exc.reason if isinstance(exc, StoreUnavailable) else "reply")
        return exc

    @abstractmethod
    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        """Send one command (``multi`` False) or one MULTI/EXEC of them to where their
        key lives; the raw reply (for a write to ``confirm``, once replicas have it)."""

    @abstractmethod
    async def everywhere(self, command: Command) -> list[Any]:
        """Send ``command`` to every primary; their replies (raw)."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def execute(self, *args: Any) -> Any:
        """One command's reply; an error reply raised (see the module docstring)."""
        try:
            reply = await self._run((args,), False)
        except StoreUnavailable as exc:
            self._failed(exc)
            raise
        if type(reply) is ReplyError:
            raise self._failed(error(reply))
        return reply

    async def transaction(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` in one MULTI/EXEC; their replies (a failed one as a
        ``ReplyError`` in its place)."""
        try:
            reply = await self._run(commands, True)
        except StoreUnavailable as exc:
            self._failed(exc)
            raise
        if type(reply) is ReplyError:  # a command was refused while queued (e.g. LOADING)
            raise self._failed(error(reply))
        assert isinstance(reply, list)
        return reply

    async def fcall(self, function: str, args: Command, more: Sequence[Command] = (),
                    read_only: bool = False) -> Any:
        """Call ``function`` with ``args`` (numkeys, keys, argv), then the commands
        ``more`` in the same MULTI/EXEC: one atomic step. The function's reply, or with
        ``more`` every reply (an error reply of the function raised)."""
        call = ("FCALL_RO" if read_only else "FCALL", function, *args)
        for attempt in (1, 2):
            try:
                reply = await self._run((call, *more), bool(more), confirm=not read_only)
            except StoreUnavailable as exc:
                self._failed(exc)
                raise
            first = reply[0] if more and type(reply) is list else reply
            if attempt == 1 and missing_function(first) and self.library:
                await self.load_library()
                continue
            if type(first) is ReplyError:
                raise self._failed(error(first))
            if type(first) is str and first.startswith(JOINED):  # a change, as published
                first = first.split(RS)
                return [first, *reply[1:]] if more else first
            return reply
        raise AssertionError("unreachable")

    async def load_library(self) -> None:
        """Load the function library everywhere (a no-op where it is loaded already)."""
        for reply in await self.everywhere(("FUNCTION", "LOAD", "REPLACE", self.library)):
            if type(reply) is ReplyError:
                raise error(reply)

    async def ensure_library(self) -> None:
        """Load the function library where Redis lacks it."""
        name = self.library.split("name=", 1)[1].split(None, 1)[0]
        listed = await self.everywhere(("FUNCTION", "LIST", "LIBRARYNAME", name))
        if any(not reply or type(reply) is ReplyError for reply in listed):
            await self.load_library()


class Redis(Client):
    """One Redis, over one pipelined connection."""

    def __init__(self, url: str, timeout: float = 0.75, library: str = "", replicas: int = 0,
                 wait_ms: int = 500, stats: StoreStats | None = None):
        super().__init__(timeout, library, stats)
        self.address = Address.from_url(url)
        self.connection = Connection(self.address, timeout, replicas, wait_ms, self.stats)

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        if multi:
            return await self.connection.multi(commands, confirm=confirm)
        return await self.connection.call(commands[0], confirm=confirm)

    async def everywhere(self, command: Command) -> list[Any]:
        return [await self.connection.call(command)]

    async def aclose(self) -> None:
        await self.connection.aclose()
