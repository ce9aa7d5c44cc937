"""``python -m rest``: one uvicorn process serving the REST node on $PORT."""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import time
from typing import Any, cast

import orjson
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared import logs, store
from shared.config import Settings

from .app import create_app
from .middleware import Drain

DRAIN_SECONDS = 3.0
GRACE_SECONDS = 8


class _CoalescingTransport:
    """A transport whose writes within one event-loop turn go out in one syscall: uvicorn
    writes a response's head and body separately, and sockets writes were a fifth of a
    node's CPU in a profile."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop):
        self._transport = cast(asyncio.Transport, transport)
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a coalescing transport, answering requests it
    cannot parse (unknown methods, bytes that HTTP forbids) in JSON like everything else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport,
                                     _CoalescingTransport(transport, self.loop)))

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps({"detail": f"malformed HTTP request: {msg}"})
        self.transport.write(b"".join((
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n",
            b"content-length: %d\r\nconnection: close\r\n" % len(body),
            b"x-request-id: %s\r\n" % logs.new_id().encode(),
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"\r\n", body)))
        self.transport.close()


class Server(uvicorn.Server):
    """uvicorn's server with a drain step before its own graceful shutdown.

    On SIGTERM it stops accepting connections (the load balancer gets "connection refused"
    and, safely, tries another node), then for DRAIN_SECONDS keeps answering on the
    connections it has, each response with ``Connection: close`` (and live event streams
    end, so their clients reconnect elsewhere). Closing a keep-alive
    connection under the load balancer's feet instead could lose a POST that was already on
    its way, which nginx must not resend. Then uvicorn's usual shutdown: in-flight requests
    finish (up to GRACE_SECONDS), idle connections close.
    """

    def __init__(self, config: uvicorn.Config, drain: Drain):
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self.drain.start()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


def config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """How a REST node serves (the benchmark's floor is served the same way)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HttpProtocol,
        lifespan="on",
        access_log=False,  # rest.middleware.Observe writes the access lines
        server_header=False,
        log_config=None,  # every logger goes to shared.logs's handler
        log_level=settings.log_level,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # Longer than nginx's upstream keep-alive (60 s), so nginx always closes an idle
        # connection first and never sends on one that uvicorn is closing.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )


def tune_gc() -> None:
    """Requests allocate many short-lived objects; collecting the youngest generation every
    700 allocations cost a fifth of the throughput and most of the tail latency.
    Objects that survive start-up are frozen out of collections altogether."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main() -> int:
    settings = Settings.from_env()
    logs.setup(settings.log_level, settings.log_format, settings.node_id)
    settings = asyncio.run(store.check(settings))
    app = create_app(settings)
    tune_gc()
    Server(config(app, settings), app.state.drain).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
