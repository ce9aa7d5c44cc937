"""Over a real Redis Cluster (3 primaries, 3 replicas, on loopback): rooms spread over the
shards, every primary has the functions, a busy room's slot moves to another primary
under load without losing or doubling an acknowledged write or leaving a live listener
behind, and settings that lead nowhere stop a node at start, naming the variable.

The API and concurrency suites run over a cluster too: ``TEST_REDIS=cluster python -m
unittest tests.test_rest_api ...`` (CI does).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import unittest
from collections import Counter

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import ROOT, Cluster, free_port
from .doors import GrpcDoor, RestDoor
from .redis_servers import command, migrate_slot, slot_owner
from .support import EXTERNAL, EventStream, Http, grpc_channel, track, unique

cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts a Redis Cluster of its own")
    cluster = Cluster(rest=2, grpc=1, redis_cluster=True,
                      env={"MAX_QUEUE": "1000000"}).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


def slot_of(room: str) -> int:
    from shared.store.cluster import slot_of as slot

    return slot(f"mq:{{{room}}}:queue")


class Sharding(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(cluster.api_url)
        self.addCleanup(self.http.close)

    def test_rooms_land_on_all_three_primaries(self):
        primaries = cluster.redis_cluster.primary_ports()
        self.assertEqual(len(primaries), 3)
        rooms = [unique("shard") for _ in range(30)]
        for room in rooms:
            self.assertEqual(self.http.post(f"/rooms/{room}/add_track", track("a")).status, 200)
        owners = Counter(slot_owner(primaries[0], slot_of(room)) for room in rooms)
        self.assertEqual(set(owners), set(primaries), owners)
        for port in primaries:  # each primary holds the keys of its own rooms only
            held = [room for room in rooms if command(port, "EXISTS", f"mq:{{{room}}}:queue")
                    .strip() == "1"]
            self.assertEqual(len(held), owners[port])

    def test_a_redis_url_that_is_a_cluster_node_seeds_the_cluster(self):
        """REDIS_URL alone, naming one node of a cluster (what the Compose override does):
        the node finds the cluster and routes every room to its shard."""
        seed = cluster.redis_cluster.seeds.split(",")[0]
        node = cluster.add_rest_node(REDIS_CLUSTER="", REDIS_URL=f"redis://{seed}/0")
        self.addCleanup(lambda: (node.stop(), cluster.rest.remove(node),
                                 cluster.rest_ports.pop()))
        http = Http(cluster.rest_urls[-1])
        self.addCleanup(http.close)
        rooms = [unique("seeded") for _ in range(12)]
        for room in rooms:
            reply = http.post(f"/rooms/{room}/add_track", track("a"))
            self.assertEqual(reply.status, 200, reply)
        primaries = cluster.redis_cluster.primary_ports()
        owners = {slot_owner(primaries[0], slot_of(room)) for room in rooms}
        self.assertGreater(len(owners), 1, "every room went to one Redis")

    def test_every_primary_has_the_functions_and_gets_them_back(self):
        from shared import functions

        for port in cluster.redis_cluster.primary_ports():
            self.assertIn(functions.LIBRARY, command(port, "FUNCTION", "LIST"))
        room = unique("flushed")
        port = slot_owner(cluster.redis_cluster.ports[0], slot_of(room))
        command(port, "FUNCTION", "FLUSH")
        self.assertEqual(self.http.post(f"/rooms/{room}/add_track", track("a")).status, 200)
        self.assertIn(functions.LIBRARY, command(port, "FUNCTION", "LIST"))


class Listener(threading.Thread):
    """Everything one live stream shows, as (kind, version) pairs."""

    def __init__(self, read):
        super().__init__(daemon=True)
        self.read = read
        self.seen: list[tuple[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self.read(self)
        except Exception as exc:  # the stream ended: noted for the test to judge
            self.seen.append(("ended", repr(exc)))


def sse(base: str, room: str):
    def read(listener: Listener) -> None:
        stream = EventStream(base, f"/rooms/{room}/events", timeout=10)
        try:
            while not listener.stop.is_set():
                event = stream.next_event(timeout=10)
                listener.seen.append((event["event"], event["data"]["version"]))
        finally:
            stream.close()
    return read


def watch(target: str, room: str):
    def read(listener: Listener) -> None:
        with grpc_channel(target) as channel:
            call = pb_grpc.QueueServiceStub(channel).Watch(pb.Empty(room=room))
            listener.call = call
            try:
                for event in call:
                    listener.seen.append((event.type, event.version))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    raise
    return read


class SlotMove(unittest.TestCase):
    def judge(self, listener: Listener, final: int) -> tuple[int, int]:
        """Versions only grow; every change is shown, or a snapshot after it covers it; the
        last thing shown is the final version. Returns (events, snapshots) shown."""
        seen = [s for s in listener.seen if s[0] != "ended"]
        self.assertTrue(seen and seen[0][0] == "snapshot", listener.seen[:3])
        last = seen[0][1]
        for kind, version in seen[1:]:
            if kind == "snapshot":
                self.assertGreaterEqual(version, last)
            else:
                self.assertEqual(version, last + 1, f"a change was skipped: {seen}")
            last = version
        self.assertEqual(last, final, listener.seen[-5:])
        return (sum(k != "snapshot" for k, _ in seen), sum(k == "snapshot" for k, _ in seen))

    def test_a_busy_rooms_slot_moves_to_another_primary_under_load(self):
        room = unique("moving")
        http = Http(cluster.api_url)
        self.addCleanup(http.close)
        targets = [f"s{i}" for i in range(8)]
        for target in targets:
            self.assertEqual(http.post(f"/rooms/{room}/add_track", track(target)).status, 200)
        listeners = [Listener(sse(cluster.rest_urls[0], room)),
                     Listener(watch(cluster.grpc_target, room))]
        for listener in listeners:
            listener.start()
        time.sleep(1.0)
        doors = [RestDoor(cluster.api_url, room, retry=True),
                 GrpcDoor(cluster.grpc_target, room, retry=True)]
        tally = {"adds": set(), "votes": Counter(), "failures": []}
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int) -> None:
            door = doors[n % 2]
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if i % 3:
                        target = targets[(n + i) % len(targets)]
                        if door.vote(target) == "ok":
                            with lock:
                                tally["votes"][target] += 1
                    elif door.add(f"c{n}-{i}") == "ok":
                        with lock:
                            tally["adds"].add(f"c{n}-{i}")
                except Exception as exc:
                    tally["failures"].append(repr(exc))
            door.close_thread()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        slot = slot_of(room)
        primaries = cluster.redis_cluster.primary_ports()
        source = slot_owner(primaries[0], slot)
        target = next(p for p in primaries if p != source)
        moved = migrate_slot(slot, source, target, primaries)
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join(30)
        self.assertEqual(slot_owner(primaries[0], slot), target)
        self.assertEqual(tally["failures"], [])
        queue = {str(t["id"]): t["votes"] for t in http.get(f"/rooms/{room}/queue").json()}
        self.assertEqual(set(queue) - set(targets), tally["adds"], "adds lost or doubled")
        for name in targets:
            self.assertEqual(queue[name], tally["votes"][name], f"{name}: votes lost or doubled")
        final = int(http.get(f"/rooms/{room}/queue").headers["etag"].strip('"'))
        time.sleep(1.0)
        for listener in listeners:
            listener.stop.set()
        listeners[1].call.cancel()
        shown = [self.judge(listener, final) for listener in listeners]
        retried = sum(sum(d.retries.values()) for d in doors)
        sys.stderr.write(
            f"\n  measured: slot {slot} of a busy room moved ({moved} keys) under 20 clients: "
            f"{len(tally['adds'])} adds and {sum(tally['votes'].values())} votes acknowledged, "
            f"none lost or doubled, {retried} retried with their key; listeners saw "
            f"{shown[0][0]} events + {shown[0][1]} snapshots (SSE) and "
            f"{shown[1][0]} + {shown[1][1]} (Watch), none missed\n")
        for door in doors:
            door.close()


class BadSettings(unittest.TestCase):
    def start(self, module: str, **env: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()),
                       "GRPC_PORT": str(free_port()), **env}
        environment.pop("REDIS_URL", None)
        return subprocess.run([sys.executable, "-m", module], env=environment, cwd=ROOT,
                              capture_output=True, text=True, timeout=30)

    def test_settings_that_lead_to_no_cluster_stop_a_node_at_start(self):
        plain = free_port()
        server = subprocess.Popen(["redis-server", "--port", str(plain), "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL)
        self.addCleanup(server.wait, 5)
        self.addCleanup(server.terminate)
        time.sleep(0.3)
        cases = [("127.0.0.1", "must be host:port"),
                 (f"127.0.0.1:{free_port()}", "no seed node answered"),
                 (f"127.0.0.1:{plain}", "not a Redis Cluster node")]
        for module in ("rest", "grpc_svc.server"):
            for value, words in cases:
                with self.subTest(module=module, value=value):
                    result = self.start(module, REDIS_CLUSTER=value)
                    self.assertNotEqual(result.returncode, 0)
                    self.assertIn("REDIS_CLUSTER", result.stderr)
                    self.assertIn(words, result.stderr)
