"""The gRPC node: ``python -m grpc_svc.server`` (env GRPC_PORT, REDIS_URL, NODE_ID, ...).

Two servers run the same methods (``grpc_svc.service``): a ``grpc.aio`` server (the
default, it measured faster; see the README) and a sync thread-pool server
(``GRPC_SERVER=sync``). Both answer the standard ``grpc.health.v1.Health`` service and put
``x-node-id`` in the initial metadata of every call.

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
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shared import errors, store
from shared.config import Settings
from shared.queue import Queue

from . import events
from .service import SERVICE, UNARY, Metadata, QueueMethods, parse, status_of

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


def _serialize(reply) -> bytes:
    """Replies come serialized already (grpc_svc.service assembles them)."""
    return reply if type(reply) is bytes else reply.SerializeToString()


def refuse(context, exc: errors.QueueError) -> bytes:
    """End a call with the error's status. Not ``context.abort()``: that raises inside the
    ``except`` that caught ``exc``, and the exception, its traceback and the handler's frame
    then hold each other in a cycle that only the garbage collector frees, whose pauses
    were most of the tail latency of calls that are refused a lot."""
    context.set_code(status_of(exc))
    context.set_details(exc.detail)
    return b""


def _node_metadata(settings: Settings) -> tuple:
    """x-node-id, for the initial metadata of every call. Handlers send it once the answer
    is ready, not first: a call whose initial metadata reached the client is committed and
    cannot be retried, so a node dying in the middle of a read would fail it for good."""
    return (("x-node-id", settings.node_id),)


class AioHealth(health.aio.HealthServicer):
    """The standard health service, naming the node that answers like every other call."""

    def __init__(self, node: tuple):
        super().__init__()
        self.node = node

    async def Check(self, request, context):
        await context.send_initial_metadata(self.node)
        return await super().Check(request, context)

    async def Watch(self, request, context):
        await context.send_initial_metadata(self.node)
        await super().Watch(request, context)


class SyncHealth(health.HealthServicer):
    """The same for the thread-pool server."""

    def __init__(self, node: tuple):
        super().__init__()
        self.node = node

    def Check(self, request, context):
        context.send_initial_metadata(self.node)
        return super().Check(request, context)

    def Watch(self, request, context, send_response_callback=None):
        context.send_initial_metadata(self.node)
        return super().Watch(request, context, send_response_callback)


# -- grpc.aio ---------------------------------------------------------------------------

def aio_handlers(methods: QueueMethods, run, node: tuple, hub: "events.Hub") -> dict:
    def unary(name: str, message_class):
        method = getattr(methods, name)

        async def handle(raw: bytes, context: grpc.aio.ServicerContext):
            try:
                plan = method(parse(message_class, raw), Metadata.of(context.invocation_metadata()))
                reply = plan.reply(await run(plan.command))
            except errors.QueueError as exc:
                reply = refuse(context, exc)
            await context.send_initial_metadata(node)  # last: see _node_metadata
            return reply

        return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_serialize)

    handlers = {name: unary(name, cls) for name, cls in UNARY.items()}
    handlers["Watch"] = events.aio_watch_handler(methods, run, node, hub)
    return handlers


async def create_aio_server(settings: Settings, address: str):
    """A started-to-be grpc.aio server bound to ``address``: returns (server, port, close),
    where ``close`` releases its Redis connections after the server stopped."""
    client = store.async_client(settings)
    run = store.AsyncRunner(client)
    hub = events.Hub(settings)
    server = grpc.aio.server(options=OPTIONS)
    node = _node_metadata(settings)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, aio_handlers(QueueMethods(settings), run, node, hub)),))
    health_servicer = AioHealth(node)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(address)

    async def close() -> None:
        await health_servicer.enter_graceful_shutdown()
        await hub.close()
        await client.aclose()

    server.health = health_servicer
    return server, port, close


async def serve_aio(settings: Settings) -> None:
    server, port, close = await create_aio_server(settings, f"{settings.host}:{settings.grpc_port}")
    await server.start()
    log.info("grpc.aio node %s serving on port %d", settings.node_id, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining for %.1f s, then letting calls in flight finish", DRAIN_SECONDS)
    await server.health.enter_graceful_shutdown()
    await asyncio.sleep(DRAIN_SECONDS)
    await server.stop(GRACE_SECONDS)
    await close()


# -- sync thread pool -------------------------------------------------------------------

def sync_handlers(methods: QueueMethods, run, node: tuple) -> dict:
    def unary(name: str, message_class):
        method = getattr(methods, name)

        def handle(raw: bytes, context: grpc.ServicerContext):
            try:
                plan = method(parse(message_class, raw), Metadata.of(context.invocation_metadata()))
                reply = plan.reply(run(plan.command))
            except errors.QueueError as exc:
                reply = refuse(context, exc)
            context.send_initial_metadata(node)  # last: see _node_metadata
            return reply

        return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_serialize)

    return {name: unary(name, cls) for name, cls in UNARY.items()}


def create_sync_server(settings: Settings, address: str, workers: int = 32):
    """A thread-pool server bound to ``address``: returns (server, port). It serves the
    unary methods; Watch needs the aio server."""
    run = store.SyncRunner(store.sync_client(settings))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=OPTIONS)
    node = _node_metadata(settings)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, sync_handlers(QueueMethods(settings), run, node)),))
    health_servicer = SyncHealth(node)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    server.health = health_servicer
    return server, server.add_insecure_port(address)


def serve_sync(settings: Settings) -> None:
    server, port = create_sync_server(settings, f"{settings.host}:{settings.grpc_port}")
    server.start()
    log.info("sync node %s serving on port %d", settings.node_id, port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("draining for %.1f s, then letting calls in flight finish", DRAIN_SECONDS)
    server.health.enter_graceful_shutdown()
    time.sleep(DRAIN_SECONDS)
    server.stop(GRACE_SECONDS).wait()


def main() -> int:
    # As in the REST node: fewer young-generation collections, start-up objects frozen.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    settings = Settings.from_env()
    kind = os.environ.get("GRPC_SERVER", "aio").strip().lower()
    if kind == "sync":
        serve_sync(settings)
    elif kind == "aio":
        import uvloop

        uvloop.run(serve_aio(settings))
    else:
        raise SystemExit(f"GRPC_SERVER must be aio or sync, got {kind!r}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
