"""The gRPC node: ``python -m grpc_svc.server`` (env GRPC_PORT, REDIS_URL, NODE_ID, ...).

A ``grpc.aio`` server on uvloop over the node's pipelined Redis connection; it also
answers the standard ``grpc.health.v1.Health`` service and server reflection (grpcurl,
grpcui and Postman list and call the service without the proto), puts ``x-node-id`` in
the initial metadata of every call, and serves its Prometheus metrics over HTTP on
METRICS_PORT.

On SIGTERM a node first drains: its health turns NOT_SERVING while it keeps serving, so
clients that watch health (ours do: ``grpc_svc.client.channel``) move their calls
to other nodes; then it stops taking calls and lets the ones in flight finish. Stopping
straight away would fail calls that had reached the node but not yet its handlers with
CANCELLED (grpc/grpc#41785), which a client cannot tell from "maybe applied". The whole
shutdown takes at most DRAIN_SECONDS + GRACE_SECONDS = 5 s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from shared import logs, metrics, store
from shared.config import Settings
from shared.live import Live
from shared.playback import Playback, Schedule
from shared.queue import Queue
from shared.rooms import Rooms
from shared.stats import NodeStats

from . import SERVICE
from .service import QueueServicer, handlers, request_id_of

log = logging.getLogger("grpc_svc")

DRAIN_SECONDS = 1.0
GRACE_SECONDS = 4.0
OPTIONS = [
    # Clients reconnect (and so re-resolve DNS and rebalance over new replicas) at least
    # every 30 s; calls in flight on the old connection are left to finish.
    ("grpc.max_connection_age_ms", 30_000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 1 << 20),
]


def answered_by(node_id: str, context: grpc.aio.ServicerContext) -> tuple:
    """The initial metadata of every call: the node that answers and the call's id."""
    return ("x-node-id", node_id), ("x-request-id", request_id_of(context))


class Health(health.aio.HealthServicer):  # type: ignore[name-defined]
    """The standard health service, naming the node that answers like every other call."""

    def __init__(self, node_id: str):
        super().__init__()
        self.node_id = node_id

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.send_initial_metadata(answered_by(self.node_id, context))
        return await super().Check(request, context)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.send_initial_metadata(answered_by(self.node_id, context))
        await super().Watch(request, context)


class Reflection(reflection.aio.ReflectionServicer):  # type: ignore[name-defined]
    """Server reflection, naming the node that answers like every other call."""

    def __init__(self, names: tuple[str, ...], node_id: str):
        super().__init__(names)
        self.node_id = node_id

    async def ServerReflectionInfo(self, request_iterator: Any,
                                   context: grpc.aio.ServicerContext) -> Any:
        await context.send_initial_metadata(answered_by(self.node_id, context))
        async for answer in super().ServerReflectionInfo(request_iterator, context):
            yield answer


class Node:
    """A gRPC node bound to an address: ``start()``, ``stop()``; ``port`` is the bound one."""

    def __init__(self, settings: Settings, address: str):
        self.stats = NodeStats()
        self.redis = store.connect(settings, self.stats.store)
        queue = Queue(self.redis, settings)
        self.live = queue.live = Live(self.redis, queue.placed_snapshot, self.stats.live)
        playback = Playback(queue, self.redis, settings)
        self.schedule = Schedule(playback, settings.node_id, on_advance=self.stats.advanced)
        self.server = grpc.aio.server(options=OPTIONS)
        servicer = self.servicer = QueueServicer(queue, self.live, playback,
                                                 Rooms(self.redis, settings), settings)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            SERVICE, handlers(servicer, settings.node_id, self.stats.requests)),))
        self.health = Health(settings.node_id)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(Reflection(
            (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), settings.node_id),
            self.server)
        self.port = self.server.add_insecure_port(address)
        self.registry = metrics.registry(self.stats, metrics.GRPC, settings.node_id)
        self.metrics_at = (settings.host, settings.metrics_port)
        self.metrics: metrics.Listener | None = None
        self.upgrading: asyncio.Task[bool] | None = None  # the catalogue's (Catalogue.upgrade)

    async def start(self) -> None:
        host, port = self.metrics_at
        if port:
            try:
                self.metrics = metrics.Listener(self.registry, host, port)
            except OSError as exc:
                raise SystemExit(f"METRICS_PORT={port}: cannot listen there ({exc})") from None
        await store.prepare(self.redis)
        self.upgrading = self.servicer.catalogue.upgrade_soon()
        self.servicer.catalogue.follow()
        for service in ("", SERVICE):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        self.schedule.start()

    async def stop(self, drain: float = DRAIN_SECONDS, grace: float = GRACE_SECONDS) -> None:
        """Drain (NOT_SERVING while still serving), let calls in flight finish, close."""
        await self.health.enter_graceful_shutdown()
        await self.schedule.close()
        if self.upgrading is not None:
            self.upgrading.cancel()
        self.live.end_all()
        await asyncio.sleep(drain)
        await self.server.stop(grace)
        await self.live.close()
        await self.servicer.catalogue.close()
        await self.redis.aclose()
        if self.metrics is not None:
            self.metrics.close()


async def serve(settings: Settings) -> None:
    node = Node(settings, f"{settings.host}:{settings.grpc_port}")
    await node.start()
    log.info("gRPC node %s serving on port %d%s", settings.node_id, node.port,
             f", metrics on port {node.metrics.port}" if node.metrics else "")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining for %.1f s, then letting calls in flight finish", DRAIN_SECONDS)
    await node.stop()


def main() -> int:
    import uvloop

    # As in the REST node: fewer young-generation collections, start-up objects frozen.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    settings = Settings.from_env()
    logs.setup(settings.log_level, settings.log_format, settings.node_id)
    settings = asyncio.run(store.check(settings))
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
