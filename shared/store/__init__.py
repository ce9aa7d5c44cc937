"""Everything that talks to Redis: the clients (``client``) over pipelined connections
(``pipe``), the node's subscription for live changes (``pubsub``), Redis addresses
(``address``). The domain
(keys, functions, operations) lives one level up and reaches Redis only through these."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import functions
from ..errors import StoreUnavailable
from ..stats import StoreStats
from .address import Address
from .client import Client, Redis
from .cluster import Cluster, ShardedSubscriber
from .pubsub import Restored, Subscriber
from .sentinel import FollowingSubscriber, Sentinel

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("store")


def connect(settings: Settings, stats: StoreStats | None = None) -> Client:
    """The node's client of its Redis, or of its cluster (dialled on first use), which
    loads the function library into a Redis that lacks it; it counts its traffic in
    ``stats`` (``client.stats``)."""
    if settings.redis_cluster:
        seeds = [Address.from_url(f"redis://{seed}") for seed in settings.redis_cluster]
        return Cluster(seeds, settings.redis_timeout, functions.SOURCE,
                       settings.wait_replicas, settings.wait_ms, stats)
    if settings.redis_sentinels:
        sentinels = [Address.from_url(f"redis://{s}") for s in settings.redis_sentinels]
        return Sentinel(sentinels, settings.redis_sentinel_master,
                        Address.from_url(settings.redis_url), settings.redis_timeout,
                        functions.SOURCE, settings.wait_replicas, settings.wait_ms, stats)
    return Redis(settings.redis_url, settings.redis_timeout, functions.SOURCE,
                 settings.wait_replicas, settings.wait_ms, stats)


PubSub = Subscriber | ShardedSubscriber | FollowingSubscriber


def subscriber(client: Client, on_message: Callable[[str, str], None],
               on_restored: Restored) -> PubSub:
    """The node's subscription for live changes, where the client's Redis is."""
    if isinstance(client, Cluster):
        return ShardedSubscriber(client, on_message, on_restored)
    if isinstance(client, Sentinel):
        return FollowingSubscriber(client, on_message, on_restored)
    assert isinstance(client, Redis)
    return Subscriber(client.address, client.timeout, on_message, on_restored,
                      stats=client.stats)


async def check(settings: Settings) -> Settings:
    """Fail a node's start, naming the setting, when REDIS_CLUSTER does not lead to a
    cluster: no seed answers, or one is not a cluster node. (One Redis that is not up yet
    is fine: the node answers 503 until it is.) A REDIS_URL that turns out to be a node of
    a Redis Cluster is taken as the cluster's seed: the settings to run with."""
    if not settings.redis_cluster and not settings.redis_sentinels:
        settings = await _cluster_behind_url(settings)
    client = connect(settings)
    try:
        if isinstance(client, Cluster):
            try:
                await client.refresh()
            except StoreUnavailable as exc:
                disabled = "cluster support disabled" in exc.detail
                raise SystemExit(
                    f"REDIS_CLUSTER={','.join(settings.redis_cluster)}: "
                    + ("not a Redis Cluster node" if disabled else "no seed node answered")
                    + f" ({exc.detail})") from None
        elif isinstance(client, Sentinel):
            try:
                await client.find()
            except StoreUnavailable as exc:
                raise SystemExit(
                    f"REDIS_SENTINELS={','.join(settings.redis_sentinels)} "
                    f"REDIS_SENTINEL_MASTER={settings.redis_sentinel_master}: no sentinel "
                    f"named a primary that answers ({exc.detail})") from None
    finally:
        await client.aclose()
    return settings


async def _cluster_behind_url(settings: Settings) -> Settings:
    address = Address.from_url(settings.redis_url)
    if address.path is not None:
        return settings
    probe = Redis(settings.redis_url, settings.redis_timeout)
    try:
        info = await probe.execute("INFO", "cluster")
    except Exception:  # not up yet, or not a Redis we may ask: it stays one Redis
        return settings
    finally:
        await probe.aclose()
    text = info.decode() if isinstance(info, bytes) else str(info)
    if "cluster_enabled:1" not in text:
        return settings
    seed = f"{address.host}:{address.port}"
    log.info("REDIS_URL is a node of a Redis Cluster: using it as the cluster's seed (%s)",
             seed)
    return dataclasses.replace(settings, redis_cluster=(seed,))


async def prepare(redis: Client) -> None:
    """At a node's start: load the function library unless Redis has it. A Redis that
    cannot be reached now gets it on the node's first call instead."""
    try:
        await redis.ensure_library()
    except StoreUnavailable as exc:
        log.warning("Redis is unreachable at start (%s); the functions load on first use",
                    exc.detail)
