"""The queue operations, one atomic Redis step each.

Every change is a single call of a Redis function (``shared/queue.lua``), atomic in Redis,
so concurrent
callers on any number of nodes can neither lose nor duplicate a track or a vote. Each costs
O(log n) in the queue length n, plus the head it returns; reading a page costs
O(log n + page).

The head of the queue that a write returns comes from the node's view of the room when it
has one (``shared.live``: a room read or written through a node is followed for a while,
and its head kept by applying each change): the function's reply is the change itself, so
the node applies it to its view and Redis reads no head at all. Without a view (the
room's first requests on this node, an order that re-ranks, a head longer than the
view's), the head is read right after the function in the same MULTI/EXEC by a native
``ZRANGE ... WITHSCORES``: converting 25 tracks into and out of Lua cost Redis four times
as much. That read returns queue members (add sequence number + id) and scores; a member's
record (title, artist, duration, added_at) never changes while it is queued, so a
``Queue`` keeps the records it has seen and asks Redis only for new ones (one HMGET).
A first page is answered from the view too, after one ``GET`` of the room's version.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from . import auth, functions, keys, validation
from .catalogue import Catalogue, count_play
from .config import Settings
from .errors import TrackNotFound
from .model import (
    RS,
    SEQ_WIDTH,
    Change,
    NowPlaying,
    Page,
    Snapshot,
    Track,
    now_playing,
    played_track,
    queued_track,
)
from .replies import Placed, Reply, parse, placed, refusal, settings_of
from .store.client import Client
from .validation import NewTrack

if TYPE_CHECKING:
    from .live import Live

RECORDS = 16_384  # records of queued tracks a Queue keeps: a few hundred rooms' heads


def _head_read(queue: str, head: int) -> list[tuple[Any, ...]]:
    """The queue's length and its first ``head`` members with their scores."""
    return [("ZCARD", queue), ("ZRANGE", queue, 0, head - 1, "WITHSCORES")]


class Queue:
    """Every operation on every room, over one Redis connection."""

    def __init__(self, redis: Client, settings: Settings):
        self._redis = redis
        self._settings = settings
        self._records: dict[tuple[str, str], str] = {}  # (room, member) -> record
        # the node's live rooms: reads and writes' heads come from its view of a room
        # when it has one (set by the node once both exist; see ``_from_view``)
        self.live: Live | None = None

    # -- writes ---------------------------------------------------------------------

    async def add(self, room: str, track: NewTrack, *, head: int = validation.DEFAULT_HEAD,
                  idempotency_key: str | None = None, authorization: str | None = None,
                  asked: tuple[Any, ...] | None = None) -> Change:
        """Queue a new track with 0 votes, last among its equals (with a guest token, as
        that guest's). DuplicateTrack if the id is queued already; QueueFull past
        MAX_QUEUE; the room's settings may refuse it (locked, require_guest, max_per_guest,
        no_repeat_minutes). ``asked``: what the client sent, when the track is made of
        more (a catalogue track's fields): a retry is recognised by that."""
        return await self.write(functions.ADD, room, head, idempotency_key,
                                (track.id, track.title, track.artist, track.duration),
                                self._settings.max_queue, authorization=authorization,
                                asked=asked)

    async def add_from_catalogue(self, room: str, catalogue: Catalogue, track_id: str,
                                 duration: Any = None, *, head: int = validation.DEFAULT_HEAD,
                                 idempotency_key: str | None = None,
                                 authorization: str | None = None) -> Change:
        """Queue a catalogue track by its id (its duration, or ``duration``). A retry with
        the same idempotency key gets its first reply even if the catalogue changed since
        (the track updated, or gone: the reply is then asked for alone)."""
        asked = ("catalogue", track_id, "" if duration is None else duration)
        try:
            track = await catalogue.new_track(track_id, duration)
        except TrackNotFound as gone:
            if idempotency_key is None:
                raise
            try:  # (an add with no title: the retry's first reply, or not_found)
                return await self.add(room, NewTrack(track_id, "", "", 0), head=head,
                                      idempotency_key=idempotency_key,
                                      authorization=authorization, asked=asked)
            except TrackNotFound:
                raise gone from None
        return await self.add(room, track, head=head, idempotency_key=idempotency_key,
                              authorization=authorization, asked=asked)

    async def remove(self, room: str, track_id: str, *, head: int = validation.DEFAULT_HEAD,
                     idempotency_key: str | None = None, authorization: str | None = None
                     ) -> Change:
        """Take a queued track out (its ballots go with it): the host, or the guest who
        added it. TrackNotFound if not queued."""
        return await self.write(functions.REMOVE, room, head, idempotency_key, (track_id,),
                                authorization=authorization)

    async def vote(self, room: str, track_id: str, up: bool, voter: str | None = None, *,
                   head: int = validation.DEFAULT_HEAD,
                   idempotency_key: str | None = None, authorization: str | None = None
                   ) -> Change:
        """Vote a queued track up or down. Anonymous votes each count; a voter holds at most
        one ballot per track (a repeat changes nothing, the opposite one flips it); with a
        guest token the ballot is that guest's, whatever ``voter`` says."""
        return await self.write(functions.VOTE, room, head, idempotency_key,
                                (track_id, 1 if up else -1, voter or ""),
                                authorization=authorization)

    async def play_next(self, room: str, *, head: int = validation.DEFAULT_HEAD,
                        idempotency_key: str | None = None,
                        expected_play_id: int | None = None,
                        authorization: str | None = None) -> Change:
        """Take the first track, make it now playing with a new play id and a fresh clock,
        and put it at the head of the history (with the room's fallback 'history', an
        empty queue replays the history track played longest ago). Each queued track is
        played at most once, whatever the concurrency. QueueEmpty when there is nothing to
        play; with ``expected_play_id``, PlayChanged unless that play is the current one."""
        return await self.write(functions.PLAY_NEXT, room, head, idempotency_key,
                                ("" if expected_play_id is None else expected_play_id,),
                                self._settings.history_limit, play=True,
                                authorization=authorization)

    async def clear(self, room: str, *, idempotency_key: str | None = None,
                    authorization: str | None = None) -> Change:
        """Empty the room's queue, now playing and history (O(n) in what it deletes)."""
        return await self.write(functions.CLEAR, room, 0, idempotency_key, (),
                                authorization=authorization)

    async def write(self, function: str, room: str, head: int, idempotency_key: str | None,
                    request: tuple[Any, ...], *limits: int, play: bool = False,
                    authorization: str | None = None, asked: tuple[Any, ...] | None = None
                    ) -> Change:
        """Call a write function, and read the head after it in the same transaction.
        ``request`` is what the client asked (it makes up the idempotency fingerprint);
        ``limits`` are server settings passed after it; ``play``: the request's first
        field is not a track's id. A room the change makes due (its playback moves on by
        itself) enters the schedule. ``authorization``: the request's Authorization header,
        checked by the function itself (``who()`` in queue.lua); ``asked``, when what the
        client sent is not ``request`` (it makes up the fingerprint then)."""
        room_keys = keys.room_keys(room)
        fingerprint = ""
        if idempotency_key is not None:
            fingerprint = RS.join((function, *map(str, request if asked is None else asked)))
        extra = keys.some(room, functions.EXTRA_KEYS[function])
        args = (4 + len(extra), room_keys.queue, room_keys.tracks, room_keys.version,
                keys.idempotency_key(room, idempotency_key or ""), *extra, fingerprint,
                keys.events_channel(room),
                auth.actor(self._settings.admin_token, authorization), *request, *limits)
        track_id = "" if play or not request else str(request[0])
        if not head:
            fields = await self._redis.fcall(function, args)
            reply = self._success(fields, track_id)
            await self._schedule(room, reply)
            return reply.change
        live = self.live
        view = live.view(room) if live is not None and head <= functions.EVENT_HEAD else None
        if live is not None and view is not None and view.settings.get("order") != "fair":
            # the head from the node's view of the room: the function alone, no ZRANGE
            fields = await self._redis.fcall(function, args)
            reply = self._success(fields, track_id)
            # a length of '': nobody listened when it ran (the view was just being dropped)
            tracks = await live.head_after(room, reply, head) if fields[3] != "" else None
            await self._schedule(room, reply)
            if tracks is not None:
                # the change itself went to the room's listeners as it is: a copy for the caller
                return dataclasses.replace(reply.change, head=tracks)
            # the view could not tell (rare: see Live.head_after): the head read right after
            length, pairs = await self._redis.transaction(_head_read(room_keys.queue, head))
            return dataclasses.replace(reply.change, length=length,
                                       head=await self._tracks(room, pairs))
        # the head and the length, read natively after the function, in the same step
        fields, length, pairs = await self._redis.fcall(
            function, args, _head_read(room_keys.queue, head))
        reply = self._success(fields, track_id)
        await self._schedule(room, reply)
        # keep the records the reply carries, for the heads to come: the track the write
        # was about, and the one at the head's last place
        for where in (reply.placed, reply.edge):
            if where is not None:
                self._keep(room, where.member, where.record)
        change = reply.change
        change.length = length
        change.head = await self._tracks(room, pairs)
        return change

    def _success(self, fields: list[Any], track_id: str) -> Reply:
        if fields[0] != "ok":
            raise refusal(fields, track_id, self._settings.max_queue)
        return parse(fields)

    async def _schedule(self, room: str, reply: Reply) -> None:
        """After a change: a play counts for the catalogue's ranking (``count_play``), and a
        room that is due enters the schedule, at the earlier of its due times (the
        schedule is a hint: the room's own state decides, see shared/playback.py)."""
        change = reply.change
        if change.kind == "play" and change.now is not None:
            await count_play(self._redis, change.now.track.id)
        if reply.due is not None:
            await self._redis.execute("ZADD", keys.SCHEDULE, "LT", reply.due, room)

    # -- records of queued tracks -----------------------------------------------------

    def _keep(self, room: str, member: str, record: str) -> None:
        if len(self._records) >= RECORDS:
            self._records.clear()  # simply start again: each miss costs one HMGET
        self._records[room, member] = record

    async def _records_of(self, room: str, members: list[str],
                          records: list[str | None] | None = None) -> list[str | None]:
        """The records of queued tracks; those this Queue lacks are fetched (one HMGET),
        and a track that left the queue meanwhile has none."""
        if records is None:
            records = [self._records.get((room, m)) for m in members]
        missing = [m for m, record in zip(members, records, strict=True) if record is None]
        if missing:
            found = await self._redis.execute(
                "HMGET", keys.room_keys(room).tracks, *(m[SEQ_WIDTH:] for m in missing))
            fetched = dict(zip(missing, found, strict=True))
            for member, record in fetched.items():
                if record is not None:
                    self._keep(room, member, record)
            records = [record or fetched[m] for m, record in zip(members, records, strict=True)]
        return records

    async def _tracks(self, room: str, pairs: list[str]) -> list[Track]:
        """The tracks of a ZRANGE WITHSCORES reply (member, score, ...)."""
        members = pairs[0::2]
        records: list[str | None] = [self._records.get((room, m)) for m in members]
        if None in records:  # only then a round trip
            records = await self._records_of(room, members, records)
        return [queued_track(m[SEQ_WIDTH:], score, record)
                for m, score, record in zip(members, pairs[1::2], records, strict=True)
                if record is not None]

    # -- reads ----------------------------------------------------------------------

    async def page(self, room: str, offset: int = 0, limit: int | None = None) -> Page:
        """Tracks in play order from ``offset``, ``limit`` of them (all when None), with the
        room version and queue length: one consistent snapshot."""
        if offset == 0 and self.live is not None:
            page = await self._from_view(self.live, room, limit)
            if page is not None:
                return page
        k = keys.room_keys(room)
        stop = -1 if limit is None else offset + limit - 1
        version, length, pairs = await self._redis.transaction(
            [("GET", k.version), ("ZCARD", k.queue),
             ("ZRANGE", k.queue, offset, stop, "WITHSCORES")])
        return Page(int(version or 0), length, await self._tracks(room, pairs))

    async def _from_view(self, live: Live, room: str, limit: int | None) -> Page | None:
        """The first page from the node's view of the room, if it has one that holds the
        page and is at least at the room's version now (one GET): the view is then the
        room as it was at some instant of this read, never older than a write any node
        acknowledged before it. None to read Redis."""
        def fits(view: Any) -> bool:
            return view is not None and (
                view.length <= functions.EVENT_HEAD
                or limit is not None and limit <= functions.EVENT_HEAD)

        if not fits(live.view(room)):
            return None
        version = await self.version(room)
        view = live.view(room)  # (the view may have moved on, or been read again, meanwhile)
        if view is None or view.version < version or not fits(view):
            return None
        tracks = view.head()
        return Page(view.version, view.length, tracks if limit is None else tracks[:limit])

    async def placed_snapshot(self, room: str, head: int = functions.EVENT_HEAD
                              ) -> tuple[Snapshot, list[Placed]]:
        """The room's version, queue length, now playing with its clock, settings and head,
        read atomically with Redis's time, and the places of the head's tracks (what a
        live view starts from)."""
        k = keys.room_keys(room)
        version, length, now, pairs = await self._redis.transaction(
            [("GET", k.version), ("ZCARD", k.queue),
             ("FCALL_RO", functions.NOW_PLAYING, 3, *keys.some(room, functions.NOW_KEYS)),
             ("ZRANGE", k.queue, 0, head - 1, "WITHSCORES")])
        members = pairs[0::2]
        records = await self._records_of(room, members)
        entries = [placed(m, score, record)
                   for m, score, record in zip(members, pairs[1::2], records, strict=True)
                   if record is not None]
        snapshot = Snapshot(int(version or 0), length, now_playing(now[0], now[1]),
                            [entry.track for entry in entries], settings_of(now[2]),
                            int(now[3]))
        return snapshot, entries

    async def metadata(self, room: str, track_id: str) -> Track:
        """A track that is queued, or was played (now playing or in the history)."""
        k = keys.room_keys(room)
        reply = await self._redis.fcall(functions.METADATA,
                                        (3, k.queue, k.tracks, k.played, track_id),
                                        read_only=True)
        if reply[0] == "queued":
            return queued_track(track_id, reply[1], reply[2])
        if reply[0] == "played":
            return played_track(reply[1])
        raise TrackNotFound(track_id, "queued, playing or in the history")

    async def now_playing(self, room: str) -> tuple[NowPlaying | None, dict[str, str], int]:
        """What plays now with its clock (None for nothing), the room's settings, and
        Redis's time."""
        entry, clock, settings, now = await self._redis.fcall(
            functions.NOW_PLAYING, (3, *keys.some(room, functions.NOW_KEYS)), read_only=True)
        return now_playing(entry, clock), settings_of(settings), int(now)

    async def history(self, room: str, offset: int = 0, limit: int | None = None
                      ) -> list[Track]:
        """Played tracks, newest first."""
        stop = -1 if limit is None else offset + limit - 1
        entries = await self._redis.execute("LRANGE", keys.room_keys(room).history, offset, stop)
        return [played_track(entry) for entry in entries]

    async def version(self, room: str) -> int:
        return int(await self._redis.execute("GET", keys.room_keys(room).version) or 0)
