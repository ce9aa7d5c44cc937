"""Heads from a node's view of a room (``Live.view``, ``Live.head_after``, ``Queue.page``):
a node answers a room's first page, and a write's head, from the head it keeps by applying
each change, after checking the room's version. Whatever the node, nothing acknowledged is
missed, and every head is the room's head at the version it comes with."""

from __future__ import annotations

import random
import threading
import unittest

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .support import EventStream, Http, grpc_channel, local_cluster, track, unique


def ids_votes(tracks: list) -> list[tuple[str, int]]:
    return [(t["id"], t["votes"]) for t in tracks]


class HeadsFromViews(unittest.TestCase):
    def setUp(self) -> None:
        self.cluster = local_cluster()  # two REST nodes, two gRPC nodes (skips if external)
        self.room = unique("view")
        self.nodes = [Http(url) for url in self.cluster.rest_urls]
        for node in self.nodes:
            self.addCleanup(node.close)

    def path(self, rest: str) -> str:
        return f"/rooms/{self.room}/{rest}"

    def test_a_read_on_either_node_sees_every_write_acknowledged_on_the_other(self):
        for i in range(30):
            self.assertEqual(self.nodes[0].post(self.path("add_track"), track(f"t{i}")).status,
                             200)
        rng = random.Random(11)
        checked = 0
        for step in range(160):
            writer, reader = self.nodes[step % 2], self.nodes[1 - step % 2]
            pick, track_id = rng.random(), f"t{rng.randrange(40)}"
            if pick < 0.6:
                up = "true" if rng.random() < 0.6 else "false"
                reply = writer.post(self.path(f"vote?id={track_id}&up={up}"))
            elif pick < 0.8:
                reply = writer.post(self.path("add_track"), track(track_id))
            elif pick < 0.93:
                reply = writer.post(self.path("remove_track"), {"id": track_id})
            else:
                reply = writer.post(self.path("play_next"))
            if reply.status != 200:
                self.assertIn(reply.status, (404, 409), reply.body)  # not queued, or queued
                continue
            read = reader.get(self.path("queue?limit=25"))
            whole = reader.get(self.path("queue?limit=1000"))  # beyond any view: from Redis
            self.assertEqual(read.headers["etag"], whole.headers["etag"])
            self.assertEqual(read.json(), whole.json()[:25])
            if "queue" in reply.json():
                self.assertEqual(ids_votes(reply.json()["queue"]), ids_votes(read.json()))
            checked += 1
        self.assertGreater(checked, 60)

    def test_concurrent_writes_through_two_nodes_each_get_the_head_at_their_version(self):
        for i in range(30):
            self.nodes[0].post(self.path("add_track"), track(f"t{i}"))
        stream = EventStream(self.cluster.rest_urls[1], self.path("events"))
        self.addCleanup(stream.close)
        self.assertEqual(stream.next_event()["event"], "snapshot")
        targets = self.cluster.grpc_targets
        self.assertEqual(len(targets), 2)
        replies: list[tuple[int, list[tuple[str, int]]]] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            channel = grpc_channel(targets[n % 2])
            stub = pb_grpc.QueueServiceStub(channel)
            rng = random.Random(n)
            try:
                for _ in range(20):
                    reply = stub.VoteTrack(pb.VoteRequest(
                        id=f"t{rng.randrange(30)}", up=rng.random() < 0.6, room=self.room),
                        timeout=10)
                    with lock:
                        replies.append((reply.version,
                                        [(t.id, t.votes) for t in reply.queue]))
            except BaseException as exc:
                failures.append(exc)
            finally:
                channel.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(failures, [])
        self.assertEqual(len(replies), 160)
        last = max(version for version, _ in replies)
        heads: dict[int, list[tuple[str, int]]] = {}
        while not heads or max(heads) < last:
            event = stream.next_event(timeout=10)
            self.assertEqual(event["event"], "vote", "the stream was not read again meanwhile")
            heads[event["data"]["version"]] = ids_votes(event["data"]["queue"])
        self.assertEqual(len({version for version, _ in replies}), 160)  # one each
        for version, head in replies:
            self.assertEqual(head, heads[version], f"the head at version {version}")


if __name__ == "__main__":
    unittest.main()
