"""What a function's pieces cost this Redis: ``python -m bench.lua_cost``.

Starts a redis-server on a free port and reads ``INFO cpu`` around 20,000 pipelined calls
(batches of 50 on one connection) of each: an empty script, scripts of five calls of one
command, the same with 16 keys or 16 arguments, a script returning a 12-element table,
and two single commands whose reply is a double. These are the yardsticks the README's
"Redis work per operation" reads a write's cost against.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import hiredis

from tests.cluster import free_port, require

CASES: dict[str, tuple[Any, ...]] = {
    "an empty script": ("EVAL", "return 1", 0),
    "1 INCR": ("EVAL", "redis.call('INCR', KEYS[1]) return 1", 1, "k"),
    "5 INCR": ("EVAL", "for i=1,5 do redis.call('INCR', KEYS[1]) end return 1", 1, "k"),
    "5 HGET": ("EVAL", "for i=1,5 do redis.call('HGET', KEYS[1], 'a') end return 1", 1, "h"),
    "5 ZSCORE": ("EVAL", "for i=1,5 do redis.call('ZSCORE', KEYS[1], 'a') end return 1",
                 1, "z"),
    "5 ZINCRBY": ("EVAL", "for i=1,5 do redis.call('ZINCRBY', KEYS[1], 1, 'a') end return 1",
                  1, "z"),
    "5 PUBSUB SHARDNUMSUB": ("EVAL", "for i=1,5 do redis.call('PUBSUB', 'SHARDNUMSUB', 'c') "
                             "end return 1", 0),
    "1 INCR, 16 keys": ("EVAL", "redis.call('INCR', KEYS[1]) return 1", 16,
                        *(f"k{i}" for i in range(16))),
    "1 INCR, 16 arguments": ("EVAL", "redis.call('INCR', KEYS[1]) return 1", 1, "k",
                             *(f"a{i}" for i in range(16))),
    "1 INCR, a 12-element reply": ("EVAL", "redis.call('INCR', KEYS[1]) return {'ok', "
                                   "'vote', 1, '', '', '', 't19', '-667', "
                                   "'0000000000020TTTTTTTTTTTTTTTTTTTT', '', '', ''}", 1, "k"),
    "1 INCR, the same as one string": ("EVAL", "redis.call('INCR', KEYS[1]) return "
                                       "table.concat({'ok', 'vote', 1, '', '', '', 't19', "
                                       "'-667', '0000000000020TTTTTTTTTTTTTTTTTTTT', '', '', "
                                       "''}, '\\30')", 1, "k"),
    "ZINCRBY (a double reply)": ("ZINCRBY", "z", 1, "a"),
    "PING": ("PING",),
}


def main() -> int:
    port = free_port()
    server = subprocess.Popen([require("redis-server"), "--port", str(port), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        reader = hiredis.Reader()

        def run(commands: list[tuple[Any, ...]]) -> list[Any]:
            sock.sendall(b"".join(hiredis.pack_command(c) for c in commands))
            out: list[Any] = []
            while len(out) < len(commands):
                reader.feed(sock.recv(1 << 20))
                while (reply := reader.gets()) is not False:
                    out.append(reply)
            return out

        def cpu() -> float:
            text = run([("INFO", "cpu")])[0].decode()
            fields = dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)
            return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])

        run([("ZADD", "z", 0, "a"), ("HSET", "h", "a", "x" * 60)])
        print("| call | Redis CPU us |\n| --- | ---: |")
        for name, command in CASES.items():
            before, calls = cpu(), 20_000
            for _ in range(calls // 50):
                run([command] * 50)
            print(f"| {name} | {(cpu() - before) * 1e6 / calls:.2f} |", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
