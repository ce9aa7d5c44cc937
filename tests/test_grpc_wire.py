"""Wire compatibility: a client generated from the ORIGINAL queue.proto (a fixture
reconstructed from the contract's §4 tables) works unchanged against our server, and the
committed stubs are what proto/queue.proto gives today."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from grpc_tools import protoc

from proto.generate import generate

from .support import ADMIN_TOKEN, admin_metadata, default_room, grpc_channel, grpc_target

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = FIXTURES.parent.parent


class OriginalClient(unittest.TestCase):
    def test_an_original_client_works_unchanged(self):
        default_room()  # the original proto has no rooms
        target = grpc_target()
        with tempfile.TemporaryDirectory() as out:
            code = protoc.main(["protoc", f"-I{FIXTURES / 'original'}", f"--python_out={out}",
                                f"--grpc_python_out={out}",
                                str(FIXTURES / "original" / "queue.proto")])
            self.assertEqual(code, 0)
            # the default room is shared: clear it first, as the host
            from proto import queue_pb2 as pb
            from proto import queue_pb2_grpc as pb_grpc
            with grpc_channel(target) as channel:
                pb_grpc.QueueServiceStub(channel).Clear(pb.Empty(), timeout=5,
                                                        metadata=admin_metadata())
            result = subprocess.run([sys.executable, str(FIXTURES / "original_client.py"), out,
                                     target, ADMIN_TOKEN], capture_output=True, text=True,
                                    timeout=60, cwd=out)
        self.assertEqual(result.returncode, 0, result.stderr)
        calls = [json.loads(line) for line in result.stdout.splitlines()]
        by_name = {c["call"]: c for c in calls}
        track = {"id": "123", "title": "Song Title", "artist": "Artist Name", "duration": 200}
        self.assertEqual(by_name["AddTrack"]["reply"]["message"], "Track added")
        self.assertEqual(by_name["AddTrack"]["reply"]["queue"], [track])  # votes 0: omitted
        self.assertEqual(by_name["VoteTrack"]["reply"]["queue"], [{**track, "votes": 1}])
        self.assertEqual(by_name["GetQueue"]["reply"]["queue"], [{**track, "votes": 1}])
        self.assertEqual(by_name["GetMetadata"]["reply"], {**track, "votes": 1})
        self.assertEqual(by_name["PlayNext"]["reply"], {**track, "votes": 1})
        self.assertEqual(by_name["GetHistory"]["reply"]["queue"], [{**track, "votes": 1}])
        self.assertEqual(by_name["RemoveTrack"]["reply"]["message"], "Track removed")
        self.assertEqual(calls[-1], {"call": "GetMetadata unknown", "error": "NOT_FOUND"})


class Stubs(unittest.TestCase):
    def test_the_committed_stubs_match_the_proto(self):
        with tempfile.TemporaryDirectory() as out:
            generate(Path(out))
            for name in ("queue_pb2.py", "queue_pb2.pyi", "queue_pb2_grpc.py"):
                fresh, committed = Path(out) / "proto" / name, ROOT / "proto" / name
                self.assertTrue(filecmp.cmp(fresh, committed, shallow=False),
                                f"proto/{name} is stale: run python -m proto.generate")


class AssembledReplies(unittest.TestCase):
    """The server assembles replies from cached track bytes (grpc_svc.wire): they must
    parse to exactly what the generated classes would build."""

    def test_the_assembled_bytes_match_the_generated_classes(self):
        from grpc_svc import wire
        from proto import queue_pb2 as pb
        from shared.live import Event
        from shared.model import Change, Clock, NowPlaying, Snapshot, Track

        head = [Track("a", "Ça plane", "Plastic Bertrand", 180, 3, 1_795_000_000_000),
                Track("b" * 64, "T" * 200, "A", 0, -2**31, 1)]
        played = Track("p", "Played", "Someone", 86400, 0, 5, 6, 41, True, True)
        now = NowPlaying(played, Clock(41, 6, 10, 4, False, 2, 3, True, 1000))
        for change in (Change("vote", 2**40, 300, head[0], head), Change("clear", 7, 0, None, []),
                       Change("play", 1, 0, played, [], now=now)):
            expected = pb.QueueResponse(
                message="Vote recorded", queue=[wire.track_pb(t) for t in change.head],
                track=wire.track_pb(change.track) if change.track else None,
                version=change.version, length=change.length)
            self.assertEqual(
                pb.QueueResponse.FromString(wire.change_bytes("Vote recorded", change)), expected)
            event = pb.QueueEvent.FromString(wire.event_bytes(Event("r", change)))
            self.assertEqual(event, pb.QueueEvent(
                type=change.kind, version=change.version, length=change.length,
                track=expected.track if change.track else None, queue=expected.queue,
                now_playing=expected.track if change.kind == "play" else None,
                playing=wire.now_pb(now) if change.kind == "play" else None))
        self.assertEqual(pb.QueueList.FromString(wire.list_bytes(head, 9, 2)),
                         pb.QueueList(queue=[wire.track_pb(t) for t in head], version=9, length=2))
        self.assertEqual(pb.Track.FromString(wire.track_bytes(played)), wire.track_pb(played))
        reply = pb.NowPlayingReply.FromString(wire.now_bytes(now))
        self.assertEqual(reply, pb.NowPlayingReply(
            track=wire.track_pb(played), play_id=41, started_at=6, ends_at=10 + 86_400_000 - 4,
            paused=False, position=0.994, skip_votes=2, skip_threshold=3, server_time=1000))
        snapshot = pb.QueueEvent.FromString(wire.snapshot_bytes(
            Snapshot(4, 2, now, head, {"autoplay": "1"}, 1000)))
        self.assertEqual((snapshot.settings.autoplay, snapshot.settings.fallback,
                          snapshot.playing.server_time), (True, "none", 1000))
        self.assertEqual((snapshot.type, snapshot.now_playing.id, len(snapshot.queue)),
                         ("snapshot", "p", 2))
