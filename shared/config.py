"""Configuration, read from the environment once, in one place."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def _int(env: dict, name: str, default: int, low: int, high: int) -> int:
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


def _flag(env: dict, name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


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

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
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
        )
