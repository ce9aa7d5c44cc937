"""Faults under load, each on a local cluster of its own: a node killed, a node stopped,
Redis stopped and Redis killed. Nothing acknowledged may be lost or applied twice.

Clients here behave as the README tells them to: every write carries an Idempotency-Key
(gRPC: idempotency-key metadata) and is retried with the same key when it failed without
an answer from the queue (502/503/UNAVAILABLE); reads are never retried by the client
itself (nginx, or the gRPC channel's retry policy, does that).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import unittest
from collections import Counter

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .doors import GrpcDoor, RestDoor
from .support import EXTERNAL, EventStream, Http, grpc_channel, track

ROOMY = {"MAX_QUEUE": "1000000"}  # 20 clients add more than the default 10,000 in 10 s


def setUpModule() -> None:
    if EXTERNAL:
        raise unittest.SkipTest("kills and restarts processes of its own")


def measured(text: str) -> None:
    """What a fault test measured: one line on stderr (the README quotes them)."""
    sys.stderr.write(f"\n  measured: {text}\n")


class Tally:
    """What the clients of a run saw and had acknowledged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.adds: set[str] = set()
        self.votes: Counter = Counter()
        self.requests = 0
        self.read_errors: list = []
        self.failures: list = []


def party(n: int, stop: threading.Event, tally: Tally, targets: list[str], door) -> None:
    """One client until ``stop``: half votes, a quarter adds (through a retrying door, so
    each is acknowledged once) and a quarter short reads."""
    rng = random.Random(n)
    i = 0
    while not stop.is_set():
        i += 1
        roll = rng.random()
        try:
            if roll < 0.5:
                target = rng.choice(targets)
                if door.vote(target) == "ok":
                    with tally.lock:
                        tally.votes[target] += 1
            elif roll < 0.75:
                track_id = f"c{n}-{i}"
                if door.add(track_id) == "ok":
                    with tally.lock:
                        tally.adds.add(track_id)
            elif (problem := door.peek()) is not None:
                tally.read_errors.append(problem)
        except Exception as exc:  # an answer the party should never get
            tally.failures.append(repr(exc))
        with tally.lock:
            tally.requests += 1
    door.close_thread()


def run_clients(work, clients: int, seconds: float, at: float, fault) -> None:
    """``clients`` threads run ``work(n, stop)`` for ``seconds``; ``fault()`` happens at
    ``at`` seconds."""
    stop = threading.Event()
    threads = [threading.Thread(target=work, args=(n, stop)) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(at)
    fault()
    time.sleep(seconds - at)
    stop.set()
    for thread in threads:
        thread.join(30)


class NodeCrash(unittest.TestCase):
    @staticmethod
    def retries(door) -> str:
        return ", ".join(f"{v} x {k}" for k, v in door.retries.items()) or "none"

    def check(self, tally: Tally, queue: dict) -> None:
        self.assertEqual(tally.failures, [])
        self.assertEqual(tally.read_errors, [], "a read failed")
        self.assertLessEqual(tally.adds, set(queue), "an acknowledged add is missing")
        self.assertEqual(set(queue) - {f"s{i}" for i in range(8)}, tally.adds,
                         "a track is queued that nobody had acknowledged")
        for target in (f"s{i}" for i in range(8)):
            self.assertEqual(queue[target], tally.votes[target],
                             f"{target}: acknowledged votes lost or counted twice")

    def crash(self, door, kill) -> str:
        """20 clients through ``door`` for 10 s; ``kill()`` at 3 s."""
        targets = [f"s{i}" for i in range(8)]
        for target in targets:
            self.assertEqual(door.add(target), "ok")
        tally = Tally()
        run_clients(lambda n, stop: party(n, stop, tally, targets, door), clients=20,
                    seconds=10, at=3, fault=kill)
        # a machine twice as slow still serves far more than this in 10 s
        self.assertGreater(tally.requests, 200)
        self.check(tally, door.queue())
        kind = "requests" if isinstance(door, RestDoor) else "calls"
        return (f"{tally.requests} {kind} by 20 clients in 10 s, retried with the same key: "
                f"{self.retries(door)}; {len(tally.adds)} adds and {sum(tally.votes.values())} "
                "votes acknowledged, none lost, none doubled, no read failed")

    def test_a_rest_node_killed_under_load(self):
        with Cluster(rest=3, env=ROOMY) as cluster:
            door = RestDoor(cluster.api_url, "crash", retry=True)
            self.addCleanup(door.close)
            result = self.crash(door, cluster.rest[0].kill)
            self.assertFalse(cluster.rest[0].alive())
            measured(f"REST node killed: {result}")

    def test_a_grpc_node_killed_under_load(self):
        with Cluster(rest=0, grpc=3, nginx=False, env=ROOMY) as cluster:
            door = GrpcDoor(cluster.grpc_target, "crash", retry=True)
            try:
                measured(f"gRPC node killed: {self.crash(door, cluster.grpc[0].kill)}")
            finally:
                door.close()


class Shutdown(unittest.TestCase):
    def test_sigterm_under_load_through_nginx_loses_no_request(self):
        with Cluster(rest=3) as cluster:
            room = "drain"
            http = Http(cluster.api_url)
            http.post(f"/rooms/{room}/add_track", track("hit"))
            statuses: Counter = Counter()
            lock = threading.Lock()

            def work(n: int, stop: threading.Event) -> None:
                client = Http(cluster.api_url)
                i = 0
                while not stop.is_set():
                    i += 1
                    kind = "vote" if i % 2 else "read"
                    try:
                        if kind == "vote":
                            status = client.post(f"/rooms/{room}/vote?id=hit&head=3").status
                        else:
                            status = client.get(f"/rooms/{room}/queue?limit=3").status
                    except OSError as exc:
                        status = type(exc).__name__
                    with lock:
                        statuses[(kind, status)] += 1
                client.close()

            node = cluster.rest[0]
            run_clients(work, clients=10, seconds=6, at=1.5,
                        fault=lambda: node.signal(signal.SIGTERM))
            try:
                node.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.fail(f"the node was still running 15 s after its load ended:\n{node.tail()}")
            # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully
            self.assertIn(node.popen.returncode, (0, -signal.SIGTERM), node.tail())
            self.assertEqual({status for _, status in statuses}, {200}, statuses)
            votes = http.get(f"/rooms/{room}/metadata/hit").json()["votes"]
            self.assertEqual(votes, statuses[("vote", 200)])
            measured(f"REST node stopped (SIGTERM) under load: {sum(statuses.values())} requests, "
                     "every one answered 200, every vote counted once")
            http.close()


class RedisOutage(unittest.TestCase):
    def test_redis_down_for_3_seconds_under_load(self):
        with Cluster(rest=2, grpc=1, redis_args=("--appendonly", "yes")) as cluster:
            room = "outage"
            http = Http(cluster.api_url)
            http.post(f"/rooms/{room}/add_track", track("before"))
            stream = EventStream(cluster.rest_urls[0], f"/rooms/{room}/events")
            self.assertEqual(stream.next_event()["event"], "snapshot")
            watch_channel = grpc_channel(cluster.grpc_target)
            watch = pb_grpc.QueueServiceStub(watch_channel).Watch(pb.Empty(room=room))
            self.assertEqual(next(watch).type, "snapshot")

            samples: list[tuple[float, float, object, str | None]] = []
            details: set[str] = set()
            lock = threading.Lock()
            back = {}

            def work(n: int, stop: threading.Event) -> None:
                client = Http(cluster.api_url)
                while not stop.is_set():
                    began = time.monotonic()
                    try:
                        reply = (client.post(f"/rooms/{room}/vote?id=before&head=3") if n % 2
                                 else client.get(f"/rooms/{room}/queue?limit=3"))
                        status, retry = reply.status, reply.headers.get("retry-after")
                        if status == 503:
                            with lock:
                                details.add(reply.json()["detail"])
                    except OSError as exc:
                        status, retry = type(exc).__name__, None
                    with lock:
                        samples.append((began, time.monotonic() - began, status, retry))
                    time.sleep(0.01)
                client.close()

            def outage() -> None:
                cluster.redis.stop()
                time.sleep(3)
                cluster.start_redis()
                back["at"] = time.monotonic()

            run_clients(work, clients=4, seconds=10, at=1.5, fault=outage)
            statuses = Counter(s[2] for s in samples)
            self.assertLessEqual(set(statuses), {200, 503}, statuses)
            self.assertGreater(statuses[503], 0, "Redis was down, yet no request saw it")
            self.assertTrue(all("Redis" in detail for detail in details), details)
            # never a hang: REDIS_TIMEOUT_MS (0.75 s) bounds every answer, with room for a
            # machine twice as slow as this one
            for _, took, status, retry in samples:
                self.assertLess(took, 2.5, f"a request took {took:.2f}s")
                if status == 503:
                    self.assertEqual(retry, "1")
            first_ok_after = min(b + t for b, t, s, _ in samples if s == 200 and b >= back["at"])
            self.assertLess(first_ok_after - back["at"], 3.0)
            slowest = max(t for _, t, s, _ in samples if s == 503)
            measured(f"Redis down 3 s under load: {statuses[503]} answers 503 (slowest "
                     f"{slowest * 1000:.0f} ms), serving again {first_ok_after - back['at']:.2f} s "
                     "after Redis was back, streams resumed with a snapshot")
            late = [s for b, t, s, _ in samples if b >= back["at"] + 3.0]
            self.assertTrue(late and set(late) == {200}, Counter(late))

            # the live streams come back with a fresh snapshot (after the events from before
            # the outage), then follow changes again
            deadline = time.monotonic() + 5
            while stream.next_event(timeout=5)["event"] != "snapshot":
                self.assertLess(time.monotonic(), deadline, "no snapshot after the outage")
            while next(watch).type != "snapshot":
                self.assertLess(time.monotonic(), deadline, "no Watch snapshot after the outage")
            http.post(f"/rooms/{room}/add_track", track("after"))
            event = stream.next_event(timeout=5)
            while event["event"] == "vote":  # votes still in flight from the load
                event = stream.next_event(timeout=5)
            self.assertEqual((event["event"], event["data"]["track"]["id"]), ("add", "after"))
            grpc_event = next(watch)
            while grpc_event.type == "vote":
                grpc_event = next(watch)
            self.assertEqual((grpc_event.type, grpc_event.track.id), ("add", "after"))
            watch.cancel()
            watch_channel.close()
            stream.close()
            http.close()


class Durability(unittest.TestCase):
    def test_writes_acknowledged_a_second_before_redis_is_killed_survive(self):
        with Cluster(rest=1, nginx=False, redis_args=("--appendonly", "yes",
                                                     "--appendfsync", "everysec")) as cluster:
            http = Http(cluster.api_url)
            acknowledged: list[tuple[float, str]] = []
            deadline = time.monotonic() + 3.0
            i = 0
            while time.monotonic() < deadline:
                i += 1
                if http.post("/rooms/durable/add_track?head=0", track(f"d{i}")).status == 200:
                    acknowledged.append((time.monotonic(), f"d{i}"))
            killed_at = time.monotonic()
            cluster.redis.kill()
            cluster.start_redis()
            http.close()
            http = Http(cluster.api_url)
            deadline = time.monotonic() + 5
            while http.get("/readyz").status != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            present = {str(t["id"]) for t in http.get("/rooms/durable/queue").json()}
            old_enough = [tid for at, tid in acknowledged if at < killed_at - 1.0]
            self.assertGreater(len(old_enough), 100)
            self.assertEqual([tid for tid in old_enough if tid not in present], [])
            last_second = [tid for at, tid in acknowledged if at >= killed_at - 1.0]
            lost = [tid for tid in last_second if tid not in present]
            measured(f"Redis killed (SIGKILL), append-only file, fsync every second: "
                     f"{len(acknowledged)} adds acknowledged, all {len(old_enough)} older than 1 s "
                     f"kept; of the {len(last_second)} in the last second, {len(lost)} lost")
            http.close()
