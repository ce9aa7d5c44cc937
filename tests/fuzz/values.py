"""The values the fuzz cases are made of, each with whether it keeps its field's rules, and
the run's parameters."""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import NamedTuple

from proto import queue_pb2 as pb

SEED = int(os.environ.get("FUZZ_SEED", "20240611"))
REST_CASES = 3600
GRPC_CASES = 1800
MIN_REQUESTS = 5000
THREADS = 8
# Seconds all the fuzz requests may take together: a cap that only a hang reaches (they take
# about 15 s here), so that a machine twice as slow passes too.
BUDGET = 120.0
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


def clip(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} long)"


def names_problem(detail: str, names) -> bool:
    """A field error must name a field the case broke; any other error one of its words."""
    field = FIELD_DETAIL.match(detail)
    if field and field.group(1) in FIELDS:
        return field.group(1) in names
    return any(word.lower() in detail.lower() for word in names)


def int_param(encoded: str, low: int, high: int = 2**31 - 1):
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
UNKNOWN_PATHS = ["/admin", "/.env", "/roomz", "/rooms/", "/add_track/extra", "//queue",
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

