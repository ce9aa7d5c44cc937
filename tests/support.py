"""What the tests share: where the servers are, and a small HTTP client.

Local mode (the default): one cluster (redis-server, REST and gRPC nodes, nginx) is started
on free loopback ports the first time a test needs it, shared by every test module, and
stopped when the test run ends. External mode: with ``API_URL`` (REST, through its load
balancer) and/or ``GRPC_TARGET`` set, the API tests run against that deployment instead;
tests that must start or break servers of their own are skipped there, and so are the
tests of the front door whose address was not given. A test never passes against a server
that is down: the first request fails it.

Against a deployment the tests change only data of their own: they work in rooms with
random names and leave the default room (which a party may be using through the room-less
endpoints) alone. The tests of the room-less endpoints run there only with
``TEST_USE_DEFAULT_ROOM=1``; otherwise they are skipped, saying why.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import unittest
import urllib.parse
import uuid
from typing import Any, NamedTuple

from .cluster import Cluster

API_URL = os.environ.get("API_URL", "").rstrip("/")
GRPC_TARGET = os.environ.get("GRPC_TARGET", "")
EXTERNAL = bool(API_URL or GRPC_TARGET)
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "")  # the deployment's, in external mode
USE_DEFAULT_ROOM = not EXTERNAL or os.environ.get("TEST_USE_DEFAULT_ROOM", "").strip() == "1"
GRPC_NODES = 2
# TEST_REDIS=cluster: the shared local cluster's nodes run over a Redis Cluster (3 primaries,
# 3 replicas) instead of one Redis; CI runs the API and concurrency suites both ways.
REDIS_CLUSTER = os.environ.get("TEST_REDIS", "").strip().lower() == "cluster"

_shared: Cluster | None = None
_lock = threading.Lock()


def local_cluster() -> Cluster:
    """The shared local cluster; skips the calling test in external mode."""
    global _shared
    if EXTERNAL:
        raise unittest.SkipTest("needs a local cluster; API_URL/GRPC_TARGET point elsewhere")
    with _lock:
        if _shared is None:
            _shared = Cluster(rest=2, grpc=GRPC_NODES, redis_cluster=REDIS_CLUSTER).start()
    return _shared


def default_room() -> None:
    """Skip the calling test where it would change a deployment's default room."""
    if not USE_DEFAULT_ROOM:
        raise unittest.SkipTest("changes the default room of the deployment under test; "
                                "set TEST_USE_DEFAULT_ROOM=1 to run it there")


EXTERNAL_WAIT = 60.0  # seconds an external deployment gets to answer before tests fail
_ready: set[str] = set()


def _wait_external(target: str, probe) -> None:
    """Give a deployment that is still starting (compose's test-runner may start first) a
    minute; after that, the tests fail on their first request as usual."""
    if target in _ready:
        return
    deadline = time.monotonic() + EXTERNAL_WAIT
    while time.monotonic() < deadline:
        try:
            if probe():
                break
        except Exception:
            pass
        time.sleep(0.5)
    _ready.add(target)


def _rest_ready() -> bool:
    import urllib.request

    with urllib.request.urlopen(API_URL + "/readyz", timeout=2) as reply:
        return reply.status == 200


def _grpc_ready() -> bool:
    import grpc

    with grpc.insecure_channel(GRPC_TARGET) as channel:
        grpc.channel_ready_future(channel).result(timeout=2)
    return True


def api_url() -> str:
    if API_URL:
        _wait_external(API_URL, _rest_ready)
        return API_URL
    if GRPC_TARGET:
        raise unittest.SkipTest("API_URL is not set (testing an external gRPC deployment)")
    return local_cluster().api_url


def grpc_target() -> str:
    if GRPC_TARGET:
        _wait_external(GRPC_TARGET, _grpc_ready)
        return GRPC_TARGET
    if API_URL:
        raise unittest.SkipTest("GRPC_TARGET is not set (testing an external REST deployment)")
    return local_cluster().grpc_target


def grpc_channel(target: str | None = None):
    """A round-robin, health-checking channel over every node of the target, as the
    command-line client makes it."""
    from grpc_svc.client import channel

    return channel(target or grpc_target())


def admin_metadata(token: str | None = None) -> tuple:
    token = ADMIN_TOKEN if token is None else token
    return (("authorization", f"Bearer {token}"),) if token else ()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin_headers(token: str | None = None) -> dict:
    token = ADMIN_TOKEN if token is None else token
    return {"Authorization": f"Bearer {token}"} if token else {}


class Reply(NamedTuple):
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def detail(self) -> str:
        return self.json()["detail"]


class Http:
    """A keep-alive HTTP/1.1 client, one connection per thread."""

    IDLE = 20.0  # reconnect rather than reuse a connection idle this long

    def __init__(self, base_url: str, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, for close()

    def _connection(self) -> http.client.HTTPConnection:
        local = self._local
        conn = getattr(local, "conn", None)
        if (conn is None or conn not in self._open  # closed by close() from another thread
                or time.monotonic() - local.used > self.IDLE):
            self.close_thread()
            conn = local.conn = http.client.HTTPConnection(self.host, self.port,
                                                           timeout=self.timeout)
            with self._lock:
                self._open.add(conn)
        local.used = time.monotonic()
        return conn

    def close_thread(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._open.discard(conn)

    def close(self) -> None:
        """Close every thread's connection (call it once the threads that share this
        client are done with it)."""
        self._local.conn = None
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                raw: bytes | None = None) -> Reply:
        headers = dict(headers or {})
        if body is not None:
            raw = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=raw, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except Exception:
            self.close_thread()
            raise
        if response.will_close:
            self.close_thread()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)


class EventStream:
    """A Server-Sent Events client: ``next()`` returns the next event as
    ``{"event", "id", "data"}`` (data parsed as JSON), or ``{"comment": text}``."""

    def __init__(self, base_url: str, path: str, last_event_id: int | None = None,
                 timeout: float = 5.0, headers: dict | None = None):
        parts = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        headers = {"Accept": "text/event-stream", **(headers or {})}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.status = self.response.status

    def next(self, timeout: float = 5.0) -> dict:
        self.conn.sock.settimeout(timeout)
        frame: dict = {}
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode().rstrip("\n")
            if not line:
                if frame:
                    return frame
                continue
            if line.startswith(":"):
                return {"comment": line[1:].strip()}
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                frame["data"] = json.loads(value)
            elif name in ("event", "id", "retry"):
                frame[name] = value

    def next_event(self, timeout: float = 5.0) -> dict:
        """The next real event, skipping comments and the retry hint."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(0.05, deadline - time.monotonic()))
            if "event" in frame:
                return frame

    def close(self) -> None:
        self.conn.close()


def track(track_id, title: str = "Song Title", artist: str = "Artist Name",
          duration: int = 200) -> dict:
    return {"id": track_id, "title": title, "artist": artist, "duration": duration}
