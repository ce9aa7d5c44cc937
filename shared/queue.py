"""The queue operations.

Each operation builds a ``Command`` and hands it to a runner (``shared.store``), sync or
async, so the same ``Queue`` serves the asyncio REST node and a thread-pool or asyncio gRPC
node: with an async runner every method returns an awaitable, with a sync one the result.

A command is one Lua script or one plain Redis command, optionally followed by more plain
commands that run with it in the same MULTI/EXEC: one atomic step, one round trip. Writes
are Lua scripts; the head of the queue that a write returns is read right after it in the
same transaction by a native ``ZRANGE ... WITHSCORES``, because converting 25 tracks into
and out of Lua cost Redis four times as much. That read returns queue members (add
sequence number + id) and scores; a member's record (title, artist, duration, added_at)
never changes while it is queued, so nodes keep the records they have seen and ask Redis
only for new ones (``Fetch``: one HMGET).

Guarantees: every change is a single Lua script, atomic in Redis, so concurrent callers on
any number of nodes can neither lose nor duplicate a track or a vote. Each costs O(log n)
in the queue length n, plus the head it returns; reading a page costs O(log n + page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from . import keys, scripts, validation
from .config import Settings
from .errors import (DuplicateTrack, IdempotencyKeyReused, QueueEmpty, QueueFull,
                     TrackNotFound)
from .model import SEQ_WIDTH, Track, keep, played_track, queued_track
from .validation import NewTrack

RS = "\x1e"


class Command(NamedTuple):
    script: scripts.Script | None
    args: tuple  # a script: numkeys, *keys, *argv; otherwise the Redis command itself
    decode: Callable[[Any], Any]  # the reply (a list of replies when ``more``) -> result
    more: tuple = ()  # further commands for the same MULTI/EXEC


class Fetch(NamedTuple):
    """A decode that needs one more read: run ``args``, then ``then(reply)``."""

    args: tuple
    then: Callable[[Any], Any]


@dataclass(slots=True)
class Change:
    """The outcome of a write: the room's new version and queue length, the track the
    write was about (None for a clear) and the head of the queue after it."""

    kind: str
    version: int
    length: int
    track: Track | None
    head: list[Track] = field(default_factory=list)


@dataclass(slots=True)
class Page:
    version: int
    length: int
    tracks: list[Track]


@dataclass(slots=True)
class Snapshot:
    """A room at one version: what live listeners start from."""

    version: int
    length: int
    now_playing: Track | None
    head: list[Track]


# -- records of queued tracks, kept per node ----------------------------------------------

_records: dict[tuple[str, str], str] = {}  # (room, member) -> record, a few hundred heads


def _remember(room: str, track_id: str, record: str) -> None:
    keep(_records, (room, record[:SEQ_WIDTH] + track_id), record, 8192)


def with_records(room: str, pairs: list, finish: Callable[[list[Track]], Any]):
    """Turn a ZRANGE WITHSCORES reply (member, score, ...) into tracks and pass them to
    ``finish``; if this node lacks records, first ``Fetch`` them (a track that left the
    queue meanwhile has none and is left out)."""
    if pairs and type(pairs[0]) is list:  # redis-py (the sync runner) pairs them up itself
        pairs = [value for pair in pairs for value in pair]
    records = {m: _records.get((room, m)) for m in pairs[0::2]}
    missing = [m for m, record in records.items() if record is None]
    if not missing:
        return finish(_tracks(pairs, records))

    def then(fetched: list) -> Any:
        for member, record in zip(missing, fetched):
            if record is not None:
                records[member] = record  # used from here: a big page may outgrow the cache
                _remember(room, member[SEQ_WIDTH:], record)
        return finish(_tracks(pairs, records))

    return Fetch(("HMGET", keys.room_keys(room).tracks, *(m[SEQ_WIDTH:] for m in missing)), then)


def _tracks(pairs: list, records: dict) -> list[Track]:
    return [queued_track(pairs[i][SEQ_WIDTH:], pairs[i + 1], records[pairs[i]])
            for i in range(0, len(pairs), 2) if records[pairs[i]] is not None]


_TRACK_FIELDS = {"add": 3, "remove": 3, "vote": 3, "play": 1, "clear": 0}


def _change(reply: list, head: list[Track]) -> Change:
    kind = reply[1]
    width = _TRACK_FIELDS[kind]
    if width == 3:
        track = queued_track(reply[4], reply[5], reply[6])
    elif width == 1:
        track = played_track(reply[4])
    else:
        track = None
    return Change(kind, int(reply[2]), int(reply[3]), track, head)


def decode_event(payload: str) -> Change:
    """A published change: the script's reply fields, then the head's id, score, record
    triples, all joined with RS."""
    parts = payload.split(RS)
    start = 4 + _TRACK_FIELDS[parts[1]]
    head = [queued_track(parts[i], parts[i + 1], parts[i + 2])
            for i in range(start, len(parts) - 2, 3)]
    return _change(parts, head)


class Queue:
    """Every operation on every room, over one runner (see the module docstring)."""

    def __init__(self, run: Callable[[Command], Any], settings: Settings):
        self._run = run
        self._settings = settings

    # -- writes ---------------------------------------------------------------------

    def add(self, room: str, track: NewTrack, *, head: int = validation.DEFAULT_HEAD,
            idempotency_key: str | None = None):
        """Queue a new track with 0 votes, last among its equals. DuplicateTrack if the id
        is queued already; QueueFull past MAX_QUEUE."""
        return self._write(scripts.ADD, room, head, idempotency_key,
                           (track.id, track.title, track.artist, track.duration),
                           self._settings.max_queue)

    def remove(self, room: str, track_id: str, *, head: int = validation.DEFAULT_HEAD,
               idempotency_key: str | None = None):
        """Take a queued track out (its ballots go with it). TrackNotFound if not queued."""
        return self._write(scripts.REMOVE, room, head, idempotency_key, (track_id,))

    def vote(self, room: str, track_id: str, up: bool, voter: str | None = None, *,
             head: int = validation.DEFAULT_HEAD, idempotency_key: str | None = None):
        """Vote a queued track up or down. Anonymous votes each count; a voter holds at most
        one ballot per track (a repeat changes nothing, the opposite one flips it)."""
        return self._write(scripts.VOTE, room, head, idempotency_key,
                           (track_id, 1 if up else -1, voter or ""))

    def play_next(self, room: str, *, head: int = validation.DEFAULT_HEAD,
                  idempotency_key: str | None = None):
        """Take the first track, make it now playing and put it at the head of the history.
        Each queued track is played at most once, whatever the concurrency. QueueEmpty
        when there is nothing to play."""
        return self._write(scripts.PLAY_NEXT, room, head, idempotency_key, (),
                           self._settings.history_limit)

    def clear(self, room: str, *, idempotency_key: str | None = None):
        """Empty the room's queue, now playing and history (O(n) in what it deletes)."""
        return self._write(scripts.CLEAR, room, 0, idempotency_key, ())

    def _write(self, script: scripts.Script, room: str, head: int, idempotency_key: str | None,
               request: tuple, *settings: int):
        """Run a write script, and read the head after it in the same transaction.
        ``request`` is what the client asked (it makes up the idempotency fingerprint);
        ``settings`` are server limits passed after it."""
        room_keys = keys.room_keys(room)
        track_id = request[0] if request else ""
        if idempotency_key is None:
            fingerprint, idem = "", keys.idempotency_key(room, "")  # never read nor written
        else:
            fingerprint = RS.join((script.sha[:12], *map(str, request)))
            idem = keys.idempotency_key(room, idempotency_key)

        def refused(status: str) -> Exception:
            if status == "not_found":
                return TrackNotFound(track_id)
            if status == "duplicate":
                return DuplicateTrack(track_id)
            if status == "empty":
                return QueueEmpty()
            if status == "full":
                return QueueFull(self._settings.max_queue)
            if status == "idempotency_mismatch":
                return IdempotencyKeyReused()
            return RuntimeError(f"unexpected reply from {script!r}: {status!r}")

        def decode(replies: list):
            reply = replies[0] if head else replies
            if reply[0] != "ok":
                raise refused(reply[0])
            # keep the records the reply carries, for the heads to come: the track the
            # write was about, and the one now at the head's last place
            if _TRACK_FIELDS[reply[1]] == 3:
                _remember(room, reply[4], reply[6])
            if not head:
                return _change(reply, [])
            if reply[-2]:
                _remember(room, reply[-2][SEQ_WIDTH:], reply[-1])
            return with_records(room, replies[1], lambda tracks: _change(reply, tracks))

        more = (("ZRANGE", room_keys.queue, 0, head - 1, "WITHSCORES"),) if head else ()
        return self._run(Command(script, (10, *room_keys, idem, fingerprint,
                                          keys.events_channel(room), head, *request, *settings),
                                 decode, more))

    # -- reads ----------------------------------------------------------------------

    def page(self, room: str, offset: int = 0, limit: int | None = None):
        """Tracks in play order from ``offset``, ``limit`` of them (all when None), with the
        room version and queue length: one consistent snapshot."""
        k = keys.room_keys(room)
        stop = -1 if limit is None else offset + limit - 1

        def decode(replies: list):
            version, length, pairs = replies
            return with_records(room, pairs, lambda tracks: Page(int(version or 0), length, tracks))

        return self._run(Command(None, ("GET", k.version), decode,
                                 (("ZCARD", k.queue),
                                  ("ZRANGE", k.queue, offset, stop, "WITHSCORES"))))

    def snapshot(self, room: str, head: int = validation.DEFAULT_HEAD):
        """The room's version, queue length, now playing and head, read atomically."""
        k = keys.room_keys(room)

        def decode(replies: list):
            version, length, now, pairs = replies
            playing = played_track(now) if now else None
            return with_records(room, pairs, lambda tracks: Snapshot(int(version or 0), length,
                                                                     playing, tracks))

        return self._run(Command(None, ("GET", k.version), decode,
                                 (("ZCARD", k.queue), ("GET", k.now),
                                  ("ZRANGE", k.queue, 0, head - 1, "WITHSCORES"))))

    def metadata(self, room: str, track_id: str):
        """A track that is queued, or was played (now playing or in the history)."""
        k = keys.room_keys(room)

        def decode(reply: list) -> Track:
            if reply[0] == "queued":
                return queued_track(track_id, reply[1], reply[2])
            if reply[0] == "played":
                return played_track(reply[1])
            raise TrackNotFound(track_id, "queued, playing or in the history")

        return self._run(Command(scripts.METADATA, (3, k.queue, k.tracks, k.played, track_id),
                                 decode))

    def now_playing(self, room: str):
        """The track the last play_next took, or None."""
        return self._run(Command(None, ("GET", keys.room_keys(room).now), _played_or_none))

    def history(self, room: str, offset: int = 0, limit: int | None = None):
        """Played tracks, newest first."""
        stop = -1 if limit is None else offset + limit - 1
        return self._run(Command(None, ("LRANGE", keys.room_keys(room).history, offset, stop),
                                 _played_list))

    def version(self, room: str):
        return self._run(Command(None, ("GET", keys.room_keys(room).version),
                                 lambda raw: int(raw or 0)))


def _played_or_none(raw: str | None) -> Track | None:
    return None if raw is None else played_track(raw)


def _played_list(raw: list) -> list[Track]:
    return [played_track(entry) for entry in raw]
