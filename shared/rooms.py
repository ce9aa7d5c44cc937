"""Rooms with their own hosts and guests (CONTRACT §7): creating a room, co-hosts, guest
sessions, who a token is, and a guest's own tracks.

Tokens are made here and shown once; Redis keeps only their SHA-256 digests, in the
room's tokens hash (``shared/auth.py``, ``who()`` in ``shared/queue.lua``). Bans are
writes of the room like any other (``Playback.ban``), since they change its queue.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from . import auth, functions, keys, validation
from .config import Settings
from .errors import RoomReserved, TooManyRequests
from .model import SEQ_WIDTH, Track, queued_track
from .replies import refusal
from .store.client import Client

GUEST_NAME_MAX = 40


class Mine(NamedTuple):
    guest: str
    name: str
    tracks: list[tuple[int, Track]]  # (1-based position in the queue, track), in play order


class Rooms:
    def __init__(self, redis: Client, settings: Settings):
        self.redis, self.settings = redis, settings

    def _actor(self, authorization: str | None) -> str:
        return auth.actor(self.settings.admin_token, authorization)

    async def _call(self, function: str, room_keys: tuple[str, ...], args: tuple[Any, ...],
                    subject: str = "", read_only: bool = False) -> list[Any]:
        reply = await self.redis.fcall(function, (len(room_keys), *room_keys, *args),
                                       read_only=read_only)
        if reply[0] != "ok":
            raise refusal(reply, subject, self.settings.max_queue)
        return list(reply)

    async def create(self, room: str) -> str:
        """Create the room; its host token (shown once). RoomTaken if it exists (created
        before, or in use without having been created); RoomReserved for ``default``, whose
        host stays the server's ADMIN_TOKEN (contract §7)."""
        if room == validation.DEFAULT_ROOM:  # the original's room: ADMIN_TOKEN is its host
            raise RoomReserved(room)
        token = auth.new_token("host")
        k = keys.room_keys(room)
        await self._call(functions.CREATE_ROOM, (k.tokens, k.version), (auth.digest(token),),
                         room)
        return token

    async def add_cohost(self, room: str, authorization: str | None) -> tuple[str, str]:
        """A co-host for a created room (the host asks): its id and token."""
        cohost, token = auth.new_id("c-"), auth.new_token("cohost")
        await self._call(functions.ADD_COHOST, (keys.room_keys(room).tokens,),
                         (self._actor(authorization), cohost, auth.digest(token)))
        return cohost, token

    async def revoke_cohost(self, room: str, cohost: str, authorization: str | None) -> None:
        """The co-host's token stops working at once, on every node."""
        await self._call(functions.REVOKE_COHOST, (keys.room_keys(room).tokens,),
                         (self._actor(authorization), cohost), cohost)

    async def join(self, room: str, name: str) -> tuple[str, str]:
        """A guest session: the guest's id and token."""
        guest, token = auth.new_id("g-"), auth.new_token("guest")
        await self._call(functions.JOIN, (keys.room_keys(room).tokens,),
                         (guest, auth.digest(token), name))
        return guest, token

    async def whoami(self, room: str, authorization: str | None) -> tuple[str, str, str]:
        """(role, id, name) of the token: role 'host', 'cohost', 'guest', 'banned', 'admin'
        or '' (no token). AdminTokenWrong for a token that is not this room's."""
        reply = await self._call(functions.WHOAMI, (keys.room_keys(room).tokens,),
                                 (self._actor(authorization),), read_only=True)
        return reply[1], reply[2], reply[3]

    async def mine(self, room: str, authorization: str | None) -> Mine:
        """The guest's queued tracks with their places in the queue."""
        reply = await self._call(functions.MINE, keys.some(room, functions.MINE_KEYS),
                                 (self._actor(authorization),), read_only=True)
        tracks = []
        for i in range(3, len(reply), 4):
            member, rank, score, record = reply[i:i + 4]
            tracks.append((int(rank) + 1, queued_track(member[SEQ_WIDTH:], score, record)))
        tracks.sort(key=lambda pair: pair[0])
        return Mine(reply[1], reply[2], tracks)


class JoinLimit:
    """Guest sessions per client address on this node: at most ``per_minute`` a minute
    (a token bucket per address; a new tab is not a new voter for free). nginx limits the
    public door the same way; this covers what reaches a node directly. Local to the node,
    like nginx's: it keeps no state anywhere else and needs no clock but the node's."""

    MAX_ADDRESSES = 10_000

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)

    def take(self, address: str) -> None:
        """Use one join of ``address``'s; TooManyRequests when it has none left."""
        now = time.monotonic()
        tokens, when = self.buckets.get(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.rate)
        if tokens < 1:
            raise TooManyRequests("too many guest sessions from this address: try again in "
                                  "a minute")
        if len(self.buckets) >= self.MAX_ADDRESSES and address not in self.buckets:
            self.buckets.clear()  # a flood of addresses: forget them all, not the node's memory
        self.buckets[address] = (tokens - 1, now)
