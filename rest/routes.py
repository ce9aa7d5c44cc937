"""The one table of the REST API: it makes both the Starlette routes and the OpenAPI
paths (``rest.openapi``), so the two cannot drift apart.

A room endpoint answers at the root (room ``default``) and under ``/rooms/{room}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette import routing
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, get_route_path
from starlette.types import Receive, Scope, Send

from shared import validation as v

from . import catalogue, endpoints, pages, playback, rooms
from .openapi import ID, ref

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    handler: Handler
    summary: str
    parameters: tuple[dict[str, Any], ...] = ()
    body: str | None = None  # the name of the request body's schema
    body_required: bool = True
    success: dict[str, Any] = field(default_factory=dict)  # the 200 schema (or a response)
    errors: str = ""  # error statuses, e.g. "400 404 503"
    host: bool = False  # needs the host's token when the server has one
    room: bool = True  # at the root and under /rooms/{room}
    tag: str = ""
    status: int = 200  # what success answers


def query(name: str, schema: dict[str, Any], description: str, example: Any = None
          ) -> dict[str, Any]:
    out = {"name": name, "in": "query", "required": False, "schema": schema,
           "description": description}
    if example is not None:
        out["example"] = example
    return out


def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema,
            "description": description}


PAGE = (query("limit", {"type": "integer", "minimum": 1, "maximum": v.MAX_PAGE},
              "How many (default: all).", 10),
        query("offset", {"type": "integer", "minimum": 0, "maximum": v.MAX_PAGE, "default": 0},
              "How many to skip.", 0))
IDEMPOTENCY = header("Idempotency-Key", {"type": "string", "minLength": 1,
                                         "maxLength": v.MAX_IDEMPOTENCY_KEY},
                     f"A repeat with the same key within {v.IDEMPOTENCY_TTL // 60} minutes "
                     "returns the first result and changes nothing.")
WRITE = (query("head", {"type": "integer", "minimum": 0, "maximum": v.MAX_HEAD,
                        "default": v.DEFAULT_HEAD},
               "How many tracks of the queue's head to return."), IDEMPOTENCY)
TRACKS = {"type": "array", "items": ref("Track")}
HTML = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}

ENDPOINTS = (
    Endpoint("/add_track", "POST", endpoints.add_track,
             "Add a track (0 votes, last among equals)", WRITE, "NewTrack",
             success=ref("WriteResult"), errors="400 401 403 409 413 422 503"),
    Endpoint("/remove_track", "POST", endpoints.remove_track,
             "Remove a queued track (the host, or the guest who added it, with their token)",
             WRITE, "TrackRef", success=ref("WriteResult"),
             errors="400 401 403 404 409 413 422 503", host=True),
    Endpoint("/vote", "POST", endpoints.vote, "Vote a queued track up or down", (
        query("id", ID, "The track.", 123),
        query("up", {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"],
                     "default": "true"}, "Up (default) or down.", "true"),
        query("voter", {"type": "string", "maxLength": v.MAX_VOTER},
              "One ballot per voter per track; omit for an anonymous vote.", "ann"), *WRITE),
        "VoteBody", body_required=False, success=ref("WriteResult"),
        errors="400 401 403 404 413 422 503"),
    Endpoint("/queue", "GET", endpoints.queue,
             "The queue in play order (ETag: the room version)", (*PAGE, header(
                 "If-None-Match", {"type": "string"},
                 "The ETag of a queue you hold: 304 with no body if it is still current.")),
             success={"description": "OK", "headers": {"ETag": {
                 "description": "The room version, quoted; it changes with every change to "
                                "the room.", "schema": {"type": "string"}}},
                 "content": {"application/json": {"schema": TRACKS}}},
             errors="304 400 422 503"),
    Endpoint("/metadata/{track_id}", "GET", endpoints.metadata,
             "A queued, playing or played track",
             ({"name": "track_id", "in": "path", "required": True, "schema": ID,
               "example": 123},), success=ref("Track"), errors="404 422 503"),
    Endpoint("/play_next", "POST", playback.play_next,
             "Play the next track (host); with If-Match, only while that play is current",
             (*WRITE, header("If-Match", {"type": "string"},
                             'The play id of now playing, quoted ("12"): the play moves on '
                             "only while that play is still the current one, else 412 with "
                             "what is current. Any number of players reporting the end of "
                             "the same play cause one advance.")),
             success=ref("NowPlaying"), errors="400 401 403 409 412 503", host=True),
    Endpoint("/now_playing", "GET", playback.now_playing,
             "The track playing now with its clock, or null", success=ref("NowPlaying"),
             errors="503"),
    Endpoint("/pause", "POST", playback.pause, "Stop the clock of now playing (host)",
             (IDEMPOTENCY,), success=ref("NowPlaying"), errors="401 403 409 503", host=True),
    Endpoint("/resume", "POST", playback.resume,
             "Restart the clock where it stopped (host)", (IDEMPOTENCY,),
             success=ref("NowPlaying"), errors="401 403 409 503", host=True),
    Endpoint("/skip", "POST", playback.skip,
             "Vote to skip now playing, once per voter per play; at the room's "
             "skip_threshold the next track plays",
             (query("voter", {"type": "string", "maxLength": v.MAX_VOTER},
                    "Who votes (required; the body may carry it instead).", "ann"),
              IDEMPOTENCY), "VoterBody", body_required=False, success=ref("SkipResult"),
             errors="400 401 403 409 413 422 503"),
    Endpoint("/settings", "GET", playback.get_settings, "The room's settings",
             success=ref("Settings"), errors="422 503"),
    Endpoint("/settings", "PATCH", playback.patch_settings,
             "Change some of the room's settings (host); answers all of them",
             (IDEMPOTENCY,), "Settings", success=ref("Settings"),
             errors="400 401 403 413 422 503", host=True),
    Endpoint("/history", "GET", endpoints.history, "Played tracks, newest first", PAGE,
             success=TRACKS, errors="400 422 503"),
    Endpoint("/clear", "POST", endpoints.clear,
             "Empty the room's queue, now playing and history (host)", (IDEMPOTENCY,),
             success=ref("Message"), errors="401 403 503", host=True),
    Endpoint("/events", "GET", endpoints.events,
             "Live changes as Server-Sent Events: a snapshot, then one event per change (add, "
             "remove, vote, play, pause, resume, skip, settings, clear), each with the room "
             "version as its id; a reconnect with Last-Event-ID gets a fresh snapshot only "
             "if it missed anything",
             (header("Last-Event-ID", {"type": "integer"}, "The last version this client saw."),),
             success={"description": "OK", "content": {"text/event-stream": {
                 "schema": {"type": "string"}}}}, errors="503"),
    Endpoint("/rooms", "POST", rooms.create_room,
             "Create a room with its own host: the host token is shown once, here",
             body="NewRoom", body_required=False, success=ref("CreatedRoom"),
             errors="400 409 413 422 503", room=False, tag="hosts and guests", status=201),
    Endpoint("/rooms/{room}/cohosts", "POST", rooms.add_cohost,
             "Add a co-host (host): a token with the host's powers, shown once",
             success=ref("Cohost"), errors="401 403 409 503", host=True, room=False,
             tag="hosts and guests", status=201),
    Endpoint("/rooms/{room}/cohosts/{cohost}", "DELETE", rooms.revoke_cohost,
             "Revoke a co-host (host): the token stops working at once, on every node",
             ({"name": "cohost", "in": "path", "required": True,
               "schema": {"type": "string"}, "example": "c-1a2b3c4d"},),
             success=ref("Message"), errors="401 403 404 422 503", host=True, room=False,
             tag="hosts and guests"),
    Endpoint("/rooms/{room}/guests", "POST", rooms.join,
             "Join as a guest: a token that makes adds, votes and skips this guest's "
             "(rate-limited per address)", body="NewGuest", success=ref("Guest"),
             errors="400 413 422 429 503", room=False, tag="hosts and guests", status=201),
    Endpoint("/rooms/{room}/guests/{guest}/ban", "POST", rooms.ban,
             "Ban a guest (host): their token stops working, their queued tracks and ballots "
             "go, in one step, and their streams end", (
                 {"name": "guest", "in": "path", "required": True,
                  "schema": {"type": "string"}, "example": "g-1a2b3c4d"}, IDEMPOTENCY),
             success=ref("Message"), errors="401 403 404 422 503", host=True, room=False,
             tag="hosts and guests"),
    Endpoint("/rooms/{room}/guests/{guest}/ban", "DELETE", rooms.unban, "Lift a ban (host)",
             ({"name": "guest", "in": "path", "required": True,
               "schema": {"type": "string"}, "example": "g-1a2b3c4d"}, IDEMPOTENCY),
             success=ref("Message"), errors="401 403 404 422 503", host=True, room=False,
             tag="hosts and guests"),
    Endpoint("/rooms/{room}/me", "GET", rooms.me,
             "A guest's own queued tracks, each with its place in the queue (guest token)",
             success=ref("Mine"), errors="401 403 503", room=False, tag="hosts and guests"),
    Endpoint("/catalogue/search", "GET", catalogue.search,
             "Search the catalogue as you type: tracks whose title, artist or album has every "
             "word of q as a word prefix (case and accents ignored), best first: exact "
             "title, title prefix, the rest; ties by times played",
             (query("q", {"type": "string", "minLength": 1, "maxLength": v.MAX_QUERY},
                    f"The words, as typed (at most {v.MAX_QUERY_WORDS}); required.", "beat"),
              query("limit", {"type": "integer", "minimum": 1, "maximum": v.MAX_RESULTS,
                              "default": v.DEFAULT_RESULTS}, "How many tracks at most.", 10)),
             success=ref("CatalogueResult"), errors="400 422 503", room=False, tag="catalogue"),
    Endpoint("/catalogue/tracks/{track_id}", "GET", catalogue.track,
             "One catalogue track (add it with POST /add_track and its id alone)",
             ({"name": "track_id", "in": "path", "required": True, "schema": ID,
               "example": 123},), success=ref("CatalogueTrack"), errors="404 422 503",
             room=False, tag="catalogue"),
    Endpoint("/", "GET", pages.index, "The web page of the default room", success=HTML,
             room=False, tag="pages"),
    Endpoint("/rooms/{room}/", "GET", pages.index, "The web page of a room", success=HTML,
             room=False, tag="pages"),
    Endpoint("/rooms/{room}", "GET", pages.room_redirect, "Redirects to /rooms/{room}/",
             success={"description": "to the page"}, room=False, tag="pages", status=308),
    Endpoint("/docs", "GET", pages.docs, "These docs, interactive", success=HTML, room=False,
             tag="pages"),
    Endpoint("/static/{name}", "GET", pages.asset,
             "The pages' scripts and styles (app.js, style.css, docs.js, docs.css)",
             ({"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
               "example": "app.js"},), success={"description": "the file"}, errors="404",
             room=False, tag="pages"),
    Endpoint("/openapi.json", "GET", pages.openapi, "This document",
             success={"description": "OpenAPI 3"}, room=False, tag="pages"),
    Endpoint("/favicon.ico", "GET", pages.favicon, "The pages' icon (SVG)",
             success={"description": "the icon", "content": {"image/svg+xml": {
                 "schema": {"type": "string"}}}}, room=False, tag="pages"),
    Endpoint("/healthz", "GET", endpoints.healthz, "200 while the process runs",
             success=ref("Status"), room=False, tag="health"),
    Endpoint("/readyz", "GET", endpoints.readyz, "200 when Redis answers, else 503",
             success=ref("Status"), errors="503", room=False, tag="health"),
    Endpoint("/metrics", "GET", endpoints.metrics_text,
             "This node's metrics in Prometheus text format, for a scraper on the nodes' "
             "network (the public load balancer answers 404)",
             success={"description": "Prometheus text format", "content": {"text/plain": {
                 "schema": {"type": "string"}}}}, room=False, tag="operations"),
)


class Router(routing.Router):
    """Starlette's router with a dictionary in front of its list of routes: a method and a
    path without parameters, or ``/rooms/{room}/<one of them>``, is found in one lookup instead of a
    regular expression per route (a tenth of a request's routing time in a profile);
    anything else, and every miss, goes through Starlette's own matching."""

    def __init__(self, routes: list[Route], lifespan: Any) -> None:
        super().__init__(routes, lifespan=lifespan)
        self.fixed = {(m, r.path): r for r in routes for m in r.methods or ()
                      if "{" not in r.path}
        self.in_room = {(m, r.path[len(ROOM):]): r for r in routes for m in r.methods or ()
                        if r.path.startswith(ROOM + "/") and "{" not in r.path[len(ROOM):]}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = get_route_path(scope), scope["method"]
            route, params = self.fixed.get((method, path)), {}
            if route is None and path.startswith("/rooms/"):
                room, slash, rest = path[7:].partition("/")
                if slash and room:
                    route, params = self.in_room.get((method, "/" + rest)), {"room": room}
            if route is not None:
                scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = params
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)


ROOM = "/rooms/{room}"


def routes() -> list[Route]:
    out = []
    for endpoint in ENDPOINTS:
        paths = [endpoint.path, "/rooms/{room}" + endpoint.path] if endpoint.room \
            else [endpoint.path]
        out += [Route(path, endpoint.handler, methods=[endpoint.method]) for path in paths]
    return out
