"""Live changes: Server-Sent Events on REST, the Watch stream on gRPC."""

from __future__ import annotations

import queue
import threading
import time
import unittest

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import Cluster
from .support import (
    EXTERNAL,
    EventStream,
    Http,
    admin_headers,
    api_url,
    grpc_channel,
    grpc_target,
    local_cluster,
    track,
    unique,
)


def rest_pair() -> tuple[str, str]:
    """Two different REST nodes when the cluster is local (a change made through one must
    reach a stream held by the other); the deployment's address twice otherwise."""
    if EXTERNAL:
        return api_url(), api_url()
    urls = local_cluster().rest_urls
    return urls[0], urls[1]


class ServerSentEvents(unittest.TestCase):
    def setUp(self) -> None:
        self.room = unique("live")
        self.watch_url, self.write_url = rest_pair()
        self.writer = Http(self.write_url)
        self.addCleanup(self.writer.close)

    def stream(self, base: str | None = None, last_event_id: int | None = None) -> EventStream:
        stream = EventStream(base or self.watch_url, f"/rooms/{self.room}/events", last_event_id)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        self.assertTrue(stream.headers["content-type"].startswith("text/event-stream"))
        return stream

    def test_a_snapshot_then_each_change_from_another_node_within_a_second(self):
        self.writer.post(f"/rooms/{self.room}/add_track", track("first"))
        stream = self.stream()
        snapshot = stream.next_event()
        self.assertEqual(snapshot["event"], "snapshot")
        self.assertEqual([t["id"] for t in snapshot["data"]["queue"]], ["first"])
        self.assertEqual(snapshot["data"]["now_playing"], None)
        self.assertEqual(int(snapshot["id"]), snapshot["data"]["version"])
        version = snapshot["data"]["version"]
        for method, path, body, kind in [
                ("POST", "/add_track", track(7), "add"),
                ("POST", "/vote?id=7", None, "vote"),
                ("POST", "/remove_track", {"id": "first"}, "remove"),
                ("POST", "/play_next", None, "play"),
                ("POST", "/clear", None, "clear")]:
            sent = time.monotonic()
            reply = self.writer.request(method, f"/rooms/{self.room}{path}", body,
                                        headers=admin_headers())
            self.assertEqual(reply.status, 200, reply.body)
            event = stream.next_event(timeout=2.0)
            took = time.monotonic() - sent
            self.assertLess(took, 2.0, kind)  # bounds that hold on a machine twice as slow
            self.assertEqual(event["event"], kind)
            self.assertEqual(event["data"]["version"], version + 1)
            self.assertEqual(int(event["id"]), version + 1)
            version += 1
            if kind == "vote":
                self.assertEqual((event["data"]["track"]["id"], event["data"]["track"]["votes"]),
                                 (7, 1))
                self.assertEqual(event["data"]["queue"][0]["id"], 7)
            if kind == "play":
                self.assertEqual(event["data"]["now_playing"]["id"], 7)
                self.assertEqual(event["data"]["queue"], [])

    def test_a_reconnect_gets_a_snapshot_only_when_it_missed_something(self):
        stream = self.stream()
        seen = stream.next_event()["data"]["version"]
        stream.close()
        # nothing changed: no snapshot, the next frame is the next change
        again = self.stream(last_event_id=seen)
        self.writer.post(f"/rooms/{self.room}/add_track", track("a"))
        first = again.next_event(timeout=2)
        self.assertEqual((first["event"], first["data"]["version"]), ("add", seen + 1))
        again.close()
        # something changed while away: a fresh snapshot first
        self.writer.post(f"/rooms/{self.room}/add_track", track("b"))
        stale = self.stream(last_event_id=seen + 1)
        caught_up = stale.next_event()
        self.assertEqual(caught_up["data"]["version"], seen + 2)
        if caught_up["event"] == "snapshot":
            self.assertEqual([t["id"] for t in caught_up["data"]["queue"]], ["a", "b"])
        else:  # the node's view had not seen the add yet: it comes as the event itself
            self.assertEqual((caught_up["event"], caught_up["data"]["track"]["id"]),
                             ("add", "b"))

    def test_through_the_load_balancer_without_buffering(self):
        stream = self.stream(api_url())
        stream.next_event()
        sent = time.monotonic()
        self.writer.post(f"/rooms/{self.room}/add_track", track("lb"))
        self.assertEqual(stream.next_event(timeout=2.0)["event"], "add")
        self.assertLess(time.monotonic() - sent, 2.0)

    def test_a_bad_room_is_refused(self):
        stream = EventStream(self.watch_url, "/rooms/bad.room/events")
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 422)


class Heartbeat(unittest.TestCase):
    def test_an_idle_stream_gets_keep_alive_comments(self):
        if EXTERNAL:
            self.skipTest("starts a node with a short heartbeat")
        cluster = local_cluster()
        node = Cluster(rest=0, nginx=False, redis_url=cluster.redis_url,
                       env={"SSE_HEARTBEAT_MS": "300", **cluster.redis_env()})
        node.start()
        self.addCleanup(node.stop)
        node.add_rest_node()
        stream = EventStream(node.rest_urls[0], f"/rooms/{unique('hb')}/events")
        self.addCleanup(stream.close)
        self.assertEqual(stream.next_event()["event"], "snapshot")
        started = time.monotonic()
        self.assertEqual(stream.next(timeout=2), {"comment": "keep-alive"})
        self.assertLess(time.monotonic() - started, 2.0)


class Watch(unittest.TestCase):
    def test_a_snapshot_then_each_change_from_another_node_within_a_second(self):
        room = unique("watch")
        if EXTERNAL:
            watch_target = write_target = grpc_target()
        else:
            watch_target, write_target = local_cluster().grpc_targets[:2]
        events: queue.Queue = queue.Queue()
        watcher = grpc_channel(watch_target)
        writer = grpc_channel(write_target)
        self.addCleanup(writer.close)
        call = pb_grpc.QueueServiceStub(watcher).Watch(pb.Empty(room=room))

        def read() -> None:
            try:
                for event in call:
                    events.put(event)
            except grpc.RpcError:
                pass

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        snapshot = events.get(timeout=5)
        self.assertEqual((snapshot.type, snapshot.length), ("snapshot", 0))
        stub = pb_grpc.QueueServiceStub(writer)
        sent = time.monotonic()
        stub.AddTrack(pb.Track(id="w1", title="t", artist="a", room=room), timeout=5)
        event = events.get(timeout=2.0)
        self.assertLess(time.monotonic() - sent, 2.0)
        self.assertEqual((event.type, event.version, event.track.id),
                         ("add", snapshot.version + 1, "w1"))
        stub.VoteTrack(pb.VoteRequest(id="w1", up=True, room=room), timeout=5)
        event = events.get(timeout=2.0)
        self.assertEqual((event.type, event.track.votes, event.queue[0].votes), ("vote", 1, 1))
        call.cancel()
        thread.join(5)
        watcher.close()
