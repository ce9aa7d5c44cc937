"""The REST node: a bare Starlette app over the shared queue core.

``create_app(settings)`` builds it; the lifespan opens the node's Redis connection and its
live rooms and the schedule that moves rooms with autoplay on (``shared.playback``), and
hands them, with the settings, to every request as state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from shared import errors, metrics, store
from shared.catalogue import Catalogue
from shared.config import Settings
from shared.live import Live
from shared.playback import Playback, Schedule
from shared.queue import Queue
from shared.rooms import JoinLimit, Rooms
from shared.stats import NodeStats

from .http import http_error, queue_error, server_error
from .middleware import BodyCap, Drain, Draining, NodeId, Observe, RefuseConnect
from .openapi import schema_of
from .routes import ENDPOINTS, Router, routes


def create_app(settings: Settings) -> Starlette:
    drain = Drain()
    stats = NodeStats()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = store.connect(settings, stats.store)
        queue = Queue(redis, settings)
        live = queue.live = Live(redis, queue.placed_snapshot, stats.live)
        playback = Playback(queue, redis, settings)
        schedule = Schedule(playback, settings.node_id, on_advance=stats.advanced)
        drain.callbacks.append(live.end_all)
        catalogue = Catalogue(redis)
        await store.prepare(redis)
        upgrading = catalogue.upgrade_soon()
        catalogue.follow()
        schedule.start()
        try:
            yield {"queue": queue, "redis": redis, "live": live, "settings": settings,
                   "playback": playback, "rooms": Rooms(redis, settings),
                   "join_limit": JoinLimit(settings.guest_joins_per_minute),
                   "catalogue": catalogue}
        finally:
            upgrading.cancel()
            drain.callbacks.remove(live.end_all)
            await schedule.close()
            await live.close()
            await catalogue.close()
            await redis.aclose()

    app = Starlette(
        middleware=[Middleware(Observe, requests=stats.requests),
                    Middleware(NodeId, node_id=settings.node_id),
                    Middleware(Draining, drain=drain), Middleware(RefuseConnect),
                    Middleware(BodyCap)],
        exception_handlers={
            errors.QueueError: queue_error,
            HTTPException: http_error,
            Exception: server_error(settings.node_id),
        },
    )
    app.router = Router(routes(), lifespan=lifespan)
    app.state.drain = drain
    app.state.openapi = orjson.dumps(schema_of(ENDPOINTS))
    app.state.metrics = metrics.registry(stats, metrics.REST, settings.node_id)
    return app
