"""Configuration, read from the environment once, in one place."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
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
    # Seconds between keep-alive comments on an idle event stream.
    sse_heartbeat: float = 10.0
    log_level: str = "info"
    forwarded_allow_ips: str = "127.0.0.1"  # whose X-Forwarded-For uvicorn trusts

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            redis_url=env.get("REDIS_URL", "").strip() or default.redis_url,
            node_id=env.get("NODE_ID", "").strip() or socket.gethostname(),
            admin_token=env.get("ADMIN_TOKEN", ""),
            require_voter=_flag(env, "REQUIRE_VOTER"),
            max_queue=_int(env, "MAX_QUEUE", default.max_queue, 1, 10_000_000),
            history_limit=_int(env, "HISTORY_LIMIT", default.history_limit, 1, 1_000_000),
            host=env.get("HOST", "").strip() or default.host,
            port=_int(env, "PORT", default.port, 1, 65535),
            grpc_port=_int(env, "GRPC_PORT", default.grpc_port, 1, 65535),
            redis_timeout=_int(env, "REDIS_TIMEOUT_MS", 750, 50, 60_000) / 1000,
            sse_heartbeat=_int(env, "SSE_HEARTBEAT_MS", 10_000, 100, 15_000) / 1000,
            log_level=env.get("LOG_LEVEL", "").strip().lower() or default.log_level,
            forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS", "").strip()
            or default.forwarded_allow_ips,
        )
