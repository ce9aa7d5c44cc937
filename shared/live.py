"""Following rooms live: what the SSE stream and the gRPC Watch both run on.

Every write publishes its change on the room's channel in the same atomic step that made
it (``shared/queue.lua``): the new version and queue length, the track it was about, and
the track now at the head's last place. A node subscribes to a room while somebody on it
follows the room (``shared.store.pubsub``) and keeps that room's head (the first
``EVENT_HEAD`` tracks) by applying each change to it, so an event costs Redis the same
whatever the head, and a node reads a room's snapshot once, not once per listener.

``follow(live, room)`` yields a ``Snapshot`` of the room, then each change as an ``Event``
(its ``change.head`` is the head after it), in version order and each once. When the node
may have missed changes (its subscription was lost and made again, a change arrived out of
order, or this listener fell more than MAX_PENDING behind) it yields a fresh ``Snapshot``
instead. With ``idle`` it yields None after that many seconds without a change (SSE sends a
keep-alive then). It ends when the node stops, and a guest's (``guest``) when the guest
is banned. The first snapshot is ready before anything
is yielded, so a caller awaiting the first item gets ``StoreUnavailable`` as an ordinary
error while Redis is down.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from . import keys, store
from .errors import Banned, StoreUnavailable
from .functions import EVENT_HEAD
from .model import Change, NowPlaying, Snapshot, Track
from .replies import Placed, Reply, decode_event
from .stats import LiveStats
from .store.client import Client

log = logging.getLogger("events")

MAX_PENDING = 256  # events a listener may fall behind before it gets a fresh snapshot
FOLLOW_FOR = 30.0  # seconds a room read or written through this node stays followed
MAX_FOLLOWED = 1024  # rooms a node follows at most (beyond: they are read from Redis)
CATCH_UP = 0.05  # seconds a write waits for the changes before its own to reach the view
RECENT = 64  # heads a followed room keeps by version: what a write that was overtaken gets
RETRY_SNAPSHOT = 0.5  # seconds between snapshot attempts while Redis is unreachable
RESYNC = "resync"
END = "end"  # the node is stopping: finish the stream
BANNED = "banned"  # the stream's guest was banned: end it with errors.Banned


class Event:
    """One change of a room, decoded once per node; ``rendered`` keeps what each front
    door made of it (SSE bytes, protobuf), so a thousand listeners cost one encoding."""

    __slots__ = ("room", "change", "cache")

    def __init__(self, room: str, change: Change):
        self.room = room
        self.change = change
        self.cache: dict[str, Any] = {}

    def rendered(self, kind: str, render: Callable[[Event], Any]) -> Any:
        try:
            return self.cache[kind]
        except KeyError:
            value = self.cache[kind] = render(self)
            return value


class View:
    """A room as a node keeps it: the version it is at, its head in play order with the
    places of its tracks, what plays now with its clock, and the room's settings."""

    def __init__(self, snapshot: Snapshot, entries: list[Placed]):
        self.version, self.length = snapshot.version, snapshot.length
        self.now, self.settings = snapshot.now_playing, snapshot.settings
        self.entries = entries
        self._timed(snapshot.time)

    def _timed(self, redis_ms: int) -> None:
        self.time, self.timed_at = redis_ms, time.monotonic()

    def snapshot(self) -> Snapshot:
        """The room as the node has it, at Redis's time now: the time of the last read or
        change plus what this node's monotonic clock says has passed since (an interval,
        never the node's wall clock)."""
        now = self.time + int((time.monotonic() - self.timed_at) * 1000)
        playing = self.now
        if playing is not None:
            playing = NowPlaying(playing.track, dataclasses.replace(playing.clock, now=now))
        return Snapshot(self.version, self.length, playing, self.head(), self.settings, now)

    def head(self) -> list[Track]:
        return [entry.track for entry in self.entries]

    def apply(self, reply: Reply) -> bool:
        """Apply the next change; False if the head can no longer be known from here (the
        caller takes a fresh snapshot)."""
        change = reply.change
        entries = self.entries
        kind = change.kind
        if reply.moved:  # more tracks changed places than the change says
            self.version = change.version
            return False
        if kind == "clear":
            entries.clear()
            self.now = None
        elif reply.placed is not None:  # an add, vote or remove
            entries[:] = [e for e in entries if e.member != reply.placed.member]
            if kind != "remove":
                bisect.insort(entries, reply.placed, key=_order)
        elif kind == "play":
            if change.now is not None and entries and entries[0].track.id == change.now.track.id:
                del entries[0]  # the first track is what plays now (unless a fallback)
            self.now = change.now
        elif kind in ("pause", "resume", "skip"):
            self.now = change.now
        elif kind == "settings" and change.settings is not None:
            self.settings = change.settings
        if change.now is not None:
            self._timed(change.now.clock.now)
        edge = reply.edge
        if edge is not None:
            cut = _order(edge)
            entries[:] = [e for e in entries if _order(e) <= cut]
            if not entries or entries[-1].member != edge.member:
                entries.append(edge)
        self.version, self.length = change.version, change.length
        change.head = self.head()
        return len(entries) == min(self.length, EVENT_HEAD)


def _order(entry: Placed) -> tuple[float, str]:
    return entry.score, entry.member


class Listener:
    __slots__ = ("room", "queue", "guest")

    def __init__(self, room: str, guest: str | None = None):
        self.room = room
        self.guest = guest  # the guest whose stream this is, if a guest's (a ban ends it)
        self.queue: asyncio.Queue[Event | str] = asyncio.Queue()

    def push(self, item: Event | str) -> None:
        if self.queue.qsize() >= MAX_PENDING:
            while not self.queue.empty():
                self.queue.get_nowait()
            item = RESYNC
        self.queue.put_nowait(item)

    async def get(self, timeout: float | None = None) -> Event | str | None:
        """The next Event, RESYNC, END or BANNED; None when ``timeout`` passes first."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None


class Feed:
    """One followed room on this node: its listeners and its view, or the changes that
    arrive while the view is being read."""

    def __init__(self, room: str):
        self.room = room
        self.listeners: set[Listener] = set()
        self.view: View | None = None
        self.waiting: list[Reply] = []
        self.reading: asyncio.Task[View] | None = None
        self.until = 0.0  # followed until then (monotonic) for reads and writes, listeners or not
        self.advanced = asyncio.Event()  # set (and replaced) each time the view moves on
        self.recent: collections.OrderedDict[int, list[Track]] = collections.OrderedDict()

    def moved_on(self, view: View, head: list[Track]) -> None:
        """The view is at a new version with this head: keep it by version, wake who
        waits."""
        self.recent[view.version] = head
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        self.wake()

    def wake(self) -> None:
        self.advanced.set()
        self.advanced = asyncio.Event()


Read = Callable[[str], Awaitable[tuple[Snapshot, list[Placed]]]]


class Live:
    """Every room this node follows. ``read(room)`` takes a room's snapshot with the places
    of its head's tracks, in one atomic read (``Queue.placed_snapshot``). ``stats``
    counts the streams that ``follow`` it and what they are sent."""

    def __init__(self, redis: Client, read: Read, stats: LiveStats | None = None):
        self._read = read
        self.stats = stats or LiveStats()
        self._feeds: dict[str, Feed] = {}
        self._subscriber = store.subscriber(redis, self._message, self._restored)
        self._sweeper: asyncio.Task[None] | None = None
        self._ending = False  # end_all was called: streams opened from now on end at once

    async def listen(self, room: str, guest: str | None = None) -> tuple[Listener, Snapshot]:
        feed = self._feeds.get(room)
        if feed is None:
            feed = self._feeds[room] = Feed(room)
        listener = Listener(room, guest)
        if self._ending:  # a stream opened while the node drains: its client goes elsewhere
            listener.queue.put_nowait(END)
        feed.listeners.add(listener)
        try:
            if not await self._subscriber.subscribe(keys.events_channel(room)):
                raise StoreUnavailable("no subscription")
            return listener, await self.current(feed)
        except BaseException:
            self.leave(listener)
            raise

    def leave(self, listener: Listener) -> None:
        feed = self._feeds.get(listener.room)
        if feed is None:
            return
        feed.listeners.discard(listener)
        if not feed.listeners and feed.until <= time.monotonic():
            self._drop(feed)

    def _drop(self, feed: Feed) -> None:
        if self._feeds.get(feed.room) is not feed:
            return
        del self._feeds[feed.room]
        self._subscriber.unsubscribe(keys.events_channel(feed.room))
        if feed.reading is not None:
            feed.reading.cancel()
        feed.wake()  # a write waiting for this view stops waiting

    # -- the head of a room read or written through this node ------------------------------

    def view(self, room: str) -> View | None:
        """This node's view of the room if it has one, to answer a read or a write's head
        from; either way the room stays followed FOLLOW_FOR seconds more (from now: its
        view is read in the background), MAX_FOLLOWED rooms at most. A view is the room
        at ``view.version``: whoever answers from it checks that version first."""
        feed = self._feeds.get(room)
        if feed is None:
            if len(self._feeds) >= MAX_FOLLOWED:
                return None
            feed = self._feeds[room] = Feed(room)
            feed.until = time.monotonic() + FOLLOW_FOR
            asyncio.ensure_future(self._start(feed))
            if self._sweeper is None:
                self._sweeper = asyncio.ensure_future(self._sweep())
            return None
        feed.until = time.monotonic() + FOLLOW_FOR
        return feed.view

    async def _start(self, feed: Feed) -> None:
        with contextlib.suppress(StoreUnavailable, asyncio.CancelledError):
            if await self._subscriber.subscribe(keys.events_channel(feed.room)):
                await self.current(feed)
            # else: once Redis is back, the subscription is made and the view read
            # (_restored)

    async def _sweep(self) -> None:
        """Stop following the rooms nobody listens to, read or wrote for FOLLOW_FOR s."""
        while True:
            await asyncio.sleep(FOLLOW_FOR / 3)
            now = time.monotonic()
            for feed in [f for f in self._feeds.values() if not f.listeners and f.until <= now]:
                self._drop(feed)

    async def head_after(self, room: str, reply: Reply, head: int) -> list[Track] | None:
        """The first ``head`` tracks after this node's own change ``reply``, from its view
        of the room: the view is brought to the version before the change (the changes
        other nodes made meanwhile are on their way: CATCH_UP seconds at most), then the
        change applied to it and handed to the room's listeners as its event (the copy
        the subscription brings later is then known). A view that is past the change
        already (the subscription was quicker, or other changes overtook this reply)
        answers from the heads it kept by version. None when the view cannot tell: there
        is none, or the change moved other tracks."""
        feed = self._feeds.get(room)
        version = reply.change.version
        if feed is None:
            return None
        deadline = time.monotonic() + CATCH_UP
        while (view := feed.view) is None or view.version < version - 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._feeds.get(room) is not feed:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await feed.advanced.wait()
        if view.version == version - 1:
            if not view.apply(reply):
                self._resync(feed)
                return None
            self._applied(feed, reply)
        kept = feed.recent.get(version)
        return None if kept is None else kept[:head]

    @staticmethod
    def _applied(feed: Feed, reply: Reply) -> None:
        """A change the view took (its head is the change's): its event to every listener
        of the room."""
        assert feed.view is not None
        feed.moved_on(feed.view, reply.change.head)
        event = Event(feed.room, reply.change)
        for listener in feed.listeners:
            listener.push(event)

    @contextlib.asynccontextmanager
    async def listening(self, room: str, guest: str | None = None
                        ) -> AsyncIterator[tuple[Listener, Snapshot]]:
        listener, snapshot = await self.listen(room, guest)
        try:
            yield listener, snapshot
        finally:
            self.leave(listener)

    async def current(self, feed: Feed) -> Snapshot:
        """The room's snapshot from this node's view, read from Redis if there is none."""
        while feed.view is None:
            if feed.reading is None or feed.reading.done():
                feed.reading = asyncio.ensure_future(self._make_view(feed))
            await asyncio.shield(feed.reading)
        return feed.view.snapshot()

    async def fresh(self, room: str) -> Snapshot | None:
        """As ``current``, waiting while Redis is unreachable; None once the node is
        stopping (``end_all``): the stream ends instead."""
        while (feed := self._feeds.get(room)) is not None:
            if self._ending:
                return None
            try:
                return await self.current(feed)
            except StoreUnavailable:
                await asyncio.sleep(RETRY_SNAPSHOT)
        raise StoreUnavailable("nobody follows the room any more")

    async def _make_view(self, feed: Feed) -> View:
        while True:
            feed.waiting = []
            view = View(*await self._read(feed.room))
            # what arrived while the read was on its way, if it is newer
            if all(self._advance(view, reply) for reply in feed.waiting
                   if reply.change.version > view.version):
                feed.waiting = []
                feed.view = view
                feed.moved_on(view, view.head())
                return view

    @staticmethod
    def _advance(view: View, reply: Reply) -> bool:
        return reply.change.version == view.version + 1 and view.apply(reply)

    def end_all(self) -> None:
        """Tell every listener to finish (the node is stopping), and every one that comes
        later as soon as it has its snapshot."""
        self._ending = True
        for feed in self._feeds.values():
            for listener in feed.listeners:
                listener.queue.put_nowait(END)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for feed in self._feeds.values():
            if feed.reading is not None:
                feed.reading.cancel()
        await self._subscriber.close()

    # -- what the subscription delivers ---------------------------------------------------

    def _message(self, channel: str, payload: str) -> None:
        feed = self._feeds.get(keys.channel_room(channel))
        if feed is None:
            return
        reply = decode_event(payload)
        if reply.change.kind == "ban":  # the banned guest's streams end, on every node
            for listener in feed.listeners:
                if listener.guest is not None and listener.guest == reply.change.guest:
                    listener.queue.put_nowait(BANNED)
        view = feed.view
        if view is None:
            feed.waiting.append(reply)
        elif reply.change.version <= view.version:
            return  # seen already
        elif self._advance(view, reply):
            self._applied(feed, reply)
        else:
            log.info("events: room %s is out of step; reading it again", feed.room)
            self._resync(feed)

    def _restored(self, channels: Sequence[str]) -> None:
        for channel in channels:
            feed = self._feeds.get(keys.channel_room(channel))
            if feed is not None:
                self._resync(feed)

    def _resync(self, feed: Feed) -> None:
        """Tell the room's listeners to take a fresh snapshot, and read the room again.
        They are told at once, ahead of any event of the new view: told after the read,
        a listener could be handed the new view's first events before it knew that the
        ones in between were lost."""
        feed.view = None
        for listener in feed.listeners:
            listener.push(RESYNC)

        async def again() -> None:
            with contextlib.suppress(StoreUnavailable):
                await self.fresh(feed.room)

        asyncio.ensure_future(again())


async def follow(live: Live, room: str, idle: float | None = None, guest: str | None = None
                 ) -> AsyncGenerator[Snapshot | Event | None, None]:
    stats = live.stats
    async with live.listening(room, guest) as (listener, snapshot):
        stats.streams += 1
        try:
            version = snapshot.version
            stats.snapshots += 1
            yield snapshot
            while True:
                item = await listener.get(idle)
                if item is None:
                    yield None
                elif item is END:
                    return
                elif item is BANNED:
                    raise Banned()
                elif isinstance(item, Event) and item.change.version == version + 1:
                    version = item.change.version
                    stats.events += 1
                    yield item
                elif item is RESYNC or (isinstance(item, Event) and item.change.version > version):
                    # told to, or a gap (the node's view was read again meanwhile): never
                    # skip silently
                    if (anew := await live.fresh(room)) is None:
                        return
                    version = anew.version
                    stats.snapshots += 1
                    yield anew
        finally:
            stats.streams -= 1
