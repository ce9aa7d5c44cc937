"""Seeded REST cases (most start from a valid request and break a few things in it), and
raw HTTP that http.client will not send."""

from __future__ import annotations

import random
import urllib.parse
from typing import NamedTuple

from .values import (
    BODIES,
    BODY_NAMES,
    CONTENT_TYPES,
    DIRECT_SHARE,
    EXTRA_FIELDS,
    FUZZ_ROOMS,
    GET_PATHS,
    HUGE,
    HUGE_CASES,
    ID,
    JSON_ID,
    JUNK_QUERY,
    MAX_BODY,
    METHODS,
    ODD_ROOMS,
    PAGES,
    POST_PATHS,
    QUERY_ID,
    QUERY_INT,
    QUERY_UP,
    QUERY_VOTER,
    RANGES,
    ROOM,
    ROOM_BREAKERS,
    SAFE_ODD_ROOMS,
    SEED,
    STATIC_FILES,
    TRACK_JSON,
    UNKNOWN_PATHS,
    VOTE_JSON,
    F,
    T,
    clip,
    int_param,
)


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
        body = "" if self.body is None else f" body {clip(self.body)}"
        headers = {k: v if len(v) <= 60 else f"{v[:60]}... ({len(v)} long)"
                   for k, v in list(self.headers.items())[:4]}
        return (f"seed {SEED} REST case {self.n} ({self.label}): {self.method} "
                f"{clip(self.path)}{body} headers {headers} via {where}")


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
        huge = {n: i for i, n in enumerate(sorted(self.rng.sample(range(count), HUGE_CASES)))}
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
            ok = int_param(value, 0, 100)
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
                bad |= int_param(value, low) is F
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
        return f"seed {SEED} raw HTTP case {self.n}: {clip(self.data, 200)} via {where}"


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

