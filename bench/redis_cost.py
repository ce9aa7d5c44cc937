"""Redis's own CPU per queue operation, measured without any node in the way.

    python -m bench.redis_cost [--ops 20000] [--concurrency 20] [--queued 10]

Starts a redis-server of its own, then runs each operation through the core's ``Queue``
(``--concurrency`` at a time over one pipelined connection, as a node sends them) and
reads ``INFO cpu`` and ``INFO commandstats`` before and after: Redis CPU per operation
(user + system, network I/O included) and the time of each command inside it. Writes
return their 25-track head, as the API's do. This is the experiment loop behind the
"Redis time per operation" figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from shared import store
from shared.config import Settings
from shared.queue import Queue
from shared.validation import NewTrack
from tests.cluster import Cluster

from .stats import RedisStats

OPS = ("add", "vote", "vote_voter", "remove", "play_next", "queue", "metadata")


async def measure(queue: Queue, stats: RedisStats, op: str, ops: int, concurrency: int,
                  queued: int, tag: str) -> dict[str, Any]:
    room = f"cost-{op}-{tag}"
    track = lambda i: NewTrack(f"{tag}-{i}", "T" * 20, "A" * 20, 180)  # noqa: E731
    setup = ops if op in ("remove", "play_next") else queued
    for start in range(0, setup, 1000):
        await asyncio.gather(*(queue.add(room, track(i), head=0)
                               for i in range(start, min(setup, start + 1000))))
    calls = {
        "add": lambda i: queue.add(room, track(setup + i)),
        "vote": lambda i: queue.vote(room, track(i % queued).id, True),
        "vote_voter": lambda i: queue.vote(room, track(i % queued).id, i % 2 == 0, f"v{i}"),
        "remove": lambda i: queue.remove(room, track(i).id),
        "play_next": lambda i: queue.play_next(room),
        "queue": lambda i: queue.page(room, 0, 25),
        "metadata": lambda i: queue.metadata(room, track(i % queued).id),
    }
    call = calls[op]
    counter = iter(range(ops))

    async def client() -> None:
        for i in counter:
            await call(i)

    await asyncio.sleep(0.2)
    cpu_before, stats_before = stats.cpu(), stats.commandstats()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    cpu_after, stats_after = stats.cpu(), stats.commandstats()
    inside = {}
    for name, (calls_after, usec_after) in stats_after.items():
        calls_before, usec_before = stats_before.get(name, (0, 0))
        if calls_after - calls_before >= ops // 2 and name != "info":
            inside[name] = round((usec_after - usec_before) / ops, 2)
    return {"op": op, "ops": ops, "ops_per_s": round(ops / seconds),
            "redis_us_per_op": round((cpu_after - cpu_before) * 1e6 / ops, 2),
            "commands_us_per_op": inside}


async def run(args: argparse.Namespace, cluster: Cluster) -> list[dict[str, Any]]:
    settings = Settings(redis_url=cluster.redis_url, max_queue=10_000_000, redis_timeout=30.0)
    redis = store.connect(settings)
    stats = RedisStats(cluster.redis_port)
    queue = Queue(redis, settings)
    rows = []
    try:
        for op in args.op or OPS:
            best = None
            for attempt in range(args.rounds):
                row = await measure(queue, stats, op, args.ops, args.concurrency, args.queued,
                                    f"r{attempt}")
                if best is None or row["redis_us_per_op"] < best["redis_us_per_op"]:
                    best = row
            assert best is not None
            rows.append(best)
            print(f"{op:<11} {best['redis_us_per_op']:>6.2f} us of Redis CPU per op   "
                  f"inside: {best['commands_us_per_op']}", file=sys.stderr, flush=True)
    finally:
        await redis.aclose()
        stats.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="per operation (default 20000)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--queued", type=int, default=10, help="tracks votes pick among")
    parser.add_argument("--rounds", type=int, default=3, help="runs per operation; best counts")
    parser.add_argument("--op", action="append", choices=OPS, help="only these (repeatable)")
    parser.add_argument("--redis-arg", action="append", default=[],
                        help="extra redis-server argument (repeatable)")
    args = parser.parse_args()
    with Cluster(rest=0, nginx=False, redis_args=tuple(args.redis_arg)) as cluster:
        rows = asyncio.run(run(args, cluster))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
