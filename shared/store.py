"""Runners: execute a ``queue.Command`` against Redis in one round trip.

The asyncio runner (REST, grpc.aio) uses one pipelined connection per node
(``shared.redis_pipe``); the sync runner (the thread-pool gRPC server) uses redis-py's
blocking pool. Redis trouble (unreachable, timed out, loading, out of memory) becomes
``StoreUnavailable`` within the configured timeout, never a hang. Nothing is retried
automatically: a write whose reply was lost may have been applied, so a retry is the
client's decision (and safe with an idempotency key). A broken connection is dropped and
the next call dials again, so a node recovers by itself when Redis is back.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError
from redis.retry import Retry

from .config import Settings
from .errors import StoreUnavailable
from .queue import Command
from .redis_pipe import PipelinedRedis, ReplyError

# Replies that mean "Redis cannot serve right now", not "your request is wrong".
_TRANSIENT = ("LOADING", "BUSY", "OOM", "MISCONF", "READONLY", "MASTERDOWN", "TRYAGAIN",
              "CLUSTERDOWN", "NOREPLICAS")
POOL_SIZE = 64


def _pool_options(settings: Settings) -> dict:
    return dict(decode_responses=True, socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout, max_connections=POOL_SIZE,
                timeout=settings.redis_timeout, health_check_interval=0)


def async_client(settings: Settings) -> PipelinedRedis:
    return PipelinedRedis(settings.redis_url, settings.redis_timeout)


def sync_client(settings: Settings) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, retry=Retry(NoBackoff(), 0), **_pool_options(settings))
    return redis.Redis(connection_pool=pool)


def unavailable(exc: Exception) -> StoreUnavailable | None:
    """The StoreUnavailable that a Redis exception amounts to, or None if it is a bug."""
    if isinstance(exc, TimeoutError):
        return StoreUnavailable("timed out")
    if isinstance(exc, ConnectionError):
        return StoreUnavailable("no connection")
    if isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT):
        return StoreUnavailable(str(exc).split(" ", 1)[0].lower())
    return None


class AsyncRunner:
    def __init__(self, client: PipelinedRedis):
        self.client = client

    async def __call__(self, command: Command):
        execute = self.client.execute
        try:
            if command.script is None:
                raw = await execute(*command.args)
            else:
                try:
                    raw = await execute("EVALSHA", command.script.sha, *command.args)
                except ReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    raw = await execute("EVAL", command.script.source, *command.args)
        except ReplyError as exc:
            if str(exc).startswith(_TRANSIENT):
                raise StoreUnavailable(str(exc).split(" ", 1)[0].lower()) from exc
            raise
        return command.decode(raw)


class SyncRunner:
    def __init__(self, client: redis.Redis):
        self.client = client

    def __call__(self, command: Command):
        execute = self.client.execute_command
        try:
            if command.script is None:
                raw = execute(*command.args)
            else:
                try:
                    raw = execute("EVALSHA", command.script.sha, *command.args)
                except NoScriptError:
                    raw = execute("EVAL", command.script.source, *command.args)
        except (ConnectionError, TimeoutError, ResponseError) as exc:
            raise unavailable(exc) or exc from exc
        return command.decode(raw)
