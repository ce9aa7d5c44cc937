"""``python -m grpc_svc.client`` as a subprocess: every command, exit codes, --json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import unittest
from concurrent import futures
from pathlib import Path

import grpc

from grpc_svc.client import channel
from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .support import ADMIN_TOKEN, grpc_target, unique

ROOT = Path(__file__).resolve().parent.parent


class Cli(unittest.TestCase):
    def setUp(self) -> None:
        self.target = grpc_target()
        self.room = unique("cli")

    def cli(self, *args: str, room: bool = True, env: dict | None = None):
        argv = [sys.executable, "-m", "grpc_svc.client", "--target", self.target]
        if room:
            argv += ["--room", self.room]
        environment = {**os.environ, "ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30,
                              cwd=ROOT, env=environment)

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def json(self, *args: str):
        return json.loads(self.ok("--json", *args))

    def test_the_original_readme_commands(self):
        out = self.ok("add", "--id", "123", "--title", "Song Title", "--artist", "Artist Name",
                      "--duration", "200")
        self.assertIn("Track added", out)
        self.assertIn("Song Title", out)
        self.assertIn("Vote recorded", self.ok("vote", "--id", "123", "--up", "true"))
        self.assertIn("Song Title", self.ok("queue"))
        self.assertIn("Artist Name", self.ok("metadata", "--id", "123"))
        self.assertIn("Now playing", self.ok("play"))
        self.assertIn("123", self.ok("history"))
        self.ok("add", "--id", "124", "--title", "T", "--artist", "A")
        self.assertIn("Vote recorded", self.ok("vote", "--id", "124", "--up", "false"))
        self.assertIn("Track removed", self.ok("remove", "--id", "124"))

    def test_json_output(self):
        added = self.json("add", "--id", "j1", "--title", "T", "--artist", "A", "--duration", "61")
        self.assertEqual((added["message"], added["track"]["id"], added["track"]["duration"]),
                         ("Track added", "j1", 61))
        self.json("vote", "--id", "j1", "--up", "false", "--voter", "ann")
        self.assertEqual([(t["id"], t["votes"]) for t in self.json("queue")], [("j1", -1)])
        self.assertEqual(self.json("metadata", "--id", "j1")["votes"], -1)
        self.assertEqual(self.json("now"), {"now_playing": None})
        played = self.json("play")["now_playing"]
        self.assertEqual(played["id"], "j1")
        self.assertIn("played_at", played)
        self.assertEqual(self.json("now")["now_playing"]["id"], "j1")
        self.assertEqual([t["id"] for t in self.json("history")], ["j1"])
        self.assertEqual(self.json("clear")["message"], "Room cleared")
        self.assertEqual(self.json("history"), [])

    def test_playback_commands(self):
        self.assertIn("autoplay           off", self.ok("settings"))
        for i in (1, 2):
            self.ok("add", "--id", f"p{i}", "--title", f"Song {i}", "--artist", "A",
                    "--duration", "300")
        changed = self.json("settings", "--skip-threshold", "2", "--fallback", "history")
        self.assertEqual(changed, {"autoplay": False, "skip_threshold": 2,
                                   "fallback": "history", "no_repeat_minutes": 0,
                                   "require_guest": False, "max_per_guest": 0,
                                   "locked": False, "order": "votes"})
        played = self.json("play")["now_playing"]
        out = self.ok("now")
        self.assertIn('Now playing: p1 "Song 1"', out)
        self.assertIn(f"[play {played['play_id']}; skip votes 0 of 2]", out)
        paused = self.json("pause")["now_playing"]
        self.assertEqual((paused["paused"], paused["ends_at"]), (True, None))
        self.assertIn("paused", self.ok("now"))
        resumed = self.json("resume")["now_playing"]
        self.assertFalse(resumed["paused"])
        self.assertTrue(resumed["ends_at"])
        self.assertIn("Skip vote recorded", self.ok("skip", "--voter", "v1"))
        self.assertIn("Skip vote recorded", self.ok("skip", "--voter", "v1"))
        skipped = self.json("skip", "--voter", "v2")
        self.assertTrue(skipped["skipped"])
        self.assertEqual(skipped["now_playing"]["id"], "p2")
        stale = self.cli("play", "--if-playing", str(played["play_id"]))
        self.assertEqual(stale.returncode, 1)
        self.assertIn("ABORTED", stale.stderr)
        self.assertIn("no longer the current one", stale.stderr)
        self.assertEqual(self.cli("settings", "--skip-threshold", "-1").returncode, 1)
        refused = self.cli("skip")  # without a guest token, a voter is needed
        self.assertEqual(refused.returncode, 1)
        self.assertIn("voter", refused.stderr)

    def test_options_after_the_command_and_the_target_from_the_environment(self):
        result = subprocess.run([sys.executable, "-m", "grpc_svc.client", "queue", "--json",
                                 "--room", self.room], capture_output=True, text=True,
                                timeout=30, cwd=ROOT,
                                env={**os.environ, "GRPC_TARGET": self.target})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [])

    def test_failures_print_one_line_and_exit_non_zero(self):
        for args, word in [(("play",), "FAILED_PRECONDITION"),
                           (("metadata", "--id", "ghost"), "NOT_FOUND"),
                           (("vote", "--id", "ghost", "--up", "true"), "NOT_FOUND"),
                           (("add", "--id", "bad id", "--title", "t", "--artist", "a"),
                            "INVALID_ARGUMENT")]:
            result = self.cli(*args)
            self.assertEqual(result.returncode, 1, args)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertIn(word, result.stderr)
        self.ok("add", "--id", "d1", "--title", "t", "--artist", "a")
        duplicate = self.cli("add", "--id", "d1", "--title", "t", "--artist", "a")
        self.assertEqual(duplicate.returncode, 1)
        self.assertIn("ALREADY_EXISTS", duplicate.stderr)

    def test_an_unreachable_server(self):
        result = subprocess.run([sys.executable, "-m", "grpc_svc.client", "--target",
                                 "127.0.0.1:1", "--timeout", "2", "queue"], capture_output=True,
                                text=True, timeout=30, cwd=ROOT)
        self.assertEqual(result.returncode, 1)
        self.assertIn("UNAVAILABLE", result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)

    def test_usage_errors(self):
        # (add --id alone adds a catalogue track; a title without an artist is the mistake)
        for args in (("vote", "--id", "x", "--up", "maybe"), ("add", "--id", "x", "--title", "T"),
                     ("add", "--title", "T", "--artist", "A"), ("dance",)):
            result = self.cli(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn("usage", result.stderr)

    def test_watch_prints_changes_live(self):
        argv = [sys.executable, "-m", "grpc_svc.client", "--target", self.target, "--room",
                self.room, "--json", "watch"]
        watcher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, cwd=ROOT)
        try:
            snapshot = json.loads(watcher.stdout.readline())
            self.assertEqual(snapshot["type"], "snapshot")
            self.ok("add", "--id", "w1", "--title", "Live", "--artist", "A")
            event = json.loads(watcher.stdout.readline())
            self.assertEqual((event["type"], event["track"]["id"]), ("add", "w1"))
            self.assertGreater(event["version"], snapshot["version"])
        finally:
            watcher.send_signal(signal.SIGINT)
            try:
                self.assertEqual(watcher.wait(10), 0)
            finally:
                watcher.kill()
                watcher.stdout.close()
                watcher.stderr.close()


class ReadAfterHeaders(unittest.TestCase):
    """A node killed between its headers and its reply: the client sees the node's initial
    metadata, then UNAVAILABLE. gRPC's retry policy never repeats a call once headers
    arrived; the client's channel repeats a read (never a write) once itself."""

    def setUp(self) -> None:
        self.calls: list[str] = []

        def handler(name: str, reply):
            def handle(raw: bytes, context) -> bytes:
                self.calls.append(name)
                context.send_initial_metadata((("x-node-id", "dying"),))
                if self.calls.count(name) == 1:  # headers out, then the node goes away
                    context.abort(grpc.StatusCode.UNAVAILABLE, "Stream removed")
                return reply.SerializeToString()
            return grpc.unary_unary_rpc_method_handler(handle)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "queue.QueueService", {"GetQueue": handler("GetQueue", pb.QueueList()),
                                   "AddTrack": handler("AddTrack", pb.QueueResponse())}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.addCleanup(self.server.stop, None)

    def test_a_read_is_tried_again_and_a_write_is_not(self):
        with channel(f"127.0.0.1:{self.port}") as chan:
            stub = pb_grpc.QueueServiceStub(chan)
            stub.GetQueue(pb.Empty(), timeout=5)
            with self.assertRaises(grpc.RpcError) as caught:
                stub.AddTrack(pb.Track(id="x", title="t", artist="a"), timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.calls, ["GetQueue", "GetQueue", "AddTrack"])
