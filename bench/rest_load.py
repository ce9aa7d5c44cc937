"""REST load generator: stdlib asyncio, HTTP/1.1 keep-alive, one connection per client.

    python -m bench.rest_load --target http://127.0.0.1:8000 --op vote --concurrency 20

Prints a JSON summary (stdout) and a markdown row (stderr).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.parse

from .common import Result, Workload, arguments, prefill, report


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a request and reads the reply."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: application/json\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def build(room: str, op: str, track_id: str) -> tuple[str, str, bytes]:
    base = f"/rooms/{room}"
    if op == "add":
        body = {"id": track_id, "title": "T" * 20, "artist": "A" * 20, "duration": 180}
        return "POST", f"{base}/add_track", json.dumps(body).encode()
    if op == "vote":
        return "POST", f"{base}/vote?id={track_id}&up=true", b""
    if op == "play_next":
        return "POST", f"{base}/play_next", b""
    if op == "queue":
        return "GET", f"{base}/queue?limit=25", b""
    if op == "metadata":
        return "GET", f"{base}/metadata/{track_id}", b""
    raise ValueError(op)


async def run(target: str, room: str, workload: Workload, concurrency: int, requests: int,
              duration: float, warmup: int, label: str, prefilled: int) -> Result:
    url = urllib.parse.urlsplit(target)
    result = Result(label or target, workload.operation, concurrency, prefilled)
    budget = {"warmup": warmup, "left": requests}
    deadline = [0.0]

    async def client() -> None:
        conn = Connection(url.hostname, url.port or 80)
        try:
            while budget["warmup"] > 0:
                budget["warmup"] -= 1
                try:
                    await conn.request(*build(room, *workload.pick()))
                except (OSError, asyncio.IncompleteReadError):
                    conn.close()
            await start.wait()
            while budget["left"] > 0 and time.monotonic() < deadline[0]:
                budget["left"] -= 1
                result.requests += 1
                op, track_id = workload.pick()
                began = time.perf_counter()
                try:
                    status = await conn.request(*build(room, op, track_id))
                except (OSError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    result.errors[type(exc).__name__] += 1
                    continue
                if status == 200:
                    result.latencies.append(time.perf_counter() - began)
                elif status == 404 and workload.operation == "mixed":
                    result.latencies.append(time.perf_counter() - began)
                    result.gone += 1
                else:
                    result.errors[str(status)] += 1
        finally:
            conn.close()

    start = asyncio.Event()
    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    while budget["warmup"] > 0 and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    began = time.monotonic()
    deadline[0] = began + duration
    start.set()
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - began
    return result


def main() -> int:
    args = arguments(__doc__.splitlines()[0], "http://127.0.0.1:8000")
    workload = Workload(args.op, args.prefill)
    if not args.no_prefill:
        needed = workload.tracks_needed(args.requests + args.warmup, args.prefill, args.duration)
        prefill(args.redis_url, args.room, workload, needed)
    import uvloop

    result = uvloop.run(run(args.target, args.room, workload, args.concurrency, args.requests,
                            args.duration, args.warmup, args.label, args.prefill))
    report(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
