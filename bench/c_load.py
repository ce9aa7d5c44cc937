"""The C load generators, so that the client is not what is measured: wrk for REST (one
Lua script, ``bench/load.lua``, makes each operation's requests) and h2load for gRPC (a
framed request body; gRPC is HTTP/2 POSTs with ``content-type: application/grpc``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"{binary} is not installed: apt-get install -y {package}")
    return path


def wrk(url: str, op: str, seconds: float, connections: int = 20, room: str = "bench",
        tag: str = "w", targets: int = 10, rooms: int = 0) -> dict[str, Any]:
    """Run one operation against ``url`` for ``seconds`` over ``connections`` keep-alive
    connections (one wrk thread); the summary ``bench/load.lua`` prints. ``rooms``: spread
    over that many rooms, ``<room>-0`` ...."""
    env = {**os.environ, "MQ_OP": op, "MQ_ROOM": room, "MQ_TAG": tag,
           "MQ_TARGETS": str(targets), "MQ_ROOMS": str(rooms)}
    argv = [require("wrk", "wrk"), "-t1", f"-c{connections}", f"-d{seconds:g}s",
            "--timeout", "10s", "-s", str(HERE / "load.lua"), url]
    result = subprocess.run(argv, env=env, capture_output=True, text=True,
                            timeout=seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr or result.stdout}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    summary["ops_per_s"] = round(summary["requests"] / summary["seconds"], 1)
    return summary


def grpc_frame(message: bytes) -> bytes:
    """A gRPC message on the wire: not compressed, its length, its bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load(target: str, path: str, message: bytes, seconds: float,
           clients: int = 20) -> dict[str, Any]:
    """POST one framed gRPC message to ``path`` again and again for ``seconds`` (one
    stream at a time on each of ``clients`` connections, after a second's warm-up)."""
    with tempfile.TemporaryDirectory() as scratch:
        body, log = Path(scratch) / "body", Path(scratch) / "log"
        body.write_bytes(grpc_frame(message))
        argv = [require("h2load", "nghttp2-client"), "-c", str(clients), "-m", "1",
                "-D", f"{seconds:g}", "--warm-up-time", "1", "-d", str(body),
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                "--log-file", str(log), f"http://{target}{path}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if result.returncode != 0:
            raise RuntimeError(f"h2load failed: {result.stderr or result.stdout}")
        latencies = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines()
                           if line.count("\t") >= 2)
    out = result.stdout
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    rate = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    if done is None or rate is None:
        raise RuntimeError(f"unexpected h2load output:\n{out}")

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1000, 3) \
            if latencies else 0.0

    return {"requests": int(done.group(3)), "seconds": float(rate.group(1)),
            "ops_per_s": float(rate.group(2)), "failed": int(done.group(4)),
            "errored": int(done.group(5)), "p50_ms": pct(0.5), "p90_ms": pct(0.9),
            "p99_ms": pct(0.99)}
