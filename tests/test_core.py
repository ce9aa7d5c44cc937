"""The shared core against a real redis-server of its own (no mocks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import unittest

from shared import errors, functions, keys, store
from shared.config import Settings
from shared.live import END, Event, Live, follow
from shared.playback import Playback
from shared.queue import Queue
from shared.store import pubsub
from shared.validation import NewTrack

from .cluster import Cluster, free_port
from .support import EXTERNAL

redis_cluster: Cluster | None = None


def setUpModule() -> None:
    global redis_cluster
    if EXTERNAL:
        raise unittest.SkipTest("the core tests start a redis-server of their own")
    redis_cluster = Cluster(rest=0, nginx=False).start()


def tearDownModule() -> None:
    if redis_cluster is not None:
        redis_cluster.stop()


def song(track_id: str, title: str = "Title", artist: str = "Artist", duration: int = 180):
    return NewTrack(track_id, title, artist, duration)


class CoreTest(unittest.IsolatedAsyncioTestCase):
    max_queue = 10_000
    history_limit = 1000

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().set_debug(False)  # unittest's debug mode logs slow steps
        self.settings = Settings(redis_url=redis_cluster.redis_url, max_queue=self.max_queue,
                                 history_limit=self.history_limit)
        self.redis = store.connect(self.settings)
        await self.redis.execute("FLUSHDB")
        self.q = Queue(self.redis, self.settings)
        self.room = "r1"

    async def asyncTearDown(self) -> None:
        await self.redis.aclose()

    async def order(self, room: str | None = None) -> list[tuple[str, int]]:
        return [(t.id, t.votes) for t in (await self.q.page(room or self.room)).tracks]

    async def keys(self, pattern: str) -> list[str]:
        return await self.redis.execute("KEYS", pattern)


class QueueRules(CoreTest):
    async def test_add_returns_the_track_the_head_and_a_new_version(self):
        change = await self.q.add(self.room, song("a", "Hey Jude", "The Beatles", 431))
        self.assertEqual(change.kind, "add")
        self.assertEqual((change.track.id, change.track.title, change.track.artist,
                          change.track.duration, change.track.votes),
                         ("a", "Hey Jude", "The Beatles", 431, 0))
        self.assertAlmostEqual(change.track.added_at / 1000, time.time(), delta=5)
        self.assertEqual([t.id for t in change.head], ["a"])
        self.assertEqual((change.version, change.length), (1, 1))

    async def test_order_is_votes_then_first_added(self):
        for track_id in "abcd":
            await self.q.add(self.room, song(track_id))
        await self.q.vote(self.room, "c", True)
        await self.q.vote(self.room, "d", True)
        await self.q.vote(self.room, "a", False)
        self.assertEqual(await self.order(), [("c", 1), ("d", 1), ("b", 0), ("a", -1)])

    async def test_head_size_is_respected(self):
        for i in range(30):
            change = await self.q.add(self.room, song(f"t{i}"), head=7)
        self.assertEqual([t.id for t in change.head], [f"t{i}" for i in range(7)])
        self.assertEqual(len((await self.q.add(self.room, song("x"))).head), 25)
        self.assertEqual((await self.q.add(self.room, song("y"), head=0)).head, [])

    async def test_a_queued_id_is_a_conflict_a_played_id_may_return(self):
        await self.q.add(self.room, song("a"))
        with self.assertRaises(errors.DuplicateTrack):
            await self.q.add(self.room, song("a", "Other"))
        self.assertEqual((await self.q.metadata(self.room, "a")).title, "Title")
        await self.q.play_next(self.room)
        again = await self.q.add(self.room, song("a", "Again"))
        self.assertEqual((again.track.title, again.track.votes), ("Again", 0))

    async def test_anonymous_votes_each_count(self):
        await self.q.add(self.room, song("a"))
        for _ in range(5):
            await self.q.vote(self.room, "a", True)
        self.assertEqual((await self.q.vote(self.room, "a", False)).track.votes, 4)

    async def test_a_voter_holds_one_ballot_per_track(self):
        await self.q.add(self.room, song("a"))
        self.assertEqual((await self.q.vote(self.room, "a", True, "ann")).track.votes, 1)
        repeat = await self.q.vote(self.room, "a", True, "ann")
        self.assertEqual(repeat.track.votes, 1)
        # flip: -2
        self.assertEqual((await self.q.vote(self.room, "a", False, "ann")).track.votes, -1)
        self.assertEqual((await self.q.vote(self.room, "a", False, "bob")).track.votes, -2)
        self.assertEqual((await self.q.vote(self.room, "a", True)).track.votes, -1)  # anonymous too

    async def test_a_repeated_ballot_changes_no_version(self):
        await self.q.add(self.room, song("a"))
        first = await self.q.vote(self.room, "a", True, "ann")
        repeat = await self.q.vote(self.room, "a", True, "ann")
        self.assertEqual(repeat.version, first.version)
        self.assertEqual(await self.q.version(self.room), first.version)

    async def test_ballots_belong_to_one_stay_in_the_queue(self):
        await self.q.add(self.room, song("a"))
        await self.q.vote(self.room, "a", True, "ann")
        await self.q.play_next(self.room)
        await self.q.add(self.room, song("a"))  # queued again: a new track, fresh ballots
        self.assertEqual((await self.q.vote(self.room, "a", True, "ann")).track.votes, 1)
        await self.q.remove(self.room, "a")
        k = keys.room_keys(self.room)
        self.assertEqual(await self.redis.execute("EXISTS", k.ballots, k.voted), 0)

    async def test_votes_need_a_queued_track(self):
        with self.assertRaises(errors.TrackNotFound):
            await self.q.vote(self.room, "ghost", True)
        await self.q.add(self.room, song("a"))
        await self.q.play_next(self.room)
        with self.assertRaises(errors.TrackNotFound):
            await self.q.vote(self.room, "a", True)

    async def test_play_next_takes_the_first_into_now_playing_and_history(self):
        await self.q.add(self.room, song("a"))
        await self.q.add(self.room, song("b"))
        await self.q.vote(self.room, "b", True)
        change = await self.q.play_next(self.room)
        self.assertEqual((change.track.id, change.track.votes), ("b", 1))
        self.assertIsNotNone(change.track.played_at)
        self.assertEqual((await self.q.now_playing(self.room))[0].track, change.track)
        self.assertEqual(await self.q.history(self.room), [change.track])
        self.assertEqual(await self.order(), [("a", 0)])
        await self.q.play_next(self.room)
        self.assertEqual([t.id for t in await self.q.history(self.room)], ["a", "b"])
        with self.assertRaises(errors.QueueEmpty):
            await self.q.play_next(self.room)
        self.assertEqual((await self.q.now_playing(self.room))[0].track.id, "a")

    async def test_a_fallback_loop_keeps_its_order_when_plays_share_a_millisecond(self):
        """Past the history's oldest 100 entries the fallback takes the least recent of
        every track's newest play: by play id, since plays sent back to back on one
        connection run within the same millisecond (ties in played_at)."""
        await Playback(self.q, self.redis, self.settings).configure(
            self.room, {"fallback": "history"})
        for track_id in "abc":
            await self.q.add(self.room, song(track_id))
        await asyncio.gather(*(self.q.play_next(self.room) for _ in range(200)))
        played = await self.q.history(self.room)
        self.assertEqual(len(played), 200)
        at = [t.played_at for t in played]
        self.assertGreater(sum(a == b for a, b in zip(at, at[1:], strict=False)), 10,
                           "the plays did not share milliseconds: nothing was checked")
        ids = [t.id for t in reversed(played)]
        self.assertEqual(ids[:3], ["a", "b", "c"])
        for i in range(3, len(ids)):
            self.assertEqual(ids[i], ids[i - 3], f"play {i + 1} broke the cycle")

    async def test_remove(self):
        await self.q.add(self.room, song("a"))
        await self.q.add(self.room, song("b"))
        await self.q.vote(self.room, "a", True)
        removed = await self.q.remove(self.room, "a")
        self.assertEqual((removed.track.id, removed.track.votes, removed.length), ("a", 1, 1))
        self.assertEqual(await self.order(), [("b", 0)])
        with self.assertRaises(errors.TrackNotFound):
            await self.q.remove(self.room, "a")

    async def test_metadata_of_queued_playing_and_played_tracks(self):
        await self.q.add(self.room, song("a", "First"))
        await self.q.add(self.room, song("b", "Second"))
        await self.q.vote(self.room, "b", True)
        self.assertEqual((await self.q.metadata(self.room, "b")).votes, 1)
        await self.q.play_next(self.room)  # b now playing
        await self.q.play_next(self.room)  # a now playing, b in history only
        self.assertEqual((await self.q.metadata(self.room, "a")).title, "First")
        self.assertIsNotNone((await self.q.metadata(self.room, "b")).played_at)
        with self.assertRaises(errors.TrackNotFound):
            await self.q.metadata(self.room, "ghost")

    async def test_pages(self):
        for i in range(10):
            await self.q.add(self.room, song(f"t{i}"))
        page = await self.q.page(self.room, 3, 4)
        self.assertEqual([t.id for t in page.tracks], ["t3", "t4", "t5", "t6"])
        self.assertEqual(page.length, 10)
        self.assertEqual((await self.q.page(self.room, 20, 5)).tracks, [])
        for _ in range(5):
            await self.q.play_next(self.room)
        self.assertEqual([t.id for t in await self.q.history(self.room, 1, 2)], ["t3", "t2"])

    async def test_clear_empties_the_room_and_keeps_its_counters(self):
        await self.q.add(self.room, song("a"))
        await self.q.add(self.room, song("b"))
        await self.q.vote(self.room, "b", True, "ann")
        await self.q.play_next(self.room)
        await self.q.add(self.room, song("c"))
        await self.q.vote(self.room, "c", True, "ann")
        before = await self.q.version(self.room)
        change = await self.q.clear(self.room)
        self.assertEqual((change.version, change.length), (before + 1, 0))
        self.assertEqual((await self.q.page(self.room)).tracks, [])
        self.assertIsNone((await self.q.now_playing(self.room))[0])
        self.assertEqual(await self.q.history(self.room), [])
        k = keys.room_keys(self.room)
        self.assertEqual(sorted(await self.keys(f"mq:{{{self.room}}}:*")),
                         sorted([k.plays, k.seq, k.version]))  # play ids keep growing

    async def test_rooms_are_independent(self):
        await self.q.add("r1", song("a"))
        await self.q.add("r2", song("a"))
        await self.q.vote("r2", "a", True)
        self.assertEqual(await self.order("r1"), [("a", 0)])
        self.assertEqual(await self.order("r2"), [("a", 1)])
        await self.q.clear("r2")
        self.assertEqual(await self.order("r1"), [("a", 0)])

    async def test_every_key_of_a_room_carries_its_hash_tag(self):
        for name in keys.room_keys("party42"):
            self.assertIn("{party42}", name)
        self.assertIn("{party42}", keys.idempotency_key("party42", "k"))
        await self.q.add("party42", song("a"))
        await self.q.vote("party42", "a", True, "ann")
        await self.q.play_next("party42", idempotency_key="k1")
        for name in await self.keys("*"):
            self.assertTrue(name.startswith("mq:{party42}:"), name)


class Versions(CoreTest):
    async def test_each_change_bumps_the_version_once(self):
        versions = [(await self.q.add(self.room, song("a"))).version,
                    (await self.q.add(self.room, song("b"))).version,
                    (await self.q.vote(self.room, "a", True)).version,
                    (await self.q.remove(self.room, "b")).version,
                    (await self.q.play_next(self.room)).version,
                    (await self.q.clear(self.room)).version]
        self.assertEqual(versions, [1, 2, 3, 4, 5, 6])
        self.assertEqual((await self.q.page(self.room)).version, 6)

    async def test_refusals_change_nothing(self):
        await self.q.add(self.room, song("a"))
        for bad in (lambda: self.q.add(self.room, song("a")),
                    lambda: self.q.vote(self.room, "x", True),
                    lambda: self.q.remove(self.room, "x")):
            with self.assertRaises(errors.QueueError):
                await bad()
        self.assertEqual(await self.q.version(self.room), 1)

    async def test_changes_are_published_with_the_new_state(self):
        live = Live(self.redis, self.q.placed_snapshot)
        try:
            async with live.listening(self.room) as (listener, snapshot):
                self.assertEqual((snapshot.version, snapshot.head), (0, []))
                await self.q.add(self.room, song("a"))
                await self.q.vote(self.room, "a", True, head=0)
                events = [await listener.get(5), await listener.get(5)]
        finally:
            await live.close()
        self.assertTrue(all(isinstance(e, Event) for e in events), events)
        changes = [e.change for e in events]
        self.assertEqual([(c.kind, c.version, c.track.id) for c in changes],
                         [("add", 1, "a"), ("vote", 2, "a")])
        # Events carry the head even when the write asked for none.
        self.assertEqual([(t.id, t.votes) for t in changes[1].head], [("a", 1)])


class LiveHeads(CoreTest):
    async def test_a_followed_room_keeps_its_head_through_every_kind_of_change(self):
        """A node keeps a followed room's head from the changes alone (events carry no
        head): after each of 400 seeded changes to a queue of 20-60 tracks, the head of
        the event is exactly the queue's first 25 as Redis has them."""
        import random

        rng = random.Random(7)
        live = Live(self.redis, self.q.placed_snapshot)
        for i in range(40):
            await self.q.add(self.room, song(f"t{i}"))
        added = 40
        try:
            async with live.listening(self.room) as (listener, snapshot):
                page = await self.q.page(self.room, 0, 25)
                self.assertEqual(snapshot.head, page.tracks)
                for step in range(400):
                    queued = [t.id for t in (await self.q.page(self.room)).tracks]
                    roll = rng.random()
                    if roll < 0.25 or len(queued) < 20:
                        added += 1
                        await self.q.add(self.room, song(f"t{added}"), head=0)
                    elif roll < 0.55:
                        await self.q.vote(self.room, rng.choice(queued), rng.random() < 0.6,
                                          rng.choice([None, "ann", "bob"]), head=0)
                    elif roll < 0.75:
                        await self.q.remove(self.room, rng.choice(queued), head=0)
                    elif roll < 0.995:
                        await self.q.play_next(self.room, head=0)
                    else:
                        await self.q.clear(self.room)
                    version = await self.q.version(self.room)
                    if version == snapshot.version:
                        continue  # a repeated ballot changes nothing and sends nothing
                    event = await listener.get(5)
                    self.assertIsInstance(event, Event, f"step {step}")
                    expected = await self.q.page(self.room, 0, 25)
                    self.assertEqual((event.change.version, event.change.head),
                                     (expected.version, expected.tracks), f"step {step}")
                    snapshot = expected
        finally:
            await live.close()


    async def test_a_stream_opened_while_the_node_stops_ends_after_its_snapshot(self):
        # a node keeps answering for a while after SIGTERM; a stream opened then used to
        # stay open until the shutdown's grace ran out
        await self.q.add(self.room, song("a"))
        live = Live(self.redis, self.q.placed_snapshot)
        try:
            async with live.listening(self.room) as (before, _):
                live.end_all()
                self.assertEqual(await before.get(5), END)
                async with live.listening(self.room) as (after, snapshot):
                    self.assertEqual([t.id for t in snapshot.head], ["a"])
                    self.assertEqual(await after.get(5), END)
        finally:
            await live.close()

    async def test_a_stream_waiting_out_an_outage_ends_when_the_node_stops(self):
        # after its subscription was restored, a stream takes a fresh snapshot, waiting
        # while Redis cannot be read; the node stopping meanwhile used to go unheard
        await self.q.add(self.room, song("a"))
        unreachable = store.connect(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
        reads = [self.q.placed_snapshot]
        live = Live(self.redis, lambda room: reads[0](room))
        stream = follow(live, self.room)
        try:
            self.assertEqual([t.id for t in (await anext(stream)).head], ["a"])
            reads[0] = Queue(unreachable, self.settings).placed_snapshot  # Redis "away"
            live._restored([keys.events_channel(self.room)])  # as after a reconnect
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(1)  # it tries, and waits to try again
            self.assertFalse(waiting.done())
            live.end_all()
            with self.assertRaises(StopAsyncIteration):
                async with asyncio.timeout(5):
                    await waiting
        finally:
            await stream.aclose()
            await live.close()
            await unreachable.aclose()

class Limits(CoreTest):
    max_queue = 3
    history_limit = 2

    async def test_a_full_queue_refuses_adds(self):
        for i in range(3):
            await self.q.add(self.room, song(f"t{i}"))
        with self.assertRaises(errors.QueueFull):
            await self.q.add(self.room, song("t3"))
        await self.q.play_next(self.room)
        await self.q.add(self.room, song("t3"))

    async def test_history_is_capped_and_metadata_follows(self):
        for i in range(3):
            await self.q.add(self.room, song(f"t{i}"))
        for _ in range(3):
            await self.q.play_next(self.room)
        self.assertEqual([t.id for t in await self.q.history(self.room)], ["t2", "t1"])
        with self.assertRaises(errors.TrackNotFound):
            await self.q.metadata(self.room, "t0")
        self.assertEqual(await self.redis.execute("HLEN", keys.room_keys(self.room).played), 2)


class Idempotency(CoreTest):
    async def test_a_repeat_returns_the_first_result_and_changes_nothing(self):
        await self.q.add(self.room, song("a"))
        await self.q.add(self.room, song("b"))
        first = await self.q.play_next(self.room, idempotency_key="k1")
        again = await self.q.play_next(self.room, idempotency_key="k1")
        self.assertEqual(again, first)
        self.assertEqual(await self.order(), [("b", 0)])
        vote = await self.q.vote(self.room, "b", True, idempotency_key="k2")
        self.assertEqual(await self.q.vote(self.room, "b", True, idempotency_key="k2"), vote)
        self.assertEqual(await self.order(), [("b", 1)])
        ttl = await self.redis.execute("TTL", keys.idempotency_key(self.room, "k2"))
        self.assertTrue(590 <= ttl <= 600, ttl)

    async def test_refusals_are_remembered_too(self):
        with self.assertRaises(errors.QueueEmpty):
            await self.q.play_next(self.room, idempotency_key="k")
        await self.q.add(self.room, song("a"))
        with self.assertRaises(errors.QueueEmpty):
            await self.q.play_next(self.room, idempotency_key="k")

    async def test_a_key_reused_for_another_request_is_refused(self):
        await self.q.add(self.room, song("a"), idempotency_key="k")
        with self.assertRaises(errors.IdempotencyKeyReused):
            await self.q.add(self.room, song("b"), idempotency_key="k")
        with self.assertRaises(errors.IdempotencyKeyReused):
            await self.q.vote(self.room, "a", True, idempotency_key="k")


class Store(CoreTest):
    max_queue = 30_000  # more than a Queue keeps records of
    async def test_the_functions_are_loaded_again_after_a_function_flush(self):
        await self.redis.execute("FUNCTION", "FLUSH")
        await self.q.add(self.room, song("a"))
        self.assertEqual(await self.order(), [("a", 0)])
        listed = await self.redis.execute("FUNCTION", "LIST", "LIBRARYNAME", functions.LIBRARY)
        self.assertEqual(len(listed), 1)
        await self.redis.execute("FUNCTION", "FLUSH")  # and inside a MULTI/EXEC too
        self.assertEqual([t.id for t in (await self.q.vote(self.room, "a", True)).head], ["a"])

    async def test_a_node_loads_its_functions_at_start_unless_redis_has_them(self):
        await self.redis.execute("FUNCTION", "FLUSH")
        await store.prepare(self.redis)
        self.assertEqual(len(await self.redis.execute("FUNCTION", "LIST")), 1)
        await store.prepare(self.redis)  # already there: nothing loaded twice
        self.assertEqual(len(await self.redis.execute("FUNCTION", "LIST")), 1)

    async def test_a_node_that_never_saw_the_tracks_fetches_their_records(self):
        for i in range(5):
            await self.q.add(self.room, song(f"t{i}", title=f"Title {i}"))
        await self.q.vote(self.room, "t3", True)
        fresh = Queue(self.redis, self.settings)  # as on a node that just started
        page = await fresh.page(self.room)
        self.assertEqual([(t.id, t.title, t.votes) for t in page.tracks][:2],
                         [("t3", "Title 3", 1), ("t0", "Title 0", 0)])
        change = await Queue(self.redis, self.settings).vote(self.room, "t4", True)
        self.assertEqual([t.id for t in change.head], ["t3", "t4", "t0", "t1", "t2"])
        self.assertEqual((await fresh.placed_snapshot(self.room))[0].head, change.head)

    async def test_a_page_bigger_than_the_record_cache(self):
        for start in range(0, 20_000, 1000):
            await asyncio.gather(*(self.q.add(self.room, song(f"p{i}"), head=0)
                                   for i in range(start, start + 1000)))
        page = await Queue(self.redis, self.settings).page(self.room)
        self.assertEqual(len(page.tracks), 20_000)
        self.assertEqual(page.tracks[-1].id, "p19999")

    async def test_an_unreachable_redis_is_unavailable_quickly(self):
        settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
        redis = store.connect(settings)
        started = time.monotonic()
        with self.assertRaises(errors.StoreUnavailable):
            await Queue(redis, settings).add(self.room, song("a"))
        self.assertLess(time.monotonic() - started, 4 * settings.redis_timeout)
        await redis.aclose()

    async def test_concurrent_writers_on_many_connections_lose_nothing(self):
        await self.q.add(self.room, song("a"))
        for i in range(40):
            await self.q.add(self.room, song(f"p{i}"))
        nodes = [store.connect(self.settings) for _ in range(4)]  # as many nodes would
        queues = [Queue(redis, self.settings) for redis in nodes]
        votes_in = asyncio.Barrier(20)

        async def work(n: int) -> list[str]:
            q = queues[n % len(queues)]
            await asyncio.gather(*(q.vote(self.room, "a", True) for _ in range(25)))
            await votes_in.wait()
            return [(await q.play_next(self.room, head=0)).track.id for _ in range(2)]

        try:
            played = [t for batch in await asyncio.gather(*map(work, range(20))) for t in batch]
        finally:
            for redis in nodes:
                await redis.aclose()
        history = [t.id for t in await self.q.history(self.room)]
        self.assertEqual(len(played), 40)
        self.assertEqual(len(set(played)), 40)
        self.assertEqual(sorted(history), sorted(played))
        self.assertEqual((await self.q.metadata(self.room, "a")).votes, 500)
        self.assertEqual(history[-1], "a")  # 500 votes put it first


class Subscription(unittest.TestCase):
    def test_closing_while_messages_pour_in_ends_the_subscription(self):
        # Python 3.11's asyncio.wait_for returned a read that finished in the same turn as
        # the cancel, and dropped the cancel: the reader read on forever, and a node
        # stopped under load never finished its shutdown. The closes run on an event loop
        # of their own, in a thread, so that a stuck one fails the test instead of hanging.
        channel = keys.events_channel("flood")
        pouring = threading.Event()
        closed: list[int] = []

        def flood() -> None:
            command = pubsub.command_bytes("SPUBLISH", channel, "x" * 200) * 50
            with socket.create_connection(("127.0.0.1", redis_cluster.redis_port)) as sock:
                sock.settimeout(5)
                sent = 0
                while pouring.is_set() and sent < 5_000_000:
                    sock.sendall(command)
                    sock.recv(1 << 16)  # its replies, so Redis never waits on a full buffer
                    sent += 50

        async def open_and_close() -> None:
            redis = store.connect(Settings(redis_url=redis_cluster.redis_url))
            for attempt in range(30):
                received = asyncio.Event()
                subscription = store.subscriber(redis, lambda c, p, got=received: got.set(),
                                                lambda channels: None)
                if not await subscription.subscribe(channel):
                    raise AssertionError("Redis did not confirm the subscription")
                async with asyncio.timeout(5):
                    await received.wait()
                for _ in range(attempt % 6):  # land the close at different points of a read
                    await asyncio.sleep(0)
                await subscription.close()
                closed.append(attempt)
            await redis.aclose()

        pouring.set()
        pourer = threading.Thread(target=flood)
        pourer.start()
        closer = threading.Thread(target=asyncio.run, args=(open_and_close(),), daemon=True)
        try:
            closer.start()
            closer.join(60)  # a tenth of that on this machine
        finally:
            pouring.clear()
            pourer.join(10)
        self.assertFalse(closer.is_alive(),
                         f"close() did not return: {len(closed)} of 30 subscriptions closed")
        self.assertEqual(len(closed), 30)

    def test_a_refused_password_leaves_no_connection_open(self):
        # the subscriber tries again every RECONNECT_DELAY; a refused connection was left
        # open (until garbage collected, and the last one for good)
        def clients() -> int:
            with socket.create_connection(("127.0.0.1", redis_cluster.redis_port)) as sock:
                sock.sendall(pubsub.command_bytes("INFO", "clients"))
                sock.settimeout(5)
                info = sock.recv(1 << 16).decode()
            return int(info.split("connected_clients:")[1].split()[0])

        async def refused() -> bool:
            settings = Settings(redis_url=f"redis://:wrong@127.0.0.1:{redis_cluster.redis_port}/0")
            redis = store.connect(settings)
            subscription = store.subscriber(redis, lambda c, p: None, lambda channels: None)
            confirmed = await subscription.subscribe(keys.events_channel("refused"))  # ~2 s
            await subscription.close()
            await redis.aclose()
            return confirmed

        before = clients()
        self.assertFalse(asyncio.run(refused()))
        deadline = time.monotonic() + 5  # Redis sees the last close soon after
        while (now := clients()) != before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(now, before, "connections left open to Redis")
