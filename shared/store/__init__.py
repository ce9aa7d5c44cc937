"""Everything that talks to Redis: the pipelined connection (``pipe``) and the node's
subscription for live changes (``pubsub``). The domain (keys, scripts, operations) lives
one level up and reaches Redis only through these."""

from __future__ import annotations

from ..config import Settings
from .pipe import PipelinedRedis


def connect(settings: Settings) -> PipelinedRedis:
    """The node's connection to its Redis (dialled on first use)."""
    return PipelinedRedis(settings.redis_url, settings.redis_timeout)
