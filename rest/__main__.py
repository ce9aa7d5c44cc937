"""``python -m rest``: one uvicorn process serving the REST node on $PORT."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import uvicorn

from .http import Lifecycle

DRAIN_SECONDS = 3.0
GRACE_SECONDS = 8.0


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

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        Lifecycle.drain()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


def main() -> int:
    from .app import settings

    config = uvicorn.Config(
        "rest.app:app",
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        # Longer than nginx's upstream keep-alive (60 s), so nginx always closes an idle
        # connection first and never sends on one that uvicorn is closing.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    Server(config).run()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
