"""The catalogue: the tracks a deployment's guests search as they type, one catalogue for
every room, kept in Redis under the hash tag ``{catalogue}`` (``shared.keys.CATALOGUE``).

A search is one read-only function call (``catalogue.lua``): it finds the entries of the
query's rarest word (a sorted set of the distinct words, so a word prefix is one
lexicographic range, and each word's posting list of ids; a count per word prefix says
which query word is the rarest), keeps those whose other words are prefixes of the track's
words too, and ranks them: exact title, title prefix, the rest, ties by times played. Its
work is bounded (``SCAN`` entries at most), so a search never holds Redis for long,
whatever the query. A node answers a query that narrows one it answered completely (fewer
hits than asked, every entry read) from that answer, ranked the same way.
An import (``python -m shared.catalogue import``, ``shared.catalogue.importer``)
writes a batch of tracks per call; ``--replace`` builds a new catalogue beside the old one
and swaps it in with one call, so a search sees the old catalogue or the new, never a mix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from .. import functions, keys, store, validation
from ..errors import InvalidField, StoreUnavailable, TrackNotFound
from ..model import SEP
from ..store.client import Client
from ..validation import NewTrack
from .text import distinct, words

PUT, SEARCH, SWAP, LOCK, PLAYED = map(functions.name, (
    "catalogue_put", "catalogue_search", "catalogue_swap", "catalogue_lock",
    "catalogue_played"))
SCAN = 200  # entries of one index range a search looks at, at most (see catalogue.lua)
TOP = 50  # most played tracks a broad search considers too
FRESH = 5.0  # seconds a node answers a search from its cache after a play was counted
KEEP = 300.0  # seconds it does while nothing changed (a bound, should a play go uncounted)
TRUST = 1.0  # seconds a following node trusts the counters it read (Catalogue.follow)
CACHED = 8192  # searches a node keeps (with their rows and renderings: about 50 MB)
RENDERED = 4096  # bytes: an answer's rendering up to this long is kept with it (Found)
MAX_EXTRA = 40  # extra columns a track keeps (library exports have 20-30)
MAX_EXTRA_TEXT = 2048  # characters of one extra value (a location: a long path or URL)
CORE = frozenset({"id", "title", "artist", "album", "duration"})
WORD = "\x1d"  # before each word of a record: in no text (control characters) nor JSON
# an older release's index (one sorted-set entry per word and track): its presence means the
# stored tracks are to be indexed anew (Catalogue.upgrade)
LEGACY_INDEX = f"{keys.PREFIX}:{{catalogue}}:cat:words"
UPGRADE_BATCH = 250  # tracks per call while upgrading (as an import's batch)
UPGRADE_LOCK_MS = 60_000  # the import lock while upgrading, renewed with every batch

log = logging.getLogger("catalogue")


class Entry(NamedTuple):
    """A checked catalogue track, ready to store."""

    id: str
    title: str
    artist: str
    album: str
    duration: int
    extra: Mapping[str, str]

    def record(self) -> str:
        """The stored form: the fields, then the normalised words of the title (in order)
        and those of the artist and album that the title lacks, then the extra columns."""
        title_words = words(self.title)
        seen = set(title_words)
        other = [w for w in distinct(self.artist, self.album) if w not in seen]
        extra = json.dumps(dict(self.extra), ensure_ascii=False,
                           separators=(",", ":")) if self.extra else ""
        return SEP.join((self.title, self.artist, self.album, str(self.duration),
                         "".join(WORD + w for w in title_words),
                         "".join(WORD + w for w in other), extra))


@dataclass(slots=True)
class CatalogueTrack:
    """A catalogue track as read. Decoded tracks are shared (see ``decode``): never change
    one."""

    id: str
    title: str
    artist: str
    album: str
    duration: int
    plays: int
    extra: dict[str, str]


# A track as Redis returns it: (id, stored record, times played). A search's answer is
# kept as Redis returned it, not decoded: a front door renders what it needs straight from
# the record (REST: ``rest.catalogue.row_bytes``), and a track is decoded only where one
# is asked for (``Found.tracks``).
Row = tuple[str, str, int]


@lru_cache(maxsize=8192)
def indexed(record: str) -> tuple[str, tuple[str, ...]]:
    """A record's title words joined by spaces, and all its words (title's first)."""
    title, other = record.split(SEP)[4:6]
    return " ".join(title.split(WORD)[1:]), tuple(title.split(WORD)[1:] + other.split(WORD)[1:])


@lru_cache(maxsize=8192)
def decode(track_id: str, record: str, plays: int = 0) -> CatalogueTrack:
    title, artist, album, duration, _, _, extra = record.split(SEP)
    return CatalogueTrack(track_id, title, artist, album, int(duration), plays,
                          orjson.loads(extra) if extra else {})


def stored(track_id: str, record: str) -> Entry:
    """A stored track as an Entry again (its record's fields were checked when imported;
    the word fields are not read, so an older release's record works too)."""
    title, artist, album, duration, _, _, extra = record.split(SEP)
    return Entry(track_id, title, artist, album, int(duration),
                 json.loads(extra) if extra else {})


def entry(track_id: Any, title: Any, artist: Any, album: Any = None, duration: Any = None,
          extra: Mapping[str, Any] | None = None) -> Entry:
    """A catalogue track from untrusted values (an import's row): the queue's rules for id,
    title, artist and duration, an album of at most MAX_TEXT characters (or none), and
    extra columns whose values are text or numbers. InvalidField names what is wrong."""
    checked_extra: dict[str, str] = {}
    for name, value in (extra or {}).items():
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidField(name, "must be text or a number")
        checked_extra[name] = validation.text(name, str(value), MAX_EXTRA_TEXT)
    if len(checked_extra) > MAX_EXTRA:
        raise InvalidField("extra", f"at most {MAX_EXTRA} extra columns are kept, "
                                    f"got {len(checked_extra)}")
    return Entry(validation.track_id(track_id), validation.text("title", title),
                 validation.text("artist", artist), optional_text("album", album),
                 validation.duration(duration), checked_extra)


def optional_text(name: str, value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return validation.text(name, value)


async def count_play(redis: Client, track_id: str) -> None:
    """Count a play of ``track_id`` if it is a catalogue track (searches rank by it): a
    step of its own after the play (the catalogue lives in another slot than the room),
    so it can never fail or undo the play; a count lost to Redis going away is lost."""
    k = keys.CATALOGUE
    try:
        await redis.fcall(PLAYED, (3, k.records, k.plays, k.played, track_id))
    except StoreUnavailable:
        pass


class Found(NamedTuple):
    """An answer, best first. Its tracks are one flat list of Redis's reply (id, record,
    plays, id, ...), not a tuple per track: a kept answer is then a handful of objects for
    the garbage collector to walk, not dozens (a young-generation collection walks every
    object made since the last one, about 0.7 us each in a node's scattered heap here, so
    fewer objects per answer mean fewer and shorter pauses)."""

    flat: list[Any]
    entries: int  # index entries of the query's rarest word: more than SCAN, a broad query
    cache: dict[str, bytes]  # (``rendered``'s) never change a Found's rows

    @property
    def rows(self) -> list[Row]:
        flat = self.flat
        return list(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))

    @property
    def tracks(self) -> list[CatalogueTrack]:
        return [decode(*row) for row in self.rows]

    def rendered(self, kind: str, render: Callable[[Found], bytes]) -> bytes:
        """What a front door makes of this answer, kept with it when it is at most
        RENDERED bytes: a kept answer is rendered once, and a node's cache grows by at most
        CACHED x RENDERED (as ``shared.live.Event.rendered``, bounded)."""
        value = self.cache.get(kind)
        if value is None:
            value = render(self)
            if len(value) <= RENDERED:
                self.cache[kind] = value
        return value


class Cached(NamedTuple):
    version: int  # the catalogue's version when read
    played: int  # and its plays counter (keys.CATALOGUE.played)
    read_at: float
    found: Found
    complete: bool  # it holds every match (``complete``), so a narrower query is answered
    # from it (``narrow``)


Ranked = tuple[tuple[str, ...], Row]  # narrow's: (the order in its tier, the row)


def complete(found: Found, limit: int) -> bool:
    """Whether an answer holds every match: fewer than asked, and the rarest word's
    entries all read (catalogue.lua reads up to SCAN of them)."""
    return len(found.flat) < 3 * limit and found.entries <= SCAN


def narrow(cached: Cached, typed: Sequence[str], counts: Sequence[int], limit: int) -> Cached:
    """The answer to ``typed`` from a complete answer to a query it narrows (each of that
    query's words a prefix of one of these), ranked as catalogue.lua ranks: ``counts`` are
    the entries of each distinct word of ``typed``, whose first rarest word orders the
    rest (tier 3) as its index range does. Every match of ``typed`` matched the other, so
    this answer is complete too."""
    distinct = list(dict.fromkeys(typed))
    fewest = min(counts)
    if fewest == 0:
        return cached._replace(found=Found([], 0, {}))
    rarest = distinct[counts.index(fewest)]
    phrase = " ".join(typed)
    ranked: dict[int, list[Ranked]] = {1: [], 2: [], 3: []}
    for row in cached.found.rows:
        title, have = indexed(row[1])
        if not all(any(w.startswith(q) for w in have) for q in distinct):
            continue
        if title == phrase or title.startswith(phrase):
            order: tuple[str, ...] = (f"{title}\0{row[0]}",)  # the titles index
            ranked[1 if title == phrase else 2].append((order, row))
        else:
            order = (min(w for w in have if w.startswith(rarest)), row[0])
            ranked[3].append((order, row))
    best: list[Ranked] = []
    for tier in (1, 2, 3):
        rows = ranked[tier]
        best += sorted((r for r in rows if r[1][2]), key=lambda r: (-r[1][2], r[0]))
        best += sorted((r for r in rows if not r[1][2]), key=lambda r: r[0])
    best = best[:limit]
    return cached._replace(found=Found([x for r in best for x in r[1]], fewest, {}))


class Catalogue:
    """The catalogue's operations, over the node's Redis connection.

    Searches are cached by the node. A cached answer is used while the catalogue's version
    is the one it was read at (so an import shows at once) and, for times played, while no
    play was counted since it was read, or for its first FRESH seconds (so a play shows
    within FRESH seconds); KEEP seconds at most. One MGET of both counters checks it, or,
    on a node that follows the catalogue's changes (``follow``), the counters it last read.
    People type the same few letters first, and those broad searches cost Redis the most."""

    def __init__(self, redis: Client, clock: Callable[[], float] = time.monotonic,
                 cached: int = CACHED):
        self._redis = redis
        self._clock = clock
        self._size = cached
        self._cache: OrderedDict[tuple[str, int], Cached] = OrderedDict()
        self._subscriber: store.PubSub | None = None
        self._following: asyncio.Future[bool] | None = None
        self._known: tuple[Sequence[str | None], float] | None = None  # (counters, read at)
        self._heard = 0  # changes announced (or perhaps missed) since the node started

    # -- the counters -------------------------------------------------------------------

    def follow(self) -> None:
        """Follow the catalogue's changes: every function that moves its counters announces
        it on ``keys.CATALOGUE_CHANGES``, so a kept answer is checked against the counters
        this node last read (by any search or check) for up to TRUST seconds, instead of
        one MGET per search; an announcement (or a subscription that had to be restored:
        one may have been missed) drops them, so the next check reads them again. A change
        shows as soon as its announcement arrives, and within TRUST seconds should one go
        astray. A kept answer then costs no round trip, and never waits in Redis behind
        the searches that do (bench.catalogue: 0.50 of the queue read's rate before,
        0.55-0.60 after)."""
        self._subscriber = store.subscriber(self._redis, self._announced, self._restored)
        self._following = asyncio.ensure_future(
            self._subscriber.subscribe(keys.CATALOGUE_CHANGES))
        self._following.add_done_callback(lambda _: self._announced("", ""))

    async def following(self) -> bool:
        """Once ``follow`` subscribed: True if Redis confirmed it (False: Redis was not
        reached in time; the subscription is made when it is)."""
        return self._following is not None and await asyncio.shield(self._following)

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
        if self._subscriber is not None:
            await self._subscriber.close()

    def _announced(self, channel: str, payload: str) -> None:
        self._heard += 1
        self._known = None

    def _restored(self, channels: Sequence[str]) -> None:
        self._announced("", "")

    def _learn(self, counters: Sequence[str | None], heard: int, sent_at: float) -> None:
        """Keep counters read by a call sent at ``sent_at``, when nothing was announced
        since it was sent (an announcement that overtook its reply would be undone)."""
        if self._subscriber is not None and heard == self._heard:
            self._known = (counters, sent_at)

    async def _counters(self) -> Sequence[str | None]:
        """The catalogue's version and played counters, as they stand (see ``follow``)."""
        now = self._clock()
        if self._known is not None and now - self._known[1] < TRUST:
            return self._known[0]
        heard = self._heard
        k = keys.CATALOGUE
        counters: list[str | None] = await self._redis.execute("MGET", k.version, k.played)
        self._learn(counters, heard, now)
        return counters

    async def search(self, query: str, limit: int = validation.DEFAULT_RESULTS) -> Found:
        """Tracks whose title, artist or album has every word of ``query`` as a word prefix,
        best first (see the module docstring): one read-only call, at most SCAN entries
        ranked. InvalidField("q") for a query without letters or digits, or with more than
        MAX_QUERY_WORDS words."""
        typed = words(validation.search_query(query))
        if not typed:
            raise InvalidField("q", "must contain a letter or a digit")
        if len(typed) > validation.MAX_QUERY_WORDS:
            raise InvalidField("q", f"must have at most {validation.MAX_QUERY_WORDS} words, "
                                    f"got {len(typed)}")
        validation.bounded("limit", limit, 1, validation.MAX_RESULTS)
        k = keys.CATALOGUE
        key = " ".join(typed), limit
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            state = await self._counters()
            if self._valid(cached, state, self._clock()):  # (its age when the check is back)
                return self._keep(key, cached)
        elif (wider := self._wider(key)) is not None:
            state, counts = await self._redis.transaction(
                [("MGET", k.version, k.played), ("HMGET", k.prefixes, *dict.fromkeys(typed))])
            if self._valid(wider, state, self._clock()):
                return self._keep(key, narrow(wider, typed, [int(n or 0) for n in counts],
                                              limit))
        heard = self._heard
        reply = await self._redis.fcall(
            SEARCH, (8, *k.index_keys, k.plays, k.version, k.played, limit, SCAN, TOP,
                     key[0], *dict.fromkeys(typed)), read_only=True)
        self._learn(reply[:2], heard, now)
        found = Found(reply[2:-1], int(reply[-1]), {})
        return self._keep(key, Cached(int(reply[0]), int(reply[1]), now, found,
                                      complete(found, limit)))

    @staticmethod
    def _valid(cached: Cached, state: Sequence[str | None], now: float) -> bool:
        """Whether ``cached`` still answers, given the catalogue's counters as read now."""
        version, played = (int(n or 0) for n in state)
        age = now - cached.read_at
        return version == cached.version and age < KEEP \
            and (played == cached.played or age < FRESH)

    def _wider(self, key: tuple[str, int]) -> Cached | None:
        """A complete answer to a query this one narrows: the phrase cut short, as typing
        it went (\"fever m\" for \"fever mo\"), so each of its words is a prefix of one of
        this one's."""
        phrase, limit = key
        for end in range(len(phrase) - 1, 0, -1):
            cached = self._cache.get((phrase[:end].rstrip(), limit))
            if cached is not None and cached.complete:
                return cached
        return None

    def _keep(self, key: tuple[str, int], cached: Cached) -> Found:
        """Keep ``cached`` as the newest answer (again, if other searches evicted it while
        this one waited for Redis)."""
        self._cache[key] = cached
        self._cache.move_to_end(key)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return cached.found

    async def track(self, track_id: str) -> CatalogueTrack:
        """One track, with its times played. TrackNotFound if it is not in the catalogue."""
        return decode(*await self.row(track_id))

    async def row(self, track_id: str) -> Row:
        """``track``, as stored (see Row)."""
        k = keys.CATALOGUE
        record, plays = await self._redis.transaction(
            [("HGET", k.records, track_id), ("ZSCORE", k.plays, track_id)])
        if record is None:
            raise TrackNotFound(track_id, "in the catalogue")
        return track_id, record, int(float(plays or 0))

    async def new_track(self, track_id: str, duration: Any = None) -> NewTrack:
        """What adding a catalogue track by its id queues: its title, artist and duration
        (``duration`` instead, when given). TrackNotFound, saying how to add a track that is
        not in the catalogue, if it is not."""
        try:
            found = await self.track(track_id)
        except TrackNotFound:
            raise TrackNotFound(track_id, "in the catalogue (to add a track that is not, "
                                          "give its title and artist too)") from None
        given = found.duration if duration is None else validation.duration(duration)
        return NewTrack(found.id, found.title, found.artist, given)

    # -- what the importer uses -------------------------------------------------------

    async def put(self, entries: Sequence[Entry], staged: bool = False) -> tuple[int, int, int]:
        """Add or update tracks in place, in one atomic step: (added, updated, unchanged).
        ``staged``: into the catalogue a ``swap`` will make current."""
        k = keys.CATALOGUE_STAGED if staged else keys.CATALOGUE
        args = [x for e in entries for x in (e.id, e.record())]
        added, updated, same = await self._redis.fcall(
            PUT, (6, *k.index_keys, k.version, *args))
        return int(added), int(updated), int(same)

    async def upgrade(self, token: str | None = None) -> bool:
        """Index the stored tracks anew if the index is an older release's (LEGACY_INDEX is
        there): every track is put into a staged catalogue, swapped in with one call (a
        search sees the old catalogue or the new), then the old index is dropped. Holds
        the import lock (``token``: the caller's, if it holds it already). False if there
        was nothing to do or another import holds the lock; nodes call it at start, so
        the first one up after an upgrade does it, once."""
        if not await self._redis.execute("EXISTS", LEGACY_INDEX):
            return False
        held = token is not None
        token = token or uuid.uuid4().hex
        if not held and not await self.lock(token, UPGRADE_LOCK_MS):
            return False
        try:
            await self.discard_staged()
            cursor, indexed_anew = "0", 0
            while True:
                cursor, flat = await self._redis.execute(
                    "HSCAN", keys.CATALOGUE.records, cursor, "COUNT", UPGRADE_BATCH)
                batch = [stored(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
                if batch:
                    if not await self.lock(token, UPGRADE_LOCK_MS):
                        raise RuntimeError("the catalogue upgrade lost its lock")
                    await self.put(batch, staged=True)
                    indexed_anew += len(batch)
                if cursor == "0":
                    break
            if indexed_anew:
                await self.swap()
            await self._redis.execute("UNLINK", LEGACY_INDEX)
            log.info("catalogue: %d tracks indexed anew (upgraded from the older index)",
                     indexed_anew)
        finally:
            if not held:
                await self.lock(token, 0)
        return True

    def upgrade_soon(self) -> asyncio.Task[bool]:
        """``upgrade`` in the background (a node's start): a failure is logged, and the
        next start tries again."""
        async def attempt() -> bool:
            try:
                return await self.upgrade()
            except (StoreUnavailable, RuntimeError) as exc:
                log.warning("catalogue: upgrade not done (%s); the next start tries again", exc)
                return False
        return asyncio.ensure_future(attempt())

    async def discard_staged(self) -> None:
        k = keys.CATALOGUE_STAGED
        await self._redis.execute("UNLINK", *k.index_keys)

    async def swap(self) -> int:
        """Make the staged catalogue the catalogue, in one step; its number of tracks."""
        k, s = keys.CATALOGUE, keys.CATALOGUE_STAGED
        return int(await self._redis.fcall(
            SWAP, (11, *k.index_keys, *s.index_keys, k.version)))

    async def clear(self) -> None:
        """Empty the catalogue (times played are kept, by id, for tracks that come back)."""
        k = keys.CATALOGUE
        await self._redis.transaction([("UNLINK", *k.index_keys), ("INCR", k.version),
                                       ("SPUBLISH", keys.CATALOGUE_CHANGES, "1")])

    async def lock(self, token: str, ms: int) -> bool:
        """Hold the import lock for ``ms`` more (0: let it go); False if another holds it."""
        return bool(await self._redis.fcall(LOCK, (1, keys.CATALOGUE.lock, token, ms)))

    async def size(self) -> int:
        return int(await self._redis.execute("HLEN", keys.CATALOGUE.records))
