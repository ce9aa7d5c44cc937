"""The two front doors as the tests drive them, and the invariants they must keep.

A door is a small adapter for one room with the same calls over REST and over gRPC, each
returning an outcome: ``add(id) -> "ok" | "duplicate"``, ``remove(id) -> "ok" |
"missing"``, ``vote(id, up) -> "ok" | "missing"``, ``play() -> track id | None`` (empty
queue), plus ``queue() -> {id: votes}``, ``history_ids()``, ``votes(id)`` and ``peek()``
(a short read: None, or what went wrong). Anything else raises.

With ``retry=True`` a door behaves as the README tells clients to: every write carries an
idempotency key and is sent again with the same key when it failed without an answer from
the queue (502/503/UNAVAILABLE, a cut connection); ``retries`` counts them. Reads are never
retried by the door (nginx or the gRPC channel does that).

``Invariants`` (what the original system broke: it lost adds, played tracks twice and
wiped votes) and ``check_core`` run through any door: the concurrency tests, the fuzz and
the fault tests share them.
"""

from __future__ import annotations

import random
import threading
import time
import unittest
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .support import Http, admin_headers, admin_metadata, grpc_channel, track

CLIENTS = 20
TIMEOUT = 10
RETRY_FOR = 10.0  # seconds a retrying door keeps trying one write
RETRYABLE_HTTP = {502, 503, 504}


class Door:
    """What both doors share: the retry loop and its count."""

    def __init__(self, retry: bool):
        self.retry = retry
        self.retries: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, attempt: Callable[[str | None], Any]) -> Any:
        """``attempt(key)`` returns an outcome, or raises ``Unanswered`` (no answer from the
        queue): then it is tried again with the same key, if this door retries."""
        key = uuid.uuid4().hex if self.retry else None
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                return attempt(key)
            except Unanswered as exc:
                if not self.retry or time.monotonic() > deadline:
                    raise AssertionError(f"no answer: {exc}") from None
                with self.lock:
                    self.retries[str(exc)] += 1
                time.sleep(0.05)


class Unanswered(Exception):
    """The request got no answer from the queue (it may or may not have happened)."""


class RestDoor(Door):
    def __init__(self, base_url: str, room: str, retry: bool = False):
        super().__init__(retry)
        self.http = Http(base_url)
        self.room = room

    def at(self, path: str) -> str:
        return f"/rooms/{self.room}{path}"

    def close_thread(self) -> None:
        self.http.close_thread()

    def close(self) -> None:
        self.http.close()

    def _write(self, path: str, body: Any = None, host: bool = False):
        def attempt(key: str | None):
            headers = {**(admin_headers() if host else {}),
                       **({"Idempotency-Key": key} if key else {})}
            try:
                reply = self.http.post(self.at(path), body, headers=headers)
            except OSError as exc:
                raise Unanswered(type(exc).__name__) from None
            if reply.status in RETRYABLE_HTTP:
                raise Unanswered(str(reply.status))
            return reply

        return self.send(attempt)

    @staticmethod
    def _outcome(reply, refusal: int, name: str) -> str:
        if reply.status == 200:
            return "ok"
        if reply.status == refusal:
            return name
        raise AssertionError(f"unexpected {reply.status}: {reply.body!r}")

    def add(self, track_id: str, title: str = "Song Title") -> str:
        return self._outcome(self._write("/add_track?head=5", track(track_id, title=title)),
                             409, "duplicate")

    def remove(self, track_id: str) -> str:
        return self._outcome(self._write("/remove_track?head=0", {"id": track_id}, host=True),
                             404, "missing")

    def vote(self, track_id: str, up: bool = True) -> str:
        return self._outcome(self._write(f"/vote?id={track_id}&up={str(up).lower()}&head=5"),
                             404, "missing")

    def play(self) -> str | None:
        reply = self._write("/play_next?head=0", host=True)
        if self._outcome(reply, 409, "empty") == "empty":
            return None
        return str(reply.json()["now_playing"]["id"])

    def queue(self) -> dict:
        return {str(t["id"]): t["votes"] for t in self.http.get(self.at("/queue")).json()}

    def history_ids(self) -> list:
        return [str(t["id"]) for t in self.http.get(self.at("/history")).json()]

    def votes(self, track_id: str) -> int:
        return self.http.get(self.at(f"/metadata/{track_id}")).json()["votes"]

    def peek(self) -> Any:
        try:
            status = self.http.get(self.at("/queue?limit=5")).status
        except OSError as exc:
            return repr(exc)
        return None if status == 200 else status


class GrpcDoor(Door):
    def __init__(self, target: str | None, room: str, retry: bool = False):
        super().__init__(retry)
        self.channel = grpc_channel(target)
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = room

    def close_thread(self) -> None:
        pass  # one channel serves every thread

    def close(self) -> None:
        self.channel.close()

    def _write(self, call: Callable[[tuple], Any], refusal: grpc.StatusCode, name: str,
               host: bool = False):
        def attempt(key: str | None):
            metadata = (*(admin_metadata() if host else ()),
                        *((("idempotency-key", key),) if key else ()))
            try:
                return call(metadata)
            except grpc.RpcError as exc:
                if exc.code() == refusal:
                    return name
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    raise Unanswered(exc.code().name) from None
                raise

        return self.send(attempt)

    def add(self, track_id: str, title: str = "Song Title") -> str:
        request = pb.Track(id=track_id, title=title, artist="Artist", room=self.room)
        reply = self._write(lambda m: self.stub.AddTrack(request, timeout=TIMEOUT, metadata=m),
                            grpc.StatusCode.ALREADY_EXISTS, "duplicate")
        return reply if isinstance(reply, str) else "ok"

    def remove(self, track_id: str) -> str:
        request = pb.TrackId(id=track_id, room=self.room)
        reply = self._write(lambda m: self.stub.RemoveTrack(request, timeout=TIMEOUT, metadata=m),
                            grpc.StatusCode.NOT_FOUND, "missing", host=True)
        return reply if isinstance(reply, str) else "ok"

    def vote(self, track_id: str, up: bool = True) -> str:
        request = pb.VoteRequest(id=track_id, up=up, room=self.room)
        reply = self._write(lambda m: self.stub.VoteTrack(request, timeout=TIMEOUT, metadata=m),
                            grpc.StatusCode.NOT_FOUND, "missing")
        return reply if isinstance(reply, str) else "ok"

    def play(self) -> str | None:
        reply = self._write(lambda m: self.stub.PlayNext(pb.Empty(room=self.room),
                                                         timeout=TIMEOUT, metadata=m),
                            grpc.StatusCode.FAILED_PRECONDITION, "empty", host=True)
        return None if reply == "empty" else reply.id

    def queue(self) -> dict:
        reply = self.stub.GetQueue(pb.Empty(room=self.room), timeout=TIMEOUT)
        return {t.id: t.votes for t in reply.queue}

    def history_ids(self) -> list:
        return [t.id for t in self.stub.GetHistory(pb.Empty(room=self.room), timeout=TIMEOUT).queue]

    def votes(self, track_id: str) -> int:
        return self.stub.GetMetadata(pb.TrackId(id=track_id, room=self.room),
                                     timeout=TIMEOUT).votes

    def peek(self) -> Any:
        try:
            self.stub.GetQueue(pb.Empty(room=self.room, limit=5), timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return exc.code().name
        return None


def run_clients(work: Callable[[int], Any], clients: int = CLIENTS) -> list:
    """``work(n)`` on ``clients`` threads that start together; their results in order."""
    start = threading.Barrier(clients, timeout=30)

    def client(n: int):
        start.wait()
        return work(n)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(client, range(clients)))


class Invariants:
    """Mixed into a unittest.TestCase that sets ``self.door`` in setUp."""

    door: RestDoor | GrpcDoor

    def clients(self, work: Callable[[int], Any], clients: int = CLIENTS) -> list:
        def each(n: int):
            try:
                return work(n)
            finally:
                self.door.close_thread()

        return run_clients(each, clients)

    def test_500_concurrent_upvotes_count_exactly_500(self):
        self.assertEqual(self.door.add("hit"), "ok")
        outcomes = Counter(o for batch in self.clients(
            lambda n: [self.door.vote("hit", True) for _ in range(25)]) for o in batch)
        self.assertEqual(outcomes, {"ok": 500})
        self.assertEqual(self.door.votes("hit"), 500)

    def test_200_tracks_drained_by_20_players_are_each_played_once(self):
        for i in range(200):
            self.assertEqual(self.door.add(f"d{i}"), "ok")

        def work(n: int) -> list:
            played = []
            while (track_id := self.door.play()) is not None:
                played.append(track_id)
            return played

        played = [t for batch in self.clients(work) for t in batch]
        expected = sorted(f"d{i}" for i in range(200))
        self.assertEqual(sorted(played), expected)  # each exactly once
        self.assertEqual(sorted(self.door.history_ids()), expected)
        self.assertEqual(self.door.queue(), {})

    def test_10_concurrent_adds_of_one_id_succeed_once(self):
        outcomes = Counter(self.clients(lambda n: self.door.add("same", title=f"T{n}"),
                                        clients=10))
        self.assertEqual(outcomes, {"ok": 1, "duplicate": 9})
        self.assertEqual(len(self.door.queue()), 1)

    def test_a_mix_of_adds_removes_and_votes_keeps_every_acknowledged_change(self):
        stable = [f"s{i}" for i in range(8)]  # only voted on: their votes must add up
        volatile = [f"v{i}" for i in range(12)]  # added and removed by everyone at once
        for track_id in stable:
            self.door.add(track_id)

        def work(n: int):
            rng = random.Random(n)
            adds, removes, votes = Counter(), Counter(), Counter()
            for _ in range(50):
                roll = rng.random()
                if roll < 0.3:
                    track_id = rng.choice(volatile)
                    if self.door.add(track_id) == "ok":
                        adds[track_id] += 1
                elif roll < 0.55:
                    track_id = rng.choice(volatile)
                    if self.door.remove(track_id) == "ok":
                        removes[track_id] += 1
                else:
                    track_id = rng.choice(stable + volatile[:3])
                    up = rng.random() < 0.6
                    if self.door.vote(track_id, up) == "ok":
                        votes[track_id] += 1 if up else -1
            return adds, removes, votes

        adds, removes, votes = Counter(), Counter(), Counter()
        for a, r, v in self.clients(work):
            adds.update(a)
            removes.update(r)
            votes.update(v)
        queue = self.door.queue()
        for track_id in volatile:
            present = adds[track_id] - removes[track_id]
            self.assertIn(present, (0, 1), track_id)
            self.assertEqual(track_id in queue, present == 1, track_id)
        for track_id in stable:
            self.assertEqual(queue[track_id], votes[track_id], track_id)
        self.assertEqual(set(queue), set(stable) | {t for t in volatile if adds[t] > removes[t]})


def check_core(test: unittest.TestCase, door: RestDoor | GrpcDoor) -> None:
    """Adds, a duplicate, 208 concurrent votes, order by votes then age, 8 concurrent
    players who play each track exactly once, and the history that leaves."""
    ids = [f"c{i}" for i in range(6)]
    for track_id in ids:
        test.assertEqual(door.add(track_id), "ok")
    test.assertEqual(door.add("c0"), "duplicate")

    def voter(n: int) -> list:
        try:
            return [door.vote("c4", True) for _ in range(25)] + [door.vote("c5", False)]
        finally:
            door.close_thread()

    outcomes = Counter(o for batch in run_clients(voter, 8) for o in batch)
    test.assertEqual(outcomes, {"ok": 208})
    test.assertEqual(door.vote("c2", True), "ok")
    test.assertEqual(list(door.queue().items()),
                     [("c4", 200), ("c2", 1), ("c0", 0), ("c1", 0), ("c3", 0), ("c5", -8)])
    test.assertEqual(door.votes("c4"), 200)

    def player(n: int) -> list:
        played = []
        try:
            for _ in range(len(ids) + 1):
                track_id = door.play()
                if track_id is None:
                    return played
                played.append(track_id)
            return played
        finally:
            door.close_thread()

    played = [t for batch in run_clients(player, 8) for t in batch]
    test.assertEqual(sorted(played), ids)
    test.assertEqual(door.history_ids(), ["c5", "c3", "c1", "c0", "c2", "c4"])
    test.assertEqual(door.queue(), {})
    test.assertEqual(door.vote("c0", True), "missing")
    test.assertEqual(door.remove("c0"), "missing")
