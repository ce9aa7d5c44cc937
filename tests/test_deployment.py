"""The test suite run against a deployment changes nothing it did not create.

A party uses the default room of a local deployment (a track queued with votes, one
playing, one played), and a named room; then the whole suite runs against that deployment
as the Compose test-runner runs it (API_URL and GRPC_TARGET set). Afterwards both rooms are
exactly as they were, down to their versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

from .cluster import Cluster
from .support import EXTERNAL, Http, track

ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT = 600


def state(http: Http, at: str) -> dict:
    queue = http.get(f"{at}/queue")
    return {"version": queue.headers["etag"], "queue": queue.json(),
            # (its position runs on: the play is what must not change)
            "now_playing": {k: v for k, v in
                            (http.get(f"{at}/now_playing").json()["now_playing"] or {}).items()
                            if k != "position"},
            "history": http.get(f"{at}/history").json()}


@unittest.skipIf(EXTERNAL, "starts a deployment of its own")
class SuiteAgainstADeployment(unittest.TestCase):
    def test_the_suite_leaves_a_partys_rooms_alone(self):
        with Cluster(rest=2, grpc=2) as cluster:
            http = Http(cluster.api_url)
            self.addCleanup(http.close)
            rooms = ("", "/rooms/party42")
            for at in rooms:
                for track_id in ("played", "playing", "queued", "second"):
                    self.assertEqual(http.post(f"{at}/add_track", track(track_id)).status, 200)
                http.post(f"{at}/play_next")
                http.post(f"{at}/play_next")
                for voter in ("ann", "bob"):
                    http.post(f"{at}/vote?id=second&voter={voter}")
            before = {at: state(http, at) for at in rooms}
            self.assertEqual([t["votes"] for t in before[""]["queue"]], [2, 0])

            env = {k: v for k, v in os.environ.items() if k != "TEST_USE_DEFAULT_ROOM"}
            env.update(API_URL=cluster.api_url, GRPC_TARGET=cluster.grpc_target)
            result = subprocess.run([sys.executable, "-m", "unittest"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=SUITE_TIMEOUT)
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            self.assertIn("skipped", result.stderr.splitlines()[-1])  # the default-room tests

            for at in rooms:
                self.assertEqual(state(http, at), before[at], at or "the default room")
