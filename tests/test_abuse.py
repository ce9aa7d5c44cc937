"""Abuse: nginx's per-address limits (on here, off for the other local tests), the admin
token compared in constant time, room names kept to their own keys, no secret logged."""

from __future__ import annotations

import threading
import unittest
from unittest import mock

from shared import auth, errors

from .cluster import Cluster
from .support import EXTERNAL, EventStream, Http, admin_headers, track

SECRET = "correct-horse-battery-staple"
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts a cluster with rate limits on")
    cluster = Cluster(rest=1, rate_limits=True, env={"ADMIN_TOKEN": SECRET}).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


class RateLimits(unittest.TestCase):
    def test_writes_over_the_rate_get_429_with_a_json_detail(self):
        http = Http(cluster.api_url)
        self.addCleanup(http.close)
        replies = [http.post("/rooms/flood/vote?id=nothing") for _ in range(80)]
        statuses = [r.status for r in replies]
        self.assertEqual(statuses[:40].count(429), 0, statuses)  # the burst is served
        limited = [r for r in replies if r.status == 429]
        self.assertGreater(len(limited), 20)
        self.assertEqual(limited[0].headers["retry-after"], "1")
        self.assertIn("too many requests", limited[0].json()["detail"])
        self.assertEqual({r.status for r in replies} - {429}, {404})  # the rest reached a node

    def test_reads_are_not_limited(self):
        http = Http(cluster.api_url)
        self.addCleanup(http.close)
        self.assertEqual({http.get("/rooms/flood/queue").status for _ in range(150)}, {200})

    def test_open_event_streams_per_address_are_limited(self):
        streams = []
        try:
            for _ in range(10):
                stream = EventStream(cluster.api_url, "/rooms/streams/events")
                streams.append(stream)
                self.assertEqual(stream.status, 200)
                stream.next_event()
            extra = EventStream(cluster.api_url, "/rooms/streams/events")
            streams.append(extra)
            self.assertEqual(extra.status, 429)
        finally:
            for stream in streams:
                stream.close()


class AdminToken(unittest.TestCase):
    def test_the_token_is_compared_in_constant_time(self):
        with mock.patch.object(auth.hmac, "compare_digest",
                               wraps=auth.hmac.compare_digest) as compare:
            auth.check_admin(SECRET, f"Bearer {SECRET}")
            with self.assertRaises(errors.AdminTokenWrong):
                auth.check_admin(SECRET, "Bearer nope")
        self.assertEqual(compare.call_count, 2)
        with self.assertRaises(errors.AdminTokenMissing):
            auth.check_admin(SECRET, None)
        auth.check_admin("", None)  # no token configured: everyone is the host

    def test_no_secret_reaches_the_logs(self):
        http = Http(cluster.api_url)
        self.addCleanup(http.close)
        http.post("/rooms/secret/add_track", track("s1"))
        for headers in (admin_headers(SECRET), admin_headers("wrong-" + SECRET), {}):
            http.post("/rooms/secret/play_next", headers=headers)
        threading.Event().wait(0.2)
        for process in (*cluster.rest, cluster.nginx, cluster.redis):
            self.assertNotIn(SECRET, process.log.read_text(errors="replace"), process.name)


class Rooms(unittest.TestCase):
    def test_room_names_cannot_reach_other_keys(self):
        http = Http(cluster.api_url)
        self.addCleanup(http.close)
        for room in ("a%7Db", "%7Bx%7D", "%2A", "..", "a:b", "x%00"):
            reply = http.get(f"/rooms/{room}/queue")
            self.assertIn(reply.status, (400, 404, 422), room)
            self.assertIn("detail", reply.json())
