"""Every Redis key and channel the queue uses, built in one place.

All keys of a room share the hash tag ``{room}`` (``mq:{party42}:queue``), so a room
lives in one Redis Cluster slot and one Lua script may touch all of its keys. Room
names are validated to ``[A-Za-z0-9_-]`` before they get here, so they can never
close the tag or reach another room's keys.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

PREFIX = "mq"


class RoomKeys(NamedTuple):
    queue: str  # zset: score -votes, member <12-digit add seq><id>; play order
    tracks: str  # hash: id -> "<seq>\x1f<title>\x1f<artist>\x1f<duration>\x1f<added_at>"
    playing: str  # hash: the now-playing entry and its clock (play_id, started, resumed...)
    history: str  # list: played entries, newest first
    played: str  # hash: id -> its newest history entry (metadata lookups)
    ballots: str  # hash: <seq><voter> -> 1 or -1, per-voter ballots of queued tracks
    voted: str  # zset, scores 0: <seq><voter>, so that a track's ballots are one range
    seq: str  # counter: add sequence numbers
    version: str  # counter: bumped by every change of the room
    plays: str  # counter: play ids
    skips: str  # set: who voted to skip the current play
    settings: str  # hash: the room's settings (autoplay, skip_threshold, ...)
    tokens: str  # hash: SHA-256 of a token -> its role; "!room" marks a created room
    owned: str  # zset, scores 0: <owner> NUL <seq><id>, each guest's queued tracks
    byvoter: str  # zset, scores 0: <guest voter> NUL <seq><id>, a guest's ballots


def _tag(room: str) -> str:
    return f"{PREFIX}:{{{room}}}:"


@lru_cache(maxsize=4096)
def room_keys(room: str) -> RoomKeys:
    tag = _tag(room)
    return RoomKeys(*(tag + name for name in RoomKeys._fields))


@lru_cache(maxsize=16384)
def some(room: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The room's keys of these names, in this order."""
    every = room_keys(room)
    return tuple(getattr(every, name) for name in names)


def idempotency_key(room: str, key: str) -> str:
    return f"{_tag(room)}idem:{key}"


SCHEDULE = f"{PREFIX}:{{schedule}}:due"  # zset: room -> when its playback moves on (ms)
AUTOPLAY = f"{PREFIX}:{{schedule}}:autoplay"  # set: rooms with autoplay on
SWEEPER = f"{PREFIX}:{{schedule}}:sweeper"  # string: the node sweeping the autoplay rooms


def events_channel(room: str) -> str:
    return f"{_tag(room)}events"


def channel_room(channel: str) -> str:
    """The room of an events channel: ``mq:{party42}:events`` -> ``party42``."""
    return channel[len(PREFIX) + 2:-len("}:events")]


class CatalogueKeys(NamedTuple):
    """The deployment's one catalogue (shared by every room), in one Cluster slot. A room's
    keys are ``mq:{<room>}:`` and one of RoomKeys' names, ``idem:<key>`` or ``events``, so
    even a room called "catalogue" never reaches these ``cat:`` keys."""

    records: str  # hash: id -> title, artist, album, duration, words, extra columns
    terms: str  # zset, scores 0: each distinct word of the catalogue
    postings: str  # hash: word -> " <id> <id> ... " (byte order), the tracks that have it
    prefixes: str  # hash: word prefix -> the postings of the words it starts
    titles: str  # zset, scores 0: "<title words>\0<id>"
    plays: str  # zset: id -> times played in this deployment
    version: str  # counter: bumped by every change of the tracks
    lock: str  # string: the token of the import that is running
    played: str  # counter: bumped by every play counted in plays (nodes cache searches by it)

    @property
    def index_keys(self) -> tuple[str, str, str, str, str]:
        """The tracks and their index, in the catalogue functions' KEYS order (a --replace
        import swaps these)."""
        return self.records, self.terms, self.postings, self.prefixes, self.titles


CATALOGUE = CatalogueKeys(*(f"{PREFIX}:{{catalogue}}:cat:{name}"
                            for name in CatalogueKeys._fields))
# the sharded channel on which every change of CATALOGUE's counters is announced: the
# counters' prefix and "changes", as catalogue.lua derives it from a counter's key
CATALOGUE_CHANGES = CATALOGUE.version.rpartition(":")[0] + ":changes"
# where a --replace import builds the new catalogue before it is swapped in
CATALOGUE_STAGED = CatalogueKeys(*(f"{PREFIX}:{{catalogue}}:cat:next:{name}"
                                   for name in CatalogueKeys._fields))
