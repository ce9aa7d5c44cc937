"""Server settings: ADMIN_TOKEN, REQUIRE_VOTER, MAX_QUEUE, HISTORY_LIMIT, through both
front doors (a local cluster of its own)."""

from __future__ import annotations

import unittest

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .support import EXTERNAL, Http, admin_headers, admin_metadata, grpc_channel, track, unique

TOKEN = "s3cret-token"
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts nodes with settings of its own")
    cluster = Cluster(rest=2, grpc=1, env={"ADMIN_TOKEN": TOKEN, "REQUIRE_VOTER": "1",
                                   "MAX_QUEUE": "3", "HISTORY_LIMIT": "2"}).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


class RestSettings(unittest.TestCase):
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
        self.assertEqual(self.http.post(self.at("/play_next"),
                                        headers=admin_headers(TOKEN)).status, 200)
        self.assertEqual(self.add("b"), 200)
        self.assertEqual(self.http.post(self.at("/remove_track"), {"id": "b"},
                                        headers=admin_headers(TOKEN)).status, 200)
        self.assertEqual(self.http.post(self.at("/clear"),
                                        headers=admin_headers(TOKEN)).status, 200)

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


class GrpcSettings(unittest.TestCase):
    def setUp(self) -> None:
        self.channel = grpc_channel(cluster.grpc_target)
        self.addCleanup(self.channel.close)
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = unique("room")

    def add(self, track_id: str):
        return self.stub.AddTrack(pb.Track(id=track_id, title="t", artist="a", room=self.room),
                                  timeout=5)

    def code(self, call) -> grpc.StatusCode:
        try:
            call()
        except grpc.RpcError as exc:
            self.assertTrue(exc.details())
            return exc.code()
        return grpc.StatusCode.OK

    def test_host_calls_need_the_admin_token(self):
        self.add("a")
        room = pb.Empty(room=self.room)
        calls = [lambda md: self.stub.RemoveTrack(pb.TrackId(id="a", room=self.room), timeout=5,
                                                  metadata=md),
                 lambda md: self.stub.PlayNext(room, timeout=5, metadata=md),
                 lambda md: self.stub.Clear(room, timeout=5, metadata=md)]
        for call in calls:
            self.assertEqual(self.code(lambda call=call: call(())),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(self.code(lambda call=call: call(admin_metadata("nope"))),
                             grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.stub.PlayNext(room, timeout=5,
                                            metadata=admin_metadata(TOKEN)).id, "a")

    def test_anonymous_votes_are_refused_when_a_voter_is_required(self):
        self.add("a")
        anonymous = pb.VoteRequest(id="a", up=True, room=self.room)
        self.assertEqual(self.code(lambda: self.stub.VoteTrack(anonymous, timeout=5)),
                         grpc.StatusCode.INVALID_ARGUMENT)
        signed = pb.VoteRequest(id="a", up=True, room=self.room, voter="ann")
        self.assertEqual(self.stub.VoteTrack(signed, timeout=5).track.votes, 1)

    def test_a_full_queue_is_a_failed_precondition(self):
        for track_id in ("a", "b", "c"):
            self.add(track_id)
        self.assertEqual(self.code(lambda: self.add("d")), grpc.StatusCode.FAILED_PRECONDITION)
