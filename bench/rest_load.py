"""REST load generator: stdlib asyncio, HTTP/1.1 keep-alive, one connection per client.

    python -m bench.rest_load --target http://127.0.0.1:8000 --op vote --concurrency 20

Prints a JSON summary (stdout) and a markdown row (stderr).
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.parse

from .common import GONE, OK, Workload, drive, main


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


async def load(args, workload: Workload):
    url = urllib.parse.urlsplit(args.target)
    mixed = workload.operation == "mixed"
    connections = [Connection(url.hostname, url.port or 80) for _ in range(args.concurrency)]

    def client(conn: Connection):
        async def call(op: str, track_id: str) -> str:
            try:
                status = await conn.request(*build(args.room, op, track_id))
            except (OSError, asyncio.IncompleteReadError) as exc:
                conn.close()
                return type(exc).__name__
            if status == 200:
                return OK
            return GONE if status == 404 and mixed else str(status)
        return call

    try:
        return await drive(workload, args, args.label or args.target,
                           [client(conn) for conn in connections])
    finally:
        for conn in connections:
            conn.close()


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], "http://127.0.0.1:8000", load))
