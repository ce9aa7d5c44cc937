"""Rooms with their own hosts and guests (CONTRACT §7), on a cluster of its own: 3 REST
nodes, 1 gRPC node and nginx, with a server ADMIN_TOKEN, over one Redis (with
TEST_REDIS=cluster, over a Redis Cluster). "On every node" is checked by asking each REST
node directly and the gRPC node, not only through nginx.
"""

from __future__ import annotations

import threading
import time
import unittest

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc
from shared.keys import AUTOPLAY

from .cluster import Cluster
from .redis_servers import command
from .support import EXTERNAL, REDIS_CLUSTER, EventStream, Http, track, unique

ADMIN = "test-admin-token-3141"
AT_ONCE = 1.0  # a revoked or banned token fails on every node within this (CONTRACT §7)
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        raise unittest.SkipTest("starts nodes of its own with a server ADMIN_TOKEN")
    cluster = Cluster(rest=3, grpc=1, env={"ADMIN_TOKEN": ADMIN},
                      redis_cluster=REDIS_CLUSTER).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


def bearer(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Room:
    """A created room, through nginx, with its host token."""

    def __init__(self, http: Http):
        self.http = http
        self.name = unique("party")
        reply = http.post("/rooms", {"room": self.name})
        assert reply.status == 201, reply
        assert reply.json()["room"] == self.name
        self.host = reply.json()["host_token"]
        self.base = f"/rooms/{self.name}"

    def call(self, method: str, what: str, body=None, token: str | None = None,
             http: Http | None = None):
        return (http or self.http).request(method, f"{self.base}/{what}", body,
                                           headers=bearer(token))

    def post(self, what: str, body=None, token: str | None = None, http: Http | None = None):
        return self.call("POST", what, body, token, http)

    def join(self, name: str) -> tuple[str, str]:
        reply = self.post("guests", {"name": name})
        assert reply.status == 201, reply
        body = reply.json()
        assert body["name"] == name and body["guest_token"].startswith("mqg_"), body
        return body["guest"], body["guest_token"]

    def add(self, track_id: str, token: str | None = None) -> None:
        reply = self.post("add_track", track(track_id), token or self.host)
        assert reply.status == 200, reply

    def settings(self, **changes) -> dict:
        reply = self.call("PATCH", "settings", changes, self.host)
        assert reply.status == 200, reply
        return reply.json()

    def queue(self) -> list[str]:
        reply = self.http.get(f"{self.base}/queue")
        assert reply.status == 200, reply
        return [t["id"] for t in reply.json()]


class RoomsTest(unittest.TestCase):
    def setUp(self) -> None:
        assert cluster is not None
        self.http = Http(cluster.api_url)
        self.nodes = [Http(url) for url in cluster.rest_urls]
        self.channel = grpc.insecure_channel(cluster.grpc_targets[0])
        self.stub = pb_grpc.QueueServiceStub(self.channel)

    def tearDown(self) -> None:
        self.channel.close()
        for http in (self.http, *self.nodes):
            http.close()

    def everywhere(self, request) -> list[int]:
        """The status of one REST call on each node."""
        return [request(node).status for node in self.nodes]

    def until(self, check, what: str) -> float:
        """Seconds until ``check()`` holds (it must within AT_ONCE)."""
        start = time.monotonic()
        while not check():
            if time.monotonic() - start > AT_ONCE:
                self.fail(f"not within {AT_ONCE} s: {what}")
            time.sleep(0.02)
        return time.monotonic() - start

    # -- created rooms and host tokens -------------------------------------------------

    def test_create_room_token_shown_once_and_names_unique(self) -> None:
        room = Room(self.http)
        self.assertTrue(room.host.startswith("mqh_"))
        again = self.http.post("/rooms", {"room": room.name})
        self.assertEqual(again.status, 409)
        self.assertIn(room.name, again.detail)
        made_up = self.http.post("/rooms", {})
        self.assertEqual(made_up.status, 201)
        self.assertTrue(made_up.json()["room"])
        self.assertEqual(made_up.headers.get("cache-control"), "no-store")
        bad = self.http.post("/rooms", {"room": "no spaces/here"})
        self.assertEqual(bad.status, 422)
        self.assertIn("room", bad.detail)
        typo = self.http.post("/rooms", {"name": unique("typo")})  # not made up in its place
        self.assertEqual(typo.status, 422, typo)
        self.assertTrue(typo.detail.startswith("name:"), typo.detail)

    def test_host_operations_need_the_rooms_token_or_the_admin_token(self) -> None:
        room = Room(self.http)
        room.add("h1")
        cohost = room.post("cohosts", token=room.host).json()
        other = Room(self.http)
        for token, status in ((None, 401), ("mqh_not-a-real-token", 403), (other.host, 403)):
            reply = room.post("pause", token=token)
            self.assertEqual(reply.status, status, (token, reply))
            self.assertNotIn(room.host, reply.body.decode())
        reply = room.post("play_next", token=room.host)
        self.assertEqual(reply.status, 200, reply)
        for token in (room.host, cohost["token"], ADMIN):
            self.assertEqual(room.post("pause", token=token).status, 200)
            self.assertEqual(room.post("resume", token=token).status, 200)
        # the settings too, and a guest is no host
        _, guest = room.join("gus")
        self.assertEqual(room.call("PATCH", "settings", {"locked": True}, guest).status, 403)
        self.assertEqual(room.call("PATCH", "settings", {"locked": True},
                                   cohost["token"]).status, 200)

    def test_rooms_never_created_keep_the_admin_token_rule(self) -> None:
        base = f"/rooms/{unique('plain')}"
        self.assertEqual(self.http.post(f"{base}/add_track", track("p1")).status, 200)
        self.assertEqual(self.http.post(f"{base}/play_next").status, 401)
        self.assertEqual(self.http.post(f"{base}/play_next",
                                        headers=bearer(ADMIN)).status, 200)

    def test_the_default_room_cannot_be_created(self) -> None:
        """``default`` is the original's room: its host is the server's ADMIN_TOKEN, so
        nobody may take it over by creating it (REST or gRPC)."""
        reply = self.http.post("/rooms", {"room": "default"})
        self.assertEqual(reply.status, 409, reply)
        self.assertIn("default", reply.detail)
        self.assertIn("ADMIN_TOKEN", reply.detail)
        self.assertNotIn("host_token", reply.body.decode())
        with self.assertRaises(grpc.RpcError) as refused:
            self.stub.CreateRoom(pb.CreateRoomRequest(room="default"), timeout=5)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(self.http.post("/play_next").status, 401)  # still the admin's

    def test_only_the_host_makes_and_revokes_cohosts(self) -> None:
        """A co-host hosts, but may not make co-hosts: one it made would outlive its own
        revocation, unseen by the host."""
        room = Room(self.http)
        first = room.post("cohosts", token=room.host).json()
        second = room.post("cohosts", token=room.host).json()
        made = room.post("cohosts", token=first["token"])
        self.assertEqual(made.status, 403, made)
        self.assertIn("host", made.detail)
        self.assertNotIn("token", made.json())
        revoked = room.call("DELETE", f"cohosts/{second['cohost']}", token=first["token"])
        self.assertEqual(revoked.status, 403, revoked)
        self.assertEqual(room.call("PATCH", "settings", {"locked": False},
                                   second["token"]).status, 200, "still a co-host")
        self.assertEqual(room.post("cohosts", token=ADMIN).status, 201)
        self.assertEqual(room.call("DELETE", f"cohosts/{second['cohost']}",
                                   token=room.host).status, 200)

    def test_a_refused_settings_change_leaves_the_autoplay_sweep_alone(self) -> None:
        assert cluster is not None
        room = Room(self.http)
        port = cluster.redis_cluster.ports[0] if cluster.redis_cluster else cluster.redis_port

        def swept() -> str:
            return command(port, "-c", "SISMEMBER", AUTOPLAY, room.name).strip()

        for token in (None, "mqh_not-a-real-token"):
            reply = room.call("PATCH", "settings", {"autoplay": True}, token)
            self.assertIn(reply.status, (401, 403), reply)
        self.assertEqual(swept(), "0")
        room.settings(autoplay=True)
        self.assertEqual(swept(), "1")
        reply = room.call("PATCH", "settings", {"autoplay": True}, None)
        self.assertEqual(reply.status, 401)
        self.assertEqual(swept(), "1", "a refusal takes out only what it put in")

    def test_revoked_cohost_fails_on_every_node_at_once(self) -> None:
        room = Room(self.http)
        made = room.post("cohosts", token=room.host)
        self.assertEqual(made.status, 201)
        cohost = made.json()
        self.assertTrue(cohost["token"].startswith("mqc_"))

        def settings_on(node: Http):
            return room.call("PATCH", "settings", {"autoplay": False}, cohost["token"], node)

        self.assertEqual(self.everywhere(settings_on), [200] * len(self.nodes))
        metadata = (("authorization", f"Bearer {cohost['token']}"),)
        revoked = room.call("DELETE", f"cohosts/{cohost['cohost']}", token=room.host)
        self.assertEqual(revoked.status, 200, revoked)
        self.until(lambda: self.everywhere(settings_on) == [403] * len(self.nodes),
                   "the revoked co-host refused on every REST node")
        with self.assertRaises(grpc.RpcError) as refused:
            self.stub.UpdateSettings(pb.SettingsRequest(
                room=room.name, settings=pb.Settings(autoplay=False)),
                metadata=metadata, timeout=5)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        again = room.call("DELETE", f"cohosts/{cohost['cohost']}", token=room.host)
        self.assertEqual(again.status, 404)

    # -- guests ------------------------------------------------------------------------

    def test_guest_adds_carry_their_name_and_one_ballot_each(self) -> None:
        room = Room(self.http)
        ann, ann_token = room.join("Ann")
        _, bob_token = room.join("Bob")
        reply = room.post("add_track", track("g1"), ann_token)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json()["track"]["added_by"], {"guest": ann, "name": "Ann"})
        for voter in ("tab-1", "tab-2", "tab-3"):  # many tabs, one guest: one ballot
            vote = room.post("vote", {"id": "g1", "up": True, "voter": voter},
                             bob_token)
            self.assertEqual(vote.status, 200, vote)
        self.assertEqual(vote.json()["track"]["votes"], 1)
        # a guest removes their own tracks only
        room.add("host-track")
        self.assertEqual(room.post("remove_track", {"id": "host-track"}, bob_token).status,
                         403)
        self.assertEqual(room.post("remove_track", {"id": "g1"}, bob_token).status, 403)
        self.assertEqual(room.post("remove_track", {"id": "g1"}, ann_token).status, 200)
        # a token of another room is no guest here
        other = Room(self.http)
        _, stranger = other.join("Eve")
        self.assertEqual(room.post("add_track", track("g2"), stranger).status, 403)

    def test_me_lists_the_guests_tracks_with_positions(self) -> None:
        room = Room(self.http)
        room.add("first")
        _, token = room.join("Mia")
        room.add("m1", token)
        room.add("m2", token)
        reply = self.http.get(f"{room.base}/me", headers=bearer(token))
        self.assertEqual(reply.status, 200, reply)
        mine = reply.json()
        self.assertEqual(mine["name"], "Mia")
        self.assertEqual([(t["id"], t["position"]) for t in mine["tracks"]],
                         [("m1", 2), ("m2", 3)])
        self.assertEqual(self.http.get(f"{room.base}/me").status, 401)

    def test_max_per_guest_holds_under_concurrent_adds(self) -> None:
        room = Room(self.http)
        room.settings(max_per_guest=3)
        _, token = room.join("Flo")
        statuses: list[int] = []

        def add(n: int) -> None:
            http = Http(cluster.api_url)  # type: ignore[union-attr]
            statuses.append(http.post(f"{room.base}/add_track", track(f"f{n}"),
                                      headers=bearer(token)).status)
            http.close()

        threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(sorted(statuses), [200] * 3 + [409] * 17)
        self.assertEqual(len(room.queue()), 3)
        refused = room.post("add_track", track("f99"), token)
        self.assertEqual(refused.status, 409)
        self.assertIn("3", refused.detail)
        room.add("host-is-unlimited-1")
        room.add("host-is-unlimited-2")

    def test_locked_and_require_guest(self) -> None:
        room = Room(self.http)
        _, token = room.join("Lou")
        room.settings(require_guest=True)
        anonymous = room.post("add_track", track("a1"))
        self.assertEqual(anonymous.status, 401)
        self.assertIn("guest", anonymous.detail)
        skip = room.post("skip")  # (refused as an add is, before it needs a voter)
        self.assertEqual(skip.status, 401, skip)
        self.assertIn("guest", skip.detail)
        elsewhere = Room(self.http).join("Lee")[1]
        stranger = room.post("add_track", track("a2"), elsewhere)
        self.assertEqual(stranger.status, 403, stranger)
        self.assertIn("not one of this room's", stranger.detail)
        self.assertNotIn("admin", stranger.detail)
        me = room.call("GET", "me")
        self.assertEqual(me.status, 401, me)
        self.assertIn("guest token", me.detail)
        room.add("l1", token)
        self.assertEqual(room.post("vote", {"id": "l1", "up": True,
                                            "voter": "v"}).status, 401)
        room.settings(locked=True)
        locked = room.post("add_track", track("l2"), token)
        self.assertEqual(locked.status, 403)
        self.assertIn("locked", locked.detail)
        self.assertEqual(room.post("vote", {"id": "l1", "up": True}, token).status, 200)
        room.add("l3")  # the host still adds
        self.assertEqual(room.queue(), ["l1", "l3"])

    def test_fair_order_is_round_robin_by_guest(self) -> None:
        room = Room(self.http)
        _, ann = room.join("Ann")
        _, bob = room.join("Bob")
        _, cy = room.join("Cy")
        room.settings(order="fair")
        # 3 guests adding 3, 2 and 1 tracks: the order after each add
        for track_id, token, order in (
                ("a1", ann, ["a1"]),
                ("a2", ann, ["a1", "a2"]),
                ("a3", ann, ["a1", "a2", "a3"]),
                ("b1", bob, ["a1", "b1", "a2", "a3"]),
                ("h1", cy, ["a1", "b1", "h1", "a2", "a3"]),
                ("b2", bob, ["a1", "b1", "h1", "a2", "b2", "a3"])):
            room.add(track_id, token)
            self.assertEqual(room.queue(), order, f"after adding {track_id}")
        # a vote reorders within a guest, then within a round
        self.assertEqual(room.post("vote", {"id": "a3", "up": True}, bob).status, 200)
        self.assertEqual(room.queue(), ["a3", "b1", "h1", "a1", "b2", "a2"])
        self.assertEqual(room.post("vote", {"id": "b2", "up": True}, cy).status, 200)
        self.assertEqual(room.queue(), ["a3", "b2", "h1", "a1", "b1", "a2"])
        # a removal moves the guest's later tracks up a round
        self.assertEqual(room.post("remove_track", {"id": "a3"}, ann).status, 200)
        self.assertEqual(room.queue(), ["b2", "a1", "h1", "a2", "b1"])
        # playing takes the head; the next of that guest moves up
        played = room.post("play_next", token=room.host)
        self.assertEqual(played.json()["now_playing"]["id"], "b2")
        self.assertEqual(room.queue(), ["a1", "b1", "h1", "a2"])
        # switching order re-ranks in one step, both ways
        room.settings(order="votes")
        self.assertEqual(room.queue(), ["a1", "a2", "b1", "h1"])
        self.assertEqual(room.post("vote", {"id": "a2", "up": True}, cy).status, 200)
        self.assertEqual(room.queue(), ["a2", "a1", "b1", "h1"])
        room.settings(order="fair")
        self.assertEqual(room.queue(), ["a2", "b1", "h1", "a1"])

    def test_ban_removes_tracks_and_ballots_at_once_and_ends_streams(self) -> None:
        room = Room(self.http)
        troll, troll_token = room.join("Troll")
        _, kind_token = room.join("Kind")
        room.add("k1", kind_token)
        room.add("k2", kind_token)
        room.add("t1", troll_token)
        room.add("t2", troll_token)
        for track_id, direction in (("k1", False), ("k2", True)):
            self.assertEqual(room.post("vote", {"id": track_id, "up": direction},
                                       troll_token).status, 200)
        self.assertEqual(room.post("vote", {"id": "k2", "up": True}, kind_token).status, 200)
        self.assertEqual(room.queue(), ["k2", "t1", "t2", "k1"])
        streams = [EventStream(url, f"{room.base}/events",
                               headers=bearer(troll_token)) for url in cluster.rest_urls]
        watch = self.stub.Watch(pb.Empty(room=room.name), timeout=20,
                                metadata=(("authorization", f"Bearer {troll_token}"),))
        self.assertEqual(next(watch).type, "snapshot")
        bystander = EventStream(cluster.api_url, f"{room.base}/events")
        for stream in [*streams, bystander]:
            self.assertEqual(stream.status, 200)
            self.assertEqual(stream.next_event()["event"], "snapshot")

        banned = room.post(f"guests/{troll}/ban", token=room.host)
        self.assertEqual(banned.status, 200, banned)
        # one step: the troll's tracks and ballots are gone together
        reply = self.http.get(f"{room.base}/queue")
        self.assertEqual([(t["id"], t["votes"]) for t in reply.json()], [("k2", 1), ("k1", 0)])
        for stream in streams:  # the troll's streams end, on every node, saying why
            self.assertEqual(stream.next_event()["event"], "banned")
            with self.assertRaises(EOFError):
                stream.next(timeout=5)
            stream.close()
        with self.assertRaises(grpc.RpcError) as ended:
            for _ in watch:
                pass
        self.assertEqual(ended.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        # others see it: the ban event, or (its ballots moved other tracks) a fresh snapshot
        seen = bystander.next_event()
        self.assertIn(seen["event"], ("ban", "snapshot"))
        self.assertEqual([t["id"] for t in seen["data"]["queue"]], ["k2", "k1"])
        bystander.close()

        def refused_everywhere() -> bool:
            return self.everywhere(lambda node: room.post(
                "vote", {"id": "k1", "up": True}, troll_token, node)) == [403] * 3
        self.until(refused_everywhere, "the banned token refused on every node")
        again = EventStream(cluster.api_url, f"{room.base}/events",
                            headers=bearer(troll_token))
        self.assertEqual(again.status, 403)
        again.close()
        lifted = self.call_ok("DELETE", room, f"guests/{troll}/ban", room.host)
        self.assertEqual(lifted["guest"], troll)
        room.add("t3", troll_token)

    def test_tracks_without_a_guest_token_count_as_one_guest_in_fair_order(self) -> None:
        room = Room(self.http)
        _, ann = room.join("Ann")
        room.settings(order="fair")
        for track_id, token in (("a1", ann), ("a2", ann), ("n1", None), ("n2", None)):
            self.assertEqual(room.post("add_track", track(track_id), token).status, 200)
        self.assertEqual(room.queue(), ["a1", "n1", "a2", "n2"])

    def test_tracks_added_without_a_token_before_fair_order_count_as_one_guest_then(self):
        room = Room(self.http)
        _, ann = room.join("Ann")
        for track_id, token in (("n1", None), ("n2", None), ("a1", ann), ("a2", ann)):
            self.assertEqual(room.post("add_track", track(track_id), token).status, 200)
        self.assertEqual(room.queue(), ["n1", "n2", "a1", "a2"])
        room.settings(order="fair")
        self.assertEqual(room.queue(), ["n1", "a1", "n2", "a2"])
        room.settings(order="votes")
        self.assertEqual(room.queue(), ["n1", "n2", "a1", "a2"])
        room.settings(order="fair")
        self.assertEqual(room.post("add_track", track("n3")).status, 200)
        self.assertEqual(room.queue(), ["n1", "a1", "n2", "a2", "n3"])

    def call_ok(self, method: str, room: Room, what: str, token: str) -> dict:
        reply = room.call(method, what, token=token)
        self.assertEqual(reply.status, 200, reply)
        return reply.json()

    def test_guest_sessions_are_rate_limited_per_address(self) -> None:
        assert cluster is not None
        node = cluster.add_rest_node(GUEST_JOINS_PER_MINUTE="3")
        try:
            http = Http(cluster.rest_urls[-1])
            self.addCleanup(http.close)
            room = Room(self.http)
            statuses = [http.post(f"{room.base}/guests", {"name": f"n{i}"}).status
                        for i in range(5)]
            self.assertEqual(statuses, [201, 201, 201, 429, 429])
            limited = http.post(f"{room.base}/guests", {"name": "late"})
            self.assertGreaterEqual(int(limited.headers["retry-after"]), 1)
        finally:
            node.stop()
            cluster.rest.remove(node)
            cluster.rest_ports.pop()

    # -- gRPC --------------------------------------------------------------------------

    def test_grpc_guest_sessions_are_limited_per_client_behind_the_load_balancer(self):
        """Behind nginx every call comes from nginx's address: the node counts joins by the
        X-Forwarded-For nginx sends (from a trusted proxy only), so one client's tabs do not
        use up everyone's joins."""
        assert cluster is not None
        node = cluster.add_grpc_node(GUEST_JOINS_PER_MINUTE="3")
        channel = grpc.insecure_channel(f"127.0.0.1:{cluster.grpc_ports[-1]}")
        try:
            stub = pb_grpc.QueueServiceStub(channel)
            room = Room(self.http)

            def join(client: str) -> str:
                try:
                    stub.Join(pb.JoinRequest(room=room.name, name="tab"), timeout=5,
                              metadata=(("x-forwarded-for", client),))
                except grpc.RpcError as exc:
                    return exc.code().name
                return "OK"

            first = [join("198.51.100.7") for _ in range(4)]
            self.assertEqual(first, ["OK", "OK", "OK", "RESOURCE_EXHAUSTED"])
            self.assertEqual(join("198.51.100.8"), "OK", "another client behind the proxy")
            self.assertEqual(join("203.0.113.9, 198.51.100.7"), "RESOURCE_EXHAUSTED",
                             "the nearest hop is what the proxy saw")
        finally:
            channel.close()
            node.stop()
            cluster.grpc.remove(node)
            cluster.grpc_ports.pop()
            cluster.grpc_metrics_ports.pop()

    def test_grpc_rooms_guests_and_bans(self) -> None:
        name = unique("grpc-party")
        made = self.stub.CreateRoom(pb.CreateRoomRequest(room=name), timeout=5)
        self.assertEqual(made.room, name)
        host = (("authorization", f"Bearer {made.host_token}"),)
        with self.assertRaises(grpc.RpcError) as taken:
            self.stub.CreateRoom(pb.CreateRoomRequest(room=name), timeout=5)
        self.assertEqual(taken.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        guest = self.stub.Join(pb.JoinRequest(room=name, name="Gia"), timeout=5)
        mine = (("authorization", f"Bearer {guest.guest_token}"),)
        added = self.stub.AddTrack(pb.Track(room=name, id="gr1", title="T", artist="A"),
                                   metadata=mine, timeout=5)
        self.assertEqual((added.track.added_by_guest, added.track.added_by_name),
                         (guest.guest, "Gia"))
        me = self.stub.Me(pb.Empty(room=name), metadata=mine, timeout=5)
        self.assertEqual([(t.track.id, t.position) for t in me.tracks], [("gr1", 1)])
        settings = self.stub.UpdateSettings(pb.SettingsRequest(
            room=name, settings=pb.Settings(order="fair", max_per_guest=1)), metadata=host,
            timeout=5)
        self.assertEqual((settings.order, settings.max_per_guest), ("fair", 1))
        with self.assertRaises(grpc.RpcError) as full:
            self.stub.AddTrack(pb.Track(room=name, id="gr2", title="T", artist="A"),
                               metadata=mine, timeout=5)
        self.assertEqual(full.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(grpc.RpcError) as not_host:
            self.stub.Ban(pb.GuestRequest(room=name, guest=guest.guest), metadata=mine,
                          timeout=5)
        self.assertEqual(not_host.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.stub.Ban(pb.GuestRequest(room=name, guest=guest.guest), metadata=host, timeout=5)
        self.assertEqual(list(self.stub.GetQueue(pb.Empty(room=name), timeout=5).queue), [])
        with self.assertRaises(grpc.RpcError) as banned:
            self.stub.Me(pb.Empty(room=name), metadata=mine, timeout=5)
        self.assertEqual(banned.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.stub.Unban(pb.GuestRequest(room=name, guest=guest.guest), metadata=host,
                        timeout=5)
        cohost = self.stub.AddCohost(pb.Empty(room=name), metadata=host, timeout=5)
        self.assertTrue(cohost.token.startswith("mqc_"))
        self.stub.RevokeCohost(pb.CohostRequest(room=name, cohost=cohost.cohost),
                               metadata=host, timeout=5)

    # -- secrets -----------------------------------------------------------------------

    def test_tokens_never_reach_a_log(self) -> None:
        room = Room(self.http)
        _, guest = room.join("Quiet")
        cohost = room.post("cohosts", token=room.host).json()["token"]
        for token in (room.host, guest, cohost, ADMIN, "mqh_wrong-token-in-a-log?"):
            room.post("play_next", token=token)
            room.post("vote", {"id": "nothing", "up": True}, token)
        self.http.get(f"{room.base}/me", headers=bearer("mqg_bogus-guest-token"))
        assert cluster is not None
        time.sleep(0.3)  # the nodes' and nginx's logs are written as they go
        for log in cluster.dir.glob("*.log"):
            text = log.read_text(errors="replace")
            for token in (room.host, guest, cohost, ADMIN, "wrong-token-in-a-log",
                          "bogus-guest-token"):
                self.assertNotIn(token, text, f"a token in {log.name}")


if __name__ == "__main__":
    unittest.main()
