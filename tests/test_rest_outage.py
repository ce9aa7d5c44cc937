"""Redis unreachable: 503 with Retry-After within 2 s, never a hang or a 500, and the nodes
recover by themselves when Redis is back (a local cluster of its own)."""

from __future__ import annotations

import signal
import time
import unittest

from .cluster import Cluster
from .support import EXTERNAL, Http, track

cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("stops and starts a redis-server of its own")
    cluster = Cluster(rest=2).start()


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
        finally:
            cluster.start_redis()
        self.assertRecovers()

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
