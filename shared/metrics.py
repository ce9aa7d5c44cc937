"""Prometheus metrics of a node, rendered from its plain counters (``shared.stats``) when
scraped: the hot path never touches prometheus_client.

A REST node answers ``GET /metrics`` with ``exposition(registry)``; a gRPC node serves the
same on its own port (``serve``). Every name starts with ``mq_``; the README's "Operating
it" lists them and what to alert on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .stats import Histogram, NodeStats

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class Door:
    """How a front door names its requests: ``labels`` are the parts of a request's key in
    ``Requests``, the outcome last (the latency histogram leaves the outcome out)."""

    kind: str  # "rest" or "grpc"
    requests: str  # the counter's name, without _total
    duration: str  # the latency histogram's name
    in_flight: str
    labels: tuple[str, ...]
    stream: str  # what a live stream is called there: "sse" or "watch"


REST = Door("rest", "mq_http_requests", "mq_http_request_duration_seconds",
            "mq_http_requests_in_flight", ("route", "method", "status"), "sse")
GRPC = Door("grpc", "mq_grpc_calls", "mq_grpc_call_duration_seconds", "mq_grpc_calls_in_flight",
            ("method", "code"), "watch")


def _buckets(histograms: list[Histogram]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets (and the sum) of histograms with the same bounds."""
    bounds = histograms[0].bounds
    counts = [0] * (len(bounds) + 1)
    total = 0.0
    for histogram in histograms:
        for i, count in enumerate(list(histogram.counts)):
            counts[i] += count
        total += histogram.sum
    out, running = [], 0
    for bound, count in zip((*map(repr, bounds), "+Inf"), counts, strict=True):
        running += count
        out.append((bound, float(running)))
    return out, total


class Exporter(Collector):
    def __init__(self, stats: NodeStats, door: Door, node: str):
        self.stats, self.door, self.node = stats, door, node

    def collect(self) -> Iterator[Metric]:
        stats, door = self.stats, self.door
        info = GaugeMetricFamily("mq_node_info", "The node: its name and front door.",
                                 labels=["node", "door"])
        info.add_metric([self.node, door.kind], 1)
        yield info

        # The node's threads may add keys while this one reads: copy first.
        requests = dict(stats.requests.by_key)
        counter = CounterMetricFamily(door.requests,
                                      f"Requests handled, by {', '.join(door.labels)}",
                                      labels=list(door.labels))
        timed: dict[tuple[str, ...], list[Histogram]] = {}
        for key, histogram in requests.items():
            labels = [str(part) for part in key]
            counter.add_metric(labels, float(histogram.count))
            timed.setdefault(tuple(labels[:-1]), []).append(histogram)
        yield counter
        duration = HistogramMetricFamily(door.duration, "Time to answer (streams: until they "
                                         "end), seconds", labels=list(door.labels[:-1]))
        for key, histograms in timed.items():
            buckets, total = _buckets(histograms)
            duration.add_metric(list(key), buckets, total)
        yield duration
        yield GaugeMetricFamily(door.in_flight, "Requests being handled now (live streams "
                                "included)", value=stats.requests.in_flight)

        store = stats.store
        round_trips = HistogramMetricFamily(
            "mq_redis_round_trip_seconds", "Redis round trips (a command, or one MULTI/EXEC), "
            "from sending to the reply, seconds")
        buckets, total = _buckets([store.round_trips])
        round_trips.add_metric([], buckets, total)
        yield round_trips
        yield CounterMetricFamily("mq_redis_round_trips", "Redis round trips answered",
                                  value=buckets[-1][1])
        errors = CounterMetricFamily("mq_redis_errors", "Redis commands that failed, by kind "
                                     "(timeout, connection, unconfirmed, reply, or Redis's "
                                     "transient error: loading, readonly, ...)", labels=["kind"])
        for kind, count in dict(store.errors).items():
            errors.add_metric([kind], count)
        yield errors
        reconnects = CounterMetricFamily("mq_redis_reconnects", "Connections to Redis made "
                                         "again after one was lost", labels=["connection"])
        reconnects.add_metric(["commands"], store.reconnects)
        reconnects.add_metric(["subscription"], store.subscription_restores)
        yield reconnects
        yield CounterMetricFamily("mq_redis_failovers", "Changes of primary seen: Sentinel "
                                  "named another primary, or a cluster slot moved to another "
                                  "node", value=store.failovers)

        live = stats.live
        streams = GaugeMetricFamily("mq_open_streams", "Live streams open on the node (SSE "
                                    "on REST, Watch on gRPC)", labels=["kind"])
        streams.add_metric([door.stream], live.streams)
        yield streams
        yield CounterMetricFamily("mq_stream_events", "Changes sent to live streams",
                                  value=live.events)
        yield CounterMetricFamily("mq_stream_snapshots", "Snapshots sent to live streams (one "
                                  "at the start, one after each resync)", value=live.snapshots)
        yield CounterMetricFamily("mq_autoplay_advances", "Rooms moved on by this node's "
                                  "schedule when their track ended", value=stats.advances)


def registry(stats: NodeStats, door: Door, node: str) -> CollectorRegistry:
    """The node's registry: its own metrics, and the process's (CPU, memory, open files,
    garbage collections)."""
    out = CollectorRegistry(auto_describe=True)
    out.register(Exporter(stats, door, node))
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        out.register(collector)
    return out


def exposition(registry: CollectorRegistry) -> bytes:
    """The text a scraper reads (``CONTENT_TYPE``)."""
    return generate_latest(registry)


class Listener:
    """An HTTP listener in a thread of its own that answers every GET with the metrics
    (what a gRPC node runs on METRICS_PORT)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int):
        self.server: WSGIServer
        self.thread: threading.Thread
        self.server, self.thread = start_http_server(port, host, registry)
        self.port: int = self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
