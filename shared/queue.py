"""The queue operations.

Each operation builds a ``Command`` (one Lua script or one read-only Redis command, with
its keys and arguments) and hands it to a runner, which executes it in one round trip and
decodes the reply. The runner is sync or async (``shared.store``), so the same ``Queue``
serves the asyncio REST node and a thread-pool or asyncio gRPC node: with an async runner
every method returns an awaitable, with a sync one the result.

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
from .model import Track, played_track, queued_track
from .validation import NewTrack

RS = "\x1e"


class Command(NamedTuple):
    script: scripts.Script | None
    args: tuple  # a script: numkeys, *keys, *argv; otherwise the Redis command itself
    decode: Callable[[Any], Any]


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


_TRACK_FIELDS = {"add": 3, "remove": 3, "vote": 3, "play": 1, "clear": 0}


def decode_change(reply: list) -> Change:
    """Decode a write script's successful reply (or a published event split on RS: then
    the head's triples follow the fixed fields instead of coming as one string)."""
    kind = reply[1]
    width = _TRACK_FIELDS[kind]
    if width == 3:
        track = queued_track(reply[4], reply[5], reply[6])
    elif width == 1:
        track = played_track(reply[4])
    else:
        track = None
    head = reply[4 + width:]
    return Change(kind, int(reply[2]), int(reply[3]), track,
                  _tracks(head[0].split(RS) if len(head) == 1 else head))


def decode_event(payload: str) -> Change:
    return decode_change(payload.split(RS))


def _tracks(parts: list) -> list[Track]:
    """Tracks from id, score, record triples; [''] (an empty head) gives none."""
    return [queued_track(parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts) - 2, 3)]


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
        """Run a write script. ``request`` is what the client asked (it makes up the
        idempotency fingerprint); ``settings`` are server limits passed after it."""
        room_keys = keys.room_keys(room)
        track_id = request[0] if request else ""
        if idempotency_key is None:
            fingerprint, idem = "", keys.idempotency_key(room, "")  # never read nor written
        else:
            fingerprint = RS.join((script.sha[:12], *map(str, request)))
            idem = keys.idempotency_key(room, idempotency_key)

        def decode(reply: list) -> Change:
            status = reply[0]
            if status == "ok":
                return decode_change(reply)
            if status == "not_found":
                raise TrackNotFound(track_id)
            if status == "duplicate":
                raise DuplicateTrack(track_id)
            if status == "empty":
                raise QueueEmpty()
            if status == "full":
                raise QueueFull(self._settings.max_queue)
            if status == "idempotency_mismatch":
                raise IdempotencyKeyReused()
            raise RuntimeError(f"unexpected reply from {script!r}: {reply!r}")

        return self._run(Command(script, (10, *room_keys, idem, fingerprint,
                                          keys.events_channel(room), head, *request, *settings),
                                 decode))

    # -- reads ----------------------------------------------------------------------

    def page(self, room: str, offset: int = 0, limit: int | None = None):
        """Tracks in play order from ``offset``, ``limit`` of them (all when None), with the
        room version and queue length: one consistent snapshot."""
        k = keys.room_keys(room)

        def decode(reply: list) -> Page:
            return Page(int(reply[0]), int(reply[1]), _tracks(reply[2].split(RS)))

        return self._run(Command(scripts.PAGE, (3, k.queue, k.tracks, k.version, offset,
                                                -1 if limit is None else limit), decode))

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

    def snapshot(self, room: str, head: int = validation.DEFAULT_HEAD):
        """The room's version, queue length, now playing and head, read atomically."""
        k = keys.room_keys(room)

        def decode(reply: list) -> Snapshot:
            now = played_track(reply[2]) if reply[2] else None
            return Snapshot(int(reply[0]), int(reply[1]), now, _tracks(reply[3].split(RS)))

        return self._run(Command(scripts.SNAPSHOT, (4, k.queue, k.tracks, k.now, k.version, head),
                                 decode))

    def version(self, room: str):
        return self._run(Command(None, ("GET", keys.room_keys(room).version),
                                 lambda raw: int(raw or 0)))


def _played_or_none(raw: str | None) -> Track | None:
    return None if raw is None else played_track(raw)


def _played_list(raw: list) -> list[Track]:
    return [played_track(entry) for entry in raw]
