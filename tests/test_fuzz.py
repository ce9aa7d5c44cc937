"""A seeded fuzz of both front doors: over 5,000 malformed and edge-case requests across
every REST endpoint (through nginx and straight to the nodes) and every gRPC method: wrong
types, huge and negative numbers, empty and 10 MB strings, control characters and invalid
UTF-8, deeply nested JSON, duplicate keys, missing and extra fields, odd room names,
unknown methods and paths, very long query strings and headers, garbage protobuf bytes.

Checked: no 5xx and no INTERNAL/UNKNOWN (Redis is up), every REST error is JSON with a
``detail`` and every gRPC error has details, each naming the field or the part of the
request that broke a rule, input that breaks a rule is refused, no node crashed, restarted
or logged a traceback, and afterwards the core invariants still hold on fresh rooms
through both doors. The cases come from ``random.Random(SEED)``; a failure names the seed
and the case number (FUZZ_SEED=n replays another seed).
"""

from __future__ import annotations

import os
import random
import time
import unittest
from collections import Counter

from .doors import GrpcDoor, RestDoor, check_core
from .fuzz.grpc_cases import GrpcFuzzer
from .fuzz.judges import FuzzRun
from .fuzz.rest_cases import RestFuzzer, raw_cases
from .fuzz.values import FUZZ_ROOMS, GRPC_CASES, MIN_REQUESTS, REST_CASES, SEED, SEEDED, TIMEOUT
from .support import EXTERNAL, Http, local_cluster, unique


def size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def setUpModule() -> None:
    if EXTERNAL:
        raise unittest.SkipTest("checks the local nodes' processes and logs")


class Fuzz(unittest.TestCase):
    """One seeded run in setUpClass; each test checks one property of its answers."""

    @classmethod
    def setUpClass(cls) -> None:
        cluster = cls.cluster = local_cluster()
        cls.processes = [*cluster.rest, *cluster.grpc, cluster.nginx]
        cls.pids = {p.name: p.pid for p in cls.processes}
        cls.log_sizes = {p.name: size(p.log) for p in cls.processes}
        rng = random.Random(SEED)
        base = unique("fz")
        rooms = [f"{base}-{i}" for i in range(FUZZ_ROOMS)]
        client = Http(cluster.api_url, TIMEOUT)
        try:  # tracks for the votes, removals and plays to find
            for room in rooms:
                for track_id in SEEDED:
                    added = client.post(f"/rooms/{room}/add_track?head=0",
                                        {"id": track_id, "title": "Seeded", "artist": "Fuzz"})
                    if added.status != 200:
                        raise AssertionError(f"seeding {room}: {added}")
        finally:
            client.close()
        cases = [*RestFuzzer(rng, rooms, len(cluster.rest)).cases(REST_CASES),
                 *GrpcFuzzer(rng, rooms).cases(GRPC_CASES),
                 *raw_cases(rooms[0], len(cluster.rest))]
        rng.shuffle(cases)
        cls.total = len(cases)
        started = time.monotonic()
        fuzz = FuzzRun(cluster, cases)
        fuzz.run()
        cls.seconds = time.monotonic() - started
        cls.sent, cls.problems = fuzz.sent, fuzz.problems

    def assertNoProblems(self, *kinds: str) -> None:
        found = [p for p in self.problems if p[0] in kinds]
        if found:
            summary = Counter(f"{kind}: {what}" for kind, what, _ in found).most_common(15)
            self.fail(f"{len(found)} of {self.sent} fuzz requests (seed {SEED}) gave "
                      f"{' or '.join(kinds)}:\n"
                      + "\n".join(f"  {count} x {what}" for what, count in summary)
                      + "\nfor example:\n" + "\n".join(f"  {seen}" for _, _, seen in found[:12]))

    def test_at_least_5000_requests_are_sent_and_answered(self):
        self.assertGreaterEqual(self.total, MIN_REQUESTS)
        self.assertEqual(self.sent, self.total,
                         f"seed {SEED}: only {self.sent} of {self.total} requests were sent "
                         f"in {self.seconds:.1f} s")

    def test_no_answer_is_a_server_error_and_every_request_is_answered(self):
        self.assertNoProblems("server error", "no answer")

    def test_every_error_is_json_with_a_detail(self):
        self.assertNoProblems("error without a JSON detail", "error without details")

    def test_every_detail_names_the_problem(self):
        self.assertNoProblems("detail that does not name the problem",
                              "wrong status for a broken rule")

    def test_input_that_breaks_a_rule_is_refused(self):
        self.assertNoProblems("accepted")

    def test_successful_answers_parse(self):
        self.assertNoProblems("success that is not JSON", "success that does not parse")

    def test_no_node_crashed_or_restarted(self):
        self.assertEqual({p.name: (p.pid, p.alive()) for p in self.processes},
                         {name: (pid, True) for name, pid in self.pids.items()})
        for url in self.cluster.rest_urls:
            client = Http(url, TIMEOUT)
            self.addCleanup(client.close)
            self.assertEqual(client.get("/readyz").status, 200, url)

    def test_no_node_logged_a_traceback(self):
        for process in self.processes:
            with open(process.log, "rb") as log:
                log.seek(self.log_sizes[process.name])
                written = log.read().decode(errors="replace")
            self.assertNotIn("Traceback", written,
                             f"{process.name} (seed {SEED}):\n{written[-3000:]}")

    def test_the_core_invariants_still_hold_on_fresh_rooms(self):
        rest = RestDoor(self.cluster.api_url, unique("fz-after"))
        grpc_door = GrpcDoor(self.cluster.grpc_target, unique("fz-after"))
        self.addCleanup(rest.close)
        self.addCleanup(grpc_door.close)
        for door in (rest, grpc_door):
            with self.subTest(door=type(door).__name__):
                check_core(self, door)


if __name__ == "__main__":
    unittest.main()
