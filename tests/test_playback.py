"""Playback that runs itself (CONTRACT §6), on a cluster of its own: 3 REST nodes, 1 gRPC
node and nginx, over one Redis (with TEST_REDIS=cluster, over a Redis Cluster). Every time
compared here is Redis's (``played_at``, ``started_at``, ``ends_at``, ``server_time``), so
the bounds hold however slow the machine.
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
import unittest

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .support import (
    EXTERNAL,
    REDIS_CLUSTER,
    EventStream,
    Http,
    admin_headers,
    admin_metadata,
    track,
    unique,
)

LATE = 1.0  # an automatic advance is at most this late after ends_at (CONTRACT §6)
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts and kills nodes of its own")
    cluster = Cluster(rest=3, grpc=1, redis_cluster=REDIS_CLUSTER).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


def ms(iso: str) -> int:
    """An ISO time of the API as Unix milliseconds."""
    when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(when.timestamp() * 1000)


class Room:
    """One room of the test through nginx, with the calls the tests make."""

    def __init__(self, http: Http, name: str | None = None):
        self.http, self.name = http, name or unique("play")
        self.base = f"/rooms/{self.name}"

    def add(self, track_id: str, duration: int) -> None:
        reply = self.http.post(f"{self.base}/add_track", track(track_id, duration=duration))
        assert reply.status == 200, reply

    def settings(self, **changes) -> dict:
        reply = self.http.request("PATCH", f"{self.base}/settings", changes,
                                  headers=admin_headers())
        assert reply.status == 200, reply
        return reply.json()

    def now(self) -> dict | None:
        reply = self.http.get(f"{self.base}/now_playing")
        assert reply.status == 200, reply
        return reply.json()["now_playing"]

    def history(self) -> list[dict]:
        return self.http.get(f"{self.base}/history").json()

    def post(self, what: str, body=None, headers=None):
        return self.http.post(f"{self.base}/{what}", body,
                              headers={**admin_headers(), **(headers or {})})

    def wait_history(self, count: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.history()
            if len(history) >= count:
                return history
            time.sleep(0.1)
        raise AssertionError(f"the history did not reach {count} entries in {timeout} s: "
                             f"{self.history()}")


class Playback(unittest.TestCase):
    def setUp(self) -> None:
        assert cluster is not None
        self.http = Http(cluster.api_url)
        self.room = Room(self.http)

    def tearDown(self) -> None:
        self.http.close()

    def test_autoplay_plays_each_track_once_in_order_on_time(self):
        room = self.room
        durations = [1, 2, 1, 2, 1]
        for i, seconds in enumerate(durations):
            room.add(f"t{i}", seconds)
        events = EventStream(cluster.api_url, f"{room.base}/events")
        self.addCleanup(events.close)
        self.assertEqual(events.next_event()["event"], "snapshot")
        room.settings(autoplay=True)
        # every track plays, then the room falls quiet (the last one's end passes)
        history = room.wait_history(5, timeout=sum(durations) + 5 * LATE + 10)
        time.sleep(durations[-1] + LATE + 0.5)
        played = list(reversed(room.history()))
        self.assertEqual([t["id"] for t in played], [f"t{i}" for i in range(5)],
                         "each track once, in queue order")
        self.assertEqual(len(history), 5)
        for before, after, seconds in zip(played, played[1:], durations, strict=False):
            gap = ms(after["played_at"]) - ms(before["played_at"]) - seconds * 1000
            self.assertGreaterEqual(gap, 0, f"{after['id']} started before {before['id']} ended")
            self.assertLessEqual(gap, LATE * 1000, f"{after['id']} started {gap} ms late")
        plays = []
        while len(plays) < 5:
            frame = events.next_event(timeout=5)
            if frame["event"] == "play":
                plays.append(frame["data"]["now_playing"])
        self.assertEqual([p["id"] for p in plays], [f"t{i}" for i in range(5)],
                         "one play event per advance, with the clock")
        self.assertEqual(len({p["play_id"] for p in plays}), 5)
        for p in plays:
            self.assertFalse(p["paused"])
            self.assertEqual(ms(p["ends_at"]) - ms(p["started_at"]), p["duration"] * 1000)
        self.assertEqual(room.now()["id"], "t4", "the last track stays now playing, ended")

    def test_twenty_players_reporting_the_same_end_cause_one_advance(self):
        room = self.room
        for i in range(25):
            room.add(f"c{i}", 200)
        first = room.post("play_next").json()["now_playing"]
        start = threading.Barrier(20)
        replies = []
        lock = threading.Lock()

        def report() -> None:
            http = Http(cluster.api_url)
            start.wait()
            reply = http.post(f"{room.base}/play_next", headers={
                **admin_headers(), "If-Match": f'"{first["play_id"]}"'})
            http.close()
            with lock:
                replies.append(reply)

        threads = [threading.Thread(target=report) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(r.status for r in replies)
        self.assertEqual(statuses, [200] + [412] * 19)
        winner = next(r for r in replies if r.status == 200).json()["now_playing"]
        self.assertEqual(winner["id"], "c1")
        self.assertGreater(winner["play_id"], first["play_id"])
        for r in replies:
            if r.status == 412:
                self.assertIn("no longer the current one", r.detail)
                self.assertEqual(r.json()["now_playing"]["play_id"], winner["play_id"])
        self.assertEqual([t["id"] for t in room.history()], ["c1", "c0"])
        listed = room.post("play_next", headers={"If-Match": f'"1", "{winner["play_id"]}"'})
        self.assertEqual(listed.status, 400, listed)  # not read as its first tag alone
        self.assertIn("one play id", listed.detail)
        superscript = room.post("play_next", headers={"If-Match": '"\u00b2"'})  # sent as 0xB2
        self.assertEqual(superscript.status, 400, superscript)
        self.assertIn("If-Match", superscript.detail)
        reply = room.post("play_next", headers={"If-Match": "soon"})
        self.assertEqual(reply.status, 400)
        self.assertIn("If-Match", reply.detail)

    def test_skip_votes_reach_the_threshold_once_per_voter(self):
        room = self.room
        self.assertEqual(room.post("skip?voter=a").status, 409, "skipping is off by default")
        room.settings(skip_threshold=3)
        self.assertEqual(room.post("skip?voter=a").status, 409, "nothing is playing")
        room.add("s0", 200)
        room.add("s1", 200)
        room.post("play_next")
        for voter in ("a", "b", "a"):
            reply = room.post(f"skip?voter={voter}")
            self.assertEqual(reply.status, 200, reply)
            self.assertFalse(reply.json()["skipped"])
        self.assertEqual(reply.json()["now_playing"]["skip_votes"], 2, "a repeat counts once")
        self.assertEqual(reply.json()["now_playing"]["skip_threshold"], 3)
        self.assertEqual(room.now()["id"], "s0")
        reply = room.post("skip", {"voter": "c"})
        self.assertTrue(reply.json()["skipped"])
        self.assertEqual(reply.json()["now_playing"]["id"], "s1")
        self.assertEqual(reply.json()["now_playing"]["skip_votes"], 0, "a new play, no votes")
        history = room.history()
        self.assertEqual([(t["id"], t.get("skipped", False)) for t in history],
                         [("s1", False), ("s0", True)])
        reply = room.post("skip")
        self.assertEqual(reply.status, 422)
        self.assertIn("voter", reply.detail)

    def test_a_lowered_threshold_is_met_by_the_next_skip_vote_even_a_repeated_one(self):
        room = self.room
        room.settings(skip_threshold=2)
        room.add("l0", 200)
        room.add("l1", 200)
        room.post("play_next")
        self.assertFalse(room.post("skip?voter=bob").json()["skipped"])
        room.settings(skip_threshold=1)  # bob's vote alone now reaches it
        reply = room.post("skip?voter=bob")
        self.assertEqual(reply.status, 200, reply)
        self.assertTrue(reply.json()["skipped"], reply.json())
        self.assertEqual(reply.json()["now_playing"]["id"], "l1")
        self.assertEqual(room.history()[0]["id"], "l1")
        self.assertEqual(room.history()[1]["skipped"], True)

    def test_fallback_replays_the_history_and_no_repeat_says_when(self):
        room = self.room
        room.add("f0", 200)
        room.add("f1", 200)
        room.post("play_next")
        room.post("play_next")
        self.assertEqual(room.post("play_next").status, 409, "empty queue, no fallback")
        room.settings(fallback="history")
        reply = room.post("play_next")
        self.assertEqual(reply.status, 200, reply)
        now = reply.json()["now_playing"]
        self.assertEqual((now["id"], now["fallback"]), ("f0", True),
                         "the history track played longest ago")
        self.assertTrue(room.history()[0]["fallback"])
        self.assertEqual(room.post("play_next").json()["now_playing"]["id"], "f1")
        room.settings(no_repeat_minutes=5)
        reply = self.http.post(f"{room.base}/add_track", track("f1", duration=200))
        self.assertEqual(reply.status, 409)
        self.assertIn("may be added again from", reply.detail)
        when = reply.detail.rsplit(" ", 1)[1]
        self.assertEqual(ms(when), ms(room.history()[0]["played_at"]) + 5 * 60_000)
        room.add("f9", 200)  # never played: welcome

    def test_a_fallback_loop_replays_the_track_played_longest_ago_past_100_entries(self):
        """Three tracks, then only the fallback: it cycles through them in order, also once
        the history's oldest 100 entries were all replayed since."""
        room = self.room
        room.settings(fallback="history")
        for n in range(3):
            room.add(f"loop{n}", 200)
        played = []
        for _ in range(120):
            reply = room.post("play_next")
            self.assertEqual(reply.status, 200, reply)
            played.append(reply.json()["now_playing"]["id"])
        self.assertEqual(played[:3], ["loop0", "loop1", "loop2"])
        for i in range(3, len(played)):
            self.assertEqual(played[i], played[i - 3], f"play {i + 1} broke the cycle")

    def test_pause_holds_the_clock_and_resume_restores_the_rest(self):
        room = self.room
        room.add("p0", 2)
        room.add("p1", 2)
        room.settings(autoplay=True)
        deadline = time.monotonic() + 5
        while (now := room.now()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(now["id"], "p0")
        paused = room.post("pause").json()["now_playing"]
        self.assertTrue(paused["paused"])
        self.assertIsNone(paused["ends_at"])
        held = paused["position"]
        self.assertLess(held, 2)
        time.sleep(2.5)  # past where p0 would have ended
        now = room.now()
        self.assertEqual((now["id"], now["paused"], now["position"]), ("p0", True, held),
                         "no advance while paused; the clock stands still")
        resumed = room.post("resume").json()["now_playing"]
        self.assertFalse(resumed["paused"])
        left = ms(resumed["ends_at"]) - ms(resumed["started_at"]) - 2000
        self.assertGreater(left, 2500, "the end moved by the pause")
        self.assertAlmostEqual(resumed["position"], held, delta=0.01)
        history = room.wait_history(2, timeout=2 - held + LATE + 5)
        self.assertEqual(history[0]["id"], "p1")
        self.assertLessEqual(ms(history[0]["played_at"]) - ms(resumed["ends_at"]), LATE * 1000)
        self.assertEqual(room.post("pause", headers={}).status, 200)

    def test_settings_are_checked_and_are_events(self):
        room = self.room
        defaults = self.http.get(f"{room.base}/settings").json()
        self.assertEqual(defaults, {"autoplay": False, "skip_threshold": 0, "fallback": "none",
                                    "no_repeat_minutes": 0, "require_guest": False,
                                    "max_per_guest": 0, "locked": False, "order": "votes"})
        for bad, field in (({"autoplay": "maybe"}, "autoplay"),
                           ({"skip_threshold": -1}, "skip_threshold"),
                           ({"fallback": "silence"}, "fallback"),
                           ({"volume": 11}, "volume"),
                           ({"no_repeat_minutes": 1.5}, "no_repeat_minutes"),
                           ({"order": "random"}, "order"),
                           ({"max_per_guest": -2}, "max_per_guest"),
                           ({"locked": 3}, "locked"),
                           ({"skip_threshold": "\u00b2"}, "skip_threshold"),  # digits, not ASCII
                           ({"max_per_guest": "1\u0663"}, "max_per_guest")):
            reply = self.http.request("PATCH", f"{room.base}/settings", bad)
            self.assertEqual(reply.status, 422, bad)
            self.assertIn(field, reply.detail)
        self.assertEqual(self.http.request("PATCH", f"{room.base}/settings", raw=b"[").status,
                         400)
        events = EventStream(cluster.api_url, f"{room.base}/events")
        self.addCleanup(events.close)
        self.assertEqual(events.next_event()["data"]["settings"], defaults)
        room.settings(skip_threshold=2, fallback="history")
        frame = events.next_event()
        self.assertEqual(frame["event"], "settings")
        self.assertEqual(frame["data"]["settings"]["skip_threshold"], 2)
        self.assertEqual(self.http.get(f"{room.base}/settings").json()["fallback"], "history")
        self.assertEqual(self.http.get(f"{room.base}/settings").json()["autoplay"], False)

    def test_grpc_clock_compare_and_set_pause_skip_and_settings(self):
        channel = grpc.insecure_channel(cluster.grpc_targets[0])
        self.addCleanup(channel.close)
        stub = pb_grpc.QueueServiceStub(channel)
        name, md = self.room.name, admin_metadata()
        for i in range(3):
            stub.AddTrack(pb.Track(id=f"g{i}", title="T", artist="A", duration=100, room=name))
        watch = stub.Watch(pb.Empty(room=name))
        self.addCleanup(watch.cancel)
        snapshot = next(watch)
        self.assertEqual(snapshot.settings.skip_threshold, 0)
        self.assertGreater(snapshot.playing.server_time, 0)
        played = stub.PlayNext(pb.Empty(room=name), metadata=md)
        self.assertGreater(played.play_id, 0)
        with self.assertRaises(grpc.RpcError) as caught:
            stub.PlayNext(pb.Empty(room=name, expected_play_id=played.play_id + 7), metadata=md)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ABORTED)
        now = stub.NowPlaying(pb.Empty(room=name))
        self.assertEqual((now.track.id, now.play_id), ("g0", played.play_id))
        self.assertEqual(now.ends_at - now.started_at, 100_000)
        self.assertGreaterEqual(now.server_time, now.started_at)
        event = next(watch)
        self.assertEqual((event.type, event.playing.play_id), ("play", played.play_id))
        paused = stub.Pause(pb.Empty(room=name), metadata=md)
        self.assertTrue(paused.paused)
        self.assertEqual(paused.ends_at, 0)
        self.assertEqual(next(watch).type, "pause")
        self.assertFalse(stub.Resume(pb.Empty(room=name), metadata=md).paused)
        settings = stub.UpdateSettings(pb.SettingsRequest(
            room=name, settings=pb.Settings(skip_threshold=2)), metadata=md)
        self.assertEqual((settings.skip_threshold, settings.autoplay), (2, False))
        self.assertFalse(stub.Skip(pb.SkipRequest(room=name, voter="x")).skipped)
        skip = stub.Skip(pb.SkipRequest(room=name, voter="y"))
        self.assertTrue(skip.skipped)
        self.assertEqual(skip.now_playing.track.id, "g1")
        stub.PlayNext(pb.Empty(room=name, expected_play_id=skip.now_playing.play_id),
                      metadata=md)
        self.assertEqual(stub.GetSettings(pb.Empty(room=name)).skip_threshold, 2)
        for bad in (pb.SkipRequest(room=name), ):
            with self.assertRaises(grpc.RpcError) as caught:
                stub.Skip(bad)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as caught:
            stub.UpdateSettings(pb.SettingsRequest(room=name, settings=pb.Settings(
                fallback="loud")), metadata=md)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("fallback", caught.exception.details())

    def test_z_the_node_that_started_the_track_dies(self):
        """Last (it kills a node, then starts it again): the play is started by one REST
        node, which is then killed; the other nodes move the room on, on time."""
        room = self.room
        for i in range(3):
            room.add(f"k{i}", 2)
        room.settings(autoplay=True)  # the room is due now: the nodes start k0 themselves
        first = Http(cluster.rest_urls[0])
        self.addCleanup(first.close)
        # make node 0 the one that started what plays now
        reply = first.post(f"{room.base}/play_next", headers=admin_headers())
        self.assertEqual(reply.status, 200)
        started = reply.json()["now_playing"]
        port = cluster.rest_ports[0]
        victim = cluster.rest[0]
        victim.signal(signal.SIGKILL)
        victim.popen.wait(10)
        self.addCleanup(lambda: cluster.add_rest_node(port=port))
        history = room.wait_history(3, timeout=2 + LATE + 10)
        following = next(t for t in history if t["play_id"] == started["play_id"] + 1)
        late = ms(following["played_at"]) - ms(started["ends_at"])
        self.assertGreaterEqual(late, 0)
        self.assertLessEqual(late, LATE * 1000, f"the advance after the kill was {late} ms late")


if __name__ == "__main__":
    unittest.main()
