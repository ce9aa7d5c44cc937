"""``python -m rest``: one uvicorn process serving the REST node on $PORT."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn


def main() -> int:
    from .app import settings

    uvicorn.run(
        "rest.app:app",
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        # Longer than nginx's upstream keep-alive, so nginx always closes first and never
        # sends on a connection that uvicorn is closing.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=8,
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
