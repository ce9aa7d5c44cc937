"""The REST API, contract §2 and §3, through nginx over two nodes (or API_URL)."""

from __future__ import annotations

import json
import re
import unittest

from .support import Http, admin_headers, api_url, default_room, track, unique

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class RestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(api_url())
        self.room = unique("room")
        self.addCleanup(self.http.close)

    def at(self, path: str) -> str:
        return f"/rooms/{self.room}{path}"

    def add(self, track_id, **fields) -> dict:
        reply = self.http.post(self.at("/add_track"), track(track_id, **fields))
        self.assertEqual(reply.status, 200, reply.body)
        return reply.json()

    def ids(self) -> list:
        reply = self.http.get(self.at("/queue"))
        self.assertEqual(reply.status, 200, reply.body)
        return [(t["id"], t["votes"]) for t in reply.json()]

    def assertError(self, reply, status: int, *words: str) -> str:
        self.assertEqual(reply.status, status, reply.body)
        self.assertTrue(reply.headers["content-type"].startswith("application/json"))
        detail = reply.json()["detail"]
        self.assertIsInstance(detail, str)
        for word in words:
            self.assertIn(word, detail)
        return detail


class DefaultRoom(RestCase):
    """The original, room-less endpoints: the seed README's requests, exactly."""

    def setUp(self) -> None:
        default_room()
        super().setUp()
        self.assertEqual(self.http.post("/clear", headers=admin_headers()).status, 200)

    def test_the_original_flow(self):
        added = self.http.post("/add_track", {"id": 123, "title": "Song Title",
                                              "artist": "Artist Name", "duration": 200})
        self.assertEqual(added.status, 200, added.body)
        body = added.json()
        self.assertEqual(body["message"], "Track added")
        self.assertEqual(body["track"]["id"], 123)
        voted = self.http.post("/vote?id=123&up=true", {"id": 123})
        self.assertEqual(voted.json()["track"]["votes"], 1)
        self.assertEqual([t["id"] for t in self.http.get("/queue").json()], [123])
        self.assertEqual(self.http.get("/metadata/123").json()["title"], "Song Title")
        played = self.http.post("/play_next", headers=admin_headers())
        self.assertEqual(played.json()["now_playing"]["id"], 123)
        self.assertEqual(self.http.get("/history").json()[0]["id"], 123)
        self.assertEqual(self.http.get("/now_playing").json()["now_playing"]["id"], 123)
        self.add_and_remove()

    def add_and_remove(self):
        self.http.post("/add_track", track(123))
        removed = self.http.post("/remove_track", {"id": 123}, headers=admin_headers())
        self.assertEqual(removed.status, 200, removed.body)
        self.assertEqual(removed.json()["message"], "Track removed")
        self.assertEqual(self.http.get("/queue").json(), [])

    def test_root_and_default_room_are_one(self):
        self.http.post("/add_track", track("shared-1"))
        self.assertEqual([t["id"] for t in self.http.get("/rooms/default/queue").json()],
                         ["shared-1"])


class Tracks(RestCase):
    def test_a_track_has_every_field(self):
        body = self.add("a1", title="Hey Jude", artist="The Beatles", duration=431)
        t = body["track"]
        self.assertEqual({k: t[k] for k in ("id", "title", "artist", "duration", "votes")},
                         {"id": "a1", "title": "Hey Jude", "artist": "The Beatles",
                          "duration": 431, "votes": 0})
        self.assertRegex(t["added_at"], ISO)
        self.assertNotIn("played_at", t)
        self.assertEqual(body["queue"], [t])

    def test_ids_made_of_digits_round_trip_as_integers(self):
        self.assertEqual(self.add(123)["track"]["id"], 123)
        self.assertEqual(self.add("456")["track"]["id"], 456)
        self.assertEqual(self.add("0123")["track"]["id"], "0123")
        self.assertEqual(self.add(0)["track"]["id"], 0)
        big = 10**40
        self.assertEqual(self.add(big)["track"]["id"], big)
        self.assertEqual(self.http.get(self.at("/metadata/123")).json()["id"], 123)
        self.assertEqual(self.http.get(self.at("/metadata/0123")).json()["id"], "0123")
        self.assertEqual(self.add("a.b_c:d-E")["track"]["id"], "a.b_c:d-E")

    def test_an_id_is_queued_at_most_once(self):
        self.add(1)
        again = self.http.post(self.at("/add_track"), track("1", title="Other"))
        self.assertError(again, 409, "already in the queue")
        self.assertEqual(self.http.get(self.at("/metadata/1")).json()["title"], "Song Title")

    def test_a_played_id_may_be_queued_again(self):
        self.add(7)
        self.http.post(self.at("/play_next"), headers=admin_headers())
        self.assertEqual(self.add(7, title="Encore")["track"]["title"], "Encore")

    def test_titles_are_trimmed_duration_may_be_omitted_votes_are_ignored(self):
        reply = self.http.post(self.at("/add_track"), {"id": "x", "title": "  Spaced  ",
                                                        "artist": "\tA ", "votes": 99})
        self.assertEqual(reply.status, 200, reply.body)
        t = reply.json()["track"]
        self.assertEqual((t["title"], t["artist"], t["duration"], t["votes"]),
                         ("Spaced", "A", 0, 0))

    def test_boundaries_that_are_allowed(self):
        self.add("i" * 64, title="t" * 200, artist="a" * 200, duration=86400)
        self.add("zero", duration=0)
        self.add("unicode", title="Ça plane pour moi ✨", artist="Plastic Bertrand")
        self.assertEqual(self.http.get(self.at("/metadata/unicode")).json()["title"],
                         "Ça plane pour moi ✨")


class Order(RestCase):
    def test_most_votes_first_then_first_added(self):
        for track_id in ("a", "b", "c", "d"):
            self.add(track_id)
        self.http.post(self.at("/vote?id=c&up=true"))
        self.http.post(self.at("/vote?id=d&up=true"))
        self.http.post(self.at("/vote?id=a&up=false"))
        self.assertEqual(self.ids(), [("c", 1), ("d", 1), ("b", 0), ("a", -1)])

    def test_pages_of_the_queue(self):
        for i in range(6):
            self.add(f"t{i}")
        page = self.http.get(self.at("/queue?limit=2&offset=3"))
        self.assertEqual([t["id"] for t in page.json()], ["t3", "t4"])
        self.assertEqual(page.headers["x-queue-length"], "6")
        self.assertEqual(len(self.http.get(self.at("/queue?limit=100")).json()), 6)

    def test_write_responses_carry_the_head_only(self):
        for i in range(30):
            body = self.add(f"t{i:02d}")
        self.assertEqual(len(body["queue"]), 25)
        self.assertEqual([t["id"] for t in body["queue"]][:2], ["t00", "t01"])
        small = self.http.post(self.at("/vote?id=t05&head=3"))
        self.assertEqual([t["id"] for t in small.json()["queue"]], ["t05", "t00", "t01"])
        self.assertError(self.http.post(self.at("/vote?id=t05&head=101")), 422, "head")


class Votes(RestCase):
    def setUp(self) -> None:
        super().setUp()
        self.add("v")

    def votes(self) -> int:
        return self.http.get(self.at("/metadata/v")).json()["votes"]

    def test_anonymous_votes_each_count(self):
        for _ in range(3):
            self.assertEqual(self.http.post(self.at("/vote?id=v")).status, 200)
        reply = self.http.post(self.at("/vote?id=v&up=false"))
        self.assertEqual(reply.json()["message"], "Vote recorded")
        self.assertEqual(reply.json()["track"]["votes"], 2)

    def test_up_accepts_every_spelling(self):
        for word, delta in [("true", 1), ("1", 1), ("yes", 1), ("TRUE", 1), ("false", -1),
                            ("0", -1), ("no", -1), ("No", -1)]:
            before = self.votes()
            reply = self.http.post(self.at(f"/vote?id=v&up={word}"))
            self.assertEqual(reply.status, 200, (word, reply.body))
            self.assertEqual(self.votes(), before + delta, word)
        self.assertError(self.http.post(self.at("/vote?id=v&up=maybe")), 422, "up")

    def test_the_same_keys_may_come_in_the_body(self):
        self.assertEqual(self.http.post(self.at("/vote"), {"id": "v", "up": False}).status, 200)
        self.assertEqual(self.http.post(self.at("/vote"), {"id": "v", "up": "no"}).status, 200)
        self.assertEqual(self.votes(), -2)
        self.http.post(self.at("/vote"), {"id": "v", "voter": "ann"})
        self.http.post(self.at("/vote"), {"id": "v", "voter": "ann"})
        self.assertEqual(self.votes(), -1)

    def test_a_voter_holds_one_ballot_per_track(self):
        path = self.at("/vote?id=v&voter=ann")
        self.assertEqual(self.http.post(path).json()["track"]["votes"], 1)
        self.assertEqual(self.http.post(path).json()["track"]["votes"], 1)
        self.assertEqual(self.http.post(path + "&up=false").json()["track"]["votes"], -1)
        self.assertEqual(self.http.post(self.at("/vote?id=v&voter=bob")).json()["track"]["votes"],
                         0)

    def test_votes_need_a_queued_track(self):
        self.assertError(self.http.post(self.at("/vote?id=ghost")), 404, "ghost")
        self.assertError(self.http.post(self.at("/vote")), 422, "id")
        self.assertError(self.http.post(self.at("/vote?id=v&voter=" + "x" * 65)), 422, "voter")


class Playing(RestCase):
    def test_play_next_moves_the_first_track_to_now_playing_and_history(self):
        self.assertEqual(self.http.get(self.at("/now_playing")).json(), {"now_playing": None})
        self.add("a")
        self.add("b")
        self.http.post(self.at("/vote?id=b"))
        reply = self.http.post(self.at("/play_next"), headers=admin_headers())
        self.assertEqual(reply.status, 200, reply.body)
        now = reply.json()["now_playing"]
        self.assertEqual((now["id"], now["votes"]), ("b", 1))
        self.assertRegex(now["played_at"], ISO)
        again = self.http.get(self.at("/now_playing")).json()["now_playing"]
        self.assertGreaterEqual(again.pop("position"), now.pop("position"))
        self.assertEqual(again, now)
        self.assertEqual(self.ids(), [("a", 0)])
        self.http.post(self.at("/play_next"), headers=admin_headers())
        history = self.http.get(self.at("/history")).json()
        self.assertEqual([t["id"] for t in history], ["a", "b"])
        self.assertTrue(all("played_at" in t for t in history))
        self.assertEqual([t["id"] for t in
                          self.http.get(self.at("/history?limit=1&offset=1")).json()], ["b"])

    def test_play_next_on_an_empty_queue_conflicts(self):
        self.assertError(self.http.post(self.at("/play_next"), headers=admin_headers()), 409,
                         "empty")

    def test_metadata_covers_queued_playing_and_played_tracks(self):
        self.add("q1")
        self.add("p1")
        self.add("p2")
        self.http.post(self.at("/vote?id=p1"))
        self.http.post(self.at("/vote?id=p1"))
        self.http.post(self.at("/vote?id=p2"))
        self.http.post(self.at("/play_next"), headers=admin_headers())  # p1
        self.http.post(self.at("/play_next"), headers=admin_headers())  # p2 now, p1 history
        self.assertNotIn("played_at", self.http.get(self.at("/metadata/q1")).json())
        self.assertIn("played_at", self.http.get(self.at("/metadata/p2")).json())
        p1 = self.http.get(self.at("/metadata/p1")).json()
        self.assertEqual((p1["id"], p1["votes"]), ("p1", 2))
        self.assertError(self.http.get(self.at("/metadata/nope")), 404, "nope")

    def test_remove_and_clear(self):
        self.add("a")
        self.add("b")
        removed = self.http.post(self.at("/remove_track"), {"id": "a"}, headers=admin_headers())
        self.assertEqual(removed.json()["track"]["id"], "a")
        self.assertEqual([t["id"] for t in removed.json()["queue"]], ["b"])
        self.assertError(self.http.post(self.at("/remove_track"), {"id": "a"},
                                        headers=admin_headers()), 404)
        self.http.post(self.at("/play_next"), headers=admin_headers())
        self.add("c")
        cleared = self.http.post(self.at("/clear"), headers=admin_headers())
        self.assertEqual(cleared.status, 200, cleared.body)
        self.assertEqual(self.ids(), [])
        self.assertEqual(self.http.get(self.at("/history")).json(), [])
        self.assertEqual(self.http.get(self.at("/now_playing")).json(), {"now_playing": None})


class Rooms(RestCase):
    def test_rooms_are_independent(self):
        other = unique("room")
        self.add("x")
        self.assertEqual(self.http.get(f"/rooms/{other}/queue").json(), [])
        self.http.post(f"/rooms/{other}/add_track", track("x"))
        self.http.post(f"/rooms/{other}/vote?id=x")
        self.assertEqual(self.ids(), [("x", 0)])

    def test_every_endpoint_exists_under_a_room(self):
        self.add("e")
        for method, path in [("POST", "/vote?id=e"), ("GET", "/queue"), ("GET", "/metadata/e"),
                             ("GET", "/now_playing"), ("GET", "/history"),
                             ("POST", "/play_next"), ("POST", "/clear")]:
            reply = self.http.request(method, self.at(path), headers=admin_headers())
            self.assertEqual(reply.status, 200, (path, reply.body))

    def test_bad_room_names_are_refused(self):
        for room in ("a" * 65, "%7B", "bad.room", "sp%20ace", "%2A"):
            self.assertError(self.http.get(f"/rooms/{room}/queue"), 422, "room")
        self.assertEqual(self.http.get(f"/rooms/{'a' * 64}/queue").status, 200)


class Errors(RestCase):
    def test_malformed_json_is_400(self):
        for raw in (b"{", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"", b"null"):
            reply = self.http.request("POST", self.at("/add_track"), raw=raw)
            self.assertError(reply, 400)
        # what Python's json module would take but JSON is not, or cannot be read at all
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            raw = b'{"id": "n", "title": "t", "artist": "a", "duration": ' + constant + b"}"
            self.assertError(self.http.request("POST", self.at("/add_track"), raw=raw), 400,
                             constant.decode().lstrip("-"))
        raw = b'{"id": ' + b"9" * 5000 + b', "title": "t", "artist": "a"}'
        self.assertError(self.http.request("POST", self.at("/add_track"), raw=raw), 400, "digits")

    def test_values_out_of_their_rules_are_422_naming_the_field(self):
        cases = [
            ({"title": "t", "artist": "a"}, "id"),
            ({"id": -1, "title": "t", "artist": "a"}, "id"),
            ({"id": 1.5, "title": "t", "artist": "a"}, "id"),
            ({"id": True, "title": "t", "artist": "a"}, "id"),
            ({"id": "a" * 65, "title": "t", "artist": "a"}, "id"),
            ({"id": "sp ace", "title": "t", "artist": "a"}, "id"),
            ({"id": "ok", "artist": "a"}, "title"),
            ({"id": "ok", "title": "   ", "artist": "a"}, "title"),
            ({"id": "ok", "title": "t" * 201, "artist": "a"}, "title"),
            ({"id": "ok", "title": "bell\x07", "artist": "a"}, "title"),
            ({"id": "ok", "title": "t", "artist": ["a"]}, "artist"),
            ({"id": "ok", "title": "t", "artist": "a", "duration": -1}, "duration"),
            ({"id": "ok", "title": "t", "artist": "a", "duration": 86401}, "duration"),
            ({"id": "ok", "title": "t", "artist": "a", "duration": "200"}, "duration"),
        ]
        for body, field in cases:
            self.assertError(self.http.post(self.at("/add_track"), body), 422, field)
        self.assertEqual(self.ids(), [])

    def test_malformed_parameters_are_400_and_out_of_range_ones_422(self):
        self.assertError(self.http.get(self.at("/queue?limit=abc")), 400, "limit")
        self.assertError(self.http.get(self.at("/history?offset=1.5")), 400, "offset")
        self.assertError(self.http.get(self.at("/queue?limit=0")), 422, "limit")
        self.assertError(self.http.get(self.at("/queue?offset=-1")), 422, "offset")
        self.assertError(self.http.get(self.at("/queue?limit=99999999999999999999")), 422, "limit")

    def test_a_body_over_64_kib_is_413(self):
        big = {"id": "x", "title": "t" * 70_000, "artist": "a"}
        reply = self.http.post(self.at("/add_track"), big)
        self.assertError(reply, 413, "64 KiB")
        self.assertTrue(reply.headers.get("x-node-id"), reply.headers)  # nginx's own answer too

    def test_unknown_paths_and_methods(self):
        self.assertError(self.http.get("/no/such/thing"), 404)
        self.assertError(self.http.request("DELETE", "/add_track"), 405)
        self.assertError(self.http.get("/add_track"), 405)

    def test_the_body_is_read_whatever_the_content_type(self):
        raw = json.dumps(track("ct1")).encode()
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
            headers = {"Content-Type": content_type} if content_type else {}
            reply = self.http.request("POST", self.at("/add_track"), raw=raw, headers=headers)
            self.assertIn(reply.status, (200, 409), reply.body)
        self.assertEqual(self.ids(), [("ct1", 0)])

    def test_a_malformed_id_in_the_path_is_422(self):
        self.assertError(self.http.get(self.at("/metadata/a%20b")), 422, "id")


class Protocol(RestCase):
    def test_every_response_names_its_node_and_nginx_spreads_the_load(self):
        nodes = set()
        for _ in range(10):
            reply = self.http.get("/healthz")
            nodes.add(reply.headers["x-node-id"])
        self.assertGreaterEqual(len(nodes), 2, nodes)
        for reply in (self.http.get("/nope"), self.http.post(self.at("/vote?id=x")),
                      self.http.get(self.at("/queue"))):
            self.assertTrue(reply.headers.get("x-node-id"), reply.headers)

    def test_etag_and_if_none_match(self):
        self.add("e1")
        first = self.http.get(self.at("/queue"))
        etag = first.headers["etag"]
        cached = self.http.get(self.at("/queue"), headers={"If-None-Match": etag})
        self.assertEqual((cached.status, cached.body), (304, b""))
        self.assertEqual(cached.headers["etag"], etag)
        self.http.post(self.at("/vote?id=e1"))
        fresh = self.http.get(self.at("/queue"), headers={"If-None-Match": etag})
        self.assertEqual(fresh.status, 200)
        self.assertNotEqual(fresh.headers["etag"], etag)

    def test_idempotency_key_makes_a_retry_safe(self):
        self.add("i1")
        self.add("i2")
        key = {"Idempotency-Key": unique("key")}
        first = self.http.post(self.at("/play_next"), headers={**key, **admin_headers()})
        again = self.http.post(self.at("/play_next"), headers={**key, **admin_headers()})
        self.assertEqual(first.json(), again.json())
        self.assertEqual(self.ids(), [("i2", 0)])
        vote_key = {"Idempotency-Key": unique("key")}
        for _ in range(3):
            self.http.post(self.at("/vote?id=i2"), headers=vote_key)
        self.assertEqual(self.ids(), [("i2", 1)])
        other = self.http.post(self.at("/vote?id=i2&up=false"), headers=vote_key)
        self.assertError(other, 422, "idempotency key")
        self.assertError(self.http.post(self.at("/vote?id=i2"), headers={"Idempotency-Key": "a b"}),
                         422, "Idempotency-Key")

    def test_health_and_readiness(self):
        self.assertEqual(self.http.get("/healthz").json()["status"], "ok")
        self.assertEqual(self.http.get("/readyz").json()["status"], "ready")

    def test_openapi_documents_every_endpoint(self):
        doc = self.http.get("/openapi.json").json()
        self.assertTrue(doc["openapi"].startswith("3."))
        for path in ("/add_track", "/remove_track", "/vote", "/queue", "/metadata/{track_id}",
                     "/play_next", "/now_playing", "/history", "/clear"):
            self.assertIn(path, doc["paths"])
            self.assertIn("/rooms/{room}" + path, doc["paths"])
        for path in ("/healthz", "/readyz", "/docs", "/"):
            self.assertIn(path, doc["paths"])
        queue = doc["paths"]["/queue"]["get"]
        self.assertIn("If-None-Match", [p["name"] for p in queue["parameters"]])
        self.assertIn("ETag", queue["responses"]["200"]["headers"])
        self.assertIn("304", queue["responses"])

    def test_pages_are_html(self):
        for path in ("/", "/docs", self.at("/")):
            reply = self.http.get(path)
            self.assertEqual(reply.status, 200, path)
            self.assertTrue(reply.headers["content-type"].startswith("text/html"), path)
