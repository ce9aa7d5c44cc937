"""Redis unreachable: 503 with Retry-After (REST) and UNAVAILABLE (gRPC) within 2 s, never
a hang or a 500, and the nodes recover by themselves when Redis is back; a gRPC node
stopped with SIGTERM lets its calls finish (a local cluster of its own)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import unittest
from collections import Counter

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .support import EXTERNAL, Http, grpc_channel, track

cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("stops and starts a redis-server of its own")
    cluster = Cluster(rest=2, grpc=2).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


class Outage(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(cluster.api_url, timeout=10)
        self.addCleanup(self.http.close)

    def timed(self, method: str, path: str, body=None):
        started = time.monotonic()
        reply = self.http.request(method, path, body)
        return reply, time.monotonic() - started

    def assertGrpcUnavailable(self) -> None:
        with grpc_channel(cluster.grpc_target) as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            for call in (lambda: stub.GetQueue(pb.Empty(), timeout=5),
                         lambda: stub.AddTrack(pb.Track(id="down", title="t", artist="a"),
                                               timeout=5),
                         lambda: stub.GetMetadata(pb.TrackId(id="x"), timeout=5)):
                for _ in range(2):  # both nodes
                    started = time.monotonic()
                    with self.assertRaises(grpc.RpcError) as caught:
                        call()
                    self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
                    self.assertIn("Redis", caught.exception.details())
                    self.assertLess(time.monotonic() - started, 2.0)

    def assertGrpcRecovers(self) -> None:
        with grpc_channel(cluster.grpc_target) as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            deadline = time.monotonic() + 2.0
            while True:
                try:
                    for _ in range(4):
                        stub.GetQueue(pb.Empty(), timeout=1)
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def assertUnavailable(self) -> None:
        for method, path, body in [("GET", "/queue", None), ("POST", "/add_track", track("down")),
                                   ("POST", "/vote?id=x", None), ("GET", "/metadata/x", None),
                                   ("GET", "/readyz", None)]:
            for _ in range(2):  # both nodes
                reply, took = self.timed(method, path, body)
                self.assertEqual(reply.status, 503, (path, reply.body))
                self.assertEqual(reply.headers.get("retry-after"), "1")
                self.assertIn("Redis", reply.json()["detail"])
                self.assertLess(took, 2.0, path)
        self.assertEqual(self.http.get("/healthz").status, 200)

    def assertRecovers(self) -> None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            statuses = {self.http.get("/queue").status for _ in range(4)}
            if statuses == {200}:
                break
            time.sleep(0.05)
        else:
            self.fail("the nodes did not serve again within 2 s of Redis coming back")
        self.assertEqual(self.http.post("/add_track", track(f"back-{time.time_ns()}")).status, 200)

    def test_redis_stopped(self):
        self.assertEqual(self.http.get("/queue").status, 200)
        cluster.redis.stop()
        try:
            self.assertUnavailable()
            self.assertGrpcUnavailable()
        finally:
            cluster.start_redis()
        self.assertRecovers()
        self.assertGrpcRecovers()

    def test_redis_frozen(self):
        self.assertEqual(self.http.get("/queue").status, 200)
        cluster.redis.signal(signal.SIGSTOP)
        try:
            for path in ("/queue", "/readyz", "/now_playing"):
                reply, took = self.timed("GET", path)
                self.assertEqual(reply.status, 503, reply.body)
                self.assertLess(took, 2.0)
        finally:
            cluster.redis.signal(signal.SIGCONT)
        self.assertRecovers()


    def test_redis_loading_its_data(self):
        """A restarted Redis refuses commands with LOADING until its data is in memory
        (here slowed down to 20 s, and cut short); a node answers 503, not 500, also for the
        writes that run as a MULTI/EXEC transaction (Redis aborts them with EXECABORT)."""
        self.assertEqual(self.http.post("/add_track", track("loaded")).status, 200)
        # 4,000 keys of 1 KiB that do not compress: Redis answers clients between any two
        # keys, and sleeps 5 ms per key, so the load lasts 20 s however fast the machine.
        fillers = [f"filler:{n}" for n in range(4000)]
        redis_commands(cluster.redis_port,
                       *(f"SET {key} {os.urandom(512).hex()}" for key in fillers), "SAVE")
        cluster.redis.stop()
        try:
            cluster.start_redis(extra=("--key-load-delay", "5000",
                                       "--loading-process-events-interval-bytes", "1024"),
                                loaded=False)
            self.assertUnavailable()
            for path in ("/vote?id=loaded&head=3", "/play_next"):
                # A node whose last dial failed (Redis was down) says "no connection" until
                # it dials again, RECONNECT_PAUSE later: a 503 too; then "loading".
                deadline = time.monotonic() + 5.0
                while True:
                    reply, took = self.timed("POST", path)
                    self.assertEqual(reply.status, 503, (path, reply.body))
                    if "loading" in reply.json()["detail"] or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                self.assertIn("loading", reply.json()["detail"])
            self.assertGrpcUnavailable()
            self.assertEqual(redis_commands(cluster.redis_port, "PING", check=False)[0][:8],
                             b"-LOADING", "Redis finished loading before the checks did")
        finally:
            cluster.redis.stop()
            cluster.start_redis()
        self.assertRecovers()
        self.assertGrpcRecovers()
        self.assertEqual(self.http.get("/metadata/loaded").json()["votes"], 0)
        redis_commands(cluster.redis_port, "DEL " + " ".join(fillers), "SAVE")


def redis_commands(port: int, *commands: str, check: bool = True) -> list[bytes]:
    """Send Redis inline commands in one go and return their (one-line) replies; an error
    reply fails unless ``check`` is off."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall("".join(f"{command}\r\n" for command in commands).encode())
        received = b""
        while received.count(b"\r\n") < len(commands):
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            received += chunk
    replies = received.split(b"\r\n")[:len(commands)]
    if check and any(reply.startswith(b"-") for reply in replies):
        raise AssertionError(f"Redis refused a command: {replies}")
    return replies


class GrpcShutdown(unittest.TestCase):
    def test_sigterm_lets_calls_in_flight_finish(self):
        node = cluster.add_grpc_node()
        target = cluster.grpc_targets[-1]
        outcomes: Counter = Counter()
        acknowledged: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            with grpc_channel("ipv4:" + target) as channel:
                stub = pb_grpc.QueueServiceStub(channel)
                for i in range(10_000):
                    if stop.is_set():
                        return
                    track_id = f"sd{n}-{i}"
                    try:
                        stub.AddTrack(pb.Track(id=track_id, title="t", artist="a", room="shutdown"),
                                      timeout=5)
                        with lock:
                            acknowledged.append(track_id)
                            outcomes["ok"] += 1
                    except grpc.RpcError as exc:
                        with lock:
                            outcomes[exc.code().name] += 1
                        if exc.code() == grpc.StatusCode.UNAVAILABLE:
                            return

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        node.signal(signal.SIGTERM)
        node.popen.wait(10)
        took = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(10)
        self.assertEqual(node.popen.returncode, 0, node.tail())
        self.assertLess(took, 6.0)
        self.assertGreater(outcomes["ok"], 0)
        self.assertLessEqual(set(outcomes), {"ok", "UNAVAILABLE"}, outcomes)
        with grpc_channel(cluster.grpc_targets[0]) as channel:
            queued = pb_grpc.QueueServiceStub(channel).GetQueue(pb.Empty(room="shutdown"),
                                                                timeout=5)
        self.assertLessEqual(set(acknowledged), {t.id for t in queued.queue})
