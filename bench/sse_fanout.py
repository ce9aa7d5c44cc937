"""One REST node holding many open event streams: its memory, and how fast a change
reaches them.

    python -m bench.sse_fanout --streams 1000 --changes 20

Starts its own redis-server and ONE REST node (tests.cluster), opens the streams from this
process (asyncio, one connection each), waits for every snapshot, then makes changes one
by one through the API and times, for each change, how long until 50% / 99% / 100% of the
streams have its event (measured from just before the write is sent). Reports the node's
resident memory before and with the streams open. Prints JSON; --markdown for a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
import urllib.request

QUEUED = 25  # tracks in the room, so every event carries a full head


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(base: str, path: str, body: dict | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, method="POST"),
                                timeout=10) as reply:
        reply.read()


class Stream:
    """One event-stream connection; records when each event id arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.buffer = b""
        self.snapshot = asyncio.get_running_loop().create_future()

    async def run(self, host: str, port: int, path: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    return
                now = time.perf_counter()
                self.buffer += data
                while b"\n\n" in self.buffer:
                    frame, self.buffer = self.buffer.split(b"\n\n", 1)
                    for line in frame.split(b"\n"):
                        if line.startswith(b"id: "):
                            self.arrivals[int(line[4:])] = now
                        elif line.startswith(b"event: snapshot") and not self.snapshot.done():
                            self.snapshot.set_result(now)
        finally:
            writer.close()


async def measure(base: str, room: str, streams: int, changes: int, node_pid: int) -> dict:
    host, port = base.split("//")[1].split(":")
    idle_rss = rss_kib(node_pid)
    clients = [Stream() for _ in range(streams)]
    tasks = []
    for i, client in enumerate(clients):
        tasks.append(asyncio.create_task(client.run(host, int(port), f"/rooms/{room}/events")))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the accept queue
    await asyncio.wait_for(asyncio.gather(*(c.snapshot for c in clients)), 60)
    await asyncio.sleep(1.0)
    open_rss = rss_kib(node_pid)
    loop = asyncio.get_running_loop()
    spreads = []
    for n in range(changes):
        expected = max(max(c.arrivals) for c in clients) + 1  # each vote is one new version
        sent = time.perf_counter()
        await loop.run_in_executor(None, post, base, f"/rooms/{room}/vote?id=t{n % QUEUED}")
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            if all(expected in c.arrivals for c in clients):
                break
            await asyncio.sleep(0.002)
        times = sorted((c.arrivals.get(expected, float("inf")) - sent) * 1000 for c in clients)
        spreads.append({"p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99) - 1],
                        "all": times[-1]})
        await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    def median(key: str) -> float:
        return round(statistics.median(s[key] for s in spreads), 1)

    return {"streams": streams, "changes": changes,
            "node_rss_idle_mib": round(idle_rss / 1024, 1),
            "node_rss_with_streams_mib": round(open_rss / 1024, 1),
            "kib_per_stream": round((open_rss - idle_rss) / streams, 1),
            "ms_to_50pct_median": median("p50"), "ms_to_99pct_median": median("p99"),
            "ms_to_all_median": median("all"),
            "ms_to_99pct_worst": round(max(s["p99"] for s in spreads), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.streams * 2 + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the node inherits it too

    from tests.cluster import Cluster

    with Cluster(rest=1, nginx=False) as cluster:
        base = cluster.rest_urls[0]
        room = "fanout"
        for i in range(QUEUED):
            post(base, f"/rooms/{room}/add_track",
                 {"id": f"t{i}", "title": "T" * 20, "artist": "A" * 20, "duration": 180})
        import uvloop

        result = uvloop.run(measure(base, room, args.streams, args.changes, cluster.rest[0].pid))
    print(json.dumps(result))
    if args.markdown:
        print("| streams | node RSS idle | with streams | per stream | to 50% | to 99% (median) "
              "| to 99% (worst) | to all |\n"
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        r = result
        print(f"| {r['streams']} | {r['node_rss_idle_mib']} MiB "
              f"| {r['node_rss_with_streams_mib']} MiB "
              f"| {r['kib_per_stream']} KiB | {r['ms_to_50pct_median']} ms "
              f"| {r['ms_to_99pct_median']} ms "
              f"| {r['ms_to_99pct_worst']} ms | {r['ms_to_all_median']} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
