"""The OpenAPI 3 document of the REST API, built from one table of endpoints.

Every room endpoint is listed twice: at the root (room ``default``) and under
``/rooms/{room}``. A test checks that the document and the app's routes agree.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

from shared import validation

_ID = {"oneOf": [{"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,64}$"},
                 {"type": "integer", "minimum": 0}],
       "description": "Opaque id; " + validation.ID_RULE + ". Digits-only ids are rendered as "
                      "JSON integers.", "example": 123}

SCHEMAS = {
    "Track": {
        "type": "object",
        "required": ["id", "title", "artist", "duration", "votes", "added_at"],
        "properties": {
            "id": _ID,
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "artist": {"type": "string", "minLength": 1, "maxLength": 200},
            "duration": {"type": "integer", "minimum": 0, "maximum": 86400,
                         "description": "Whole seconds; 0 means unknown."},
            "votes": {"type": "integer", "description": "Net votes: ups minus downs."},
            "added_at": {"type": "string", "format": "date-time"},
            "played_at": {"type": "string", "format": "date-time",
                          "description": "Only on tracks that were played."},
        },
    },
    "NewTrack": {
        "type": "object",
        "required": ["id", "title", "artist"],
        "properties": {
            "id": _ID,
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "artist": {"type": "string", "minLength": 1, "maxLength": 200},
            "duration": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 0},
        },
        "example": {"id": 123, "title": "Song Title", "artist": "Artist Name", "duration": 200},
    },
    "TrackRef": {"type": "object", "required": ["id"], "properties": {"id": _ID},
                 "example": {"id": 123}},
    "VoteBody": {
        "type": "object",
        "description": "The same keys as the query; the query wins where both are given.",
        "properties": {"id": _ID, "up": {"type": "boolean", "default": True},
                       "voter": {"type": "string", "minLength": 1, "maxLength": 64}},
    },
    "WriteResult": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "track": {"$ref": "#/components/schemas/Track"},
            "queue": {"type": "array", "items": {"$ref": "#/components/schemas/Track"},
                      "description": "The head of the queue (25 tracks unless ?head= says)."},
        },
    },
    "NowPlaying": {"type": "object", "properties": {
        "now_playing": {"oneOf": [{"$ref": "#/components/schemas/Track"}, {"type": "null"}]}}},
    "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
    "Status": {"type": "object", "properties": {"status": {"type": "string"},
                                                "node": {"type": "string"}}},
    "Error": {"type": "object", "required": ["detail"],
              "properties": {"detail": {"type": "string",
                                        "description": "What was wrong, in words."}}},
}

_ERRORS = {
    "400": "Malformed JSON or parameter",
    "401": "Admin token missing (only when ADMIN_TOKEN is set)",
    "403": "Admin token wrong",
    "404": "Unknown track",
    "409": "Conflict: duplicate id, empty queue or full queue",
    "413": "Body over 64 KiB",
    "422": "A value out of its rules; the detail names the field",
    "503": "Redis unreachable; retry after the Retry-After seconds",
}


def _query(name: str, schema: dict, description: str, example=None) -> dict:
    out = {"name": name, "in": "query", "required": False, "schema": schema,
           "description": description}
    if example is not None:
        out["example"] = example
    return out


_PAGE = [_query("limit", {"type": "integer", "minimum": 1}, "How many (default: all).", 10),
         _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "How many to skip.", 0)]
_WRITE = [_query("head", {"type": "integer", "minimum": 0, "maximum": 100, "default": 25},
                 "How many tracks of the queue's head to return."),
          {"name": "Idempotency-Key", "in": "header", "required": False,
           "schema": {"type": "string", "maxLength": 255},
           "description": "A repeat with the same key within 10 minutes returns the first "
                          "result and changes nothing."}]
_ADMIN = [{"bearer": []}, {}]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


# (path, method, summary, parameters, body schema, success schema, error codes, admin)
ROOM_ENDPOINTS = [
    ("/add_track", "post", "Add a track (0 votes, last among equals)", _WRITE,
     _ref("NewTrack"), _ref("WriteResult"), "400 409 413 422 503", False),
    ("/remove_track", "post", "Remove a queued track (host)", _WRITE, _ref("TrackRef"),
     _ref("WriteResult"), "400 401 403 404 413 422 503", True),
    ("/vote", "post", "Vote a queued track up or down", [
        _query("id", _ID, "The track.", 123),
        _query("up", {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"],
                      "default": "true"}, "Up (default) or down.", "true"),
        _query("voter", {"type": "string", "maxLength": 64},
               "One ballot per voter per track; omit for an anonymous vote.", "ann"), *_WRITE],
     _ref("VoteBody"), _ref("WriteResult"), "400 404 413 422 503", False),
    ("/queue", "get", "The queue in play order (ETag: the room version)", _PAGE, None,
     {"type": "array", "items": _ref("Track")}, "400 422 503", False),
    ("/metadata/{track_id}", "get", "A queued, playing or played track", [
        {"name": "track_id", "in": "path", "required": True, "schema": _ID, "example": 123}], None,
     _ref("Track"), "404 422 503", False),
    ("/play_next", "post", "Play the first track (host)", _WRITE, None, _ref("NowPlaying"),
     "401 403 409 503", True),
    ("/now_playing", "get", "The track playing now, or null", [], None, _ref("NowPlaying"),
     "503", False),
    ("/history", "get", "Played tracks, newest first", _PAGE, None,
     {"type": "array", "items": _ref("Track")}, "400 422 503", False),
    ("/clear", "post", "Empty the room's queue, now playing and history (host)",
     _WRITE[1:], None, _ref("Message"), "401 403 503", True),
    ("/events", "get", "Live changes as Server-Sent Events: a snapshot, then one event per "
     "change (add, remove, vote, play, clear), each with the room version as its id; a "
     "reconnect with Last-Event-ID gets a fresh snapshot only if it missed anything",
     [{"name": "Last-Event-ID", "in": "header", "required": False,
       "schema": {"type": "integer"}, "description": "The last version this client saw."}],
     None, {"type": "string", "description": "text/event-stream"}, "503", False),
]

_ROOM = {"name": "room", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
         "description": "The room: " + validation.ROOM_RULE + ".", "example": "party42"}


def _operation(summary, parameters, body, success, codes, admin, room: bool) -> dict:
    media = "text/event-stream" if success.get("description") == "text/event-stream" \
        else "application/json"
    op = {"summary": summary,
          "parameters": ([_ROOM] if room else []) + list(parameters),
          "responses": {"200": {"description": "OK",
                                "content": {media: {"schema": success}}},
                        **{c: {"description": _ERRORS[c], **_json(_ref("Error"))}
                           for c in codes.split()}}}
    if body is not None:
        required = body["$ref"].endswith(("NewTrack", "TrackRef"))
        op["requestBody"] = {"required": required, **_json(body)}
    if admin:
        op["security"] = _ADMIN
    op["tags"] = ["rooms" if room else "default room"]
    return op


def _conditional(get: dict) -> None:
    """GET /queue: an ETag from the room version, and 304 for a client that has it."""
    get["parameters"].append({
        "name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
        "description": "The ETag of a queue you hold: 304 with no body if it is still current."})
    get["responses"]["200"]["headers"] = {"ETag": {
        "description": "The room version, quoted; it changes with every change to the room.",
        "schema": {"type": "string"}}}
    get["responses"] = {"200": get["responses"]["200"],
                        "304": {"description": "Not modified: the If-None-Match ETag is current"},
                        **{code: r for code, r in get["responses"].items() if code != "200"}}


def document() -> dict:
    paths: dict = {}
    for path, method, *rest in ROOM_ENDPOINTS:
        paths.setdefault(path, {})[method] = _operation(*rest, room=False)
        paths.setdefault("/rooms/{room}" + path, {})[method] = _operation(*rest, room=True)
    for path in ("/queue", "/rooms/{room}/queue"):
        _conditional(paths[path]["get"])
    text = {"content": {"text/html": {"schema": {"type": "string"}}}}
    paths["/"] = {"get": {"summary": "The web page of the default room", "tags": ["pages"],
                          "responses": {"200": {"description": "HTML", **text}}}}
    paths["/rooms/{room}/"] = {"get": {"summary": "The web page of a room", "tags": ["pages"],
                                       "parameters": [_ROOM],
                                       "responses": {"200": {"description": "HTML", **text}}}}
    paths["/rooms/{room}"] = {"get": {"summary": "Redirects to /rooms/{room}/", "tags": ["pages"],
                                      "parameters": [_ROOM],
                                      "responses": {"308": {"description": "to the page"}}}}
    paths["/docs"] = {"get": {"summary": "These docs, interactive", "tags": ["pages"],
                              "responses": {"200": {"description": "HTML", **text}}}}
    paths["/static/{name}"] = {"get": {
        "summary": "The pages' scripts and styles (app.js, style.css, docs.js, docs.css)",
        "tags": ["pages"], "parameters": [{"name": "name", "in": "path", "required": True,
                                           "schema": {"type": "string"}, "example": "app.js"}],
        "responses": {"200": {"description": "the file"},
                      "404": {"description": "no such file", **_json(_ref("Error"))}}}}
    paths["/openapi.json"] = {"get": {"summary": "This document", "tags": ["pages"],
                                      "responses": {"200": {"description": "OpenAPI 3"}}}}
    paths["/healthz"] = {"get": {"summary": "200 while the process runs", "tags": ["health"],
                                 "responses": {"200": {"description": "alive",
                                                       **_json(_ref("Status"))}}}}
    paths["/readyz"] = {"get": {"summary": "200 when Redis answers, else 503", "tags": ["health"],
                                "responses": {"200": {"description": "ready",
                                                      **_json(_ref("Status"))},
                                              "503": {"description": _ERRORS["503"],
                                                      **_json(_ref("Error"))}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Music queue", "version": "1.0.0",
                 "description": "A collaborative music queue: add tracks, vote, play next. "
                                "Every endpoint works at the root (room `default`) and under "
                                "`/rooms/{room}`. Errors are `{\"detail\": ...}`."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "ADMIN_TOKEN, if set"}}},
    }


@lru_cache(maxsize=1)
def openapi_json() -> bytes:
    return orjson.dumps(document())
