"""/openapi.json matches the app, every documented example request succeeds, and /docs
is interactive (in Chromium, when it is installed)."""

from __future__ import annotations

import re
import unittest
import urllib.parse

from shared.settings import RULES

from .browser import Browser, chromium
from .support import USE_DEFAULT_ROOM, EventStream, Http, admin_headers, api_url, unique

PAGES = {"/", "/docs", "/openapi.json", "/rooms/{room}/", "/rooms/{room}"}
MEMBERS = ("/rooms/{room}/cohosts", "/rooms/{room}/guests/{guest}/", "/rooms/{room}/me")
DEFAULT_SETTINGS = {name: rule.default for name, rule in RULES.items()}


class OpenApi(unittest.TestCase):
    def setUp(self) -> None:
        self.http = Http(api_url())
        self.addCleanup(self.http.close)
        self.doc = self.http.get("/openapi.json").json()

    def test_every_route_of_the_app_is_documented(self):
        from starlette.routing import Route

        from rest.routes import routes

        documented = {(path, method.upper()) for path, ops in self.doc["paths"].items()
                      for method in ops}
        for route in routes():
            if not isinstance(route, Route):
                continue  # the /static mount
            for method in route.methods - {"HEAD"}:
                self.assertIn((route.path, method), documented)
        self.assertEqual({p for p, _ in documented}
                         - {r.path for r in routes() if isinstance(r, Route)},
                         set(), "documented paths the app does not have")

    def example_request(self, path: str, method: str, op: dict, room: str):
        query, headers = {}, admin_headers()
        for param in op.get("parameters", []):
            value = param.get("example")
            if param["name"] == "room":
                value = room
            if value is None:
                continue
            if param["in"] == "path":
                path = path.replace("{" + param["name"] + "}", urllib.parse.quote(str(value)))
            elif param["in"] == "query":
                query[param["name"]] = value
            elif param["in"] == "header":
                headers[param["name"]] = str(value)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        body = None
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            body = self.doc["components"]["schemas"][ref.rsplit("/", 1)[1]].get("example")
        return path, headers, body

    def members(self, path: str, url: str, headers: dict, room: str) -> tuple[str, dict]:
        """What the examples of created rooms act on: the room (made here, with the host's
        token for the call), and the co-host or guest named in the path."""
        if path == "/rooms":  # a fresh name each run: the example's is taken by the last one
            return url, headers
        if not (path.startswith(MEMBERS[:2]) or path == MEMBERS[2]):
            return url, headers
        made = self.http.post("/rooms", {"room": room})
        self.assertEqual(made.status, 201, (path, made))
        host = {"Authorization": f"Bearer {made.json()['host_token']}"}
        at = f"/rooms/{room}"
        if "{cohost}" in path:
            cohost = self.http.post(f"{at}/cohosts", headers=host).json()["cohost"]
            url = re.sub(r"/cohosts/[^/?]+", f"/cohosts/{cohost}", url)
        if "{guest}" in path or path.endswith("/me"):
            guest = self.http.post(f"{at}/guests", {"name": "Docs"}).json()
            url = re.sub(r"/guests/[^/?]+/", f"/guests/{guest['guest']}/", url)
            if path.endswith("/me"):
                return url, {"Authorization": f"Bearer {guest['guest_token']}"}
        return url, host

    def test_every_documented_example_request_succeeds(self):
        new_track = self.doc["components"]["schemas"]["NewTrack"]["example"]
        ran = 0
        paths = self.doc["paths"]
        for path, ops in paths.items():
            room_less = "/rooms/{room}" + path in paths
            if room_less and not USE_DEFAULT_ROOM:
                continue  # it would change the default room of the deployment under test
            if path == "/metrics":  # each node's own, for a scraper; the public door: 404
                self.assertEqual(self.http.get(path).status, 404)
                continue
            for method, op in ops.items():
                room = unique("docs") if "{room}" in path else "default"
                at = "" if room == "default" else f"/rooms/{room}"
                # a created room's, made in members()
                members = path.startswith(MEMBERS[:2]) or path == MEMBERS[2]
                if (room_less or path.startswith("/rooms/{room}/") and path != "/rooms/{room}/"
                        and not members):
                    self.http.post(f"{at}/clear", headers=admin_headers())
                if path.endswith(("/remove_track", "/vote", "/play_next", "/metadata/{track_id}",
                                  "/pause", "/resume", "/skip")):
                    self.http.post(f"{at}/add_track", new_track)  # what the example acts on
                if path.endswith(("/pause", "/resume", "/skip")):
                    self.http.post(f"{at}/play_next", headers=admin_headers())
                if path.endswith("/skip"):
                    self.http.request("PATCH", f"{at}/settings", {"skip_threshold": 5},
                                      headers=admin_headers())
                url, headers, body = self.example_request(path, method, op, room)
                url, headers = self.members(path, url, headers, room)
                if path == "/catalogue/tracks/{track_id}":  # a track the catalogue has, if any
                    found = self.http.get("/catalogue/search?q=a&limit=1").json()["tracks"]
                    url = f"/catalogue/tracks/{found[0]['id']}" if found else None
                if url is None:
                    continue
                if path.endswith("/events"):
                    stream = EventStream(api_url(), url)
                    self.assertEqual(stream.status, 200, url)
                    self.assertEqual(stream.next_event()["event"], "snapshot")
                    stream.close()
                else:
                    reply = self.http.request(method.upper(), url, body, headers=headers)
                    expected = int(next(iter(op["responses"])))
                    self.assertEqual(reply.status, expected, (method, url, reply.body[:200]))
                if path.endswith("/settings") or path.endswith("/skip"):  # back to the defaults
                    self.http.request("PATCH", f"{at}/settings", DEFAULT_SETTINGS,
                                      headers=admin_headers())
                ran += 1
        self.assertGreaterEqual(ran, (2 if USE_DEFAULT_ROOM else 1) * 15 + 6)


@unittest.skipIf(chromium() is None, "chromium is not installed (apt-get install -y chromium)")
class DocsPage(unittest.TestCase):
    def test_an_endpoint_can_be_tried_from_the_docs(self):
        with Browser() as browser:
            browser.open(api_url() + "/docs")
            browser.wait_for("document.querySelectorAll('details.op').length > 20",
                             what="the operations")
            summary = ("[...document.querySelectorAll('details.op')].find(d => "
                       "d.querySelector('.path').textContent === '/rooms/{room}/add_track')")
            browser.js(f"{summary}.open = true")
            browser.js(f"{summary}.querySelector('input[name=room]').value = '{unique('docs')}'")
            browser.js(f"{summary}.querySelector('button').click()")
            browser.wait_for(f"{summary}.querySelector('pre.answer').textContent.startsWith('200')",
                             what="the answer")
            answer = browser.js(f"{summary}.querySelector('pre.answer').textContent")
            self.assertIn('"message": "Track added"', answer)
            self.assertIn('"title": "Song Title"', answer)

    def test_inline_code_in_the_descriptions_is_set_as_code(self):
        with Browser() as browser:
            browser.open(api_url() + "/docs")
            browser.wait_for("document.querySelectorAll('details.op').length > 20",
                             what="the operations")
            shown = browser.js("document.body.innerText")
            self.assertNotIn("`", shown)
            codes = browser.js("[...document.querySelectorAll('#api-description code')]"
                               ".map(c => c.textContent)")
            self.assertIn("/rooms/{room}", codes)
