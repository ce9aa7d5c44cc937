"""Configuration, read from the environment once, in one place."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from .store.address import Address
from .validation import BOOLEAN_RULE, boolean

Env = Mapping[str, str]


def _int(env: Env, name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low} and {high}, got {value}")
    return value


def _flag(env: Env, name: str) -> bool:
    raw = env.get(name, "")
    if not raw.strip():
        return False
    value = boolean(raw)
    if value is None:
        raise SystemExit(f"{name} must be {BOOLEAN_RULE}, got {raw!r}")
    return value


def _seeds(env: Env, name: str) -> tuple[str, ...]:
    """host:port[,host:port...]: where to start looking for a cluster's nodes."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    seeds = tuple(part.strip() for part in raw.split(","))
    for seed in seeds:
        host, _, port = seed.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise SystemExit(f"{name} must be host:port[,host:port...], got {seed!r} in {raw!r}")
    return seeds


def _master(env: Env) -> str:
    master = env.get("REDIS_SENTINEL_MASTER", "").strip()
    if env.get("REDIS_SENTINELS", "").strip() and not master:
        raise SystemExit("REDIS_SENTINEL_MASTER must name the primary the sentinels watch "
                         "(as in their 'sentinel monitor' line) when REDIS_SENTINELS is set")
    if env.get("REDIS_CLUSTER", "").strip() and env.get("REDIS_SENTINELS", "").strip():
        raise SystemExit("REDIS_CLUSTER and REDIS_SENTINELS cannot both be set: a cluster "
                         "fails over by itself")
    return master


def _choice(env: Env, name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _url(env: Env, name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    try:
        Address.from_url(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} {exc}") from None
    return raw


def _wait_ms(env: Env) -> int:
    """REDIS_WAIT_TIMEOUT_MS (default two thirds of REDIS_TIMEOUT_MS): replicas must
    confirm a write before the request itself times out."""
    timeout = _int(env, "REDIS_TIMEOUT_MS", 750, 50, 60_000)
    return _int(env, "REDIS_WAIT_TIMEOUT_MS", timeout * 2 // 3, 1, max(1, timeout - 10))


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    # seed nodes of a Redis Cluster (host:port); empty: one Redis at redis_url
    redis_cluster: tuple[str, ...] = ()
    # sentinels (host:port) that know the primary named redis_sentinel_master
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = ""
    node_id: str = "local"
    admin_token: str = ""
    require_voter: bool = False
    max_queue: int = 10_000
    history_limit: int = 1000
    host: str = "0.0.0.0"
    port: int = 8000
    grpc_port: int = 50051
    # Seconds a request may wait on Redis before the node answers 503 / UNAVAILABLE.
    redis_timeout: float = 0.75
    # Replicas that must have a write before it is acknowledged (WAIT), and how long they
    # get to confirm it (under redis_timeout).
    wait_replicas: int = 0
    wait_ms: int = 500
    # Seconds between keep-alive comments on an idle event stream.
    sse_heartbeat: float = 10.0
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line
    # gRPC nodes: the port of the HTTP listener that serves the Prometheus metrics (0: none)
    metrics_port: int = 9464
    forwarded_allow_ips: str = "127.0.0.1"  # whose X-Forwarded-For uvicorn trusts
    # guest sessions one client address may open per minute, on each node
    guest_joins_per_minute: int = 10

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            redis_url=_url(env, "REDIS_URL", default.redis_url),
            redis_cluster=_seeds(env, "REDIS_CLUSTER"),
            redis_sentinels=_seeds(env, "REDIS_SENTINELS"),
            redis_sentinel_master=_master(env),
            node_id=env.get("NODE_ID", "").strip() or socket.gethostname(),
            admin_token=env.get("ADMIN_TOKEN", ""),
            require_voter=_flag(env, "REQUIRE_VOTER"),
            max_queue=_int(env, "MAX_QUEUE", default.max_queue, 1, 10_000_000),
            history_limit=_int(env, "HISTORY_LIMIT", default.history_limit, 1, 1_000_000),
            host=env.get("HOST", "").strip() or default.host,
            port=_int(env, "PORT", default.port, 1, 65535),
            grpc_port=_int(env, "GRPC_PORT", default.grpc_port, 1, 65535),
            redis_timeout=_int(env, "REDIS_TIMEOUT_MS", 750, 50, 60_000) / 1000,
            wait_replicas=_int(env, "REDIS_WAIT_REPLICAS", 0, 0, 16),
            wait_ms=_wait_ms(env),
            sse_heartbeat=_int(env, "SSE_HEARTBEAT_MS", 10_000, 100, 15_000) / 1000,
            log_level=env.get("LOG_LEVEL", "").strip().lower() or default.log_level,
            log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
            metrics_port=_int(env, "METRICS_PORT", default.metrics_port, 0, 65535),
            forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS", "").strip()
            or default.forwarded_allow_ips,
            guest_joins_per_minute=_int(env, "GUEST_JOINS_PER_MINUTE",
                                        default.guest_joins_per_minute, 1, 1_000_000),
        )
