"""Server settings: ADMIN_TOKEN, REQUIRE_VOTER, MAX_QUEUE, HISTORY_LIMIT (local cluster)."""

from __future__ import annotations

import unittest

from .cluster import Cluster
from .support import EXTERNAL, Http, admin_headers, track, unique

TOKEN = "s3cret-token"
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts nodes with settings of its own")
    cluster = Cluster(rest=2, env={"ADMIN_TOKEN": TOKEN, "REQUIRE_VOTER": "1",
                                   "MAX_QUEUE": "3", "HISTORY_LIMIT": "2"}).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


class Settings(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(cluster.api_url)
        self.addCleanup(self.http.close)
        self.room = unique("room")

    def at(self, path: str) -> str:
        return f"/rooms/{self.room}{path}"

    def add(self, track_id) -> int:
        return self.http.post(self.at("/add_track"), track(track_id)).status

    def test_host_operations_need_the_admin_token(self):
        self.assertEqual(self.add("a"), 200)  # guests may add
        self.assertEqual(self.http.post(self.at("/vote?id=a&voter=ann")).status, 200)
        for path, body in (("/remove_track", {"id": "a"}), ("/play_next", None), ("/clear", None)):
            missing = self.http.post(self.at(path), body)
            self.assertEqual(missing.status, 401, missing.body)
            self.assertIn("admin token", missing.json()["detail"])
            self.assertIn("Bearer", missing.headers["www-authenticate"])
            wrong = self.http.post(self.at(path), body, headers=admin_headers("nope"))
            self.assertEqual(wrong.status, 403, wrong.body)
            basic = self.http.post(self.at(path), body, headers={"Authorization": f"Basic {TOKEN}"})
            self.assertEqual(basic.status, 403, basic.body)
        self.assertEqual([t["id"] for t in self.http.get(self.at("/queue")).json()], ["a"])
        self.assertEqual(self.http.post(self.at("/play_next"), headers=admin_headers(TOKEN)).status, 200)
        self.assertEqual(self.add("b"), 200)
        self.assertEqual(self.http.post(self.at("/remove_track"), {"id": "b"},
                                        headers=admin_headers(TOKEN)).status, 200)
        self.assertEqual(self.http.post(self.at("/clear"), headers=admin_headers(TOKEN)).status, 200)

    def test_anonymous_votes_are_refused_when_a_voter_is_required(self):
        self.add("a")
        reply = self.http.post(self.at("/vote?id=a"))
        self.assertEqual(reply.status, 422, reply.body)
        self.assertIn("voter", reply.json()["detail"])
        self.assertEqual(self.http.post(self.at("/vote?id=a&voter=ann")).status, 200)

    def test_a_full_queue_refuses_adds(self):
        for track_id in ("a", "b", "c"):
            self.assertEqual(self.add(track_id), 200)
        full = self.http.post(self.at("/add_track"), track("d"))
        self.assertEqual(full.status, 409, full.body)
        self.assertIn("full", full.json()["detail"])
        self.http.post(self.at("/play_next"), headers=admin_headers(TOKEN))
        self.assertEqual(self.add("d"), 200)

    def test_history_is_capped(self):
        for track_id in ("a", "b", "c"):
            self.add(track_id)
        for _ in range(3):
            self.http.post(self.at("/play_next"), headers=admin_headers(TOKEN))
        self.assertEqual([t["id"] for t in self.http.get(self.at("/history")).json()], ["c", "b"])
        self.assertEqual(self.http.get(self.at("/metadata/a")).status, 404)
