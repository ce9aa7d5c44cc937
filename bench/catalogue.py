"""The catalogue's figures: import time, Redis memory per track, and search through one
node against the same node's 25-track queue read.

    python -m bench.catalogue [--tracks 100000] [--seconds 5] [--rounds 3]
                              [--queries 40000]

Starts one Redis and one REST node (tests.cluster), writes the synthetic catalogue
(bench.catalogue_data) unless it exists, imports it with ``python -m shared.catalogue
import --replace`` (timed), reads Redis's memory before and after, then runs wrk at 20
connections: ``GET /rooms/bench/queue?limit=25`` on a queue of 25, and
``GET /catalogue/search`` over queries typed the way people type (bench/search.lua): for
tracks picked with a skew towards popular ones (a few are searched for often, most
rarely), each keystroke of the first words of the title or the artist, from the first
letter on. After a warm-up of each (the search's on queries of its own), the two take
turns, ``--rounds`` times ``--seconds`` each: this machine's speed drifts by a third
within a minute, so each round's search rate is set against the queue read right
before it, and the figures are the rounds' medians. Each round types new queries (the
next ``--queries`` of one stream, so the same tracks stay popular), never a replay of
an earlier round's. Redis's ``commandstats`` say how many searches reached Redis (the
rest the node answered from its cache) and what one cost Redis. Prints a markdown table
and writes bench/out/catalogue.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from shared import keys
from tests.cluster import Cluster

from . import catalogue_data
from .c_load import require, wrk
from .common import Workload, prefill
from .stats import RedisStats

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROOT = HERE.parent


def typed_queries(rows: list[tuple], count: int, seed: int = 3) -> list[str]:
    """Queries as typed: per search, a track (popular ones more often: Zipf-like), then its
    title's or artist's first two words, letter by letter."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(rows))))
    order = list(range(len(rows)))
    rng.shuffle(order)  # popularity has nothing to do with the id
    out: list[str] = []
    while len(out) < count:
        row = rows[order[rng.choices(range(len(rows)), cum_weights=cumulative)[0]]]
        text = row[1] if rng.random() < 0.7 else row[2]
        words = text.split()[:2]
        typed = ""
        for i, word in enumerate(words):
            for letter in range(1, len(word) + 1):
                out.append((typed + word[:letter]).strip())
            typed += word + " "
            if i == 0 and rng.random() < 0.5:
                break
    return out[:count]


def search_wrk(url: str, queries: Path, seconds: float, connections: int = 20) -> dict[str, Any]:
    env = {**os.environ, "MQ_QUERIES": str(queries)}
    argv = [require("wrk", "wrk"), "-t1", f"-c{connections}", f"-d{seconds:g}s",
            "--timeout", "10s", "-s", str(HERE / "search.lua"), url]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr or result.stdout}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    summary["ops_per_s"] = round(summary["requests"] / summary["seconds"], 1)
    return summary


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_rss_mb(pid: int) -> float:
    """The node's resident memory (its cache of answers is most of what grows)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def busy(pid: int, stats: RedisStats, run: Any) -> dict[str, Any]:
    """``run()``'s summary, with how busy the node and Redis were meanwhile (CPU seconds
    per second) and their CPU time per request."""
    node0, redis0 = cpu_seconds(pid), stats.cpu()
    out: dict[str, Any] = run()
    node, redis = cpu_seconds(pid) - node0, stats.cpu() - redis0
    out["node_busy"] = round(node / out["seconds"], 2)
    out["redis_busy"] = round(redis / out["seconds"], 2)
    out["node_us_per_request"] = round(node * 1e6 / max(1, out["requests"]), 1)
    return out


def search_round(url: str, queries: Path, seconds: float, stats: RedisStats,
                 pid: int) -> dict[str, Any]:
    """One search window, with what reached Redis in it (``commandstats``)."""
    calls0 = stats.commandstats().get("fcall_ro", (0, 0))
    out = busy(pid, stats, lambda: search_wrk(url, queries, seconds))
    calls1 = stats.commandstats().get("fcall_ro", (0, 0))
    reached = calls1[0] - calls0[0]
    out["reached_redis"] = reached
    out["cache_share"] = round(1 - reached / max(1, out["requests"]), 3)
    out["redis_us"] = round((calls1[1] - calls0[1]) / max(1, reached), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=40_000,
                        help="typed queries a round has (more than it sends)")
    args = parser.parse_args()
    source = OUT / f"catalogue-{args.tracks}.csv"
    if not source.exists():
        catalogue_data.write(source, args.tracks)
    rows = list(catalogue_data.tracks(args.tracks))
    stream = typed_queries(rows, args.queries * (args.rounds + 1))
    query_files = []
    for i in range(args.rounds + 1):  # 0: the warm-up's
        part = stream[i * args.queries:(i + 1) * args.queries]
        query_files.append(OUT / f"catalogue-queries-{i}.txt")
        query_files[-1].write_text("".join(urllib.parse.quote(q) + "\n" for q in part))
    out: dict[str, Any] = {"tracks": args.tracks, "queries_per_round": args.queries,
                           "distinct_queries": len(set(stream))}
    with Cluster(rest=1, nginx=False, env={"LOG_LEVEL": "warning"}) as cluster:
        stats = RedisStats(cluster.redis_port)
        before = stats.used_memory()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "shared.catalogue", "import", "--replace", "--json",
             str(source)], env={**os.environ, **cluster.redis_env()}, cwd=ROOT,
            capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise SystemExit(result.stderr)
        out["import_s"] = round(time.monotonic() - started, 1)
        out["import"] = json.loads(result.stdout)
        used = stats.used_memory() - before
        out["memory_bytes"] = used
        out["bytes_per_track"] = round(used / args.tracks)
        k = keys.CATALOGUE
        out["keys"] = {name: stats.command("MEMORY", "USAGE", key, "SAMPLES", "0")
                       for name, key in zip(("records", "terms", "postings", "prefixes",
                                             "titles"), k.index_keys, strict=True)}
        out["terms"] = stats.command("ZCARD", k.terms)  # words and their further chunks
        out["prefixes"] = stats.command("HLEN", k.prefixes)

        url = cluster.rest_urls[0]
        prefill(cluster.redis_url, "bench", Workload("queue", 25, tag="cq"), 25)
        wrk(url, "queue", 1.0)  # warm-ups
        search_wrk(url, query_files[0], 1.0)
        out["rounds"] = []
        for i in range(1, args.rounds + 1):
            pid = cluster.rest[0].pid
            queue = busy(pid, stats, lambda: wrk(url, "queue", args.seconds))
            search = search_round(url, query_files[i], args.seconds, stats, pid)
            out["rounds"].append({"queue_read": queue, "search": search,
                                  "ratio": round(search["ops_per_s"] / queue["ops_per_s"], 2)})
        out["node_rss_mb"] = node_rss_mb(cluster.rest[0].pid)
        stats.close()

    def median(path: str) -> float:
        values = []
        for r in out["rounds"]:
            value: Any = r
            for part in path.split("."):
                value = value[part]
            values.append(value)
        return round(statistics.median(values), 2)

    out["ratio"] = median("ratio")
    out["search_p99_ms"] = median("search.p99_ms")
    out["queue_p99_ms"] = median("queue_read.p99_ms")
    out["search_cache_share"] = median("search.cache_share")
    out["redis_us_per_search"] = median("search.redis_us")
    for name in ("search", "queue_read"):
        out[f"{name}_node_busy"] = median(f"{name}.node_busy")
        out[f"{name}_node_us"] = median(f"{name}.node_us_per_request")
    out["search_redis_busy"] = median("search.redis_busy")
    (OUT / "catalogue.json").write_text(json.dumps(out, indent=2) + "\n")
    rounds = out["rounds"]

    def each(render) -> str:
        return ", ".join(render(r) for r in rounds)

    def rates(r: dict[str, Any]) -> str:
        return f"{r['search']['ops_per_s']:,.0f} / {r['queue_read']['ops_per_s']:,.0f}"

    print(f"| figure | measured (median of {len(rounds)} rounds; each round) | target |\n"
          f"| --- | --- | --- |\n"
          f"| import of {args.tracks:,} tracks | {out['import_s']} s | <= 30 s |\n"
          f"| Redis memory per track, with its index | {out['bytes_per_track']} bytes "
          f"| <= 1024 bytes |\n"
          f"| search p99 through one node, 20 clients | {out['search_p99_ms']} ms "
          f"({each(lambda r: str(r['search']['p99_ms']))}) | <= 10 ms |\n"
          f"| the queue read's own p99 | {out['queue_p99_ms']} ms "
          f"({each(lambda r: str(r['queue_read']['p99_ms']))}) | |\n"
          f"| search rate / 25-track queue read rate | {out['ratio']} "
          f"({each(rates)}) "
          f"| >= 0.50 |\n"
          f"| searches answered by the node (kept or narrowed) | "
          f"{out['search_cache_share']:.0%} | |\n"
          f"| Redis time per search that reached it | {out['redis_us_per_search']} us | |\n"
          f"| node CPU per request: search, queue read | {out['search_node_us']} us, "
          f"{out['queue_read_node_us']} us | |\n"
          f"| node busy: search, queue read (CPU s per s) | {out['search_node_busy']}, "
          f"{out['queue_read_node_busy']} | |\n"
          f"| Redis busy during the search | {out['search_redis_busy']} | |\n"
          f"| the node's resident memory after the rounds | {out['node_rss_mb']} MB | |")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
