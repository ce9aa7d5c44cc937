"""Operating it (CONTRACT §9): Prometheus metrics that move with traffic, gRPC server
reflection, request ids on every answer and in the logs, JSON logs without secrets.

The metrics and log tests start a cluster of their own (1 REST node, 1 gRPC node, nginx,
JSON logs at INFO); the request-id and reflection tests also run against a deployment
(API_URL, GRPC_TARGET), in rooms of their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from grpc_svc import SERVICE
from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .cluster import ROOT, Cluster, free_port
from .support import (
    EXTERNAL,
    EventStream,
    Http,
    api_url,
    grpc_target,
    track,
    unique,
)

TIMEOUT = 5
TOKEN = "s3cret-" + "9" * 24  # the cluster's ADMIN_TOKEN: never in a log
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
cluster: Cluster | None = None


def setUpModule() -> None:
    global cluster
    if EXTERNAL:
        return  # the classes that need the cluster skip themselves
    cluster = Cluster(rest=1, grpc=1, env={"LOG_FORMAT": "json", "LOG_LEVEL": "info",
                                           "ADMIN_TOKEN": TOKEN}).start()


def tearDownModule() -> None:
    if cluster is not None:
        cluster.stop()


def own_cluster() -> Cluster:
    if cluster is None:
        raise unittest.SkipTest("starts and breaks servers of its own")
    return cluster


# -- the Prometheus text format, as a scraper reads it -------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == name and wanted <= pairs)


def scrape(url: str) -> tuple[Samples, str]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
        assert reply.status == 200
        content_type = reply.headers["Content-Type"]
        text = reply.read().decode()
    assert content_type.startswith("text/plain"), content_type
    return parse(text), text


def rest_metrics(c: Cluster) -> tuple[Samples, str]:
    return scrape(f"{c.rest_urls[0]}/metrics")


def grpc_metrics(c: Cluster) -> tuple[Samples, str]:
    return scrape(f"http://127.0.0.1:{c.grpc_metrics_ports[0]}/metrics")


def eventually(check, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


class Metrics(unittest.TestCase):
    def setUp(self) -> None:
        self.cluster = own_cluster()
        self.node = Http(self.cluster.rest_urls[0])
        self.addCleanup(self.node.close)
        self.channel = grpc.insecure_channel(self.cluster.grpc_targets[0])
        self.addCleanup(self.channel.close)
        self.stub = pb_grpc.QueueServiceStub(self.channel)
        self.room = unique("ops")

    def test_rest_requests_by_route_template_method_and_status(self):
        before, _ = rest_metrics(self.cluster)
        for i in range(3):
            reply = self.node.post(f"/rooms/{self.room}/add_track", track(f"m-{i}"))
            self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(self.node.get(f"/rooms/{self.room}/metadata/none-such").status, 404)
        self.assertEqual(self.node.get(f"/{self.room}/no/such/path").status, 404)
        after, text = rest_metrics(self.cluster)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        add = {"route": "/rooms/{room}/add_track", "method": "POST"}
        self.assertEqual(moved("mq_http_requests_total", **add, status="200"), 3)
        self.assertEqual(moved("mq_http_requests_total", route="/rooms/{room}/metadata/{track_id}",
                               method="GET", status="404"), 1)
        self.assertEqual(moved("mq_http_requests_total", route="unmatched", status="404"), 1)
        self.assertEqual(moved("mq_http_request_duration_seconds_count", **add), 3)
        self.assertEqual(moved("mq_http_request_duration_seconds_bucket", **add, le="+Inf"), 3)
        self.assertGreater(moved("mq_http_request_duration_seconds_sum", **add), 0)
        self.assertGreaterEqual(moved("mq_redis_round_trips_total"), 4)
        self.assertGreaterEqual(moved("mq_redis_round_trip_seconds_count"), 4)
        self.assertEqual(value(after, "mq_node_info", node=self.cluster.rest[0].name,
                               door="rest"), 1)
        # bounded labels: no room name, no track id, no raw path
        self.assertNotIn(self.room, text)
        self.assertNotIn("m-1", text)
        self.assertNotIn("none-such", text)

    def test_grpc_calls_by_method_and_code_on_the_metrics_port(self):
        before, _ = grpc_metrics(self.cluster)
        for i in range(2):
            self.stub.AddTrack(pb.Track(id=f"g-{i}", title="T", artist="A", room=self.room),
                               timeout=TIMEOUT)
        with self.assertRaises(grpc.RpcError):
            self.stub.GetMetadata(pb.TrackId(id="none-such", room=self.room), timeout=TIMEOUT)
        after, text = grpc_metrics(self.cluster)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(moved("mq_grpc_calls_total", method="AddTrack", code="OK"), 2)
        self.assertEqual(moved("mq_grpc_calls_total", method="GetMetadata", code="NOT_FOUND"), 1)
        self.assertEqual(moved("mq_grpc_call_duration_seconds_count", method="AddTrack"), 2)
        self.assertGreaterEqual(moved("mq_redis_round_trips_total"), 3)
        self.assertEqual(value(after, "mq_node_info", door="grpc"), 1)
        self.assertNotIn(self.room, text)

    def test_open_streams_and_the_events_sent(self):
        c = self.cluster
        before, _ = rest_metrics(c)
        stream = EventStream(c.rest_urls[0], f"/rooms/{self.room}/events")
        self.addCleanup(stream.close)
        self.assertEqual(stream.next_event()["event"], "snapshot")
        self.assertEqual(value(rest_metrics(c)[0], "mq_open_streams", kind="sse"), 1)
        self.node.post(f"/rooms/{self.room}/add_track", track("s-1"))
        self.assertEqual(stream.next_event()["event"], "add")
        after, _ = rest_metrics(c)
        self.assertEqual(value(after, "mq_stream_events_total")
                         - value(before, "mq_stream_events_total"), 1)
        self.assertEqual(value(after, "mq_stream_snapshots_total")
                         - value(before, "mq_stream_snapshots_total"), 1)
        stream.close()
        eventually(lambda: value(rest_metrics(c)[0], "mq_open_streams", kind="sse") == 0,
                   what="the SSE stream to be counted closed")

        before, _ = grpc_metrics(c)
        watch = self.stub.Watch(pb.Empty(room=self.room), timeout=30)
        self.addCleanup(watch.cancel)
        next(watch)  # the snapshot
        self.assertEqual(value(grpc_metrics(c)[0], "mq_open_streams", kind="watch"), 1)
        self.stub.AddTrack(pb.Track(id="w-1", title="T", artist="A", room=self.room),
                           timeout=TIMEOUT)
        next(watch)
        after, _ = grpc_metrics(c)
        self.assertEqual(value(after, "mq_stream_events_total")
                         - value(before, "mq_stream_events_total"), 1)
        watch.cancel()
        eventually(lambda: value(grpc_metrics(c)[0], "mq_open_streams", kind="watch") == 0,
                   what="the Watch stream to be counted closed")
        eventually(lambda: value(grpc_metrics(c)[0], "mq_grpc_calls_total", method="Watch",
                                 code="CANCELLED") == 1, what="the Watch call to be counted")

    def test_auto_advances(self):
        c = self.cluster

        def advances() -> float:
            return (value(rest_metrics(c)[0], "mq_autoplay_advances_total")
                    + value(grpc_metrics(c)[0], "mq_autoplay_advances_total"))

        before = advances()
        for i in range(2):
            self.node.post(f"/rooms/{self.room}/add_track", track(f"a-{i}", duration=1))
        reply = self.node.request("PATCH", f"/rooms/{self.room}/settings", {"autoplay": True},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(reply.status, 200, reply.body)
        eventually(lambda: len(self.node.get(f"/rooms/{self.room}/history").json()) >= 2,
                   timeout=8, what="two tracks played by themselves")
        self.assertGreaterEqual(advances() - before, 2)


def redis_command(port: int, *args: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(f"*{len(args)}\r\n".encode()
                     + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args))
        return conn.recv(1024)


class RedisTrouble(unittest.TestCase):
    """Runs on the module's cluster and leaves its Redis running again (empty)."""

    def test_timeouts_errors_and_reconnects_are_counted(self):
        c = own_cluster()
        node = Http(c.rest_urls[0])
        self.addCleanup(node.close)
        room = unique("ops")
        before, _ = rest_metrics(c)
        self.assertEqual(redis_command(c.redis_port, "CLIENT", "PAUSE", "1500", "ALL"), b"+OK\r\n")
        self.assertEqual(node.post(f"/rooms/{room}/add_track", track("r-1")).status, 503)
        time.sleep(1.6)
        c.redis.kill()
        self.assertEqual(node.post(f"/rooms/{room}/add_track", track("r-2")).status, 503)
        c.start_redis()
        eventually(lambda: node.get("/readyz").status == 200, timeout=10, what="readyz")
        self.assertEqual(node.post(f"/rooms/{room}/add_track", track("r-3")).status, 200)
        after, _ = rest_metrics(c)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertGreaterEqual(moved("mq_redis_errors_total", kind="timeout"), 1)
        self.assertGreaterEqual(moved("mq_redis_errors_total", kind="connection"), 1)
        self.assertGreaterEqual(moved("mq_redis_reconnects_total", connection="commands"), 1)
        self.assertEqual(moved("mq_http_requests_total", route="/rooms/{room}/add_track",
                               status="503"), 2)


class PublicDoor(unittest.TestCase):
    """Through the load balancer (or API_URL): ids on every answer, no /metrics."""

    def setUp(self) -> None:
        self.http = Http(api_url())
        self.addCleanup(self.http.close)
        self.room = unique("ops")

    def test_the_load_balancer_does_not_serve_metrics(self):
        reply = self.http.get("/metrics")
        self.assertEqual(reply.status, 404)
        self.assertEqual(reply.headers["x-node-id"], "nginx")
        self.assertNotIn("mq_", reply.body.decode())

    def test_every_answer_carries_a_request_id(self):
        seen = set()
        for path in (f"/rooms/{self.room}/queue", f"/rooms/{self.room}/metadata/x",
                     "/no/such/path", "/metrics", "/healthz"):
            with self.subTest(path=path):
                reply = self.http.get(path)
                request_id = reply.headers.get("x-request-id", "")
                self.assertRegex(request_id, HEX_ID)
                seen.add(request_id)
        self.assertEqual(len(seen), 5, "a new id for every request")

    def test_a_sane_client_id_is_kept_and_an_odd_one_replaced(self):
        mine = "trace-" + unique("id") + ".1:2"
        reply = self.http.get(f"/rooms/{self.room}/queue", headers={"X-Request-Id": mine})
        self.assertEqual(reply.headers["x-request-id"], mine)
        for odd in ("has space", "x" * 200, "quote\"d"):
            with self.subTest(odd=odd):
                reply = self.http.get(f"/rooms/{self.room}/queue", headers={"X-Request-Id": odd})
                self.assertRegex(reply.headers["x-request-id"], HEX_ID)

    def test_grpc_answers_carry_a_request_id(self):
        with grpc.insecure_channel(grpc_target()) as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            _, call = stub.GetQueue.with_call(pb.Empty(room=self.room), timeout=TIMEOUT)
            self.assertRegex(dict(call.initial_metadata())["x-request-id"], HEX_ID)
            _, call = stub.GetQueue.with_call(pb.Empty(room=self.room), timeout=TIMEOUT,
                                              metadata=(("x-request-id", "mine-42"),))
            self.assertEqual(dict(call.initial_metadata())["x-request-id"], "mine-42")
            with self.assertRaises(grpc.RpcError) as caught:
                stub.GetMetadata(pb.TrackId(id="none", room=self.room), timeout=TIMEOUT)
            self.assertRegex(dict(caught.exception.initial_metadata())["x-request-id"], HEX_ID)


class Reflection(unittest.TestCase):
    def test_reflection_and_health_name_the_node_and_the_call_like_every_call(self):
        with grpc.insecure_channel(grpc_target()) as channel:
            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                timeout=TIMEOUT, metadata=(("x-request-id", "refl-1"),))
            self.assertTrue(next(answers).list_services_response.service)
            head = dict(answers.initial_metadata())
            self.assertEqual(head.get("x-request-id"), "refl-1", head)
            self.assertTrue(head.get("x-node-id"), head)
            answers.cancel()
            _, call = health_pb2_grpc.HealthStub(channel).Check.with_call(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT,
                metadata=(("x-request-id", "health-1"),))
            head = dict(call.initial_metadata())
            self.assertEqual(head.get("x-request-id"), "health-1", head)
            self.assertTrue(head.get("x-node-id"), head)

    def test_the_service_is_listed_described_and_called_without_the_proto(self):
        with grpc.insecure_channel(grpc_target()) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            services = set(database.get_services())
            self.assertIn(SERVICE, services)
            self.assertIn("grpc.health.v1.Health", services)
            pool = descriptor_pool.DescriptorPool(database)
            service = pool.FindServiceByName(SERVICE)
            add = service.methods_by_name["AddTrack"]
            self.assertEqual(add.input_type.full_name, "queue.Track")
            self.assertLessEqual({"id", "title", "artist", "duration", "room"},
                                 set(add.input_type.fields_by_name))
            self.assertTrue(service.methods_by_name["Watch"].server_streaming)
            # a call built from the served descriptors alone
            request_class = message_factory.GetMessageClass(add.input_type)
            reply_class = message_factory.GetMessageClass(add.output_type)
            call = channel.unary_unary(f"/{SERVICE}/AddTrack",
                                       request_serializer=request_class.SerializeToString,
                                       response_deserializer=reply_class.FromString)
            room = unique("reflect")
            reply = call(request_class(id="r-1", title="T", artist="A", room=room),
                         timeout=TIMEOUT)
            self.assertEqual(reply.track.id, "r-1")


class Logs(unittest.TestCase):
    BASE = {"time", "level", "node", "request_id", "logger", "message"}

    def setUp(self) -> None:
        self.cluster = own_cluster()
        self.room = unique("ops")

    def lines(self, process) -> list[dict]:
        out = []
        for line in process.log.read_text(errors="replace").splitlines():
            if line.strip():
                out.append(json.loads(line))  # every line one JSON object
        return out

    def access_line(self, process, request_id: str) -> dict:
        found: list[dict] = []

        def logged() -> bool:
            found[:] = [r for r in self.lines(process) if r["request_id"] == request_id
                        and r["logger"] == "access"]
            return bool(found)

        eventually(logged, what=f"{process.name} to log request {request_id}")
        self.assertEqual(len(found), 1)
        return found[0]

    def test_rest_lines_are_json_with_the_request_id_nginx_gave(self):
        c = self.cluster
        http = Http(c.api_url)  # through nginx: its $request_id reaches the node
        self.addCleanup(http.close)
        reply = http.get(f"/rooms/{self.room}/queue")
        request_id = reply.headers["x-request-id"]
        self.assertRegex(request_id, HEX_ID)
        record = self.access_line(c.rest[0], request_id)
        self.assertLessEqual(self.BASE, set(record))
        self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((record["level"], record["node"]), ("info", c.rest[0].name))
        self.assertEqual((record["method"], record["route"], record["status"]),
                         ("GET", "/rooms/{room}/queue", 200))
        self.assertIsInstance(record["duration_ms"], float)
        for other in self.lines(c.rest[0]):
            self.assertLessEqual(self.BASE, set(other))

    def test_grpc_lines_are_json_with_the_request_id(self):
        c = self.cluster
        request_id = unique("grpc")
        with grpc.insecure_channel(c.grpc_targets[0]) as channel:
            pb_grpc.QueueServiceStub(channel).AddTrack(
                pb.Track(id="l-1", title="T", artist="A", room=self.room), timeout=TIMEOUT,
                metadata=(("x-request-id", request_id),))
        record = self.access_line(c.grpc[0], request_id)
        self.assertEqual((record["method"], record["route"], record["status"]),
                         ("grpc", f"/{SERVICE}/AddTrack", "OK"))
        self.assertEqual(record["node"], c.grpc[0].name)

    def test_no_token_reaches_a_log(self):
        c = self.cluster
        wrong = "wr0ng-" + "7" * 24
        http = Http(c.api_url)
        self.addCleanup(http.close)
        for token in (TOKEN, wrong):
            http.post(f"/rooms/{self.room}/clear", headers={"Authorization": f"Bearer {token}"})
            http.post(f"/rooms/{self.room}/clear?token={token}&access_token={token}")
        with grpc.insecure_channel(c.grpc_targets[0]) as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            for token in (TOKEN, wrong):
                try:
                    stub.Clear(pb.Empty(room=self.room), timeout=TIMEOUT,
                               metadata=(("authorization", f"Bearer {token}"),))
                except grpc.RpcError:
                    pass
        time.sleep(0.3)
        for process in (*c.rest, *c.grpc, c.nginx):
            text = process.log.read_text(errors="replace")
            self.assertNotIn(TOKEN, text, process.name)
            self.assertNotIn(wrong, text, process.name)
        self.assertTrue(self.lines(c.rest[0]), "the node logs at all")


class Secrets(unittest.TestCase):
    def test_a_bad_redis_url_is_shown_without_its_password(self):
        c = own_cluster()
        for module in ("rest", "grpc_svc.server"):
            with self.subTest(module=module):
                env = c.node_env(REDIS_URL="redis://:hunter2-pw@127.0.0.1:99999/0",
                                 PORT=str(free_port()), GRPC_PORT=str(free_port()))
                result = subprocess.run([sys.executable, "-m", module], env=env, cwd=ROOT,
                                        capture_output=True, text=True, timeout=30)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn("REDIS_URL", result.stderr)
                self.assertIn(":***@", result.stderr)
                self.assertNotIn("hunter2-pw", result.stderr)


class MetricsPort(unittest.TestCase):
    def test_a_port_in_use_stops_the_node_with_a_clear_message(self):
        c = own_cluster()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = c.node_env(GRPC_PORT=str(free_port()), METRICS_PORT=str(port),
                             NODE_ID="grpc-taken")
            result = subprocess.run([sys.executable, "-m", "grpc_svc.server"], env=env,
                                    capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"METRICS_PORT={port}", result.stderr)



class QuickStart(unittest.TestCase):
    """``./dev up`` (here with the packages already installed, so it installs nothing)
    starts the whole system and says where to point a browser, curl and the CLI."""

    def test_dev_up_serves_and_says_where(self):
        own_cluster()
        port = free_port()
        bin_dir = os.path.dirname(sys.executable)
        env = {**os.environ, "PORT": str(port), "VIRTUAL_ENV": sys.prefix,
               "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([str(ROOT / "dev"), "up"], cwd=ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.wait, 20)
        self.addCleanup(os.killpg, process.pid, signal.SIGINT)
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        text = "".join(lines)
        self.assertIn("Ctrl-C stops everything", text)
        base = f"http://127.0.0.1:{port}"
        self.assertIn(f"Browser:  {base}/", text)
        self.assertIn(f"curl:     curl {base}/queue", text)
        self.assertRegex(text, r"CLI:      GRPC_TARGET=\S+ \S*python -m grpc_svc.client queue")
        self.assertEqual(len(re.findall(r"^rest-\d", text, re.M)), 3)
        self.assertEqual(len(re.findall(r"^grpc-\d", text, re.M)), 2)
        http = Http(base)
        self.addCleanup(http.close)
        room = unique("quick")
        self.assertEqual(http.post(f"/rooms/{room}/add_track", track("q-1")).status, 200)
        target = re.search(r"GRPC_TARGET=(\S+)", text).group(1)
        result = subprocess.run([sys.executable, "-m", "grpc_svc.client", "--room", room,
                                 "queue"], env={**env, "GRPC_TARGET": target}, cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("q-1", result.stdout)


if __name__ == "__main__":
    unittest.main()
