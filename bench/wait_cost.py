"""What ``REDIS_WAIT_REPLICAS=1`` costs: the same writes through one REST node over a
primary with one replica, with the wait and without, in alternating rounds.

    python -m bench.wait_cost [--seconds 4] [--rounds 2]

Starts a primary, a replica and three sentinels (``tests.redis_servers.RedisSentinel``)
and two REST nodes on them, one with ``REDIS_WAIT_REPLICAS=1`` and one without, then runs
wrk (20 connections) with adds and votes against each in turn. Prints a markdown table and
one JSON line; the best round of each side counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tests.cluster import Cluster

from .c_load import wrk
from .common import Workload, prefill

NODE_ENV = {"MAX_QUEUE": "10000000", "LOG_LEVEL": "warning"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    out: dict[str, Any] = {"seconds": args.seconds, "ops": {}}
    with Cluster(rest=0, nginx=False, redis_sentinel=True, env=NODE_ENV) as cluster:
        cluster.add_rest_node(REDIS_WAIT_REPLICAS="0")
        cluster.add_rest_node(REDIS_WAIT_REPLICAS="1")
        plain, waiting = cluster.rest_urls
        for op in ("add", "vote"):
            best = {"0": {"ops_per_s": 0.0}, "1": {"ops_per_s": 0.0}}
            for r in range(args.rounds):
                for wait, url in (("0", plain), ("1", waiting)):
                    tag = f"w{op}{wait}{r}"
                    room = f"wait-{op}-{wait}-{r}"
                    if op == "vote":
                        prefill(cluster.redis_url, room, Workload(op, 10, tag=tag), 10)
                    row = wrk(url, op, args.seconds, room=room, tag=tag)
                    if row["ops_per_s"] > best[wait]["ops_per_s"]:
                        best[wait] = row
            out["ops"][op] = {
                "without": {k: best["0"][k] for k in ("ops_per_s", "p50_ms", "p99_ms")},
                "with_wait_1": {k: best["1"][k] for k in ("ops_per_s", "p50_ms", "p99_ms")},
                "ratio": round(best["1"]["ops_per_s"] / best["0"]["ops_per_s"], 2)}
    print("| operation | without WAIT ops/s (p99 ms) | REDIS_WAIT_REPLICAS=1 ops/s (p99 ms) "
          "| ratio |", file=sys.stderr)
    print("| --- | ---: | ---: | ---: |", file=sys.stderr)
    for op, r in out["ops"].items():
        print(f"| {op} | {r['without']['ops_per_s']:,.0f} ({r['without']['p99_ms']:.1f}) | "
              f"{r['with_wait_1']['ops_per_s']:,.0f} ({r['with_wait_1']['p99_ms']:.1f}) | "
              f"{r['ratio']} |", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
