"""Sending each case and judging its answer: a list of problems as (kind, summary,
description); ``FuzzRun`` sends every case on a few threads within a time budget."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time

import grpc
from google.protobuf.message import DecodeError

from ..support import Http, grpc_channel
from .grpc_cases import GrpcCase
from .rest_cases import RawCase, RestCase
from .values import BUDGET, SEED, SERVICE, THREADS, TIMEOUT, clip, names_problem

# -- running and judging -----------------------------------------------------------------

def json_detail(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    detail = data.get("detail") if isinstance(data, dict) else None
    return detail if isinstance(detail, str) and detail.strip() else None


def judge_rest(case, status: int, headers: dict, body: bytes, head: bool = False) -> list:
    """Problems as (kind, summary, description); ``head``: the answer has no body."""
    ctype = headers.get("content-type", "")
    seen = f"{case} -> {status} {ctype!r} {clip(body, 300)}"
    where = "nginx" if case.node is None else "node"
    summary = f"REST {case.label} via {where} -> {status} {ctype.split(';')[0] or 'no type'}"
    if status >= 500:
        return [("server error", summary, seen)]
    problems = []
    if case.bad and status < 300:  # (a redirect, say to drop a trailing slash, is no answer)
        problems.append(("accepted", summary, seen))
    if status >= 400 and not head:
        detail = json_detail(body) if ctype.startswith("application/json") else None
        if detail is None:
            problems.append(("error without a JSON detail", summary, seen))
        elif status in (400, 422) and case.names:
            # nginx's own refusals (X-Node-Id: nginx) only know the request was bad HTTP
            by_nginx = headers.get("x-node-id", "nginx") == "nginx"
            names = case.names | {"HTTP"} if by_nginx else case.names
            if not names_problem(detail, names):
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
                problems.append(("success that does not parse", summary, f"{seen} {clip(reply)}"))
        return problems
    if not details.strip():
        problems.append(("error without details", summary, seen))
    elif case.bad and not case.huge and case.known:
        if code != grpc.StatusCode.INVALID_ARGUMENT:
            problems.append(("wrong status for a broken rule", summary, seen))
        elif case.names and not names_problem(details, case.names):
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

