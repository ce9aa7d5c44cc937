"""Over a Redis Cluster: Redis CPU per operation on each shard, and how the load of 100
rooms spreads over the three primaries.

    python -m bench.cluster [--seconds 6] [--rooms 100]

Starts a Redis Cluster (3 primaries, 3 replicas) and one REST node on it, queues 10
tracks in each of the rooms ``party-0`` .. ``party-99``, then runs wrk (20 connections)
with each operation spread evenly over the rooms, and reads ``INFO cpu`` and
``commandstats`` of every primary before and after: each shard's CPU per operation it
served, and its share of the whole. Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tests.cluster import Cluster

from .c_load import wrk
from .common import Workload, prefill
from .stats import RedisStats

NODE_ENV = {"MAX_QUEUE": "10000000", "LOG_LEVEL": "warning"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rooms", type=int, default=100)
    args = parser.parse_args()
    out: dict[str, Any] = {"rooms": args.rooms, "ops": {}}
    with Cluster(rest=1, nginx=False, redis_cluster=True, env=NODE_ENV) as cluster:
        seeds = tuple(cluster.redis_cluster.seeds.split(","))
        primaries = cluster.redis_cluster.primary_ports()
        stats = {port: RedisStats(port) for port in primaries}
        for op in ("vote", "add", "queue"):
            tag = f"c{op}"
            for i in range(args.rooms):
                prefill(cluster.redis_url, f"party-{op}-{i}", Workload(op, 10, tag=tag), 10,
                        cluster=seeds)
            before = {p: (s.cpu(), s.commandstats()) for p, s in stats.items()}
            row = wrk(cluster.rest_urls[0], op, args.seconds, room=f"party-{op}", tag=tag,
                      rooms=args.rooms)
            shards = {}
            for port, s in stats.items():
                cpu0, cmds0 = before[port]
                cmds1 = s.commandstats()
                served = sum(calls - cmds0.get(name, (0, 0))[0]
                             for name, (calls, _) in cmds1.items()
                             if name in ("fcall", "exec", "fcall_ro"))
                spent = s.cpu() - cpu0
                shards[port] = {"ops": served, "cpu_s": round(spent, 3),
                                "us_per_op": round(spent * 1e6 / max(1, served), 2)}
            busiest = max(v["cpu_s"] for v in shards.values())
            quietest = min(v["cpu_s"] for v in shards.values())
            out["ops"][op] = {"ops_per_s": row["ops_per_s"], "p99_ms": row["p99_ms"],
                              "shards": shards, "spread": round(busiest / quietest, 2)}
        for s in stats.values():
            s.close()
    print("| operation | node ops/s | shard | share of ops | Redis CPU us/op | "
          "busiest / quietest shard |", file=sys.stderr)
    print("| --- | ---: | --- | ---: | ---: | ---: |", file=sys.stderr)
    for op, result in out["ops"].items():
        total = sum(v["ops"] for v in result["shards"].values()) or 1
        for i, (_port, shard) in enumerate(sorted(result["shards"].items())):
            print(f"| {op if i == 0 else ''} | {result['ops_per_s'] if i == 0 else ''} | "
                  f"primary {i + 1} | {shard['ops'] / total:.0%} | {shard['us_per_op']} | "
                  f"{result['spread'] if i == 0 else ''} |", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
