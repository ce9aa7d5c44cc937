"""What a node counts, as plain numbers: a request, a Redis round trip or an event costs
an integer add and, for a latency, a bisect (tens of nanoseconds), never a lock.
``shared.metrics`` reads them when Prometheus scrapes and renders its metrics.

Every key is bounded: a route template or a method name, a status, a kind of error from
a fixed list. Room names and track ids are never keys.
"""

from __future__ import annotations

from bisect import bisect_left

# Seconds: the upper bounds of the latency buckets (the last bucket is +Inf).
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
REDIS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 0.5, 1.0)


class Histogram:
    """Counts per bucket (not cumulative; the last one is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class Requests:
    """Requests (or calls) by a bounded key whose last part is the outcome (status or
    code): a latency histogram each, and how many are in progress."""

    __slots__ = ("by_key", "in_flight")

    def __init__(self) -> None:
        self.by_key: dict[tuple[str | int, ...], Histogram] = {}
        self.in_flight = 0

    def observe(self, key: tuple[str | int, ...], seconds: float) -> None:
        histogram = self.by_key.get(key)
        if histogram is None:
            histogram = self.by_key[key] = Histogram(REQUEST_BUCKETS)
        histogram.counts[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        histogram.sum += seconds


# What a failed Redis command amounts to, from StoreUnavailable's detail: a timeout, one
# of the transient error replies (``store.client.TRANSIENT``), a write the replicas did
# not confirm, no connection at all (refused, lost, no primary known), or any other error
# reply ("reply": a bug).
ERROR_KINDS = ("timeout", "connection", "unconfirmed", "reply", "loading", "busy", "oom", "misconf",
               "readonly", "masterdown", "tryagain", "clusterdown", "noreplicas", "moved",
               "ask")


def error_kind(detail: str) -> str:
    if detail == "timed out":
        return "timeout"
    if detail.startswith("not confirmed"):
        return "unconfirmed"
    return detail if detail in ERROR_KINDS else "connection"


class StoreStats:
    """The node's traffic with Redis: each round trip's latency (a command or one
    MULTI/EXEC, sent to when its reply came), failed commands by kind, reconnects of the
    command connections and of the pub/sub subscription, and changes of primary."""

    __slots__ = ("round_trips", "errors", "reconnects", "subscription_restores", "failovers")

    def __init__(self) -> None:
        self.round_trips = Histogram(REDIS_BUCKETS)
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.reconnects = 0
        self.subscription_restores = 0
        self.failovers = 0

    def error(self, detail: str) -> None:
        self.errors[error_kind(detail)] += 1


class LiveStats:
    """Live streams (SSE or Watch) open on the node, and what they were sent."""

    __slots__ = ("streams", "events", "snapshots")

    def __init__(self) -> None:
        self.streams = 0
        self.events = 0
        self.snapshots = 0


class NodeStats:
    """Everything one node counts."""

    __slots__ = ("requests", "store", "live", "advances")

    def __init__(self) -> None:
        self.requests = Requests()
        self.store = StoreStats()
        self.live = LiveStats()
        self.advances = 0

    def advanced(self, room: str) -> None:
        """``Schedule``'s on_advance: one automatic advance (the room is not counted)."""
        self.advances += 1
