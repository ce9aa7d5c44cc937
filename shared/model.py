"""What both front doors see: tracks decoded from the compact records in Redis, and the
results of the queue's operations.

Records are joined with the unit separator (\\x1f), which validation keeps out of every
stored field, so a split is all a decode needs:

    queued  (tracks hash value):  seq, title, artist, duration, added_at
    played  (now / history):      id, title, artist, duration, added_at, votes, played_at

Times are Unix milliseconds from Redis's clock, so every node agrees on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

SEP = "\x1f"
SEQ_WIDTH = 12  # a queue member is the zero-padded add sequence number, then the id


@dataclass(slots=True)
class Track:
    """A track as read from Redis. Decoded tracks are shared (``queued_track`` and
    ``played_track`` return the same object for the same record): never change one;
    ``rendered`` keeps what each front door made of it, so a head costs a join."""

    id: str
    title: str
    artist: str
    duration: int
    votes: int = 0
    added_at: int = 0
    played_at: int | None = None
    rendered: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@lru_cache(maxsize=8192)
def queued_track(track_id: str, score: str, record: str) -> Track:
    """A queued track from its id, its queue score (minus its votes) and its record."""
    _, title, artist, duration, added_at = record.split(SEP)
    return Track(track_id, title, artist, int(duration), -_int(score), int(added_at))


@lru_cache(maxsize=2048)
def played_track(record: str) -> Track:
    track_id, title, artist, duration, added_at, votes, played_at = record.split(SEP)
    return Track(track_id, title, artist, int(duration), int(votes), int(added_at),
                 int(played_at))


def _int(score: str) -> int:
    try:
        return int(score)
    except ValueError:  # Redis spells very large scores in exponent form
        return int(float(score))


@lru_cache(maxsize=4096)
def iso_time(ms: int) -> str:
    """Unix milliseconds as ISO 8601 UTC: 2026-11-29T05:31:54.123Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


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
