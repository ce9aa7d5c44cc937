"""Redis deployments beyond one server, on free loopback ports, for the tests and the
launcher: a Redis Cluster of three primaries and three replicas. Everything started is
stopped by PID."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT = 30.0


def free_pair() -> int:
    """A port p with p + 10000 free too (a cluster node's bus listens there)."""
    for _ in range(200):
        port = random.randint(20_000, 29_999)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports for a cluster node")


def command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command through redis-cli (inline output); raises if it cannot connect."""
    result = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0 or result.stdout.startswith("Could not connect"):
        raise ConnectionError(result.stdout + result.stderr)
    return result.stdout


def cluster_info(port: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in command(port, "CLUSTER", "INFO").split()
                if ":" in line)


class RedisCluster:
    """``RedisCluster(directory, process_class).start()``: six cluster-enabled redis-servers
    (3 primaries, 3 replicas) and ``redis-cli --cluster create``; ``seeds`` for the nodes'
    REDIS_CLUSTER; ``stop()`` ends them by PID."""

    def __init__(self, directory: Path, process, require, primaries: int = 3,
                 replicas: int = 1, node_timeout_ms: int = 1000, extra: tuple[str, ...] = ()):
        self.dir = directory
        self.process, self.require = process, require
        self.primaries, self.replicas = primaries, replicas
        self.node_timeout_ms = node_timeout_ms
        self.extra = extra
        self.ports: list[int] = []
        self.servers: dict[int, object] = {}

    @property
    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports[:self.primaries])

    def start_node(self, port: int) -> object:
        data = self.dir / f"redis-{port}"
        data.mkdir(exist_ok=True)
        argv = [self.require("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-require-full-coverage", "no",
                "--cluster-allow-reads-when-down", "no",
                "--save", "", "--appendonly", "no", "--dir", str(data),
                "--protected-mode", "no", *self.extra]
        server = self.process(f"redis-{port}", argv, self.dir / f"redis-{port}.log").start()
        self.servers[port] = server
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if command(port, "PING").strip() == "PONG":
                    return server
            except (ConnectionError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster node {port} did not start")
            time.sleep(0.05)

    def start(self) -> RedisCluster:
        self.ports = [free_pair() for _ in range(self.primaries * (1 + self.replicas))]
        for port in self.ports:
            self.start_node(port)
        created = subprocess.run(
            [self.require("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}"
                               f"{created.stderr}")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = START_TIMEOUT) -> None:
        """Until every running node says cluster_state:ok and every slot is served, and
        every replica has synced with its primary (a replica that never did would not take
        over when its primary dies, and WAIT would find no replica)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                running = [p for p, s in self.servers.items() if s.alive()]
                infos = [cluster_info(p) for p in running]
                roles = [command(p, "INFO", "replication") for p in running]
                if all(i.get("cluster_state") == "ok" and i.get("cluster_slots_ok") == "16384"
                       for i in infos) and \
                        all("role:master" in r or "master_link_status:up" in r for r in roles):
                    return
            except (ConnectionError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def primary_ports(self) -> list[int]:
        """Ports of the nodes that are primaries now."""
        out = []
        for port, server in self.servers.items():
            if not server.alive():
                continue
            try:
                if command(port, "ROLE").split()[0] == "master":
                    out.append(port)
            except (ConnectionError, subprocess.TimeoutExpired):
                continue
        return out

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def node_id(port: int) -> str:
    return command(port, "CLUSTER", "MYID").strip()


def slot_owner(port: int, slot: int) -> int:
    """The port of the primary that serves ``slot``, as the node at ``port`` sees it."""
    for line in command(port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
            continue
        for part in fields[8:]:
            if part.startswith("["):
                continue  # a migration in progress, not ownership
            start, _, end = part.partition("-")
            if int(start) <= slot <= int(end or start):
                return int(fields[1].split("@")[0].rsplit(":", 1)[1])
    raise LookupError(f"slot {slot} is not served")


def migrate_slot(slot: int, source: int, target: int, everyone: list[int],
                 batch: int = 50) -> int:
    """Move ``slot`` from the primary at ``source`` to the one at ``target`` as
    ``redis-cli --cluster reshard`` does: IMPORTING, MIGRATING, MIGRATE the keys in
    batches, then the new owner announced to every primary. Returns the keys moved."""
    source_id, target_id = node_id(source), node_id(target)
    command(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    command(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    moved = 0
    while True:
        keys = command(source, "CLUSTER", "GETKEYSINSLOT", str(slot), str(batch)).split()
        if not keys:
            break
        reply = command(source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000",
                        "KEYS", *keys, timeout=10)
        if "OK" not in reply and "NOKEY" not in reply:
            raise RuntimeError(f"MIGRATE failed: {reply}")
        moved += len(keys)
    for port in [target, source, *(p for p in everyone if p not in (source, target))]:
        command(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
    return moved


class RedisSentinel:
    """A primary, a replica and three sentinels watching them (quorum 2), on loopback:
    ``REDIS_SENTINELS`` = ``sentinels``, ``REDIS_SENTINEL_MASTER`` = ``MASTER``."""

    MASTER = "musicq"

    def __init__(self, directory: Path, process, require, down_after_ms: int = 1000,
                 extra: tuple[str, ...] = ()):
        self.dir = directory
        self.process, self.require = process, require
        self.down_after_ms = down_after_ms
        self.extra = extra
        self.servers: dict[int, object] = {}  # the two Redis servers by port
        self.sentinel_processes: dict[int, object] = {}

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_processes)

    def start_server(self, port: int, *replica_of: str) -> object:
        data = self.dir / f"redis-{port}"
        data.mkdir(exist_ok=True)
        argv = [self.require("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(data),
                "--protected-mode", "no", *self.extra]
        if replica_of:
            argv += ["--replicaof", *replica_of]
        server = self.process(f"redis-{port}", argv, self.dir / f"redis-{port}.log").start()
        self.servers[port] = server
        _wait_for(lambda: command(port, "PING").strip() == "PONG", f"redis {port}")
        return server

    def start(self) -> RedisSentinel:
        primary, replica = free_pair(), free_pair()
        self.start_server(primary)
        self.start_server(replica, "127.0.0.1", str(primary))
        for _ in range(3):
            port = free_pair()
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.MASTER} 5000\n"
                f"sentinel parallel-syncs {self.MASTER} 1\n")
            self.sentinel_processes[port] = self.process(
                f"sentinel-{port}", [self.require("redis-server"), str(conf), "--sentinel"],
                self.dir / f"sentinel-{port}.log").start()
        for port in self.sentinel_processes:  # each sees the replica and the other two
            _wait_for(lambda port=port: self.ready(port), f"sentinel {port}")
        return self

    def ready(self, port: int) -> bool:
        seen = command(port, "SENTINEL", "master", self.MASTER)
        return "num-slaves\n1\n" in seen and "num-other-sentinels\n2\n" in seen

    def primary_port(self) -> int:
        port = next(iter(self.sentinel_processes))
        return int(command(port, "SENTINEL", "get-master-addr-by-name",
                           self.MASTER).split()[1])

    def stop(self) -> None:
        for process in [*self.sentinel_processes.values(), *self.servers.values()]:
            process.stop()


def _wait_for(check, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (ConnectionError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.1)
