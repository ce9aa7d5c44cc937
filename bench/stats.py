"""What the benchmarks read of Redis itself (``INFO``, ``FLUSHALL``), over a plain
blocking socket: the measurements happen between runs, never during one."""

from __future__ import annotations

import socket
from typing import Any

import hiredis


def info(text: str) -> dict[str, str]:
    """``INFO`` text as name -> value."""
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            out[name] = value
    return out


class RedisStats:
    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=120)
        self.reader = hiredis.Reader(encoding="utf-8")

    def command(self, *args: Any) -> Any:
        self.sock.sendall(hiredis.pack_command(args))
        while (reply := self.reader.gets()) is False:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise reply
        return reply

    def cpu(self) -> float:
        """Seconds of CPU Redis has used (user + system): its commands, functions and
        network I/O, which is what bounds how many nodes one Redis serves."""
        stats = info(self.command("INFO", "cpu"))
        return float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])

    def commandstats(self) -> dict[str, tuple[int, int]]:
        """command -> (calls, microseconds) so far."""
        out = {}
        for name, value in info(self.command("INFO", "commandstats")).items():
            fields = dict(part.split("=") for part in value.split(","))
            out[name.removeprefix("cmdstat_")] = (int(fields["calls"]), int(fields["usec"]))
        return out

    def used_memory(self) -> int:
        return int(info(self.command("INFO", "memory"))["used_memory"])

    def flushall(self) -> None:
        self.command("FLUSHALL")

    def close(self) -> None:
        self.sock.close()
