"""A seeded fuzz of both front doors: over 5,000 malformed and edge-case requests across
every REST endpoint (through nginx and straight to the nodes) and every gRPC method: wrong
types, huge and negative numbers, empty and 10 MB strings, control characters and invalid
UTF-8, deeply nested JSON, duplicate keys, missing and extra fields, odd room names,
unknown methods and paths, very long query strings and headers, garbage protobuf bytes.

Checked: no 5xx and no INTERNAL/UNKNOWN (Redis is up), every REST error is JSON with a
``detail`` and every gRPC error has details, each naming the field or the part of the
request that broke a rule, input that breaks a rule is refused, no node crashed, restarted
or logged a traceback, and afterwards the core invariants still hold on fresh rooms
through both doors. The cases come from ``random.Random(SEED)``; a failure names the seed
and the case number (FUZZ_SEED=n replays another seed).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import random
import re
import socket
import threading
import time
import unittest
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import grpc
from google.protobuf.message import DecodeError

from proto import queue_pb2 as pb

from .support import EXTERNAL, Http, grpc_channel, local_cluster, unique
from .test_concurrency import GrpcDoor, RestDoor

SEED = int(os.environ.get("FUZZ_SEED", "20240611"))
REST_CASES = 3600
GRPC_CASES = 1800
MIN_REQUESTS = 5000
THREADS = 8
BUDGET = 40.0  # seconds for all the fuzz requests together
TIMEOUT = 10.0  # seconds for one request
DIRECT_SHARE = 0.25  # of the REST cases go straight to a node, not through nginx
HUGE = 10 * 1024 * 1024  # the 10 MB strings: slow, so only a few per door
HUGE_CASES = 3
MAX_BODY = 64 * 1024
FUZZ_ROOMS = 8
SEEDED = ["abc", "123", "x.y:z_-", "-1", "007"]  # queued in every fuzz room before the fuzz

ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # contract §2
ROOM = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELDS = {"id", "title", "artist", "duration", "room", "head", "limit", "offset", "up",
          "voter", "Idempotency-Key"}
FIELD_DETAIL = re.compile(r"([A-Za-z-]+): \S")  # "title: must not be empty"
BODY_WORDS = {"JSON", "body", "UTF-8", "nested"}

T, F, U = True, False, None  # a value keeps its rules / breaks one / depends on how it is read


def _clip(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} long)"


def _names_problem(detail: str, names) -> bool:
    """A field error must name a field the case broke; any other error one of its words."""
    field = FIELD_DETAIL.match(detail)
    if field and field.group(1) in FIELDS:
        return field.group(1) in names
    return any(word.lower() in detail.lower() for word in names)


def _int_param(encoded: str, low: int, high: int = 2**31 - 1):
    """Whether a query-string number keeps its rules (None: a spelling that only some
    parsers read as a number, like "+5" or a full-width digit)."""
    text = urllib.parse.unquote_plus(encoded, errors="replace")
    if text == "":
        return T
    if re.fullmatch(r"-?[0-9]{1,30}", text):
        return low <= int(text) <= high
    if len(text) > 30:
        return F
    try:
        int(text, 10)
    except ValueError:
        return F
    return U


# -- REST values -------------------------------------------------------------------------
# JSON fragments as raw bytes (so NaN, 400-digit integers and bad escapes survive), each
# with whether it keeps the field's rules.

JSON_ID = [
    (b'"abc"', T), (b'0', T), (b'123', T), (b'"x.y:z_-"', T), (b'"' + b"a" * 64 + b'"', T),
    (b"1" + b"0" * 63, T), (b"18446744073709551616", T), (b'"-1"', T), (b'"007"', T),
    (b'""', F), (b'"' + b"a" * 65 + b'"', F), (b'"a b"', F), (b'"../"', F), (b'"{"', F),
    (b'"}"', F), (b'"*"', F), (b'"a\\u0000b"', F), (b'"\\u00e9"', F), (b'"\\ud800"', F),
    (b'"\\n"', F), (b"-1", F), (b"1.5", F), (b"1e2", F), (b"1e308", F), (b"-1e308", F),
    (b"true", F), (b"false", F), (b"null", F), (b"[]", F), (b"{}", F), (b"[1]", F),
    (b'{"id": 1}', F), (b"9" * 400, F), (b"-" + b"9" * 400, F), (b"NaN", F),
    (b"Infinity", F), (b"-Infinity", F), (b'"' + b"i" * 5000 + b'"', F),
]
JSON_TEXT = [
    (b'"x"', T), (b'"' + b"a" * 200 + b'"', T), (b'"  padded  "', T), (b'"x\\n"', T),
    ('"日本語 🎵"'.encode(), T), (b'"<script>alert(1)</script>"', T), (b'"%s%n{0}"', T),
    (b'"Robert\'); DROP TABLE tracks;--"', T), (b'"\\u2028"', U),
    (b"null", F), (b'""', F), (b'"   "', F), (b'"\\u00a0"', F), (b'"' + b"a" * 201 + b'"', F),
    (b'"a\\u0000b"', F), (b'"a\\u001fb"', F), (b'"a\\u007fb"', F), (b'"a\\u0085b"', F),
    (b'"a\\u009fb"', F), (b'"a\\tb"', F), (b'"\\ud800"', F), (b'"\\udfff x"', F), (b"1", F),
    (b"0", F), (b"1.5", F), (b"true", F), (b"[]", F), (b"{}", F), (b'["a"]', F),
    (b"9" * 400, F), (b"NaN", F), (b"-Infinity", F), (b'"' + b"t" * 20_000 + b'"', F),
    (b'"' + b"t" * 70_000 + b'"', F),  # a body over 64 KiB: 413
]
JSON_DURATION = [
    (b"0", T), (b"86400", T), (b"200", T), (b"200.0", T), (b"null", T), (b"-0", T),
    (b"-0.0", T), (b"1e2", T), (b"-1", F), (b"86401", F), (b"9" * 400, F),
    (b"-" + b"9" * 400, F), (b"1.5", F), (b"1e308", F), (b"-1e308", F), (b"1e-300", F),
    (b"true", F), (b"false", F), (b'"200"', F), (b"[]", F), (b"{}", F), (b"NaN", F),
    (b"Infinity", F), (b"2147483648", F), (b"-9223372036854775809", F),
    (b"18446744073709551616.5", F),
]
JSON_UP = [(b"true", T), (b"false", T), (b"null", T), (b"1", T), (b"0", T), (b'"yes"', T),
           (b'"OFF"', T), (b"2", F), (b"-1", F), (b"1.0", F), (b'"maybe"', F), (b'""', F),
           (b"[]", F), (b"{}", F), (b"9" * 400, F), (b"NaN", F)]
JSON_VOTER = [(b'"alice"', T), (b'"' + b"v" * 64 + b'"', T), (b'""', T), (b"null", T),
              ('"日本"'.encode(), T), (b'"a b"', T), (b'"' + b"v" * 65 + b'"', F),
              (b'"a\\u0000"', F), (b'"\\n"', F), (b'" "', F), (b'"a\\u0085"', F), (b"5", F),
              (b"true", F), (b"[]", F), (b"{}", F), (b'"\\ud800"', F)]
EXTRA_FIELDS = [b'"votes": 999999', b'"votes": -1e308', b'"room": "../"',
                b'"added_at": "yesterday"', b'"played_at": -1', b'"__proto__": {"admin": true}',
                b'"": ""', '"日本": 1'.encode(), b'"x": [[[[[[[[[[[]]]]]]]]]]]',
                b'"now_playing": null', b'"extra": "' + b"e" * 3000 + b'"']
TRACK_JSON = {"id": JSON_ID, "title": JSON_TEXT, "artist": JSON_TEXT,
              "duration": JSON_DURATION}
VOTE_JSON = {"id": JSON_ID, "up": JSON_UP, "voter": JSON_VOTER}

# Query-string values, already percent-encoded.
QUERY_ID = [("abc", T), ("123", T), ("x.y%3Az_-", T), ("a" * 64, T), ("-1", T), ("1.5", T),
            ("null", T), ("", F), ("a" * 65, F), ("a%20b", F), ("a+b", F), ("..%2F", F),
            ("%7B", F), ("%7D", F), ("*", F), ("%00", F), ("%FF%FE", F), ("%C3%A9", F),
            ("%5B%5D", F), ("i" * 10_000, F)]
QUERY_UP = [("true", T), ("false", T), ("1", T), ("0", T), ("yes", T), ("no", T), ("on", T),
            ("off", T), ("TRUE", T), ("%20yes%20", T), ("", F), ("maybe", F), ("2", F),
            ("-1", F), ("%00", F), ("%FF", F), ("truee", F), ("null", F), ("1.0", F),
            ("t" * 10_000, F)]
QUERY_VOTER = [("alice", T), ("v" * 64, T), ("%E6%97%A5", T), ("a%20b", T), ("", T),
               ("%FF", T), ("v" * 65, F), ("%00", F), ("%0A", F), ("%7F", F), ("%C2%85", F),
               ("%20", F), ("%09", F), ("v" * 10_000, F)]
QUERY_INT = ["", "0", "1", "25", "100", "101", "2147483647", "2147483648", "-1", "-0",
             "9" * 400, "9" * 5000, "-" + "9" * 30, "1.5", "1e3", "abc", "%00", "0x10", "%FF",
             "%EF%BC%91", "1_0", "%2B5", "%205", "NaN", "%5B1%5D"]
JUNK_QUERY = ["foo=bar", "%FF=%FE", "a[b]=c", "=", "&&&", ";", "room=..%2F", "pad",
              "__proto__=1", "x=" + "%00" * 10, "LIMIT=abc", "head_=1", "%E2%80%AE=rtl"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=zz", "application/json; charset=utf-16",
                 "image/png", "*/*", "", "application/json; charset=\xe9"]

# Room names as path segments: valid ones are added per run. Breakers do not route to a
# room endpoint at all (404, or nginx's 400 for a path above the root).
ODD_ROOMS = ["..", ".", "%2E%2E", "{", "}", "%7B", "%7D", "*", "%2A", "a%20b", "a+b",
             "x" * 65, "%FF", "%FF%FE", "%C3%A9", "%00", "%0A", "%09", "a.b", "a:b", "a;b",
             "~", "%25", "$(id)", "%22%27", "%3Cscript%3E", "a,b", "@", "!", "%E2%80%8B",
             "x" * 1000]
ROOM_BREAKERS = ["", "%2F", "a%2Fb", "../..", "a/b"]
# Rooms for host operations: nothing that a proxy could fold into the root (the default
# room belongs to every test).
SAFE_ODD_ROOMS = [r for r in ODD_ROOMS if "." not in r and "%2E" not in r.upper()]

GET_PATHS = ["/queue", "/history", "/now_playing", "/metadata/abc"]
POST_PATHS = ["/add_track", "/vote", "/remove_track", "/play_next", "/clear"]
METHODS = ["BREW", "PROPFIND", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO",
           "MKCOL", "LOCK", "SEARCH", "QUERY", "PURGE", "get", "Post", "X" * 40]
STATIC_FILES = ["/static/index.html", "/static/app.js"]
PAGES = ["/healthz", "/readyz", "/openapi.json", "/docs", "/", *STATIC_FILES, "/static/",
         "/static/%00", "/static/..%2F..%2Fetc%2Fpasswd", "/static/%FF", "/static/" + "s" * 300]
UNKNOWN_PATHS = ["/admin", "/.env", "/rooms", "/rooms/", "/add_track/extra", "//queue",
                 "/%00", "/metadata/", "/metadata", "/%FF%FE", "/" + "a/" * 500,
                 "/" + "x" * 5000, "/index.php?x=1", "/rooms/a/b/c/queue", "/v1/queue"]
RANGES = ["bytes=999999-1", "bytes=abc", "bytes=0-0,1-1,2-2", "bytes=-", "items=0-1"]

# Bodies for the POST endpoints, with whether the request must be refused (a body that is
# not a JSON object, or an object without the id every POST endpoint that reads it needs).
BODIES = [
    (b"", T), (b" \r\n\t ", T), (b"hello", T), (b"{", T), (b"}", T), (b"[", T),
    (b"{'id': 1}", T), (b"id=1&title=x&artist=y", T), (b"<xml/>", T), (b"[]", T),
    (b"[1,2]", T), (b"null", T), (b"true", T), (b"123", T), (b'"str"', T), (b"1e308", T),
    (b"NaN", T), (b"-Infinity", T), (b"{}", T), (b'{"id": 1,}', T),
    (b'{"id": 1 /* c */}', T), (b'{"id": 1}{"id": 2}', T), (b'{"id": 1}\x00', T),
    (b'{"id": "a\x01b"}', T), (b'{"id": "\xff"}', T), (b'\xff\xfe{\x00}\x00', T),
    (b"\xc0\xaf", T), (b'{"title": "\xed\xa0\x80"}', T), (b'\xef\xbb\xbf{"id": 1}', T),
    (b'{"id": 1}'.decode().encode("utf-16"), T), (b"[" * 60_000, T),
    (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, T), (b"[" * 100_000, T),  # 413
    (b" " * 70_000 + b"{}", T),
    (b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(4000)) + b"}", T),
    (b'{"id": "a b", "id": "ok1", "title": "t", "artist": "a"}', U),
    (b'{"id": "q1", "title": "t", "artist": "a", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", U),
]
BODY_NAMES = BODY_WORDS | {"id", "title", "artist", "duration", "up", "voter"}


class RestCase(NamedTuple):
    n: int
    label: str  # what kind of case, for the summary
    method: str
    path: str
    body: bytes | None
    headers: dict
    node: int | None  # None: through nginx; else the index of the REST node it goes to
    bad: bool  # breaks a rule: must be refused with a 4xx
    names: frozenset  # what a 400/422 detail must name (one of), empty: not checked

    def __str__(self) -> str:
        where = "nginx" if self.node is None else f"node {self.node}"
        body = "" if self.body is None else f" body {_clip(self.body)}"
        headers = {k: v if len(v) <= 60 else f"{v[:60]}... ({len(v)} long)"
                   for k, v in list(self.headers.items())[:4]}
        return (f"seed {SEED} REST case {self.n} ({self.label}): {self.method} "
                f"{_clip(self.path)}{body} headers {headers} via {where}")


class RestFuzzer:
    """Seeded REST cases: most start from a valid request and break a few things in it."""

    def __init__(self, rng: random.Random, rooms: list[str], nodes: int):
        self.rng, self.rooms, self.nodes = rng, rooms, nodes

    def cases(self, count: int) -> list[RestCase]:
        makers = [(self.add_track, 20), (self.vote, 14), (self.remove_track, 5),
                  (self.page, 10), (self.metadata, 6), (self.host_call, 6), (self.body, 12),
                  (self.events, 3), (self.pages, 4), (self.unknown_path, 4),
                  (self.method, 6), (self.long_query, 5), (self.odd_headers, 5)]
        weights = [w for _, w in makers]
        huge = dict(zip(sorted(self.rng.sample(range(count), HUGE_CASES)), range(HUGE_CASES)))
        return [self.huge(n, huge[n]) if n in huge
                else self.rng.choices(makers, weights)[0][0](n) for n in range(count)]

    # -- the parts of a request ---------------------------------------------------------

    def case(self, n, label, method, path, *, body=None, headers=None, bad=False,
             names=()) -> RestCase:
        node = None  # a node drops the connection on a big body: those go through nginx
        if (body is None or len(body) <= MAX_BODY) and self.rng.random() < DIRECT_SHARE:
            node = self.rng.randrange(self.nodes)
        return RestCase(n, label, method, path, body, headers or {}, node, bool(bad),
                        frozenset(names))

    def room(self, *, host: bool = False, root: bool = False) -> tuple[str, bool, set]:
        """A path prefix: a fuzz room, an odd room name, or (when ``root``) none."""
        roll = self.rng.random()
        if root and roll < 0.1:
            return "", False, set()
        if roll < 0.3:
            segment = self.rng.choice(SAFE_ODD_ROOMS if host else ODD_ROOMS + ROOM_BREAKERS)
            if segment in ROOM_BREAKERS:
                return f"/rooms/{segment}", True, set()
            valid = bool(ROOM.fullmatch(urllib.parse.unquote(segment, errors="replace")))
            return f"/rooms/{segment}", not valid, set() if valid else {"room"}
        # host operations drain and clear only half the rooms: the other half keep tracks
        rooms = self.rooms[:FUZZ_ROOMS // 2] if host else self.rooms
        return f"/rooms/{self.rng.choice(rooms)}", False, set()

    def write_extras(self, n) -> tuple[list, dict, bool, set]:
        """Query parameters and headers every write takes: head, Idempotency-Key, junk."""
        rng, query, headers, bad, names = self.rng, [], {}, False, set()
        if rng.random() < 0.2:
            value = rng.choice(QUERY_INT)
            ok = _int_param(value, 0, 100)
            query.append(f"head={value}")
            bad |= ok is F
            names.add("head")
        if rng.random() < 0.15:
            unique_key = f"{self.rooms[0]}-rest-{n}"  # a key reused for another request: 422
            key, ok = rng.choice([(unique_key, T), ("", T), ("~!@#$%^&*()" + unique_key, T),
                                  ("a b", F), ("x" * 256, F), ("\xe9t\xe9", F), ("\x7f", F)])
            headers["Idempotency-Key"] = key
            bad |= ok is F
            names.add("Idempotency-Key")
        query += self.junk_query()
        if rng.random() < 0.5:
            headers["Content-Type"] = rng.choice(CONTENT_TYPES)
        if rng.random() < 0.05:
            headers["Authorization"] = rng.choice(["Bearer", "Bearer " + "t" * 500, "Basic x",
                                                   "bearer \xff", ""])
        return query, headers, bad, names

    def junk_query(self) -> list:
        return [self.rng.choice(JUNK_QUERY)] if self.rng.random() < 0.15 else []

    @staticmethod
    def url(prefix: str, path: str, query: list) -> str:
        return prefix + path + ("?" + "&".join(query) if query else "")

    @staticmethod
    def json_object(members: list, extra: list = ()) -> bytes:
        """Members in order (a repeated key: the last one counts), then raw ones."""
        return b"{" + b", ".join([*(b'"%s": %s' % (k.encode(), v) for k, v in members),
                                  *extra]) + b"}"

    # -- the endpoints ------------------------------------------------------------------

    def add_track(self, n) -> RestCase:
        rng = self.rng
        fields = {"id": (b'"fz%d"' % n, T), "title": (b'"Song %d"' % n, T),
                  "artist": (b'"Artist"', T), "duration": (b"200", T)}
        names, extra, shadowed = set(), [], []  # extra: raw '"key": value' members
        for _ in range(rng.randint(1, 3)):
            name, roll = rng.choice(list(TRACK_JSON)), rng.random()
            names.add(name)
            if roll < 0.65:
                fields[name] = rng.choice(TRACK_JSON[name])
            elif roll < 0.8:
                fields.pop(name, None)
            elif roll < 0.9:
                extra.append(rng.choice(EXTRA_FIELDS))
            elif name in fields:  # a duplicate key: the last one counts
                shadowed.append((name, rng.choice(TRACK_JSON[name])[0]))
        bad = F in [ok for _, ok in fields.values()] or not {"id", "title", "artist"} <= set(fields)
        members = [*shadowed, *((k, v) for k, (v, _) in fields.items())]
        rng.shuffle(extra)
        body = self.json_object(members, extra)
        query, headers, extra_bad, extra_names = self.write_extras(n)
        bad |= extra_bad
        prefix, room_bad, room_names = self.room(root=bad)
        return self.case(n, "add_track", "POST", self.url(prefix, "/add_track", query),
                         body=body, headers=headers, bad=bad or room_bad,
                         names=names | extra_names | room_names)

    def vote(self, n) -> RestCase:
        rng = self.rng
        values = {"id": ("query", rng.choice(["abc", "123", f"fz{rng.randrange(n + 1)}"]), T)}
        names = set()
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(["id", "up", "voter"])
            names.add(name)
            source = rng.choice(["query", "query", "body", "absent"])
            if source == "absent":
                values.pop(name, None)
            elif source == "query":
                pool = {"id": QUERY_ID, "up": QUERY_UP, "voter": QUERY_VOTER}[name]
                values[name] = ("query", *rng.choice(pool))
            else:
                values[name] = ("body", *rng.choice(VOTE_JSON[name]))
        bad = any(ok is F for _, _, ok in values.values()) or "id" not in values
        query = [f"{k}={v}" for k, (src, v, _) in values.items() if src == "query"]
        in_body = [(k, v) for k, (src, v, _) in values.items() if src == "body"]
        body = self.json_object(in_body) if in_body else rng.choice([None, b"", b"{}"])
        extra_query, headers, extra_bad, extra_names = self.write_extras(n)
        bad |= extra_bad
        prefix, room_bad, room_names = self.room(root=bad)
        return self.case(n, "vote", "POST", self.url(prefix, "/vote", query + extra_query),
                         body=body, headers=headers, bad=bad or room_bad,
                         names=names | extra_names | room_names)

    def remove_track(self, n) -> RestCase:
        rng = self.rng
        query, body = [], None
        if rng.random() < 0.5:
            value, ok = rng.choice(QUERY_ID)
            query.append(f"id={value}")
        else:
            raw, ok = rng.choice(JSON_ID + [(None, F)])
            body = b"{}" if raw is None else self.json_object([("id", raw)])
        extra_query, headers, extra_bad, extra_names = self.write_extras(n)
        prefix, room_bad, room_names = self.room(host=True)
        return self.case(n, "remove_track", "POST",
                         self.url(prefix, "/remove_track", query + extra_query), body=body,
                         headers=headers, bad=ok is F or extra_bad or room_bad,
                         names={"id"} | extra_names | room_names)

    def page(self, n) -> RestCase:
        rng = self.rng
        path = rng.choice(["/queue", "/history"])
        query, bad, names, headers = [], False, set(), {}
        for name, low in (("limit", 1), ("offset", 0)):
            if rng.random() < 0.6:
                value = rng.choice(QUERY_INT)
                query.append(f"{name}={value}")
                bad |= _int_param(value, low) is F
                names.add(name)
        if path == "/queue" and rng.random() < 0.1:
            headers["If-None-Match"] = rng.choice(['"0"', "*", "W/", '"abc", W/"1"', "x" * 5000])
        prefix, room_bad, room_names = self.room(root=True)
        return self.case(n, "page", "GET", self.url(prefix, path, query + self.junk_query()),
                         headers=headers, bad=bad or room_bad,
                         names=names | room_names)

    def metadata(self, n) -> RestCase:
        rng = self.rng
        segment = rng.choice([v for v, _ in QUERY_ID if v] + ["", "%2F", "a/b", "..", "."])
        decoded = urllib.parse.unquote(segment, errors="replace")
        # an id that decodes to a slash is not one path segment: 404, or a redirect
        bad = "/" not in decoded and not ID.fullmatch(decoded)
        prefix, room_bad, room_names = self.room(root=True)
        return self.case(n, "metadata", "GET",
                         self.url(prefix, f"/metadata/{segment}", self.junk_query()),
                         bad=bad or room_bad, names={"id"} | room_names)

    def host_call(self, n) -> RestCase:
        """play_next and clear (fuzz rooms only), now_playing anywhere; they read no body."""
        rng = self.rng
        method, path = rng.choices([("POST", "/play_next"), ("POST", "/clear"),
                                    ("GET", "/now_playing")], [4, 1, 3])[0]
        query, headers, bad, names, body = [], {}, False, set(), None
        if method == "POST":
            query, headers, bad, names = self.write_extras(n)
            body = rng.choice(BODIES)[0] if rng.random() < 0.3 else None
        prefix, room_bad, room_names = self.room(host=method == "POST", root=method == "GET")
        return self.case(n, path[1:], method, self.url(prefix, path, query), body=body,
                         headers=headers, bad=bad or room_bad, names=names | room_names)

    def body(self, n) -> RestCase:
        rng = self.rng
        path = rng.choice(["/add_track", "/vote", "/remove_track"])
        raw, bad = rng.choice(BODIES)
        headers = {"Content-Type": rng.choice(CONTENT_TYPES)} if rng.random() < 0.5 else {}
        prefix, room_bad, room_names = self.room(host=path == "/remove_track",
                                                 root=bad is T and path != "/remove_track")
        return self.case(n, "body", "POST", prefix + path, body=raw, headers=headers,
                         bad=bad is T or room_bad, names=BODY_NAMES | room_names)

    def events(self, n) -> RestCase:
        """Only requests that fail fast: an open stream would hold a worker."""
        rng = self.rng
        if rng.random() < 0.7:
            segment = rng.choice([r for r in ODD_ROOMS if not ROOM.fullmatch(
                urllib.parse.unquote(r, errors="replace"))] + ROOM_BREAKERS)
            headers = {"Last-Event-ID": rng.choice(["abc", "-1", "9" * 400, "\xff"])} \
                if rng.random() < 0.3 else {}
            return self.case(n, "events", "GET", f"/rooms/{segment}/events", headers=headers,
                             bad=True, names={"room"})
        prefix = rng.choice(["", f"/rooms/{rng.choice(self.rooms)}"])
        return self.case(n, "events", rng.choice(["POST", "PUT", "DELETE"]), prefix + "/events",
                         bad=True)

    def pages(self, n) -> RestCase:
        rng = self.rng
        path = rng.choice(PAGES + ["/rooms/{room}/", "/rooms/{room}"])
        bad, names = path.startswith("/static/") and path not in STATIC_FILES, set()
        if "{room}" in path:
            prefix, bad, names = self.room()
            path = path.replace("/rooms/{room}", prefix)
        method = rng.choice(["GET"] * 6 + ["POST", "PUT", "DELETE", "HEAD"])
        bad |= method not in ("GET", "HEAD")
        return self.case(n, "site page", method, self.url("", path, self.junk_query()), bad=bad,
                         names=names)

    def unknown_path(self, n) -> RestCase:
        rng = self.rng
        path = rng.choice(UNKNOWN_PATHS + [f"/rooms/{rng.choice(self.rooms)}/nope", "random"])
        if path == "random":
            junk = "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randint(1, 200)))
            path = "/" + urllib.parse.quote(junk, safe="")
        return self.case(n, "unknown path", rng.choice(["GET", "POST"]), path, bad=True,
                         names={"HTTP"})

    def method(self, n) -> RestCase:
        rng = self.rng
        method = rng.choice(METHODS + ["GET", "POST"])
        prefix = f"/rooms/{rng.choice(self.rooms)}"
        if method == "GET":
            path = rng.choice(POST_PATHS)
        elif method == "POST":
            path = rng.choice(GET_PATHS)
        else:
            path = rng.choice(GET_PATHS + POST_PATHS)
        body = self.json_object([("id", b'"abc"')]) if rng.random() < 0.3 else None
        if method == "CONNECT":
            # A CONNECT has no content: a node takes a body for tunnel data and, at random,
            # fails the next request on the connection, which would make this test flaky.
            body = None
        return self.case(n, f"method {method[:10]}", method, prefix + path, body=body, bad=True,
                         names={"HTTP"})

    def long_query(self, n) -> RestCase:
        """5,000-20,000 characters of query string."""
        rng = self.rng
        size = rng.randint(5_000, 20_000)
        kind = rng.randrange(6)
        room = f"/rooms/{rng.choice(self.rooms)}"
        if kind == 0:
            return self.case(n, "long query", "GET", f"{room}/queue?pad=" + "x" * size)
        if kind == 1:
            return self.case(n, "long query", "GET", f"{room}/history?" + "a=1&" * (size // 4))
        if kind == 2:
            return self.case(n, "long query", "GET", f"{room}/queue?" + "%FF" * (size // 3))
        if kind == 3:
            name = rng.choice(["limit", "offset"])
            return self.case(n, "long query", "GET", f"{room}/queue?{name}=" + "9" * size,
                             bad=True, names={name})
        if kind == 4:
            return self.case(n, "long query", "POST", f"{room}/vote?id=abc&voter=" + "v" * size,
                             bad=True, names={"voter"})
        return self.case(n, "long query", "GET", f"{room}/metadata/abc?id=" + "i" * size)

    def odd_headers(self, n) -> RestCase:
        rng = self.rng
        room = f"/rooms/{rng.choice(self.rooms)}"
        kind = rng.randrange(7)
        path = room + rng.choice(["/queue", "/now_playing", "/history"])
        if kind == 0:
            headers = {"X-Junk": "j" * rng.choice([100, 8_000, 20_000, 40_000])}
        elif kind == 1:
            headers = {f"X-H{i}": "v" for i in range(rng.choice([50, 200]))}
        elif kind == 2:
            headers = {"X-Latin": "\xe9\xff" * 20, "Accept": "application/\xe9"}
        elif kind == 3:
            headers = {"X-Forwarded-For": rng.choice(["garbage, , ::zz", "1.2.3.4" * 50, ""]),
                       "X-Forwarded-Proto": rng.choice(["gopher", "javascript", ""])}
        elif kind == 4:
            headers = {"Host": rng.choice(["a" * 300, "\xe9vil", "", "evil.com/x?", "[::1"])}
        elif kind == 5:
            headers = {"Cookie": "c=" + "k" * 10_000, "Accept-Encoding": "gzip;q=NaN"}
        else:  # the page's assets are part of the REST service too
            path, headers = STATIC_FILES[0], {"Range": rng.choice(RANGES)}
        return self.case(n, f"headers {sorted(headers)[0]}", "GET", path, headers=headers,
                         names={"HTTP", "header"})

    def huge(self, n, which: int) -> RestCase:
        """A 10 MB string (nginx answers 413 before a node sees it)."""
        room = f"/rooms/{self.rooms[n % len(self.rooms)]}"
        big = b"x" * HUGE
        path, body = [(f"{room}/add_track", b'{"id": "big", "title": "%s", "artist": "a"}' % big),
                      (f"{room}/vote", b'{"id": "abc", "voter": "%s"}' % big),
                      (f"{room}/add_track", big)][which % 3]
        return RestCase(n, "10 MB body", "POST", path, body, {}, None, True, frozenset())


# -- gRPC values -------------------------------------------------------------------------

G_ID = [("abc", T), ("123", T), ("x.y:z_-", T), ("a" * 64, T), ("-1", T), ("", F), ("a" * 65, F),
        ("a b", F), ("../", F), ("{", F), ("}", F), ("*", F), ("a\x00b", F), ("é", F),
        ("日本", F), ("\n", F), ("a" * 10_000, F)]
G_TEXT = [("x", T), ("a" * 200, T), ("  padded  ", T), ("日本語 🎵", T), ("<script>", T),
          ("", F), ("   ", F), ("\u00a0", F), ("a" * 201, F), ("a\x00b", F), ("a\x1fb", F),
          ("a\x7fb", F), ("a\u0085b", F), ("a\tb", F), ("a" * 100_000, F)]
G_DURATION = [(0, T), (1, T), (86400, T), (-1, F), (86401, F), (2**31 - 1, F), (-2**31, F)]
G_PAGE = [(0, T), (1, T), (100, T), (2**31 - 1, T), (-1, F), (-2**31, F)]
G_VOTER = [("", T), ("alice", T), ("v" * 64, T), ("a b", T), ("日本", T), ("v" * 65, F),
           ("\x00", F), (" ", F), ("\t", F), ("a\u0085", F), ("a\nb", F)]
G_ODD_ROOMS = [("..", F), ("../", F), ("{", F), ("}", F), ("*", F), ("a b", F), ("x" * 65, F),
               ("a\x00", F), ("é", F), ("a/b", F), ("%2F", F), ("x" * 5000, F)]
G_ANY_INT32 = [(-2**31, T), (2**31 - 1, T), (0, T)]
G_ANY_INT64 = [(-2**63, T), (2**63 - 1, T), (0, T)]
G_BOOL = [(True, T), (False, T)]

SERVICE = "/queue.QueueService/"


class Method(NamedTuple):
    request: type
    reply: type  # to check that an OK reply parses
    host: bool  # host-only: sent to the rooms that may be drained and cleared
    fields: dict  # the request's fields and their values
    weight: int  # how often the message cases pick it


G_METHODS = {
    "AddTrack": Method(pb.Track, pb.QueueResponse, False,
                       {"id": G_ID, "title": G_TEXT, "artist": G_TEXT, "duration": G_DURATION,
                        "votes": G_ANY_INT32, "added_at": G_ANY_INT64,
                        "played_at": G_ANY_INT64}, 6),
    "RemoveTrack": Method(pb.TrackId, pb.QueueResponse, True, {"id": G_ID}, 2),
    "VoteTrack": Method(pb.VoteRequest, pb.QueueResponse, False,
                        {"id": G_ID, "up": G_BOOL, "voter": G_VOTER}, 6),
    "GetQueue": Method(pb.Empty, pb.QueueList, False, {"limit": G_PAGE, "offset": G_PAGE}, 3),
    "GetMetadata": Method(pb.TrackId, pb.Track, False, {"id": G_ID}, 3),
    "PlayNext": Method(pb.Empty, pb.Track, True, {"limit": G_ANY_INT32, "offset": G_ANY_INT32}, 2),
    "GetHistory": Method(pb.Empty, pb.QueueList, False, {"limit": G_PAGE, "offset": G_PAGE}, 3),
    "NowPlaying": Method(pb.Empty, pb.NowPlayingReply, False, {"limit": G_ANY_INT32}, 2),
    "Clear": Method(pb.Empty, pb.QueueResponse, True, {"offset": G_ANY_INT32}, 1),
    "Watch": Method(pb.Empty, pb.QueueEvent, False, {"limit": G_ANY_INT32}, 2),
}
READ_ONLY = ["GetQueue", "GetHistory", "NowPlaying", "GetMetadata"]
UNKNOWN_METHODS = ["/queue.QueueService/Nope", "/queue.QueueService/addtrack",
                   "/queue.QueueService/", "/queue.Other/AddTrack", "/QueueService/AddTrack",
                   "/queue.QueueService/AddTrack/extra", "/queue.queueservice/GetQueue",
                   "/" + "m" * 2000]


class GrpcCase(NamedTuple):
    n: int
    label: str
    method: str  # the full path
    raw: bytes
    metadata: tuple
    bad: bool  # breaks a rule: must be refused (INVALID_ARGUMENT unless ``huge``)
    names: frozenset  # what the details of INVALID_ARGUMENT must name (one of)
    huge: bool  # over a server limit: RESOURCE_EXHAUSTED is the answer
    known: bool  # a method the server has
    reply: type | None  # the reply message, to check that an OK reply parses

    def __str__(self) -> str:
        metadata = [(k, _clip(v, 60)) for k, v in self.metadata[:3]]
        return (f"seed {SEED} gRPC case {self.n} ({self.label}): {self.method} "
                f"{_clip(self.raw)} metadata {metadata}")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class GrpcFuzzer:
    """Seeded gRPC cases: messages with broken fields, garbage bytes, odd metadata,
    unknown methods."""

    def __init__(self, rng: random.Random, rooms: list[str]):
        self.rng, self.rooms = rng, rooms

    def cases(self, count: int) -> list[GrpcCase]:
        makers = [(self.message, 55), (self.garbage, 20), (self.metadata, 10),
                  (self.watch, 5), (self.unknown, 4), (self.large, 1)]
        weights = [w for _, w in makers]
        huge = dict(zip(sorted(self.rng.sample(range(count), HUGE_CASES)), range(HUGE_CASES)))
        return [self.huge(n, huge[n]) if n in huge
                else self.rng.choices(makers, weights)[0][0](n) for n in range(count)]

    def case(self, n, label, name, raw, *, metadata=(), bad=False, names=(), huge=False):
        reply = G_METHODS[name].reply if name in G_METHODS else None
        return GrpcCase(n, label, SERVICE + name, raw, tuple(metadata), bool(bad),
                        frozenset(names), huge, True, reply)

    def valid_message(self, name: str, n: int):
        request, host = G_METHODS[name].request, G_METHODS[name].host
        room = self.rng.choice(self.rooms[:FUZZ_ROOMS // 2] if host else self.rooms)
        if request is pb.Track:
            return pb.Track(id=f"g{n}", title="Song", artist="Artist", duration=200, room=room)
        track_id = self.rng.choice(["abc", "123", f"g{self.rng.randrange(n + 1)}"])
        if request is pb.VoteRequest:
            return pb.VoteRequest(id=track_id, up=True, room=room)
        if request is pb.TrackId:
            return pb.TrackId(id=track_id, room=room)
        return pb.Empty(room=room)

    def message(self, n) -> GrpcCase:
        rng = self.rng
        name = rng.choices(list(G_METHODS), [m.weight for m in G_METHODS.values()])[0]
        host, pools = G_METHODS[name].host, G_METHODS[name].fields
        message = self.valid_message(name, n)
        rules = {}  # field -> whether its last value keeps the rules
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.25:
                field, (value, ok) = "room", rng.choice(G_ODD_ROOMS)
            else:
                field = rng.choice(list(pools))
                value, ok = rng.choice(pools[field])
            setattr(message, field, value)
            rules[field] = ok
        if not host and F in rules.values() and rng.random() < 0.1:
            message.room, rules["room"] = "", T  # the default room, with a request to refuse
        bad, names = F in rules.values(), set(rules)
        raw = message.SerializeToString()
        if rng.random() < 0.1:  # unknown fields: skipped by the parser
            raw += rng.choice([b"\xf8\x01\x05", b"\xa2\x06\x03abc", b"\xfd\x07\x01\x02\x03\x04"])
        label = f"{name} {'/'.join(sorted(names))}"
        if name == "Watch" and not bad:
            return self.case(n, label, name, raw)  # a live stream: its snapshot, then cancelled
        return self.case(n, label, name, raw, bad=bad, names=names)

    def garbage(self, n) -> GrpcCase:
        """Bytes no parser accepts, for any method; random bytes for read-only ones."""
        rng = self.rng
        if rng.random() < 0.3:
            name = rng.choice(READ_ONLY)
            size = rng.choice([1, 5, 50, 500, 5000])
            raw = rng.choice([bytes(rng.randrange(256) for _ in range(size)),
                              b"\x0a\x00" * size, b"\x08\x01" * size,
                              b"\x10" + b"\xff" * 9 + b"\x01", b"\x10\x80\x80\x80\x80\x10",
                              b"\x0b" * 50 + b"\x0c" * 50])
            return self.case(n, f"{name} random bytes", name, raw)
        name = rng.choice(list(G_METHODS))
        prefix = self.valid_message(name, n).SerializeToString()
        raw = rng.choice([
            b"\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(50))),  # field 0
            b"\xff" * rng.randint(10, 20),  # a varint that never ends
            prefix + b"\x0a" + _varint(1000) + b"abc",  # a length past the end
            prefix + b"\x0a\x02\xff\xfe",  # invalid UTF-8 in a string field
            prefix + b"\x0a\x03\xed\xa0\x80",  # an encoded surrogate
            prefix + b"\x0a\x02\xc0\xaf",  # an overlong encoding
            b"\x0c", b"\x0b" * 1000, b"\x13" * 20_000 + b"\x14" * 20_000,  # groups
            prefix + b"\x0d\x01\x02",  # a cut fixed32
            prefix + b"\x0e", prefix + b"\x0f",  # wire types 6 and 7
            prefix + b"\x0a\x05ab",  # a string cut short
        ])
        full = G_METHODS[name].request.DESCRIPTOR.full_name
        return self.case(n, f"{name} garbage", name, raw, bad=True, names={full})

    def metadata(self, n) -> GrpcCase:
        rng = self.rng
        name = rng.choice([m for m in G_METHODS if m != "Watch"])
        raw = self.valid_message(name, n).SerializeToString()
        kind = rng.randrange(5)
        bad = huge = False
        if kind == 0:
            key, ok = rng.choice([(f"{self.rooms[0]}-grpc-{n}", T), ("", T), ("a b", F),
                                  ("x" * 256, F), ("{" + " " * 10 + "}", F)])
            metadata, bad = [("idempotency-key", key)], ok is F
        elif kind == 1:
            metadata = [("authorization",
                         rng.choice(["Bearer", "Basic x", "", "Bearer " + "t" * 1000]))]
        elif kind == 2:
            metadata, huge = [("x-junk", "j" * rng.choice([9_000, 20_000]))], True
        elif kind == 3:
            metadata = [("x-junk-bin", bytes(rng.randrange(256) for _ in range(100)))]
        else:
            metadata = [(f"x-k{i}", "v" * 10) for i in range(50)]
        return self.case(n, f"{name} metadata {metadata[0][0]}", name, raw, metadata=metadata,
                         bad=bad, names={"Idempotency-Key"}, huge=huge)

    def watch(self, n) -> GrpcCase:
        rng = self.rng
        if rng.random() < 0.2:
            room = rng.choice(self.rooms)
            return self.case(n, "Watch", "Watch", pb.Empty(room=room).SerializeToString())
        room, _ = rng.choice(G_ODD_ROOMS)
        return self.case(n, "Watch room", "Watch", pb.Empty(room=room).SerializeToString(),
                         bad=True, names={"room"})

    def unknown(self, n) -> GrpcCase:
        return GrpcCase(n, "unknown method", self.rng.choice(UNKNOWN_METHODS),
                        pb.Empty(room=self.rooms[0]).SerializeToString(), (), True, frozenset(),
                        False, False, None)

    def large(self, n) -> GrpcCase:
        """Strings of 100 KB-900 KB: under the 1 MiB message limit, over the rules."""
        size = self.rng.choice([100_000, 900_000])
        field, name = self.rng.choice([("title", "AddTrack"), ("voter", "VoteTrack"),
                                       ("id", "GetMetadata"), ("room", "GetQueue")])
        message = self.valid_message(name, n)
        setattr(message, field, "L" * size)
        return self.case(n, f"{name} {field} large", name, message.SerializeToString(),
                         bad=True, names={field})

    def huge(self, n, which: int) -> GrpcCase:
        field, name = [("title", "AddTrack"), ("voter", "VoteTrack"),
                       ("room", "GetQueue")][which % 3]
        message = self.valid_message(name, n)
        setattr(message, field, "H" * HUGE)
        return self.case(n, f"{name} 10 MB {field}", name, message.SerializeToString(),
                         bad=True, huge=True)


# -- raw HTTP ------------------------------------------------------------------------------

class RawCase(NamedTuple):
    n: int
    data: bytes
    node: int | None
    bad: bool
    label: str = "raw HTTP"
    names: frozenset = frozenset()

    def __str__(self) -> str:
        where = "nginx" if self.node is None else f"node {self.node}"
        return f"seed {SEED} raw HTTP case {self.n}: {_clip(self.data, 200)} via {where}"


def raw_cases(room: str, nodes: int) -> list[RawCase]:
    """What http.client will not send: raw bytes in the request line, chunked bodies."""
    r = room.encode()
    requests = [
        (b"GET /rooms/%s/metadata/\xff\xfe HTTP/1.1\r\nHost: fuzz\r\n\r\n" % r, T),
        (b"GET /rooms/\xc3\xa9/queue HTTP/1.1\r\nHost: fuzz\r\n\r\n", T),
        (b"GET /rooms/%s/queue?limit=\xff HTTP/1.1\r\nHost: fuzz\r\n\r\n" % r, T),
        (b"POST /rooms/%s/add_track HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5\r\n{\"id\"\r\n0\r\n\r\n" % r, T),
        (b"POST /rooms/%s/vote?id=abc HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 3\r\n\r\n"
         b"\xff\xfe\xfd" % r, T),
        (b"GET http://fuzz/rooms/%s/queue HTTP/1.1\r\nHost: fuzz\r\n\r\n" % r, F),
        (b"GET /rooms/%s/queue HTTP/1.0\r\n\r\n" % r, F),
        (b"BREW /rooms/%s/queue HTTP/1.1\r\nHost: fuzz\r\n\r\n" % r, T),
    ]
    targets = [None, *range(nodes)]
    return [RawCase(i * len(targets) + j, data, node, bad)
            for i, (data, bad) in enumerate(requests) for j, node in enumerate(targets)]


# -- running and judging -----------------------------------------------------------------

def _detail(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    detail = data.get("detail") if isinstance(data, dict) else None
    return detail if isinstance(detail, str) and detail.strip() else None


def judge_rest(case, status: int, headers: dict, body: bytes, head: bool = False) -> list:
    """Problems as (kind, summary, description); ``head``: the answer has no body."""
    ctype = headers.get("content-type", "")
    seen = f"{case} -> {status} {ctype!r} {_clip(body, 300)}"
    where = "nginx" if case.node is None else "node"
    summary = f"REST {case.label} via {where} -> {status} {ctype.split(';')[0] or 'no type'}"
    if status >= 500:
        return [("server error", summary, seen)]
    problems = []
    if case.bad and status < 300:  # (a redirect, say to drop a trailing slash, is no answer)
        problems.append(("accepted", summary, seen))
    if status >= 400 and not head:
        detail = _detail(body) if ctype.startswith("application/json") else None
        if detail is None:
            problems.append(("error without a JSON detail", summary, seen))
        elif status in (400, 422) and case.names:
            # nginx's own refusals (X-Node-Id: nginx) only know the request was bad HTTP
            by_nginx = headers.get("x-node-id", "nginx") == "nginx"
            names = case.names | {"HTTP"} if by_nginx else case.names
            if not _names_problem(detail, names):
                problems.append(("detail that does not name the problem", summary, seen))
    elif status == 200 and ctype.startswith("application/json") and body:
        try:
            json.loads(body)
        except ValueError:
            problems.append(("success that is not JSON", summary, seen))
    return problems


def run_rest(case: RestCase, clients: dict) -> list:
    try:
        reply = clients[case.node].request(case.method, case.path, raw=case.body,
                                           headers=case.headers)
    except (OSError, http.client.HTTPException) as exc:
        where = "nginx" if case.node is None else "node"
        return [("no answer", f"REST {case.label} via {where} -> {type(exc).__name__}",
                 f"{case} -> {exc!r}")]
    return judge_rest(case, reply.status, reply.headers, reply.body, case.method == "HEAD")


def run_raw(case: RawCase, addresses: list) -> list:
    host, port = addresses[0 if case.node is None else case.node + 1]
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(case.data.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
                         if b"HTTP/1.1" in case.data.split(b"\r\n")[0] else case.data)
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read(1 << 20)
            headers = {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        return [("no answer", f"raw HTTP -> {type(exc).__name__}", f"{case} -> {exc!r}")]
    return judge_rest(case, response.status, headers, body)


BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
          grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
          grpc.StatusCode.CANCELLED}


def run_grpc(case: GrpcCase, channel: grpc.Channel) -> list:
    reply, code, details = None, grpc.StatusCode.OK, ""
    try:
        if case.method == SERVICE + "Watch":
            stream = channel.unary_stream(case.method)(case.raw, timeout=TIMEOUT,
                                                        metadata=case.metadata)
            try:
                reply = next(stream, None)
            finally:
                stream.cancel()
        else:
            reply = channel.unary_unary(case.method)(case.raw, timeout=TIMEOUT,
                                                     metadata=case.metadata)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
    seen = f"{case} -> {code.name} {details!r}"
    summary = f"gRPC {case.label.split(' ')[0]} -> {code.name}"
    if code in BROKEN or (code == grpc.StatusCode.UNIMPLEMENTED and case.known) or (
            code == grpc.StatusCode.RESOURCE_EXHAUSTED and not case.huge):
        return [("server error", summary, seen)]
    problems = []
    if code == grpc.StatusCode.OK:
        if case.bad:
            problems.append(("accepted", summary, seen))
        elif reply is None:
            problems.append(("server error", summary, seen + " (the stream ended at once)"))
        elif case.reply is not None:
            try:
                case.reply.FromString(reply)
            except DecodeError:
                problems.append(("success that does not parse", summary, f"{seen} {_clip(reply)}"))
        return problems
    if not details.strip():
        problems.append(("error without details", summary, seen))
    elif case.bad and not case.huge and case.known:
        if code != grpc.StatusCode.INVALID_ARGUMENT:
            problems.append(("wrong status for a broken rule", summary, seen))
        elif case.names and not _names_problem(details, case.names):
            problems.append(("detail that does not name the problem", summary, seen))
    return problems


class FuzzRun:
    """Runs the cases on THREADS workers until they are done or BUDGET is spent."""

    def __init__(self, cluster, cases: list):
        self.cluster = cluster
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        for case in cases:
            self.jobs.put(case)
        self.lock = threading.Lock()
        self.sent = 0
        self.problems: list = []
        self.crashes: list = []
        self.deadline = time.monotonic() + BUDGET

    def worker(self, channel) -> None:
        clients = {None: Http(self.cluster.api_url, TIMEOUT),
                   **{i: Http(url, TIMEOUT) for i, url in enumerate(self.cluster.rest_urls)}}
        addresses = [("127.0.0.1", self.cluster.nginx_port),
                     *(("127.0.0.1", port) for port in self.cluster.rest_ports)]
        try:
            while time.monotonic() < self.deadline:
                try:
                    case = self.jobs.get_nowait()
                except queue.Empty:
                    return
                if isinstance(case, RestCase):
                    found = run_rest(case, clients)
                elif isinstance(case, GrpcCase):
                    found = run_grpc(case, channel)
                else:
                    found = run_raw(case, addresses)
                with self.lock:
                    self.sent += 1
                    self.problems += found
        except BaseException as exc:  # a bug in the test itself: fail loudly
            with self.lock:
                self.crashes.append(exc)
        finally:
            for client in clients.values():
                client.close()

    def run(self) -> None:
        with grpc_channel(self.cluster.grpc_target) as channel:
            threads = [threading.Thread(target=self.worker, args=(channel,), daemon=True)
                       for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            end = self.deadline + 2 * TIMEOUT + 5
            for thread in threads:
                thread.join(max(0.0, end - time.monotonic()))
            if any(thread.is_alive() for thread in threads):
                self.problems.append(("no answer", "a worker hung",
                                      f"seed {SEED}: a worker was still waiting "
                                      f"{2 * TIMEOUT:.0f} s after the time budget"))
        if self.crashes:
            raise self.crashes[0]


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def setUpModule() -> None:
    if EXTERNAL:
        raise unittest.SkipTest("checks the local nodes' processes and logs")


class Fuzz(unittest.TestCase):
    """One seeded run in setUpClass; each test checks one property of its answers."""

    @classmethod
    def setUpClass(cls) -> None:
        cluster = cls.cluster = local_cluster()
        cls.processes = [*cluster.rest, *cluster.grpc, cluster.nginx]
        cls.pids = {p.name: p.pid for p in cls.processes}
        cls.log_sizes = {p.name: _size(p.log) for p in cls.processes}
        rng = random.Random(SEED)
        base = unique("fz")
        rooms = [f"{base}-{i}" for i in range(FUZZ_ROOMS)]
        client = Http(cluster.api_url, TIMEOUT)
        try:  # tracks for the votes, removals and plays to find
            for room in rooms:
                for track_id in SEEDED:
                    added = client.post(f"/rooms/{room}/add_track?head=0",
                                        {"id": track_id, "title": "Seeded", "artist": "Fuzz"})
                    if added.status != 200:
                        raise AssertionError(f"seeding {room}: {added}")
        finally:
            client.close()
        cases = [*RestFuzzer(rng, rooms, len(cluster.rest)).cases(REST_CASES),
                 *GrpcFuzzer(rng, rooms).cases(GRPC_CASES),
                 *raw_cases(rooms[0], len(cluster.rest))]
        rng.shuffle(cases)
        cls.total = len(cases)
        started = time.monotonic()
        fuzz = FuzzRun(cluster, cases)
        fuzz.run()
        cls.seconds = time.monotonic() - started
        cls.sent, cls.problems = fuzz.sent, fuzz.problems

    def assertNoProblems(self, *kinds: str) -> None:
        found = [p for p in self.problems if p[0] in kinds]
        if found:
            summary = Counter(f"{kind}: {what}" for kind, what, _ in found).most_common(15)
            self.fail(f"{len(found)} of {self.sent} fuzz requests (seed {SEED}) gave "
                      f"{' or '.join(kinds)}:\n"
                      + "\n".join(f"  {count} x {what}" for what, count in summary)
                      + "\nfor example:\n" + "\n".join(f"  {seen}" for _, _, seen in found[:12]))

    def test_at_least_5000_requests_are_sent_within_the_time_budget(self):
        self.assertGreaterEqual(self.total, MIN_REQUESTS)
        self.assertEqual(self.sent, self.total,
                         f"seed {SEED}: only {self.sent} of {self.total} requests were sent "
                         f"in {self.seconds:.1f} s")

    def test_no_answer_is_a_server_error_and_every_request_is_answered(self):
        self.assertNoProblems("server error", "no answer")

    def test_every_error_is_json_with_a_detail(self):
        self.assertNoProblems("error without a JSON detail", "error without details")

    def test_every_detail_names_the_problem(self):
        self.assertNoProblems("detail that does not name the problem",
                              "wrong status for a broken rule")

    def test_input_that_breaks_a_rule_is_refused(self):
        self.assertNoProblems("accepted")

    def test_successful_answers_parse(self):
        self.assertNoProblems("success that is not JSON", "success that does not parse")

    def test_no_node_crashed_or_restarted(self):
        self.assertEqual({p.name: (p.pid, p.alive()) for p in self.processes},
                         {name: (pid, True) for name, pid in self.pids.items()})
        for url in self.cluster.rest_urls:
            client = Http(url, TIMEOUT)
            self.addCleanup(client.close)
            self.assertEqual(client.get("/readyz").status, 200, url)

    def test_no_node_logged_a_traceback(self):
        for process in self.processes:
            with open(process.log, "rb") as log:
                log.seek(self.log_sizes[process.name])
                written = log.read().decode(errors="replace")
            self.assertNotIn("Traceback", written,
                             f"{process.name} (seed {SEED}):\n{written[-3000:]}")

    def test_the_core_invariants_still_hold_on_fresh_rooms(self):
        rest, grpc_door = RestDoor(unique("fz-after")), GrpcDoor(unique("fz-after"))
        self.addCleanup(rest.close_thread)
        self.addCleanup(grpc_door.channel.close)
        for door in (rest, grpc_door):
            with self.subTest(door=type(door).__name__):
                self.check_core(door)

    def check_core(self, door) -> None:
        """Adds, a duplicate, 208 concurrent votes, order by votes then age, 8 concurrent
        players who play each track exactly once, and the history that leaves."""
        ids = [f"c{i}" for i in range(6)]
        for track_id in ids:
            self.assertEqual(door.add(track_id), "ok")
        self.assertEqual(door.add("c0"), "duplicate")

        def voter(n: int) -> list:
            try:
                return [door.vote("c4", True) for _ in range(25)] + [door.vote("c5", False)]
            finally:
                door.close_thread()

        with ThreadPoolExecutor(8) as pool:
            outcomes = Counter(o for batch in pool.map(voter, range(8)) for o in batch)
        self.assertEqual(outcomes, {"ok": 208})
        self.assertEqual(door.vote("c2", True), "ok")
        self.assertEqual(list(door.queue().items()),
                         [("c4", 200), ("c2", 1), ("c0", 0), ("c1", 0), ("c3", 0), ("c5", -8)])
        self.assertEqual(door.votes("c4"), 200)

        def player(n: int) -> list:
            played = []
            try:
                for _ in range(len(ids) + 1):
                    track_id = door.play()
                    if track_id is None:
                        return played
                    played.append(track_id)
                return played
            finally:
                door.close_thread()

        with ThreadPoolExecutor(8) as pool:
            played = [t for batch in pool.map(player, range(8)) for t in batch]
        self.assertEqual(sorted(played), ids)
        self.assertEqual(door.history_ids(), ["c5", "c3", "c1", "c0", "c2", "c4"])
        self.assertEqual(door.queue(), {})
        self.assertEqual(door.vote("c0", True), "missing")
        self.assertEqual(door.remove("c0"), "missing")



if __name__ == "__main__":
    unittest.main()
