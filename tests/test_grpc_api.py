"""The gRPC API, contract §2 and §4: every method and every error status, over two nodes
balanced round robin (or GRPC_TARGET)."""

from __future__ import annotations

import time
import unittest

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .support import admin_metadata, default_room, grpc_channel, unique

TIMEOUT = 5


class GrpcCase(unittest.TestCase):
    def setUp(self) -> None:
        self.channel = grpc_channel()
        self.addCleanup(self.channel.close)
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = unique("room")

    def add(self, track_id: str, **fields) -> pb.QueueResponse:
        fields = {"title": "Song Title", "artist": "Artist Name", "duration": 200, **fields}
        return self.stub.AddTrack(pb.Track(id=track_id, room=self.room, **fields), timeout=TIMEOUT)

    def vote(self, track_id: str, up: bool = True, voter: str = "") -> pb.QueueResponse:
        return self.stub.VoteTrack(pb.VoteRequest(id=track_id, up=up, room=self.room, voter=voter),
                                   timeout=TIMEOUT)

    def play(self) -> pb.Track:
        return self.stub.PlayNext(pb.Empty(room=self.room), timeout=TIMEOUT,
                                  metadata=admin_metadata())

    def queue(self, **page) -> list[tuple[str, int]]:
        reply = self.stub.GetQueue(pb.Empty(room=self.room, **page), timeout=TIMEOUT)
        return [(t.id, t.votes) for t in reply.queue]

    def assertStatus(self, call, code: grpc.StatusCode, *words: str) -> str:
        with self.assertRaises(grpc.RpcError) as caught:
            call()
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        details = caught.exception.details()
        self.assertTrue(details)
        for word in words:
            self.assertIn(word, details)
        return details


class Methods(GrpcCase):
    def test_add_track(self):
        reply = self.add("a1", title="Hey Jude", artist="The Beatles", duration=431, votes=99)
        self.assertEqual(reply.message, "Track added")
        t = reply.track
        self.assertEqual((t.id, t.title, t.artist, t.duration, t.votes),
                         ("a1", "Hey Jude", "The Beatles", 431, 0))
        self.assertAlmostEqual(t.added_at / 1000, time.time(), delta=60)
        self.assertEqual([q.id for q in reply.queue], ["a1"])
        self.assertEqual(reply.length, 1)

    def test_order_and_votes(self):
        for track_id in "abcd":
            self.add(track_id)
        self.vote("c")
        self.vote("d")
        reply = self.vote("a", up=False)
        self.assertEqual(reply.message, "Vote recorded")
        self.assertEqual([(t.id, t.votes) for t in reply.queue],
                         [("c", 1), ("d", 1), ("b", 0), ("a", -1)])
        self.assertEqual(self.queue(limit=2, offset=1), [("d", 1), ("b", 0)])

    def test_a_voter_holds_one_ballot(self):
        self.add("v")
        self.assertEqual(self.vote("v", voter="ann").track.votes, 1)
        self.assertEqual(self.vote("v", voter="ann").track.votes, 1)
        self.assertEqual(self.vote("v", up=False, voter="ann").track.votes, -1)
        self.assertEqual(self.vote("v").track.votes, 0)

    def test_play_next_history_now_playing_metadata(self):
        self.assertFalse(self.stub.NowPlaying(pb.Empty(room=self.room), timeout=TIMEOUT)
                         .HasField("track"))
        self.add("p1")
        self.add("p2")
        self.vote("p2")
        played = self.play()
        self.assertEqual((played.id, played.votes), ("p2", 1))
        self.assertGreater(played.played_at, 0)
        now = self.stub.NowPlaying(pb.Empty(room=self.room), timeout=TIMEOUT)
        self.assertEqual(now.track, played)
        self.play()
        history = self.stub.GetHistory(pb.Empty(room=self.room), timeout=TIMEOUT)
        self.assertEqual([t.id for t in history.queue], ["p1", "p2"])
        page = self.stub.GetHistory(pb.Empty(room=self.room, limit=1, offset=1), timeout=TIMEOUT)
        self.assertEqual([t.id for t in page.queue], ["p2"])
        meta = self.stub.GetMetadata(pb.TrackId(id="p2", room=self.room), timeout=TIMEOUT)
        self.assertEqual((meta.title, meta.votes), ("Song Title", 1))
        self.assertGreater(meta.played_at, 0)

    def test_remove_and_clear(self):
        self.add("r1")
        self.add("r2")
        reply = self.stub.RemoveTrack(pb.TrackId(id="r1", room=self.room), timeout=TIMEOUT,
                                      metadata=admin_metadata())
        self.assertEqual((reply.message, reply.track.id), ("Track removed", "r1"))
        self.assertEqual([t.id for t in reply.queue], ["r2"])
        self.play()
        cleared = self.stub.Clear(pb.Empty(room=self.room), timeout=TIMEOUT,
                                  metadata=admin_metadata())
        self.assertEqual(cleared.message, "Room cleared")
        self.assertEqual(self.queue(), [])
        self.assertEqual(list(self.stub.GetHistory(pb.Empty(room=self.room),
                                                   timeout=TIMEOUT).queue), [])

    def test_the_default_room(self):
        default_room()
        track_id = unique("def")
        self.stub.AddTrack(pb.Track(id=track_id, title="t", artist="a"), timeout=TIMEOUT)
        ids = [t.id for t in self.stub.GetQueue(pb.Empty(), timeout=TIMEOUT).queue]
        self.assertIn(track_id, ids)
        explicit = self.stub.GetQueue(pb.Empty(room="default"), timeout=TIMEOUT)
        self.assertIn(track_id, [t.id for t in explicit.queue])
        self.stub.RemoveTrack(pb.TrackId(id=track_id), timeout=TIMEOUT, metadata=admin_metadata())

    def test_idempotency_key_metadata(self):
        self.add("i1")
        self.add("i2")
        key = (("idempotency-key", unique("key")),)
        first = self.stub.PlayNext(pb.Empty(room=self.room), timeout=TIMEOUT,
                                   metadata=key + admin_metadata())
        again = self.stub.PlayNext(pb.Empty(room=self.room), timeout=TIMEOUT,
                                   metadata=key + admin_metadata())
        self.assertEqual(first, again)
        vote_key = (("idempotency-key", unique("key")),)
        for _ in range(3):
            self.stub.VoteTrack(pb.VoteRequest(id="i2", up=True, room=self.room), timeout=TIMEOUT,
                                metadata=vote_key)
        self.assertEqual(self.queue(), [("i2", 1)])


class Errors(GrpcCase):
    def test_invalid_argument(self):
        for bad in (pb.Track(id="", title="t", artist="a"),
                    pb.Track(id="sp ace", title="t", artist="a"),
                    pb.Track(id="x" * 65, title="t", artist="a"),
                    pb.Track(id="ok", title="", artist="a"),
                    pb.Track(id="ok", title="t", artist="a" * 201),
                    pb.Track(id="ok", title="t", artist="a", duration=-5),
                    pb.Track(id="ok", title="t", artist="a", duration=86401),
                    pb.Track(id="ok", title="t", artist="a", room="../etc")):
            self.assertStatus(lambda bad=bad: self.stub.AddTrack(bad, timeout=TIMEOUT),
                              grpc.StatusCode.INVALID_ARGUMENT)
        self.assertStatus(lambda: self.stub.GetQueue(pb.Empty(room=self.room, limit=-1),
                                                     timeout=TIMEOUT),
                          grpc.StatusCode.INVALID_ARGUMENT, "limit")
        self.assertStatus(lambda: self.vote("x", voter="v" * 65),
                          grpc.StatusCode.INVALID_ARGUMENT, "voter")
        self.assertEqual(self.queue(), [])

    def test_not_found(self):
        self.assertStatus(lambda: self.vote("ghost"), grpc.StatusCode.NOT_FOUND, "ghost")
        self.assertStatus(lambda: self.stub.RemoveTrack(pb.TrackId(id="ghost", room=self.room),
                                                        timeout=TIMEOUT, metadata=admin_metadata()),
                          grpc.StatusCode.NOT_FOUND)
        self.assertStatus(lambda: self.stub.GetMetadata(pb.TrackId(id="ghost", room=self.room),
                                                        timeout=TIMEOUT),
                          grpc.StatusCode.NOT_FOUND)

    def test_already_exists(self):
        self.add("dup")
        self.assertStatus(lambda: self.add("dup"), grpc.StatusCode.ALREADY_EXISTS, "dup")

    def test_failed_precondition_on_an_empty_queue(self):
        self.assertStatus(self.play, grpc.StatusCode.FAILED_PRECONDITION, "empty")

    def test_a_malformed_message_is_invalid_argument(self):
        raw = self.channel.unary_unary("/queue.QueueService/AddTrack")
        self.assertStatus(lambda: raw(b"\xff\xff\xff", timeout=TIMEOUT),
                          grpc.StatusCode.INVALID_ARGUMENT, "queue.Track")

    def test_unknown_methods_are_unimplemented(self):
        raw = self.channel.unary_unary("/queue.QueueService/Nope")
        with self.assertRaises(grpc.RpcError) as caught:
            raw(b"", timeout=TIMEOUT)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class Service(GrpcCase):
    def test_every_call_names_its_node_and_calls_spread_over_nodes(self):
        nodes = set()
        for _ in range(10):
            _, call = self.stub.GetQueue.with_call(pb.Empty(room=self.room), timeout=TIMEOUT)
            nodes.add(dict(call.initial_metadata())["x-node-id"])
        self.assertGreaterEqual(len(nodes), 2, nodes)
        # errors carry it too
        future = self.stub.VoteTrack.future(pb.VoteRequest(id="ghost", room=self.room),
                                            timeout=TIMEOUT)
        with self.assertRaises(grpc.RpcError):
            future.result()
        self.assertIn("x-node-id", dict(future.initial_metadata()))

    def test_health(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "queue.QueueService"):
            reply, call = health.Check.with_call(health_pb2.HealthCheckRequest(service=service),
                                                 timeout=TIMEOUT)
            self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)
            self.assertTrue(dict(call.initial_metadata()).get("x-node-id"))
        with self.assertRaises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=TIMEOUT)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
