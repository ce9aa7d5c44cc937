"""Concurrency invariants through nginx over two nodes, 20 concurrent clients.

What the original system broke: adds lost, tracks played twice, votes wiped.
"""

from __future__ import annotations

import random
import threading
import unittest
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .support import Http, admin_headers, api_url, track, unique

CLIENTS = 20


class Invariants(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(api_url())
        self.addCleanup(self.http.close)
        self.room = unique("race")
        self.start = threading.Barrier(CLIENTS, timeout=30)

    def at(self, path: str) -> str:
        return f"/rooms/{self.room}{path}"

    def run_clients(self, work) -> list:
        def client(n: int):
            self.start.wait()
            try:
                return work(n)
            finally:
                self.http.close()

        with ThreadPoolExecutor(CLIENTS) as pool:
            return list(pool.map(client, range(CLIENTS)))

    def test_500_concurrent_upvotes_count_exactly_500(self):
        self.assertEqual(self.http.post(self.at("/add_track"), track("hit")).status, 200)

        def work(n: int) -> list[int]:
            return [self.http.post(self.at("/vote?id=hit&up=true")).status for _ in range(25)]

        statuses = Counter(s for batch in self.run_clients(work) for s in batch)
        self.assertEqual(statuses, {200: 500})
        self.assertEqual(self.http.get(self.at("/metadata/hit")).json()["votes"], 500)

    def test_200_tracks_drained_by_20_players_are_each_played_once(self):
        for i in range(200):
            self.assertEqual(self.http.post(self.at("/add_track"), track(f"d{i}")).status, 200)

        def work(n: int) -> list:
            played = []
            while True:
                reply = self.http.post(self.at("/play_next?head=0"), headers=admin_headers())
                if reply.status == 409:
                    return played
                self.assertEqual(reply.status, 200, reply.body)
                played.append(reply.json()["now_playing"]["id"])

        played = [track_id for batch in self.run_clients(work) for track_id in batch]
        expected = sorted(f"d{i}" for i in range(200))
        self.assertEqual(sorted(played), expected)  # each exactly once
        history = self.http.get(self.at("/history")).json()
        self.assertEqual(sorted(t["id"] for t in history), expected)
        self.assertEqual(self.http.get(self.at("/queue")).json(), [])

    def test_10_concurrent_adds_of_one_id_succeed_once(self):
        self.start = threading.Barrier(10, timeout=30)

        def add(n: int) -> int:
            self.start.wait()
            try:
                return self.http.post(self.at("/add_track"), track("same", title=f"T{n}")).status
            finally:
                self.http.close()

        with ThreadPoolExecutor(10) as pool:
            statuses = Counter(pool.map(add, range(10)))
        self.assertEqual(statuses, {200: 1, 409: 9})
        self.assertEqual(len(self.http.get(self.at("/queue")).json()), 1)

    def test_a_mix_of_adds_removes_and_votes_keeps_every_acknowledged_change(self):
        stable = [f"s{i}" for i in range(8)]  # only voted on: their votes must add up
        volatile = [f"v{i}" for i in range(12)]  # added and removed by everyone at once
        for track_id in stable:
            self.http.post(self.at("/add_track"), track(track_id))

        def work(n: int) -> tuple[Counter, Counter, Counter, Counter]:
            rng = random.Random(n)
            adds, removes, votes, statuses = Counter(), Counter(), Counter(), Counter()
            for _ in range(50):
                roll = rng.random()
                if roll < 0.3:
                    track_id = rng.choice(volatile)
                    reply = self.http.post(self.at("/add_track"), track(track_id))
                    if reply.status == 200:
                        adds[track_id] += 1
                elif roll < 0.55:
                    track_id = rng.choice(volatile)
                    reply = self.http.post(self.at("/remove_track"), {"id": track_id},
                                           headers=admin_headers())
                    if reply.status == 200:
                        removes[track_id] += 1
                else:
                    track_id = rng.choice(stable + volatile[:3])
                    up = rng.random() < 0.6
                    reply = self.http.post(self.at(f"/vote?id={track_id}&up={str(up).lower()}"))
                    if reply.status == 200:
                        votes[track_id] += 1 if up else -1
                statuses[reply.status] += 1
            return adds, removes, votes, statuses

        adds, removes, votes, statuses = Counter(), Counter(), Counter(), Counter()
        for a, r, v, s in self.run_clients(work):
            adds.update(a)
            removes.update(r)
            votes.update(v)
            statuses.update(s)
        self.assertLessEqual(set(statuses), {200, 404, 409}, statuses)
        queue = {t["id"]: t["votes"] for t in self.http.get(self.at("/queue")).json()}
        for track_id in volatile:
            present = adds[track_id] - removes[track_id]
            self.assertIn(present, (0, 1), track_id)
            self.assertEqual(track_id in queue, present == 1, track_id)
        for track_id in stable:
            self.assertEqual(queue[track_id], votes[track_id], track_id)
        self.assertEqual(set(queue), set(stable) | {t for t in volatile if adds[t] > removes[t]})
