"""Two checkouts of the project, measured against each other in the same run.

    python -m bench.ab /path/to/old/checkout /path/to/new/checkout [--seconds 3] [--rounds 4]
        [--ops queue,GetMetadata]

Starts one redis-server and, from each checkout, a REST node and a gRPC node on it, then
for each operation runs the C load generators (wrk, h2load; 20 connections) against the
two sides in turn, ``--rounds`` times, alternating. On a shared machine whose host takes
CPU at will, throughput moves between runs far more than any change under test; what a
node spends per request moves much less. So both are shown: the node's CPU per request
(utime + stime from /proc, median of the rounds) and the best throughput of each side.
Each checkout queues its own rooms with its own core, so their Redis layouts may differ.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from proto import queue_pb2 as pb
from tests.cluster import Cluster, Process, _port_open, _wait, free_port, http_ok

from .c_load import h2load, wrk
from .stats import RedisStats

REST_OPS = ("add", "vote", "play_next", "queue", "metadata")
GRPC_OPS = ("VoteTrack", "GetQueue", "GetMetadata")
# METRICS_PORT 0: two checkouts run a gRPC node each on this machine (no listener to share)
ENV = {"MAX_QUEUE": "10000000", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1",
       "METRICS_PORT": "0"}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    def __init__(self, name: str, tree: Path, cluster: Cluster, redis: RedisStats):
        self.redis = redis
        self.name, self.tree = name, tree
        env = {**os.environ, **ENV, "REDIS_URL": cluster.redis_url, "HOST": "127.0.0.1",
               "NODE_ID": name}
        for var in ("API_URL", "GRPC_TARGET", "PYTHONPATH"):
            env.pop(var, None)
        self.env = env
        self.redis_url = cluster.redis_url
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.rest = Process(f"{name}-rest", [sys.executable, "-m", "rest"],
                            cluster.dir / f"{name}-rest.log",
                            {**env, "PORT": str(self.rest_port)}, cwd=tree).start()
        self.grpc = Process(f"{name}-grpc", [sys.executable, "-m", "grpc_svc.server"],
                            cluster.dir / f"{name}-grpc.log",
                            {**env, "GRPC_PORT": str(self.grpc_port)}, cwd=tree).start()
        _wait(lambda: http_ok(f"http://127.0.0.1:{self.rest_port}/healthz"), name, self.rest)
        _wait(lambda: _port_open(self.grpc_port), name, self.grpc)
        self.rounds = 0

    def fill(self, room: str, tag: str, count: int) -> None:
        """Queue ``count`` tracks with this checkout's own core (``<tag>-v<n>`` first)."""
        code = ("from bench.common import Workload, prefill\n"
                f"w = Workload('vote', {count})\nw.tag = {tag!r}\n"
                f"w.targets = [f'{tag}-v{{i}}' for i in range({min(10, count)})]\n"
                f"prefill({self.redis_url!r}, {room!r}, w, {count})\n")
        subprocess.run([sys.executable, "-c", code], cwd=self.tree, env=self.env, check=True,
                       capture_output=True, timeout=300)

    def run(self, kind: str, op: str, seconds: float) -> dict[str, Any]:
        self.rounds += 1
        tag, room = f"{self.name}{self.rounds}", f"ab-{self.name}-{self.rounds}"
        self.fill(room, tag, 10 + (int(seconds * 30_000) if op == "play_next" else 0))
        process = self.rest if kind == "rest" else self.grpc
        before, redis_before = cpu_seconds(process.pid), self.redis.cpu()
        if kind == "rest":
            row = wrk(f"http://127.0.0.1:{self.rest_port}", op, seconds, room=room, tag=tag)
            failed = row["non_2xx"] + row["socket_errors"]
        else:
            message = {"VoteTrack": pb.VoteRequest(id=f"{tag}-v0", up=True, room=room),
                       "GetQueue": pb.Empty(room=room, limit=25),
                       "GetMetadata": pb.TrackId(id=f"{tag}-v0", room=room)}[op]
            row = h2load(f"127.0.0.1:{self.grpc_port}", f"/queue.QueueService/{op}",
                         message.SerializeToString(), seconds)
            failed = row["failed"] + row["errored"]
        if failed:
            raise RuntimeError(f"{self.name} {op}: {failed} requests failed")
        done = max(1, row["requests"])
        row["cpu_us"] = (cpu_seconds(process.pid) - before) * 1e6 / done
        row["redis_us"] = (self.redis.cpu() - redis_before) * 1e6 / done
        return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ops", default="", help="only these operations, comma-separated "
                        f"(of {', '.join(REST_OPS + GRPC_OPS)})")
    args = parser.parse_args()
    only = set(filter(None, args.ops.split(",")))
    results = []
    with Cluster(rest=0, nginx=False) as cluster:
        redis = RedisStats(cluster.redis_port)
        sides = [Side("old", args.old.resolve(), cluster, redis),
                 Side("new", args.new.resolve(), cluster, redis)]
        for kind, ops in (("rest", REST_OPS), ("grpc", GRPC_OPS)):
            for op in ops:
                if only and op not in only:
                    continue
                rows: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
                for n in range(args.rounds):
                    for side in (sides if n % 2 == 0 else sides[::-1]):
                        rows[side.name].append(side.run(kind, op, args.seconds))
                cpu = {k: statistics.median(r["cpu_us"] for r in v) for k, v in rows.items()}
                redis_us = {k: statistics.median(r["redis_us"] for r in v)
                            for k, v in rows.items()}
                rate = {k: max(r["ops_per_s"] for r in v) for k, v in rows.items()}
                result = {"kind": kind, "op": op, "cpu_us": cpu, "ops_per_s": rate,
                          "redis_us": redis_us,
                          "cpu_ratio": round(cpu["new"] / cpu["old"], 3),
                          "rate_ratio": round(rate["new"] / rate["old"], 3)}
                results.append(result)
                print(f"{kind} {op:<12} node CPU/request: old {cpu['old']:7.1f} us, new "
                      f"{cpu['new']:7.1f} us ({result['cpu_ratio']:.2f}x); best ops/s: old "
                      f"{rate['old']:8,.0f}, new {rate['new']:8,.0f} "
                      f"({result['rate_ratio']:.2f}x); Redis CPU/request: old "
                      f"{redis_us['old']:.1f} us, new {redis_us['new']:.1f} us",
                      file=sys.stderr, flush=True)
        for side in sides:
            side.rest.stop()
            side.grpc.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
