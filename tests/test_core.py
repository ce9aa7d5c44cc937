"""The shared core against a real redis-server of its own (no mocks)."""

from __future__ import annotations

import asyncio
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from shared import errors, keys, scripts
from shared import queue as queue_module
from shared.config import Settings
from shared.queue import Queue, decode_event
from shared.store import AsyncRunner, SyncRunner, async_client, sync_client
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


class CoreTest(unittest.TestCase):
    max_queue = 10_000
    history_limit = 1000

    def setUp(self) -> None:
        self.settings = Settings(redis_url=redis_cluster.redis_url, max_queue=self.max_queue,
                                 history_limit=self.history_limit)
        self.redis = sync_client(self.settings)
        self.redis.flushdb()
        self.q = Queue(SyncRunner(self.redis), self.settings)
        self.room = "r1"

    def tearDown(self) -> None:
        self.redis.close()

    def order(self, room: str | None = None) -> list[tuple[str, int]]:
        return [(t.id, t.votes) for t in self.q.page(room or self.room).tracks]


class QueueRules(CoreTest):
    def test_add_returns_the_track_the_head_and_a_new_version(self):
        change = self.q.add(self.room, song("a", "Hey Jude", "The Beatles", 431))
        self.assertEqual(change.kind, "add")
        self.assertEqual((change.track.id, change.track.title, change.track.artist,
                          change.track.duration, change.track.votes),
                         ("a", "Hey Jude", "The Beatles", 431, 0))
        self.assertAlmostEqual(change.track.added_at / 1000, time.time(), delta=5)
        self.assertEqual([t.id for t in change.head], ["a"])
        self.assertEqual((change.version, change.length), (1, 1))

    def test_order_is_votes_then_first_added(self):
        for track_id in "abcd":
            self.q.add(self.room, song(track_id))
        self.q.vote(self.room, "c", True)
        self.q.vote(self.room, "d", True)
        self.q.vote(self.room, "a", False)
        self.assertEqual(self.order(), [("c", 1), ("d", 1), ("b", 0), ("a", -1)])

    def test_head_size_is_respected(self):
        for i in range(30):
            change = self.q.add(self.room, song(f"t{i}"), head=7)
        self.assertEqual([t.id for t in change.head], [f"t{i}" for i in range(7)])
        self.assertEqual(len(self.q.add(self.room, song("x")).head), 25)
        self.assertEqual(self.q.add(self.room, song("y"), head=0).head, [])

    def test_a_queued_id_is_a_conflict_a_played_id_may_return(self):
        self.q.add(self.room, song("a"))
        with self.assertRaises(errors.DuplicateTrack):
            self.q.add(self.room, song("a", "Other"))
        self.assertEqual(self.q.metadata(self.room, "a").title, "Title")
        self.q.play_next(self.room)
        again = self.q.add(self.room, song("a", "Again"))
        self.assertEqual((again.track.title, again.track.votes), ("Again", 0))

    def test_anonymous_votes_each_count(self):
        self.q.add(self.room, song("a"))
        for _ in range(5):
            self.q.vote(self.room, "a", True)
        self.assertEqual(self.q.vote(self.room, "a", False).track.votes, 4)

    def test_a_voter_holds_one_ballot_per_track(self):
        self.q.add(self.room, song("a"))
        self.assertEqual(self.q.vote(self.room, "a", True, "ann").track.votes, 1)
        repeat = self.q.vote(self.room, "a", True, "ann")
        self.assertEqual(repeat.track.votes, 1)
        self.assertEqual(self.q.vote(self.room, "a", False, "ann").track.votes, -1)  # flip: -2
        self.assertEqual(self.q.vote(self.room, "a", False, "bob").track.votes, -2)
        self.assertEqual(self.q.vote(self.room, "a", True).track.votes, -1)  # anonymous too

    def test_a_repeated_ballot_changes_no_version(self):
        self.q.add(self.room, song("a"))
        first = self.q.vote(self.room, "a", True, "ann")
        repeat = self.q.vote(self.room, "a", True, "ann")
        self.assertEqual(repeat.version, first.version)
        self.assertEqual(self.q.version(self.room), first.version)

    def test_ballots_belong_to_one_stay_in_the_queue(self):
        self.q.add(self.room, song("a"))
        self.q.vote(self.room, "a", True, "ann")
        self.q.play_next(self.room)
        self.q.add(self.room, song("a"))  # queued again: a new track, fresh ballots
        self.assertEqual(self.q.vote(self.room, "a", True, "ann").track.votes, 1)
        self.q.remove(self.room, "a")
        k = keys.room_keys(self.room)
        self.assertEqual(self.redis.keys(k.ballots + "*"), [])
        self.assertEqual(self.redis.scard(k.balloted), 0)

    def test_votes_need_a_queued_track(self):
        with self.assertRaises(errors.TrackNotFound):
            self.q.vote(self.room, "ghost", True)
        self.q.add(self.room, song("a"))
        self.q.play_next(self.room)
        with self.assertRaises(errors.TrackNotFound):
            self.q.vote(self.room, "a", True)

    def test_play_next_takes_the_first_into_now_playing_and_history(self):
        self.q.add(self.room, song("a"))
        self.q.add(self.room, song("b"))
        self.q.vote(self.room, "b", True)
        change = self.q.play_next(self.room)
        self.assertEqual((change.track.id, change.track.votes), ("b", 1))
        self.assertIsNotNone(change.track.played_at)
        self.assertEqual(self.q.now_playing(self.room), change.track)
        self.assertEqual(self.q.history(self.room), [change.track])
        self.assertEqual(self.order(), [("a", 0)])
        self.q.play_next(self.room)
        self.assertEqual([t.id for t in self.q.history(self.room)], ["a", "b"])
        with self.assertRaises(errors.QueueEmpty):
            self.q.play_next(self.room)
        self.assertEqual(self.q.now_playing(self.room).id, "a")

    def test_remove(self):
        self.q.add(self.room, song("a"))
        self.q.add(self.room, song("b"))
        self.q.vote(self.room, "a", True)
        removed = self.q.remove(self.room, "a")
        self.assertEqual((removed.track.id, removed.track.votes, removed.length), ("a", 1, 1))
        self.assertEqual(self.order(), [("b", 0)])
        with self.assertRaises(errors.TrackNotFound):
            self.q.remove(self.room, "a")

    def test_metadata_of_queued_playing_and_played_tracks(self):
        self.q.add(self.room, song("a", "First"))
        self.q.add(self.room, song("b", "Second"))
        self.q.vote(self.room, "b", True)
        self.assertEqual(self.q.metadata(self.room, "b").votes, 1)
        self.q.play_next(self.room)  # b now playing
        self.q.play_next(self.room)  # a now playing, b in history only
        self.assertEqual(self.q.metadata(self.room, "a").title, "First")
        self.assertIsNotNone(self.q.metadata(self.room, "b").played_at)
        with self.assertRaises(errors.TrackNotFound):
            self.q.metadata(self.room, "ghost")

    def test_pages(self):
        for i in range(10):
            self.q.add(self.room, song(f"t{i}"))
        page = self.q.page(self.room, 3, 4)
        self.assertEqual([t.id for t in page.tracks], ["t3", "t4", "t5", "t6"])
        self.assertEqual(page.length, 10)
        self.assertEqual(self.q.page(self.room, 20, 5).tracks, [])
        for _ in range(5):
            self.q.play_next(self.room)
        self.assertEqual([t.id for t in self.q.history(self.room, 1, 2)], ["t3", "t2"])

    def test_clear_empties_the_room_and_keeps_its_counters(self):
        self.q.add(self.room, song("a"))
        self.q.add(self.room, song("b"))
        self.q.vote(self.room, "b", True, "ann")
        self.q.play_next(self.room)
        self.q.add(self.room, song("c"))
        self.q.vote(self.room, "c", True, "ann")
        before = self.q.version(self.room)
        change = self.q.clear(self.room)
        self.assertEqual((change.version, change.length), (before + 1, 0))
        self.assertEqual(self.q.page(self.room).tracks, [])
        self.assertIsNone(self.q.now_playing(self.room))
        self.assertEqual(self.q.history(self.room), [])
        k = keys.room_keys(self.room)
        self.assertEqual(sorted(self.redis.keys(f"mq:{{{self.room}}}:*")), sorted([k.seq, k.version]))

    def test_rooms_are_independent(self):
        self.q.add("r1", song("a"))
        self.q.add("r2", song("a"))
        self.q.vote("r2", "a", True)
        self.assertEqual(self.order("r1"), [("a", 0)])
        self.assertEqual(self.order("r2"), [("a", 1)])
        self.q.clear("r2")
        self.assertEqual(self.order("r1"), [("a", 0)])

    def test_every_key_of_a_room_carries_its_hash_tag(self):
        for name in keys.room_keys("party42"):
            self.assertIn("{party42}", name)
        self.assertIn("{party42}", keys.idempotency_key("party42", "k"))
        self.q.add("party42", song("a"))
        self.q.vote("party42", "a", True, "ann")
        self.q.play_next("party42", idempotency_key="k1")
        for name in self.redis.keys("*"):
            self.assertTrue(name.startswith("mq:{party42}:"), name)


class Versions(CoreTest):
    def test_each_change_bumps_the_version_once(self):
        versions = [self.q.add(self.room, song("a")).version,
                    self.q.add(self.room, song("b")).version,
                    self.q.vote(self.room, "a", True).version,
                    self.q.remove(self.room, "b").version,
                    self.q.play_next(self.room).version,
                    self.q.clear(self.room).version]
        self.assertEqual(versions, [1, 2, 3, 4, 5, 6])
        self.assertEqual(self.q.page(self.room).version, 6)

    def test_refusals_change_nothing(self):
        self.q.add(self.room, song("a"))
        for bad in (lambda: self.q.add(self.room, song("a")),
                    lambda: self.q.vote(self.room, "x", True),
                    lambda: self.q.remove(self.room, "x")):
            with self.assertRaises(errors.QueueError):
                bad()
        self.assertEqual(self.q.version(self.room), 1)

    def test_changes_are_published_with_the_new_state(self):
        pubsub = self.redis.pubsub()
        pubsub.subscribe(keys.events_channel(self.room))
        self.assertEqual(pubsub.get_message(timeout=2)["type"], "subscribe")
        self.q.add(self.room, song("a"))
        self.q.vote(self.room, "a", True, head=0)
        events = []
        while len(events) < 2:
            message = pubsub.get_message(timeout=2)
            self.assertIsNotNone(message, "no event published")
            events.append(decode_event(message["data"]))
        self.assertEqual([(e.kind, e.version, e.track.id) for e in events],
                         [("add", 1, "a"), ("vote", 2, "a")])
        # Events carry the head even when the write asked for none.
        self.assertEqual([(t.id, t.votes) for t in events[1].head], [("a", 1)])
        pubsub.close()


class Limits(CoreTest):
    max_queue = 3
    history_limit = 2

    def test_a_full_queue_refuses_adds(self):
        for i in range(3):
            self.q.add(self.room, song(f"t{i}"))
        with self.assertRaises(errors.QueueFull):
            self.q.add(self.room, song("t3"))
        self.q.play_next(self.room)
        self.q.add(self.room, song("t3"))

    def test_history_is_capped_and_metadata_follows(self):
        for i in range(3):
            self.q.add(self.room, song(f"t{i}"))
        for _ in range(3):
            self.q.play_next(self.room)
        self.assertEqual([t.id for t in self.q.history(self.room)], ["t2", "t1"])
        with self.assertRaises(errors.TrackNotFound):
            self.q.metadata(self.room, "t0")
        self.assertEqual(self.redis.hlen(keys.room_keys(self.room).played), 2)


class Idempotency(CoreTest):
    def test_a_repeat_returns_the_first_result_and_changes_nothing(self):
        self.q.add(self.room, song("a"))
        self.q.add(self.room, song("b"))
        first = self.q.play_next(self.room, idempotency_key="k1")
        again = self.q.play_next(self.room, idempotency_key="k1")
        self.assertEqual(again, first)
        self.assertEqual(self.order(), [("b", 0)])
        vote = self.q.vote(self.room, "b", True, idempotency_key="k2")
        self.assertEqual(self.q.vote(self.room, "b", True, idempotency_key="k2"), vote)
        self.assertEqual(self.order(), [("b", 1)])
        ttl = self.redis.ttl(keys.idempotency_key(self.room, "k2"))
        self.assertTrue(590 <= ttl <= 600, ttl)

    def test_refusals_are_remembered_too(self):
        with self.assertRaises(errors.QueueEmpty):
            self.q.play_next(self.room, idempotency_key="k")
        self.q.add(self.room, song("a"))
        with self.assertRaises(errors.QueueEmpty):
            self.q.play_next(self.room, idempotency_key="k")

    def test_a_key_reused_for_another_request_is_refused(self):
        self.q.add(self.room, song("a"), idempotency_key="k")
        with self.assertRaises(errors.IdempotencyKeyReused):
            self.q.add(self.room, song("b"), idempotency_key="k")
        with self.assertRaises(errors.IdempotencyKeyReused):
            self.q.vote(self.room, "a", True, idempotency_key="k")


class Store(CoreTest):
    def test_scripts_are_loaded_again_after_a_script_flush(self):
        self.redis.script_flush()
        self.q.add(self.room, song("a"))
        self.assertEqual(self.order(), [("a", 0)])
        self.assertTrue(self.redis.script_exists(scripts.ADD.sha)[0])

    def test_a_node_that_never_saw_the_tracks_fetches_their_records(self):
        for i in range(5):
            self.q.add(self.room, song(f"t{i}", title=f"Title {i}"))
        self.q.vote(self.room, "t3", True)
        queue_module._records.clear()  # as on a node that just started
        page = self.q.page(self.room)
        self.assertEqual([(t.id, t.title, t.votes) for t in page.tracks][:2],
                         [("t3", "Title 3", 1), ("t0", "Title 0", 0)])
        queue_module._records.clear()
        change = self.q.vote(self.room, "t4", True)
        self.assertEqual([t.id for t in change.head], ["t3", "t4", "t0", "t1", "t2"])
        self.assertEqual(self.q.snapshot(self.room).head, change.head)

    def test_a_page_bigger_than_the_record_cache(self):
        pipe = self.redis.pipeline(transaction=False)
        plan = Queue(lambda command: command, self.settings)
        for i in range(10_000):
            command = plan.add(self.room, song(f"p{i}"), head=0)
            pipe.execute_command("EVAL", command.script.source, *command.args)
        pipe.execute()
        queue_module._records.clear()
        page = self.q.page(self.room)
        self.assertEqual(len(page.tracks), 10_000)
        self.assertEqual(page.tracks[-1].id, "p9999")

    def test_the_async_runner_gives_the_same_results(self):
        async def run():
            client = async_client(self.settings)
            q = Queue(AsyncRunner(client), self.settings)
            try:
                await q.add(self.room, song("a"))
                queue_module._records.clear()
                vote = await q.vote(self.room, "a", True, "ann")
                page = await q.page(self.room)
                with self.assertRaises(errors.DuplicateTrack):
                    await q.add(self.room, song("a"))
                return vote, page
            finally:
                await client.aclose()

        vote, page = asyncio.run(run())
        self.assertEqual(vote.track.votes, 1)
        self.assertEqual([(t.id, t.votes) for t in page.tracks], [("a", 1)])

    def test_an_unreachable_redis_is_unavailable_quickly(self):
        settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
        client = sync_client(settings)
        q = Queue(SyncRunner(client), settings)
        started = time.monotonic()
        with self.assertRaises(errors.StoreUnavailable):
            q.add(self.room, song("a"))
        self.assertLess(time.monotonic() - started, 2)
        client.close()

    def test_concurrent_writers_lose_nothing(self):
        self.q.add(self.room, song("a"))
        for i in range(40):
            self.q.add(self.room, song(f"p{i}"))
        played: list[str] = []
        lock = threading.Lock()
        votes_in = threading.Barrier(20, timeout=30)

        def work(n: int) -> None:
            for _ in range(25):
                self.q.vote(self.room, "a", True)
            votes_in.wait()
            for _ in range(2):
                change = self.q.play_next(self.room, head=0)
                with lock:
                    played.append(change.track.id)

        with ThreadPoolExecutor(20) as pool:
            list(pool.map(work, range(20)))
        history = [t.id for t in self.q.history(self.room)]
        self.assertEqual(len(played), 40)
        self.assertEqual(len(set(played)), 40)
        self.assertEqual(sorted(history), sorted(played))
        self.assertEqual(self.q.metadata(self.room, "a").votes, 500)
        self.assertEqual(self.q.history(self.room)[-1].id, "a")  # 500 votes put it first
