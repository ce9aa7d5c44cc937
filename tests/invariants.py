"""The concurrency invariants of the core, written once and run through each front door
(tests/test_concurrency.py): what the original system broke, it lost adds, played tracks
twice and wiped votes.

A front door is a small adapter with four calls, each returning an outcome:
``add(id) -> "ok" | "duplicate"``, ``remove(id) -> "ok" | "missing"``,
``vote(id, up) -> "ok" | "missing"``, ``play() -> track id | None`` (empty queue), plus
``queue() -> {id: votes}``, ``history_ids()`` and ``votes(id)``. Anything else raises.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

CLIENTS = 20


class Invariants:
    """Mixed into a unittest.TestCase that sets ``self.door`` in setUp."""

    def run_clients(self, work, clients: int = CLIENTS) -> list:
        start = threading.Barrier(clients, timeout=30)

        def client(n: int):
            start.wait()
            try:
                return work(n)
            finally:
                self.door.close_thread()

        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(client, range(clients)))

    def test_500_concurrent_upvotes_count_exactly_500(self):
        self.assertEqual(self.door.add("hit"), "ok")
        outcomes = Counter(o for batch in self.run_clients(
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

        played = [t for batch in self.run_clients(work) for t in batch]
        expected = sorted(f"d{i}" for i in range(200))
        self.assertEqual(sorted(played), expected)  # each exactly once
        self.assertEqual(sorted(self.door.history_ids()), expected)
        self.assertEqual(self.door.queue(), {})

    def test_10_concurrent_adds_of_one_id_succeed_once(self):
        outcomes = Counter(self.run_clients(lambda n: self.door.add("same", title=f"T{n}"),
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
        for a, r, v in self.run_clients(work):
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
