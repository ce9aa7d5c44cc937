"""The track as both front doors see it, decoded from the compact records in Redis.

Records are joined with the unit separator (\\x1f), which validation keeps out of every
stored field, so a split is all a decode needs:

    queued  (tracks hash value):  seq, title, artist, duration, added_at
    played  (now / history):      id, title, artist, duration, added_at, votes, played_at

Times are Unix milliseconds from Redis's clock, so every node agrees on them.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

SEP = "\x1f"
SEQ_WIDTH = 12  # the queue member is the zero-padded add sequence number, then the id


@dataclass(slots=True)
class Track:
    """A track as read from Redis. Instances are shared (see ``queued_track``): never
    change one; ``cache`` keeps what each front door rendered of it."""

    id: str
    title: str
    artist: str
    duration: int
    votes: int = 0
    added_at: int = 0
    played_at: int | None = None
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def queued(cls, track_id: str, score: str | float, record: str) -> "Track":
        _, title, artist, duration, added_at = record.split(SEP)
        return cls(track_id, title, artist, int(duration), -_int(score), int(added_at))

    @classmethod
    def played(cls, record: str) -> "Track":
        track_id, title, artist, duration, added_at, votes, played_at = record.split(SEP)
        return cls(track_id, title, artist, int(duration), int(votes), int(added_at), int(played_at))


# The head of a queue changes a little between requests and is read again and again, so
# decoded tracks are kept, keyed by exactly what Redis returned: the same key can only mean
# the same track. Bounded (about a hundred rooms' heads): the oldest quarter goes when full.
_queued: dict[tuple, Track] = {}
_played: dict[str, Track] = {}


def keep(cache: dict, key, value, limit: int):
    """Put ``value`` in a bounded cache; when full, forget its oldest quarter first."""
    if len(cache) >= limit:
        for old in list(itertools.islice(cache, limit // 4)):
            del cache[old]
    cache[key] = value
    return value


def queued_track(track_id: str, score: str, record: str) -> Track:
    key = (track_id, score, record)
    track = _queued.get(key)
    if track is None:
        track = keep(_queued, key, Track.queued(track_id, score, record), 4096)
    return track


def played_track(record: str) -> Track:
    track = _played.get(record)
    if track is None:
        track = keep(_played, record, Track.played(record), 1024)
    return track


def _int(score: str | float) -> int:
    try:
        return int(score)
    except ValueError:  # Redis spells very large scores in exponent form
        return int(float(score))


def iso_time(ms: int) -> str:
    """Unix milliseconds as ISO 8601 UTC: 2026-11-29T05:31:54.123Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
