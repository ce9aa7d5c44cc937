"""What both front doors see: tracks decoded from the compact records in Redis, and the
results of the queue's operations.

Records are joined with the unit separator (\\x1f), which validation keeps out of every
stored field, so a split is all a decode needs:

    queued  (tracks hash value):  seq, title, artist, duration, added_at[, owner, name]
    played  (now / history):      id, title, artist, duration, added_at, votes, played_at,
                                  play_id, flags (s: skipped, f: a fallback replay)
                                  [, owner, name]

(owner, name: the guest who added the track, for tracks added with a guest token.)
A queued track's score is minus its votes, plus (order "fair") its round times ROUND.

Times are Unix milliseconds from Redis's clock, so every node agrees on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

SEP = "\x1f"
RS = "\x1e"  # between the fields of a function's success, as published (shared.replies)
SEQ_WIDTH = 12  # a queue member is the zero-padded add sequence number, then the id
ROUND = 2**33  # order "fair": a track in round r has the score r * ROUND - votes


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
    play_id: int | None = None
    skipped: bool = False
    fallback: bool = False
    added_by: tuple[str, str] | None = None  # the guest's id and name
    rendered: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@lru_cache(maxsize=8192)
def queued_track(track_id: str, score: str, record: str) -> Track:
    """A queued track from its id, its queue score and its record."""
    _, title, artist, duration, added_at, *owner = record.split(SEP)
    return Track(track_id, title, artist, int(duration), votes_of(score), int(added_at),
                 added_by=(owner[0], owner[1]) if owner else None)


@lru_cache(maxsize=2048)
def played_track(record: str) -> Track:
    track_id, title, artist, duration, added_at, votes, played_at, *more = record.split(SEP)
    play_id, flags = (int(more[0]), more[1]) if more else (None, "")
    owner = (more[2], more[3]) if len(more) > 3 else None
    return Track(track_id, title, artist, int(duration), int(votes), int(added_at),
                 int(played_at), play_id, "s" in flags, "f" in flags, owner)


def votes_of(score: str) -> int:
    """A queued track's votes from its score, whatever the room's order."""
    try:
        value = int(score)
    except ValueError:  # Redis spells very large scores in exponent form
        value = int(float(score))
    return round(value / ROUND) * ROUND - value


@lru_cache(maxsize=4096)
def iso_time(ms: int) -> str:
    """Unix milliseconds as ISO 8601 UTC: 2026-11-29T05:31:54.123Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass(frozen=True, slots=True)
class Clock:
    """The clock of the play now on, as Redis keeps it: when it started, when its running
    stretch began (``resumed``) and how long it had run before (``elapsed``, ms), whether
    it is paused; the skip votes it has and the room's threshold; Redis's time when read
    (``now``), so that position and end need no node's clock."""

    play_id: int
    started: int
    resumed: int
    elapsed: int
    paused: bool
    skips: int
    skip_threshold: int
    autoplay: bool
    now: int

    @classmethod
    def parse(cls, text: str) -> Clock:
        v = [int(x) for x in text.split(SEP)]
        return cls(v[0], v[1], v[2], v[3], bool(v[4]), v[5], v[6], bool(v[7]), v[8])

    def position_ms(self, duration_s: int) -> int:
        """How far the play has got at ``now`` (never past its end when known)."""
        run = self.elapsed + (0 if self.paused else self.now - self.resumed)
        return min(run, duration_s * 1000) if duration_s else run

    def ends_at(self, duration_s: int) -> int | None:
        """When the play ends by Redis's clock; None while paused or of unknown length."""
        if self.paused or not duration_s:
            return None
        return self.resumed + duration_s * 1000 - self.elapsed


@dataclass(frozen=True, slots=True)
class NowPlaying:
    track: Track
    clock: Clock


def now_playing(entry: str, clock: str) -> NowPlaying | None:
    return NowPlaying(played_track(entry), Clock.parse(clock)) if entry else None


@dataclass(slots=True)
class Change:
    """The outcome of a write: the room's new version and queue length, the track the
    write was about (None for a clear) and the head of the queue after it."""

    kind: str
    version: int
    length: int
    track: Track | None
    head: list[Track] = field(default_factory=list)
    now: NowPlaying | None = None  # after a play, pause, resume or skip
    settings: dict[str, str] | None = None  # after a change of settings
    guest: str | None = None  # after a ban or unban: whose


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
    now_playing: NowPlaying | None
    head: list[Track]
    settings: dict[str, str] = field(default_factory=dict)
    time: int = 0  # Redis's, in ms
