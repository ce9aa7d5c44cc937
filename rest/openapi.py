"""The OpenAPI 3 document of the REST API, built from the route table (``rest.routes``);
every limit in it is the one ``shared.validation`` enforces."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shared import settings as room_settings
from shared import validation as v

if TYPE_CHECKING:
    from .routes import Endpoint

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


ID: Schema = {"oneOf": [{"type": "string", "pattern": f"^{v.ID_PATTERN}$"},
                        {"type": "integer", "minimum": 0}],
              "description": f"Opaque id; {v.ID_RULE}. Digits-only ids are rendered as JSON "
                             "integers.", "example": 123}
TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": v.MAX_TEXT}
DURATION: Schema = {"type": "integer", "minimum": 0, "maximum": v.MAX_DURATION,
                    "description": "Whole seconds; 0 means unknown."}
ROOM: Schema = {"name": "room", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": f"^{v.ROOM_PATTERN}$"},
                "description": f"The room: {v.ROOM_RULE}.", "example": "party42"}

SCHEMAS: dict[str, Schema] = {
    "Track": {
        "type": "object",
        "required": ["id", "title", "artist", "duration", "votes", "added_at"],
        "properties": {
            "id": ID, "title": TEXT, "artist": TEXT, "duration": DURATION,
            "votes": {"type": "integer", "description": "Net votes: ups minus downs."},
            "added_at": {"type": "string", "format": "date-time"},
            "played_at": {"type": "string", "format": "date-time",
                          "description": "Only on tracks that were played."},
            "play_id": {"type": "integer", "description": "Played tracks: their play."},
            "added_by": {"type": "object", "description": "The guest who added it.",
                         "properties": {"guest": {"type": "string"},
                                        "name": {"type": "string"}}},
            "skipped": {"type": "boolean", "description": "In the history: skipped by votes."},
            "fallback": {"type": "boolean",
                         "description": "In the history: a replay (the queue was empty)."},
        },
    },
    "NewTrack": {
        "type": "object",
        "description": "A track with its title and artist; or a catalogue track by its id "
                       "alone (title, artist and duration are taken from the catalogue, 404 "
                       "if it is not there; a duration given wins).",
        "required": ["id"],
        "properties": {"id": ID, "title": TEXT, "artist": TEXT,
                       "duration": {**DURATION, "default": 0}},
        "examples": [{"id": 123, "title": "Song Title", "artist": "Artist Name",
                      "duration": 200}, {"id": 123}],
        "example": {"id": 123, "title": "Song Title", "artist": "Artist Name", "duration": 200},
    },
    "CatalogueTrack": {
        "type": "object",
        "required": ["id", "title", "artist", "album", "duration", "plays"],
        "properties": {
            "id": ID, "title": TEXT, "artist": TEXT,
            "album": {"type": ["string", "null"], "maxLength": v.MAX_TEXT},
            "duration": DURATION,
            "plays": {"type": "integer", "description": "Times played in this deployment."},
            "extra": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "Other columns of the imported row (year, genre...)."},
        },
    },
    "CatalogueResult": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "The query, trimmed."},
                       "tracks": {"type": "array", "items": ref("CatalogueTrack"),
                                  "description": "Best first."}},
    },
    "TrackRef": {"type": "object", "required": ["id"], "properties": {"id": ID},
                 "example": {"id": 123}},
    "VoteBody": {
        "type": "object",
        "description": "The same keys as the query; the query wins where both are given.",
        "properties": {"id": ID, "up": {"type": "boolean", "default": True},
                       "voter": {"type": "string", "minLength": 1, "maxLength": v.MAX_VOTER}},
    },
    "WriteResult": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "track": ref("Track"),
            "queue": {"type": "array", "items": ref("Track"),
                      "description": f"The head of the queue ({v.DEFAULT_HEAD} tracks unless "
                                     "?head= says)."},
        },
    },
    "NowPlaying": {"type": "object", "properties": {"now_playing": {"oneOf": [{
        "allOf": [ref("Track"), ref("Clock")]}, {"type": "null"}]}}},
    "Clock": {
        "type": "object",
        "description": "The clock of now playing, kept by Redis.",
        "properties": {
            "play_id": {"type": "integer", "description": "Grows with every play in the room."},
            "started_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": ["string", "null"], "format": "date-time",
                        "description": "null while paused or when the duration is 0"},
            "paused": {"type": "boolean"},
            "position": {"type": "number", "description": "Seconds played."},
            "skip_votes": {"type": "integer"},
            "skip_threshold": {"type": "integer", "description": "0: skipping is off"},
            "fallback": {"type": "boolean",
                         "description": "A replay from the history (the queue was empty)."},
        },
    },
    "SkipResult": {"type": "object", "properties": {
        "message": {"type": "string"}, "skipped": {"type": "boolean"},
        "now_playing": {"oneOf": [{"allOf": [ref("Track"), ref("Clock")]},
                                  {"type": "null"}]}}},
    "VoterBody": {"type": "object", "properties": {
        "voter": {"type": "string", "minLength": 1, "maxLength": v.MAX_VOTER}}},
    "Settings": {
        "type": "object",
        "description": "A room's settings; a PATCH gives some of them, unknown names or bad "
                       "values are 422 naming the field.",
        "properties": {name: ({"type": "boolean"} if rule.kind == "bool" else
                              {"type": "integer", "minimum": 0, "maximum": v.MAX_PAGE}
                              if rule.kind == "int" else
                              {"type": "string", "enum": list(rule.choices)})
                       | {"default": rule.default, "description": rule.about}
                       for name, rule in room_settings.RULES.items()},
        "additionalProperties": False,
        "example": {"autoplay": True, "skip_threshold": 3},
    },
    "NewRoom": {"type": "object", "properties": {"room": {
        "type": "string", "pattern": f"^{v.ROOM_PATTERN}$",
        "description": "The name (default: one is made up)."}}},
    "CreatedRoom": {"type": "object", "properties": {
        "room": {"type": "string"},
        "host_token": {"type": "string", "description": "Shown once; keep it."}}},
    "Cohost": {"type": "object", "properties": {"cohost": {"type": "string"},
                                                "token": {"type": "string"}}},
    "NewGuest": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": v.MAX_GUEST_NAME}},
        "example": {"name": "Ann"}},
    "Guest": {"type": "object", "properties": {
        "guest": {"type": "string"}, "name": {"type": "string"},
        "guest_token": {"type": "string", "description": "Shown once; send it as "
                                                         "Authorization: Bearer <token>."}}},
    "Mine": {"type": "object", "properties": {
        "guest": {"type": "string"}, "name": {"type": "string"},
        "tracks": {"type": "array", "items": {"allOf": [ref("Track"), {
            "type": "object", "properties": {"position": {"type": "integer",
                                                          "description": "1-based"}}}]}}}},
    "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
    "Status": {"type": "object", "properties": {"status": {"type": "string"},
                                                "node": {"type": "string"}}},
    "Error": {"type": "object", "required": ["detail"],
              "properties": {"detail": {"type": "string",
                                        "description": "What was wrong, in words."}}},
}

ERRORS = {
    "304": "Not modified: the If-None-Match ETag is current",
    "400": "Malformed JSON or parameter",
    "401": "Host token missing (only when ADMIN_TOKEN is set)",
    "403": "Host token wrong",
    "404": "Unknown track, guest or co-host",
    "409": "Conflict: duplicate id, empty or full queue, a recent repeat, nothing playing, "
           "skipping off",
    "412": "If-Match names a play that is no longer current; the body has now_playing",
    "429": "Too many guest sessions from this address; retry after Retry-After",
    "413": f"Body over {v.MAX_BODY // 1024} KiB",
    "422": "A value out of its rules; the detail names the field",
    "503": "Redis unreachable; retry after the Retry-After seconds",
}


def _operation(endpoint: Endpoint, room: bool) -> Schema:
    success = endpoint.success
    if "description" not in success:  # a bare schema: a JSON answer
        success = {"description": "OK", **_json(success)}
    responses = {str(endpoint.status): success}
    for code in endpoint.errors.split():
        responses[code] = {"description": ERRORS[code]} if code < "400" \
            else {"description": ERRORS[code], **_json(ref("Error"))}
    op: Schema = {"summary": endpoint.summary,
                  "tags": [endpoint.tag or ("rooms" if room else "default room")],
                  "parameters": ([ROOM] if room else []) + list(endpoint.parameters),
                  "responses": responses}
    if "{room}" in endpoint.path and not room:
        op["parameters"].insert(0, ROOM)
    if not op["parameters"]:
        del op["parameters"]
    if endpoint.body is not None:
        op["requestBody"] = {"required": endpoint.body_required, **_json(ref(endpoint.body))}
    if endpoint.host:
        op["security"] = [{"bearer": []}, {}]
    return op


def schema_of(endpoints: Iterable[Endpoint]) -> Schema:
    paths: dict[str, dict[str, Schema]] = {}
    for endpoint in endpoints:
        method = endpoint.method.lower()
        paths.setdefault(endpoint.path, {})[method] = _operation(endpoint, room=False)
        if endpoint.room:
            paths.setdefault("/rooms/{room}" + endpoint.path, {})[method] = \
                _operation(endpoint, room=True)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Music queue", "version": "1.0.0",
                 "description": "A collaborative music queue: add tracks, vote, play next. "
                                "Every endpoint works at the root (room `default`) and under "
                                "`/rooms/{room}`. Errors are `{\"detail\": ...}`."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {
                           "type": "http", "scheme": "bearer",
                           "description": "ADMIN_TOKEN, if set; in a created room its host's "
                                          "or a co-host's token; a guest's token for guests"}}},
    }
