"""The concurrency invariants (tests/invariants.py) through nginx over two REST nodes, and
over two gRPC nodes balanced round robin, with 20 concurrent clients."""

from __future__ import annotations

import unittest

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .invariants import Invariants
from .support import Http, admin_headers, admin_metadata, api_url, grpc_channel, track, unique

TIMEOUT = 10


class RestDoor:
    def __init__(self, room: str):
        self.http = Http(api_url())
        self.room = room

    def at(self, path: str) -> str:
        return f"/rooms/{self.room}{path}"

    def close_thread(self) -> None:
        self.http.close()

    def _outcome(self, reply, refusal: int, name: str) -> str:
        if reply.status == 200:
            return "ok"
        if reply.status == refusal:
            return name
        raise AssertionError(f"unexpected {reply.status}: {reply.body!r}")

    def add(self, track_id: str, title: str = "Song Title") -> str:
        return self._outcome(self.http.post(self.at("/add_track"), track(track_id, title=title)),
                             409, "duplicate")

    def remove(self, track_id: str) -> str:
        return self._outcome(self.http.post(self.at("/remove_track?head=0"), {"id": track_id},
                                            headers=admin_headers()), 404, "missing")

    def vote(self, track_id: str, up: bool) -> str:
        return self._outcome(self.http.post(self.at(f"/vote?id={track_id}&up={str(up).lower()}&head=0")),
                             404, "missing")

    def play(self) -> str | None:
        reply = self.http.post(self.at("/play_next?head=0"), headers=admin_headers())
        if self._outcome(reply, 409, "empty") == "empty":
            return None
        return str(reply.json()["now_playing"]["id"])

    def queue(self) -> dict:
        return {str(t["id"]): t["votes"] for t in self.http.get(self.at("/queue")).json()}

    def history_ids(self) -> list:
        return [str(t["id"]) for t in self.http.get(self.at("/history")).json()]

    def votes(self, track_id: str) -> int:
        return self.http.get(self.at(f"/metadata/{track_id}")).json()["votes"]


class GrpcDoor:
    def __init__(self, room: str):
        self.channel = grpc_channel()
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = room

    def close_thread(self) -> None:
        pass  # one channel serves every thread

    def _outcome(self, call, refusal: grpc.StatusCode, name: str):
        try:
            call()
            return "ok"
        except grpc.RpcError as exc:
            if exc.code() == refusal:
                return name
            raise

    def add(self, track_id: str, title: str = "Song Title") -> str:
        return self._outcome(lambda: self.stub.AddTrack(
            pb.Track(id=track_id, title=title, artist="Artist", room=self.room), timeout=TIMEOUT),
            grpc.StatusCode.ALREADY_EXISTS, "duplicate")

    def remove(self, track_id: str) -> str:
        return self._outcome(lambda: self.stub.RemoveTrack(
            pb.TrackId(id=track_id, room=self.room), timeout=TIMEOUT, metadata=admin_metadata()),
            grpc.StatusCode.NOT_FOUND, "missing")

    def vote(self, track_id: str, up: bool) -> str:
        return self._outcome(lambda: self.stub.VoteTrack(
            pb.VoteRequest(id=track_id, up=up, room=self.room), timeout=TIMEOUT),
            grpc.StatusCode.NOT_FOUND, "missing")

    def play(self) -> str | None:
        try:
            return self.stub.PlayNext(pb.Empty(room=self.room), timeout=TIMEOUT,
                                      metadata=admin_metadata()).id
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return None
            raise

    def queue(self) -> dict:
        reply = self.stub.GetQueue(pb.Empty(room=self.room), timeout=TIMEOUT)
        return {t.id: t.votes for t in reply.queue}

    def history_ids(self) -> list:
        return [t.id for t in self.stub.GetHistory(pb.Empty(room=self.room), timeout=TIMEOUT).queue]

    def votes(self, track_id: str) -> int:
        return self.stub.GetMetadata(pb.TrackId(id=track_id, room=self.room), timeout=TIMEOUT).votes


class RestInvariants(Invariants, unittest.TestCase):
    def setUp(self) -> None:
        self.door = RestDoor(unique("race"))
        self.addCleanup(self.door.close_thread)


class GrpcInvariants(Invariants, unittest.TestCase):
    def setUp(self) -> None:
        self.door = GrpcDoor(unique("race"))
        self.addCleanup(self.door.channel.close)
