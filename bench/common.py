"""What both load generators share: workloads, prefill, statistics and output.

Every run is bounded twice: by a number of requests and by a duration cap, whichever comes
first. Ids are unique per run (a random run tag), so runs never collide.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

OPERATIONS = ("add", "vote", "play_next", "queue", "metadata", "mixed")
# mixed: what a party looks like, mostly votes and reads
MIX = (("vote", 0.45), ("queue", 0.2), ("add", 0.15), ("metadata", 0.1), ("play_next", 0.1))
# Votes and metadata reads pick among the first 10 queued tracks, whatever the queue's
# length, so that runs at 10 and at 100,000 queued differ in that length alone.
VOTE_TARGETS = 10
MAX_RATE = 15_000  # ops/s no run here reaches (REST play_next peaks near 10k): bounds
# what play_next may need queued, so that it never runs out of tracks mid-run


@dataclass
class Result:
    target: str
    operation: str
    concurrency: int
    prefill: int
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    errors: Counter = field(default_factory=Counter)
    # mixed only: votes and reads of a track that a concurrent play_next just took; a
    # party's normal answer (404 / NOT_FOUND), counted as served, reported apart
    gone: int = 0

    def summary(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else 0.0

        ok = len(lat)
        return {
            "target": self.target, "operation": self.operation,
            "concurrency": self.concurrency, "prefill": self.prefill,
            "requests": self.requests, "ok": ok, "seconds": round(self.seconds, 3),
            "ops_per_s": round(ok / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 3) if lat else 0.0,
            "errors": dict(self.errors), "gone": self.gone,
        }


def markdown_header() -> str:
    return ("| target | operation | conc. | prefill | ok | ops/s | p50 ms | p90 ms | p99 ms "
            "| errors |\n"
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")


def markdown_row(s: dict) -> str:
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(s["errors"].items())) or "0"
    if s.get("gone"):
        errors += f" (+{s['gone']} votes/reads of just-played tracks)"
    return (f"| {s['target']} | {s['operation']} | {s['concurrency']} | {s['prefill']} | {s['ok']} "
            f"| {s['ops_per_s']:.0f} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} "
            f"| {errors} |")


class Workload:
    """Which call each request makes, with what ids. ``pick()`` returns (operation, id)."""

    def __init__(self, operation: str, prefilled: int = 0, seed: int = 1, tag: str = ""):
        self.operation = operation
        self.tag = tag or uuid.uuid4().hex[:8]
        self.rng = random.Random(seed)
        self.counter = 0
        count = min(VOTE_TARGETS, prefilled) if prefilled else VOTE_TARGETS
        self.targets = [f"{self.tag}-v{i}" for i in range(count)]

    def new_id(self) -> str:
        self.counter += 1
        return f"{self.tag}-{self.counter}"

    def pick(self) -> tuple[str, str]:
        op = self.operation
        if op == "mixed":
            roll, acc = self.rng.random(), 0.0
            for name, share in MIX:
                acc += share
                if roll < acc:
                    op = name
                    break
        if op == "add":
            return op, self.new_id()
        if op in ("vote", "metadata"):
            return op, self.rng.choice(self.targets)
        return op, ""

    def tracks_needed(self, requests: int, prefill: int, duration: float) -> int:
        """Tracks to queue before measuring: the prefill (at least the vote targets), plus
        what play_next may take (bounded by the duration at MAX_RATE)."""
        expected = min(requests, int(duration * MAX_RATE))
        extra = expected if self.operation == "play_next" else (
            expected // 5 if self.operation == "mixed" else 0)
        return max(prefill, len(self.targets)) + extra


def prefill(redis_url: str, room: str, workload: Workload, count: int,
            cluster: tuple[str, ...] = ()) -> None:
    """Queue ``count`` tracks (20-character titles and artists) through the core's own add,
    a thousand at a time on one pipelined connection: far faster than the API, and the same
    state."""
    from shared import store
    from shared.config import Settings
    from shared.queue import Queue
    from shared.validation import NewTrack

    extra = max(0, count - len(workload.targets))
    ids = workload.targets + [f"{workload.tag}-p{i}" for i in range(extra)]

    async def fill() -> None:
        settings = Settings(redis_url=redis_url, redis_cluster=cluster, max_queue=10_000_000,
                            redis_timeout=30.0)
        redis = store.connect(settings)
        queue = Queue(redis, settings)
        try:
            for start in range(0, len(ids), 1000):
                await asyncio.gather(*(queue.add(room, NewTrack(track_id, "T" * 20, "A" * 20, 180),
                                                 head=0) for track_id in ids[start:start + 1000]))
        finally:
            await redis.aclose()

    started = time.monotonic()
    asyncio.run(fill())
    if count >= 1000:
        print(f"prefilled {len(ids)} tracks into room {room} in "
              f"{time.monotonic() - started:.1f}s", file=sys.stderr)
    # Measure the client as it would be without the prefill: its garbage collected, what
    # survives frozen out of later collections, and Redis done rehashing its new tables.
    gc.collect()
    gc.freeze()
    time.sleep(1.0 if count > 10_000 else 0.1)


def arguments(description: str, default_target: str) -> argparse.Namespace:
    # The client's own collector pauses would show up as the server's tail latency.
    gc.set_threshold(50_000, 20, 100)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--target", default=default_target, help="where to send the load")
    parser.add_argument("--op", choices=OPERATIONS, default="add")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10_000, help="at most this many")
    parser.add_argument("--duration", type=float, default=20.0, help="at most this many seconds")
    parser.add_argument("--prefill", type=int, default=0, help="tracks queued before measuring")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="where to prefill (the target's Redis)")
    parser.add_argument("--room", default="", help="room to use (default: a new one)")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    parser.add_argument("--no-prefill", action="store_true",
                        help="queue nothing first (for the floors, which keep no state)")
    parser.add_argument("--json", dest="json_out", help="also write the summary to this file")
    parser.add_argument("--label", default="", help="name of the target in the output")
    args = parser.parse_args()
    args.room = args.room or f"bench-{uuid.uuid4().hex[:8]}"
    return args


OK, GONE = "ok", "gone"  # what a call ended in; anything else is the name of an error


async def drive(workload: Workload, args, label: str, calls: list) -> Result:
    """Run the load: ``calls[n]`` is client n, an async ``(operation, track_id) -> outcome``.
    First ``args.warmup`` calls unmeasured, then at most ``args.requests`` calls or
    ``args.duration`` seconds."""
    result = Result(label, workload.operation, len(calls), args.prefill)
    budget = {"warmup": args.warmup, "left": args.requests}
    start = asyncio.Event()
    deadline = [0.0]

    async def client(call) -> None:
        while budget["warmup"] > 0:
            budget["warmup"] -= 1
            await call(*workload.pick())
        await start.wait()
        while budget["left"] > 0 and time.monotonic() < deadline[0]:
            budget["left"] -= 1
            result.requests += 1
            op, track_id = workload.pick()
            began = time.perf_counter()
            outcome = await call(op, track_id)
            if outcome is OK or outcome is GONE:
                result.latencies.append(time.perf_counter() - began)
                result.gone += outcome is GONE
            else:
                result.errors[outcome] += 1

    tasks = [asyncio.create_task(client(call)) for call in calls]
    while budget["warmup"] > 0 and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    began = time.monotonic()
    deadline[0] = began + args.duration
    start.set()
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - began
    return result


def main(description: str, default_target: str, load) -> int:
    """A load generator's command line: ``load(args, workload)`` is the coroutine that
    returns its Result."""
    args = arguments(description, default_target)
    workload = Workload(args.op, args.prefill)
    if not args.no_prefill:
        needed = workload.tracks_needed(args.requests + args.warmup, args.prefill, args.duration)
        prefill(args.redis_url, args.room, workload, needed)
    import uvloop

    report(uvloop.run(load(args, workload)), args.json_out)
    return 0


def report(result: Result, json_out: str | None) -> dict:
    summary = result.summary()
    print(json.dumps(summary))
    print(markdown_row(summary), file=sys.stderr)
    if json_out:
        with open(json_out, "w") as out:
            json.dump(summary, out, indent=1)
    return summary
