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
import sys
import threading
import time
import unittest
import uuid
from collections import Counter

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .support import EXTERNAL, EventStream, Http, grpc_channel, track

RETRYABLE_HTTP = {502, 503, 504}
ROOMY = {"MAX_QUEUE": "1000000"}  # 20 clients add more than the default 10,000 in 10 s
RETRYABLE_GRPC = {grpc.StatusCode.UNAVAILABLE}


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
        self.outcomes: Counter = Counter()
        self.read_errors: list = []
        self.failures: list = []

    def note(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1


def acknowledged(tally: Tally, attempt) -> bool:
    """Retry a write (with the same idempotency key) until the queue answers. ``attempt()``
    returns True (acknowledged), False (refused: noted as a failure) or a string: no
    answer from the queue, noted, and tried again."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outcome = attempt()
        if outcome is True or outcome is False:
            return outcome
        tally.note(f"{outcome}, retried")
        time.sleep(0.05)
    tally.failures.append("no success within 10 s")
    return False


def party(n: int, stop: threading.Event, tally: Tally, targets: list[str], vote, add,
          read) -> None:
    """One client until ``stop``: half votes, a quarter adds (door's ``vote(target)`` and
    ``add(track_id)`` return whether they were acknowledged) and a quarter reads (``read()``
    returns None, or what went wrong)."""
    rng = random.Random(n)
    i = 0
    while not stop.is_set():
        i += 1
        roll = rng.random()
        if roll < 0.5:
            target = rng.choice(targets)
            if vote(target):
                with tally.lock:
                    tally.votes[target] += 1
        elif roll < 0.75:
            track_id = f"c{n}-{i}"
            if add(track_id):
                with tally.lock:
                    tally.adds.add(track_id)
        else:
            problem = read()
            if problem is not None:
                tally.read_errors.append(problem)
        tally.note("request")


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


class RestMix:
    """A party over REST through nginx: votes and adds with idempotency keys and retries,
    queue reads without retries."""

    def __init__(self, base: str, room: str, tally: Tally, targets: list[str]):
        self.base, self.room, self.tally, self.targets = base, room, tally, targets

    def write(self, http: Http, method: str, path: str, body=None) -> bool:
        key = {"Idempotency-Key": uuid.uuid4().hex}

        def attempt():
            try:
                reply = http.request(method, f"/rooms/{self.room}{path}", body, headers=key)
            except OSError:
                return "connection error"
            if reply.status == 200:
                return True
            if reply.status in RETRYABLE_HTTP:
                return str(reply.status)
            self.tally.failures.append((path, reply.status, reply.body[:200]))
            return False

        return acknowledged(self.tally, attempt)

    def __call__(self, n: int, stop: threading.Event) -> None:
        http = Http(self.base)

        def read():
            try:
                status = http.get(f"/rooms/{self.room}/queue?limit=5").status
            except OSError as exc:
                return repr(exc)
            return None if status == 200 else status

        party(n, stop, self.tally, self.targets,
              vote=lambda target: self.write(http, "POST", f"/vote?id={target}&head=5"),
              add=lambda track_id: self.write(http, "POST", "/add_track?head=5", track(track_id)),
              read=read)
        http.close()


class NodeCrash(unittest.TestCase):
    def retries(self, tally: Tally) -> str:
        return ", ".join(f"{v} x {k.split(',')[0]}" for k, v in tally.outcomes.items()
                         if k != "request") or "none"

    def check(self, tally: Tally, queue: dict) -> None:
        self.assertEqual(tally.failures, [])
        self.assertEqual(tally.read_errors, [], "a read failed")
        self.assertLessEqual(tally.adds, set(queue), "an acknowledged add is missing")
        self.assertEqual(set(queue) - {f"s{i}" for i in range(8)}, tally.adds,
                         "a track is queued that nobody had acknowledged")
        for target in (f"s{i}" for i in range(8)):
            self.assertEqual(queue[target], tally.votes[target],
                             f"{target}: acknowledged votes lost or counted twice")

    def test_a_rest_node_killed_under_load(self):
        with Cluster(rest=3, env=ROOMY) as cluster:
            room = "crash"
            http = Http(cluster.api_url)
            targets = [f"s{i}" for i in range(8)]
            for target in targets:
                http.post(f"/rooms/{room}/add_track", track(target))
            tally = Tally()
            run_clients(RestMix(cluster.api_url, room, tally, targets), clients=20, seconds=10,
                        at=3, fault=cluster.rest[0].kill)
            queue = {str(t["id"]): t["votes"] for t in http.get(f"/rooms/{room}/queue").json()}
            self.assertGreater(tally.outcomes["request"], 1000)
            self.assertFalse(cluster.rest[0].alive())
            self.check(tally, queue)
            measured(f"REST node killed: {tally.outcomes['request']} requests by 20 clients in 10 s, "
                     f"retried with the same key: {self.retries(tally)}; "
                     f"{len(tally.adds)} adds and {sum(tally.votes.values())} votes acknowledged, "
                     "none lost, none doubled, no read failed")
            http.close()

    def test_a_grpc_node_killed_under_load(self):
        with Cluster(rest=0, grpc=3, nginx=False, env=ROOMY) as cluster:
            room = "crash"
            channel = grpc_channel(cluster.grpc_target)
            stub = pb_grpc.QueueServiceStub(channel)
            targets = [f"s{i}" for i in range(8)]
            for target in targets:
                stub.AddTrack(pb.Track(id=target, title="t", artist="a", room=room), timeout=5)
            tally = Tally()

            def write(call) -> bool:
                key = (("idempotency-key", uuid.uuid4().hex),)

                def attempt():
                    try:
                        call(key)
                        return True
                    except grpc.RpcError as exc:
                        if exc.code() in RETRYABLE_GRPC:
                            return exc.code().name
                        tally.failures.append((exc.code().name, exc.details()))
                        return False

                return acknowledged(tally, attempt)

            def read():
                try:
                    stub.GetQueue(pb.Empty(room=room, limit=5), timeout=5)
                except grpc.RpcError as exc:
                    return exc.code().name
                return None

            def work(n: int, stop: threading.Event) -> None:
                party(n, stop, tally, targets,
                      vote=lambda target: write(lambda key: stub.VoteTrack(
                          pb.VoteRequest(id=target, up=True, room=room), timeout=5,
                          metadata=key)),
                      add=lambda track_id: write(lambda key: stub.AddTrack(
                          pb.Track(id=track_id, title="t", artist="a", room=room), timeout=5,
                          metadata=key)),
                      read=read)

            run_clients(work, clients=20, seconds=10, at=3, fault=cluster.grpc[0].kill)
            queue = {t.id: t.votes for t in stub.GetQueue(pb.Empty(room=room), timeout=5).queue}
            channel.close()
            self.assertGreater(tally.outcomes["request"], 300)
            self.check(tally, queue)
            measured(f"gRPC node killed: {tally.outcomes['request']} calls by 20 clients in 10 s, "
                     f"retried with the same key: {self.retries(tally)}; "
                     f"{len(tally.adds)} adds and {sum(tally.votes.values())} votes acknowledged, "
                     "none lost, none doubled, no read failed")


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
            node.popen.wait(15)
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

            run_clients(work, clients=4, seconds=8, at=1.5, fault=outage)
            statuses = Counter(s[2] for s in samples)
            self.assertLessEqual(set(statuses), {200, 503}, statuses)
            self.assertGreater(statuses[503], 0, "Redis was down, yet no request saw it")
            self.assertTrue(all("Redis" in detail for detail in details), details)
            for began, took, status, retry in samples:
                self.assertLess(took, 1.0, f"a request took {took:.2f}s")
                if status == 503:
                    self.assertEqual(retry, "1")
            first_ok_after = min(b + t for b, t, s, _ in samples if s == 200 and b >= back["at"])
            self.assertLess(first_ok_after - back["at"], 2.0)
            slowest = max(t for _, t, s, _ in samples if s == 503)
            measured(f"Redis down 3 s under load: {statuses[503]} answers 503 (slowest "
                     f"{slowest * 1000:.0f} ms), serving again {first_ok_after - back['at']:.2f} s "
                     "after Redis was back, streams resumed with a snapshot")
            late = [s for b, t, s, _ in samples if b >= back["at"] + 2.0]
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
