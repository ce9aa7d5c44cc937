"""Pure ASGI middleware, one job each: each request's id and record (metrics, access
log), the node's name on every response, closing connections while the node drains, the
body cap, and refusing CONNECT."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import validation
from shared.logs import REQUEST_ID, access, log_access, new_id, sane
from shared.stats import Requests

from .http import BodyTooLarge, error_response

_CLOSE = (b"connection", b"close")


class Drain:
    """The node's stopping state, set by the server (``rest.__main__``) on SIGTERM: from
    then on every response closes its connection, so the load balancer never reuses one
    that is about to go, and the callbacks end live streams (their clients reconnect,
    through the load balancer, elsewhere)."""

    def __init__(self) -> None:
        self.draining = False
        self.callbacks: list[Callable[[], Any]] = []

    def start(self) -> None:
        self.draining = True
        for callback in self.callbacks:
            callback()


METHODS = {m: m for m in ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS")}


class Observe:
    """Each request observed once: its id (``X-Request-Id``: nginx's or a client's sane
    one, else a new one) on its response and in every line logged while serving it, and
    its record when it ends: counted in the node's metrics by route template (never the
    raw path), method and status with its latency, and an access line at INFO.

    One job, one wrapper of ``send``: the id, the status and the clock serve both."""

    def __init__(self, app: ASGIApp, requests: Requests):
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = sane(value.decode("latin-1"))
                break
        if request_id is None:
            request_id = new_id()
        REQUEST_ID.set(request_id)  # the request's own task: no reset needed
        header = (b"x-request-id", request_id.encode())
        status = 500  # unless a response starts: the app raised (ServerErrorMiddleware's)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        requests = self.requests
        requests.in_flight += 1
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            requests.in_flight -= 1
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = "unmatched" if route is None else route.path
            method = METHODS.get(scope["method"], "other")
            requests.observe((template, method, status), seconds)
            if access.isEnabledFor(logging.INFO):
                log_access(method, template, status, seconds)


class NodeId:
    """X-Node-Id on every response."""

    def __init__(self, app: ASGIApp, node_id: str):
        self.app = app
        self.header = (b"x-node-id", node_id.encode("latin-1", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = self.header

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_header)


class Draining:
    """Connection: close on every response while the node drains."""

    def __init__(self, app: ASGIApp, drain: Drain):
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            return await self.app(scope, receive, send)

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), _CLOSE]
            await send(message)

        await self.app(scope, receive, send_closing)


class BodyCap:
    """413 before reading a body whose declared length is over the cap (a body without a
    length is counted as it is read: ``rest.http.json_body``)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if value.isdigit() and int(value) > validation.MAX_BODY:
                        response = error_response(413, BodyTooLarge().detail,
                                                  {"Connection": "close"})
                        return await response(scope, receive, send)
                    break
        await self.app(scope, receive, send)


class RefuseConnect:
    """A node is never a tunnel: CONNECT is answered, and what follows is dropped."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "CONNECT":
            response = error_response(405, "CONNECT is not allowed here", {"Connection": "close"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
