"""Playback that runs itself: pause, resume, skip votes, a room's settings, and the
schedule that moves rooms with autoplay on when their track ends.

Every advance, manual or automatic, is the same atomic play step in Redis (``advance`` in
``shared/queue.lua``), and the clock is Redis's: a play's end is computed from Redis's
time inside that step, never from a node's.

The schedule: a sorted set (``keys.SCHEDULE``) of rooms by the time they are due, read
against Redis's time. It is a hint, never the truth: whoever finds a room due calls
``advance_due``, which moves the room on only if, in the room's own state, autoplay is
on, nothing holds it (paused) and the current play is over, so any number of nodes may
fire for the same room at once and all but one find nothing to do. After a look, the
entry is set to the room's next due time, or removed, but only if nobody changed it
meanwhile (``settle``). Writes that make a room due enter it at the earlier of its times.
A sweep (one node at a time, every SWEEP_EVERY seconds) puts every room with autoplay on
back in the schedule, so a room whose entry was lost (a node died between its write and
the entry, a Redis restored from an older backup) moves on again within the sweep.

When Redis or every node is down at a due time, the room is due once they are back: it
moves on once (its next track starts then), not once per track it would have played.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from . import functions, keys, settings
from .catalogue import count_play
from .config import Settings
from .errors import AdminTokenMissing, AdminTokenWrong, StoreUnavailable
from .model import Change
from .queue import Queue
from .replies import parse
from .store.client import Client

log = logging.getLogger("playback")

LOOK_EVERY = 0.2  # seconds between looks at the schedule (an advance is this late at most)
SWEEP_EVERY = 5.0
BATCH = 100  # due rooms one look takes at most


class Playback:
    def __init__(self, queue: Queue, redis: Client, config: Settings):
        self.queue, self.redis, self.config = queue, redis, config

    async def skip(self, room: str, voter: str | None, *, idempotency_key: str | None = None,
                   authorization: str | None = None) -> Change:
        """A vote to skip what plays now, once per voter (a guest: their own) per play; at
        the room's skip_threshold the track is skipped and the next one plays. SkippingOff
        when the threshold is 0, NothingPlaying when nothing plays."""
        return await self.queue.write(functions.SKIP, room, 0, idempotency_key, (voter or "",),
                                      self.config.history_limit, play=True,
                                      authorization=authorization)

    async def pause(self, room: str, *, idempotency_key: str | None = None,
                    authorization: str | None = None) -> Change:
        """Stop the clock (a paused room never moves on by itself). NothingPlaying."""
        return await self.queue.write(functions.PAUSE, room, 0, idempotency_key, (), play=True,
                                      authorization=authorization)

    async def resume(self, room: str, *, idempotency_key: str | None = None,
                     authorization: str | None = None) -> Change:
        """Restart the clock where it stopped: the play ends its remaining time from now."""
        return await self.queue.write(functions.RESUME, room, 0, idempotency_key, (),
                                      play=True, authorization=authorization)

    async def ban(self, room: str, guest: str, *, idempotency_key: str | None = None,
                  authorization: str | None = None) -> Change:
        """The host bans a guest: in one step their token stops working, their queued
        tracks and their ballots on queued tracks go, and their streams end."""
        return await self.queue.write(functions.BAN, room, 0, idempotency_key, (guest,),
                                      authorization=authorization)

    async def unban(self, room: str, guest: str, *, idempotency_key: str | None = None,
                    authorization: str | None = None) -> Change:
        return await self.queue.write(functions.UNBAN, room, 0, idempotency_key, (guest,),
                                      authorization=authorization)

    async def settings(self, room: str) -> dict[str, Any]:
        """Every setting of the room, typed, defaults for those never set."""
        flat = await self.redis.execute("HGETALL", keys.room_keys(room).settings)
        return settings.effective(dict(zip(flat[0::2], flat[1::2], strict=True)))

    async def configure(self, room: str, updates: Mapping[str, Any], *,
                        idempotency_key: str | None = None,
                        authorization: str | None = None) -> dict[str, Any]:
        """Change some of the room's settings (InvalidField naming the first bad one);
        returns them all. A change of settings is an event like any other."""
        pairs = settings.check(updates)
        autoplay = dict(pairs).get("autoplay")
        added = False
        if autoplay == "1":  # into the sweep first: never a room with autoplay outside it
            added = bool(await self.redis.execute("SADD", keys.AUTOPLAY, room))
        try:
            change = await self.queue.write(functions.CONFIGURE, room, 0, idempotency_key,
                                            tuple(x for pair in pairs for x in pair),
                                            play=True, authorization=authorization)
        except (AdminTokenMissing, AdminTokenWrong):
            if added:  # refused: a caller without the right may not grow the sweep
                await self.redis.execute("SREM", keys.AUTOPLAY, room)
            raise
        if autoplay == "0":
            await self.redis.execute("SREM", keys.AUTOPLAY, room)
        return settings.effective(change.settings or {})

    async def advance_due(self, room: str) -> tuple[str, int | None]:
        """Move a due room on if its own state says so: ('played', its next due time or
        None), ('later', when), or ('idle', None)."""
        k = keys.some(room, ("queue", "tracks", "version"))
        extra = keys.some(room, functions.PLAYBACK)
        reply = await self.redis.fcall(functions.ADVANCE_DUE, (
            4 + len(extra), *k, keys.idempotency_key(room, ""), *extra, "",
            keys.events_channel(room), self.config.history_limit))
        if reply[0] == "later":
            return "later", int(reply[1])
        if reply[0] == "idle":
            return "idle", None
        played = parse(reply)
        if played.change.now is not None:
            await count_play(self.redis, played.change.now.track.id)
        return "played", played.due


class Schedule:
    """The node's share of moving rooms on: a task that looks at the schedule every
    LOOK_EVERY seconds and advances what is due, and the sweep. ``on_advance(room)`` is
    told of every automatic advance this node made."""

    def __init__(self, playback: Playback, node_id: str,
                 on_advance: Callable[[str], None] | None = None):
        self.playback, self.redis = playback, playback.redis
        self.node_id = node_id
        self.on_advance = on_advance
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="schedule")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # a cancel of this close still propagates

    async def _run(self) -> None:
        await asyncio.sleep(random.uniform(0, LOOK_EVERY))  # nodes look at different times
        swept = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.look()
                if loop.time() - swept > SWEEP_EVERY:
                    swept = loop.time()
                    await self.sweep()
            except StoreUnavailable:
                pass  # Redis is away: what is due then is due when it is back
            except Exception:  # never let one bad room stop the schedule
                log.exception("schedule: a look failed")
            await asyncio.sleep(LOOK_EVERY)

    async def look(self) -> int:
        """Advance every room that is due now; how many moved on."""
        due = await self.redis.fcall(functions.DUE, (1, keys.SCHEDULE, BATCH), read_only=True)
        moved = 0
        for room, score in zip(due[0::2], due[1::2], strict=True):
            outcome, when = await self.playback.advance_due(room)
            if outcome == "played":
                moved += 1
                if self.on_advance is not None:
                    self.on_advance(room)
            await self.redis.fcall(functions.SETTLE, (1, keys.SCHEDULE, room, score,
                                                      "" if when is None else when))
        return moved

    async def sweep(self) -> None:
        """One node at a time: every room with autoplay on back in the schedule (at once,
        unless it is there already), so that a lost entry is found again."""
        if not await self.redis.execute("SET", keys.SWEEPER, self.node_id, "NX", "PX",
                                        int(SWEEP_EVERY * 1000)):
            return
        cursor = "0"
        while True:
            cursor, rooms = await self.redis.execute("SSCAN", keys.AUTOPLAY, cursor,
                                                     "COUNT", 500)
            if rooms:
                await self.redis.execute("ZADD", keys.SCHEDULE, "NX",
                                         *(x for room in rooms for x in (0, room)))
            if cursor == "0":
                return
