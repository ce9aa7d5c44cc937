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
from redis.exceptions import (BusyLoadingError, ConnectionError, NoScriptError, ResponseError,
                              TimeoutError)
from redis.retry import Retry

from .config import Settings
from .errors import StoreUnavailable
from .queue import Command, Fetch
from .redis_pipe import PipelinedRedis, ReplyError, error, transient

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
    if isinstance(exc, BusyLoadingError):  # a ConnectionError to redis-py
        return StoreUnavailable("loading")
    if isinstance(exc, ConnectionError):
        return StoreUnavailable("no connection")
    if isinstance(exc, ResponseError):
        return transient(exc)
    return None


def _evalsha(command: Command) -> tuple:
    return ("EVALSHA", command.script.sha, *command.args)


def _eval(command: Command) -> tuple:
    return ("EVAL", command.script.source, *command.args)


class AsyncRunner:
    """Runs commands over the node's pipelined connection."""

    def __init__(self, client: PipelinedRedis):
        self.client = client

    async def __call__(self, command: Command):
        result = command.decode(await self._reply(command))
        while type(result) is Fetch:
            result = result.then(await self.client.execute(*result.args))
        return result

    async def _reply(self, command: Command):
        client = self.client
        if command.script is None:
            if command.more:
                return await client.transaction([command.args, *command.more])
            return await client.execute(*command.args)
        if command.more:
            replies = await client.transaction([_evalsha(command), *command.more])
            if type(replies[0]) is ReplyError and str(replies[0]).startswith("NOSCRIPT"):
                replies = await client.transaction([_eval(command), *command.more])
            if type(replies[0]) is ReplyError:
                raise error(replies[0])
            return replies
        try:
            return await client.execute(*_evalsha(command))
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await client.execute(*_eval(command))


class SyncRunner:
    """Runs commands over redis-py's blocking pool (the thread-pool gRPC server)."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def __call__(self, command: Command):
        try:
            result = command.decode(self._reply(command))
            while type(result) is Fetch:
                result = result.then(self.client.execute_command(*result.args))
        except (ConnectionError, TimeoutError, ResponseError) as exc:
            raise unavailable(exc) or exc from exc
        return result

    def _transaction(self, commands: list[tuple]) -> list:
        pipe = self.client.pipeline(transaction=True)
        for args in commands:
            pipe.execute_command(*args)
        return pipe.execute(raise_on_error=False)

    def _reply(self, command: Command):
        if command.script is None:
            if command.more:
                return self._transaction([command.args, *command.more])
            return self.client.execute_command(*command.args)
        if command.more:
            replies = self._transaction([_evalsha(command), *command.more])
            if isinstance(replies[0], NoScriptError):
                replies = self._transaction([_eval(command), *command.more])
            if isinstance(replies[0], Exception):
                raise replies[0]
            return replies
        try:
            return self.client.execute_command(*_evalsha(command))
        except NoScriptError:
            return self.client.execute_command(*_eval(command))
