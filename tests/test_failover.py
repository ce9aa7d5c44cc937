"""A Redis dies, the party goes on: a cluster primary killed under load, and a Sentinel
failover, each with 20 clients over two REST nodes writing with idempotency keys.

What each run checks and measures (the README's reliability table quotes the lines these
tests print): clients get 200 or 503 only (never a 500, never a hang); requests to rooms
on the other shards do not fail; the shard serves again within seconds; and every
acknowledged add is counted against what the new primary holds. With
REDIS_WAIT_REPLICAS=1 none may be lost.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import unittest
import uuid
from collections import Counter

from .cluster import Cluster
from .redis_servers import slot_owner
from .support import EXTERNAL, EventStream, Http, track

RUN_SECONDS = 9.0
MAX_RUN = 30.0  # seconds after the fault: a shard not serving by then never will
KILL_AT = 2.0
CLIENTS = 20
ENV = {"MAX_QUEUE": "1000000"}
SLOW = 2.5  # seconds: an answer slower than this is a hang (REDIS_TIMEOUT_MS is 0.75 s)


def setUpModule() -> None:
    if EXTERNAL:
        raise unittest.SkipTest("kills Redis servers of its own")


def measured(text: str) -> None:
    sys.stderr.write(f"\n  measured: {text}\n")


def slot_of(room: str) -> int:
    from shared.store.cluster import slot_of as slot

    return slot(f"mq:{{{room}}}:queue")


class Load:
    """CLIENTS threads adding tracks to ``rooms`` through ``urls`` (round robin), each add
    with an idempotency key and sent again with the same key after a 503 or a lost
    connection, until it is acknowledged or the run ends."""

    def __init__(self, urls: list[str], rooms: list[str]):
        self.urls, self.rooms = urls, rooms
        self.lock = threading.Lock()
        self.acked: dict[str, set[str]] = {room: set() for room in rooms}
        self.samples: list[tuple[float, float, str, object]] = []  # start, took, room, status
        self.stop = threading.Event()

    def client(self, n: int) -> None:
        http = Http(self.urls[n % len(self.urls)], timeout=10)
        room = self.rooms[n % len(self.rooms)]
        i = 0
        while not self.stop.is_set():
            i += 1
            track_id, key = f"c{n}-{i}", uuid.uuid4().hex
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    status: object = http.post(f"/rooms/{room}/add_track?head=0", track(track_id),
                                               headers={"Idempotency-Key": key}).status
                except OSError as exc:
                    status = type(exc).__name__
                with self.lock:
                    self.samples.append((began, time.monotonic() - began, room, status))
                if status == 200:
                    with self.lock:
                        self.acked[room].add(track_id)
                    break
                time.sleep(0.02)
        http.close()

    def served_since(self, room: str, since: float) -> bool:
        with self.lock:
            return any(b > since and s == 200 and r == room for b, _, r, s in self.samples)

    def run(self, fault, hit: str) -> float:
        """Load, the fault at KILL_AT, then load for the rest of RUN_SECONDS and at least
        2 s after ``hit`` served again (at most MAX_RUN seconds: then it never did)."""
        threads = [threading.Thread(target=self.client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(KILL_AT)
        at = time.monotonic()
        fault()
        time.sleep(max(0.0, at + RUN_SECONDS - KILL_AT - time.monotonic()))
        while not self.served_since(hit, at) and time.monotonic() < at + MAX_RUN:
            time.sleep(0.1)
        time.sleep(2.0)
        self.stop.set()
        for thread in threads:
            thread.join(30)
        return at


class Failover(unittest.TestCase):
    def judge(self, load: Load, killed_at: float, hit: str, others: list[str]) -> dict:
        statuses = Counter(s for _, _, _, s in load.samples)
        self.assertLessEqual(set(statuses), {200, 503}, statuses)  # never a 500 or a reset
        slowest = max(t for _, t, _, _ in load.samples)
        self.assertLess(slowest, SLOW, "an answer took too long: a hang")
        for room in others:  # the rooms on the other shards kept serving
            failed = [s for _, _, r, s in load.samples if r == room and s != 200]
            self.assertEqual(failed, [], room)
        back = [b + t for b, t, r, s in load.samples if r == hit and s == 200 and b > killed_at]
        self.assertTrue(back, "the failed shard never served again")
        first_503 = [b for b, _, r, s in load.samples if r == hit and s == 503]
        return {"outage_s": round(min(back) - killed_at, 2),
                "answers_503": statuses[503], "first_503": bool(first_503),
                "requests": len(load.samples)}

    def lost(self, http: Http, load: Load, room: str) -> int:
        present = {str(t["id"]) for t in http.get(f"/rooms/{room}/queue").json()}
        return len(load.acked[room] - present)

    def cluster_kill(self, wait_replicas: int) -> None:
        env = {**ENV, "REDIS_WAIT_REPLICAS": str(wait_replicas)}
        with Cluster(rest=2, redis_cluster=True, env=env) as cluster:
            primaries = cluster.redis_cluster.primary_ports()
            rooms: dict[int, str] = {}
            while len(rooms) < 3:  # one room on each primary
                room = f"fo-{uuid.uuid4().hex[:8]}"
                rooms.setdefault(slot_owner(primaries[0], slot_of(room)), room)
            victim = primaries[0]
            hit = rooms[victim]
            others = [r for p, r in rooms.items() if p != victim]
            http = Http(cluster.api_url)
            self.addCleanup(http.close)
            for room in rooms.values():
                self.assertEqual(http.post(f"/rooms/{room}/add_track", track("first")).status,
                                 200)
            stream = EventStream(cluster.rest_urls[0], f"/rooms/{hit}/events", timeout=10)
            self.addCleanup(stream.close)
            self.assertEqual(stream.next_event()["event"], "snapshot")
            load = Load(cluster.rest_urls, list(rooms.values()))
            server = cluster.redis_cluster.servers[victim]

            def fault() -> None:
                server.signal(signal.SIGKILL)
                if wait_replicas:
                    # the promoted replica has no replica of its own until the old primary
                    # comes back as one: writes to the shard wait for that. (Started from
                    # this thread: a process dies with the thread that started it.)
                    time.sleep(2.0)
                    cluster.redis_cluster.start_node(victim)

            killed_at = load.run(fault, hit)
            result = self.judge(load, killed_at, hit, others)
            lost = self.lost(http, load, hit)
            if wait_replicas:
                self.assertEqual(lost, 0, "an acknowledged write was lost with WAIT")
            # the live stream of the affected room resumed with a fresh snapshot
            deadline = time.monotonic() + 10
            while stream.next_event(timeout=10)["event"] != "snapshot":
                self.assertLess(time.monotonic(), deadline, "no snapshot after the failover")
            acked = sum(len(a) for a in load.acked.values())
            measured(f"cluster primary killed (REDIS_WAIT_REPLICAS={wait_replicas}, "
                     f"cluster-node-timeout 1000 ms): {result['requests']} requests by "
                     f"{CLIENTS} clients over 2 nodes; the shard served again "
                     f"{result['outage_s']} s after the kill; {result['answers_503']} x 503, "
                     f"no other 5xx; 0 failed on the other shards; {acked} adds acknowledged, "
                     f"{lost} lost; the room's live stream resumed with a snapshot")

    def test_a_cluster_primary_killed_under_load(self):
        self.cluster_kill(wait_replicas=0)

    def test_a_cluster_primary_killed_under_load_with_wait(self):
        self.cluster_kill(wait_replicas=1)

    def test_a_sentinel_failover_under_load(self):
        with Cluster(rest=2, redis_sentinel=True, env=ENV) as cluster:
            room = f"sf-{uuid.uuid4().hex[:8]}"
            http = Http(cluster.api_url)
            self.addCleanup(http.close)
            self.assertEqual(http.post(f"/rooms/{room}/add_track", track("first")).status, 200)
            stream = EventStream(cluster.rest_urls[0], f"/rooms/{room}/events", timeout=10)
            self.addCleanup(stream.close)
            self.assertEqual(stream.next_event()["event"], "snapshot")
            sentinel = cluster.redis_sentinel
            old = sentinel.primary_port()
            load = Load(cluster.rest_urls, [room])
            killed_at = load.run(lambda: sentinel.servers[old].signal(signal.SIGKILL), room)
            self.assertNotEqual(sentinel.primary_port(), old, "Sentinel did not fail over")
            result = self.judge(load, killed_at, room, [])
            lost = self.lost(http, load, room)
            deadline = time.monotonic() + 10
            while stream.next_event(timeout=10)["event"] != "snapshot":
                self.assertLess(time.monotonic(), deadline, "no snapshot after the failover")
            measured(f"Sentinel failover (primary killed, down-after 1000 ms): "
                     f"{result['requests']} requests by {CLIENTS} clients over 2 nodes; served "
                     f"again {result['outage_s']} s after the kill; {result['answers_503']} x "
                     f"503, no other 5xx; {len(load.acked[room])} adds acknowledged, {lost} lost;"
                     " the live stream resumed with a snapshot")
