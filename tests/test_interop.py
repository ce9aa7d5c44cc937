"""REST and gRPC on one Redis: the same queue seen through both front doors."""

from __future__ import annotations

import unittest

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .support import (
    EXTERNAL,
    Http,
    admin_headers,
    admin_metadata,
    grpc_channel,
    local_cluster,
    track,
    unique,
)


class Interop(unittest.TestCase):
    def setUp(self) -> None:
        if EXTERNAL:
            self.skipTest("needs both front doors of one local cluster")
        cluster = local_cluster()
        self.http = Http(cluster.api_url)
        self.addCleanup(self.http.close)
        self.channel = grpc_channel(cluster.grpc_target)
        self.addCleanup(self.channel.close)
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = unique("both")

    def test_a_track_added_over_grpc_is_an_integer_id_over_rest(self):
        self.stub.AddTrack(pb.Track(id="123", title="Song Title", artist="Artist Name",
                                    duration=200, room=self.room), timeout=5)
        queue = self.http.get(f"/rooms/{self.room}/queue").json()
        self.assertEqual(queue[0]["id"], 123)
        self.assertEqual(self.http.get(f"/rooms/{self.room}/metadata/123").json()["title"],
                         "Song Title")

    def test_a_track_added_over_rest_is_a_string_id_over_grpc(self):
        self.http.post(f"/rooms/{self.room}/add_track", track(456))
        self.http.post(f"/rooms/{self.room}/vote?id=456")
        reply = self.stub.GetQueue(pb.Empty(room=self.room), timeout=5)
        self.assertEqual([(t.id, t.votes) for t in reply.queue], [("456", 1)])
        self.stub.VoteTrack(pb.VoteRequest(id="456", up=True, room=self.room), timeout=5)
        self.assertEqual(self.http.get(f"/rooms/{self.room}/metadata/456").json()["votes"], 2)

    def test_play_over_one_door_history_over_the_other(self):
        self.http.post(f"/rooms/{self.room}/add_track", track("x1"))
        self.stub.AddTrack(pb.Track(id="x2", title="t", artist="a", room=self.room), timeout=5)
        played = self.stub.PlayNext(pb.Empty(room=self.room), timeout=5, metadata=admin_metadata())
        self.assertEqual(played.id, "x1")
        self.http.post(f"/rooms/{self.room}/play_next", headers=admin_headers())
        history = self.http.get(f"/rooms/{self.room}/history").json()
        self.assertEqual([t["id"] for t in history], ["x2", "x1"])
        grpc_history = self.stub.GetHistory(pb.Empty(room=self.room), timeout=5)
        self.assertEqual([t.id for t in grpc_history.queue], ["x2", "x1"])
        self.assertEqual(grpc_history.queue[1].played_at,
                         played.played_at)
