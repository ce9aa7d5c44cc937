"""A local cluster on free loopback ports: redis-server, REST nodes, gRPC nodes, nginx.

Used by the tests, and by hand by anyone without Docker:

    python -m tests.cluster --rest 3 --grpc 2

prints the addresses and runs until Ctrl-C. Everything it starts it stops again, by PID,
on Ctrl-C, on SIGTERM, when a test fails, and when the process that started it dies
(children get SIGTERM from the kernel then). nginx runs the repository's nginx.conf, with
the lines that carry a "local" comment rewritten for loopback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .redis_servers import RedisCluster, RedisSentinel

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0
LOCAL_MARKER = "# local:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the launching process dies. (The
    kernel sends it when the *thread* that started the child ends: start processes that
    must outlive a helper thread from the main thread.)"""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def require(binary: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    if path is None:
        raise RuntimeError(f"{binary} is not installed: apt-get install -y redis-server nginx")
    return path


class Process:
    """One started program: its PID, its log file, and how to stop it."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None,
                 cwd: Path = ROOT):
        self.name, self.argv, self.log, self.env, self.cwd = name, argv, log, env, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 8.0) -> None:
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(5)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")


def _wait(check, what: str, process: Process, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        process.check_alive()
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s:\n{process.tail()}")
        time.sleep(0.05)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return reply.status == 200


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def render_nginx(template: str, **values: str) -> str:
    """Replace each line of nginx.conf that ends in a "local" comment by that comment's
    text, formatted with ``values``."""
    out = []
    for line in template.splitlines():
        head, marker, replacement = line.partition(LOCAL_MARKER)
        if not marker:
            out.append(line)
            continue
        text = replacement.strip().format(**values)
        if text:
            indent = re.match(r"\s*", head).group(0)
            out.append(indent + text)
    return "\n".join(out) + "\n"


class Cluster:
    """Start with ``with Cluster(rest=2) as c:`` (or start()/stop()); see the attributes
    for addresses: ``api_url`` (through nginx), ``rest_urls``, ``grpc_targets``,
    ``redis_url``."""

    def __init__(self, rest: int = 2, grpc: int = 0, nginx: bool = True,
                 env: dict | None = None, redis_args: tuple[str, ...] = (),
                 redis_url: str | None = None, rate_limits: bool = False,
                 redis_cluster: bool = False, redis_sentinel: bool = False):
        self.rest_count, self.grpc_count, self.with_nginx = rest, grpc, nginx
        self.redis_cluster: RedisCluster | None = None
        self.wants_redis_cluster = redis_cluster
        self.redis_sentinel: RedisSentinel | None = None
        self.wants_redis_sentinel = redis_sentinel
        self.rate_limits = rate_limits
        self.extra_env = dict(env or {})
        self.redis_args = tuple(redis_args)
        self.external_redis = redis_url
        self.dir = Path(tempfile.mkdtemp(prefix="mq-cluster-"))
        self.redis: Process | None = None
        self.redis_port = 0
        self.rest: list[Process] = []
        self.rest_ports: list[int] = []
        self.grpc: list[Process] = []
        self.grpc_ports: list[int] = []
        self.nginx: Process | None = None
        self.nginx_port = 0
        self._names = 0

    # -- addresses -----------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        if self.redis_cluster is not None:
            return f"redis://127.0.0.1:{self.redis_cluster.ports[0]}/0"
        if self.redis_sentinel is not None:
            return f"redis://127.0.0.1:{self.redis_sentinel.primary_port()}/0"
        return self.external_redis or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def rest_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.rest_ports]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}" if self.nginx else self.rest_urls[0]

    @property
    def grpc_targets(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.grpc_ports]

    @property
    def grpc_target(self) -> str:
        """All gRPC nodes, for a round-robin channel."""
        return "ipv4:" + ",".join(self.grpc_targets)

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> Cluster:
        atexit.register(self.stop)
        try:
            if self.wants_redis_cluster:
                self.redis_cluster = RedisCluster(self.dir, Process, require,
                                                  extra=self.redis_args).start()
            elif self.wants_redis_sentinel:
                self.redis_sentinel = RedisSentinel(self.dir, Process, require,
                                                    extra=self.redis_args).start()
            elif self.external_redis is None:
                self.start_redis()
            for _ in range(self.rest_count):
                self.add_rest_node()
            for _ in range(self.grpc_count):
                self.add_grpc_node()
            if self.with_nginx and self.rest_count:
                self.start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in [self.nginx, *self.rest, *self.grpc, self.redis]:
            if process is not None:
                process.stop()
        for deployment in (self.redis_cluster, self.redis_sentinel):
            if deployment is not None:
                deployment.stop()
        atexit.unregister(self.stop)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- pieces --------------------------------------------------------------------

    def start_redis(self, port: int | None = None, extra: tuple[str, ...] = (),
                    loaded: bool = True) -> Process:
        """Start (or restart, on the same port and data directory) the redis-server, and
        wait until it answers PING (``loaded``) or merely accepts connections (while it may
        still be loading its data)."""
        self.redis_port = port or self.redis_port or free_port()
        argv = [require("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--protected-mode", "no", *self.redis_args, *extra]
        self.redis = Process("redis", argv, self.dir / "redis.log").start()
        ready = redis_ping if loaded else _port_open
        _wait(lambda: ready(self.redis_port), "redis-server", self.redis)
        return self.redis

    def node_env(self, **overrides: str) -> dict:
        env = dict(os.environ)
        for name in ("API_URL", "GRPC_TARGET"):
            env.pop(name, None)
        # (GUEST_JOINS_PER_MINUTE: every test's guests join from 127.0.0.1)
        env.update(HOST="127.0.0.1", PYTHONUNBUFFERED="1", LOG_LEVEL="warning",
                   GUEST_JOINS_PER_MINUTE="100000", **self.redis_env())
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def redis_env(self) -> dict[str, str]:
        """The settings that point a node at this cluster's Redis, whatever its kind."""
        env = {"REDIS_URL": self.redis_url}
        if self.redis_cluster is not None:
            env["REDIS_CLUSTER"] = self.redis_cluster.seeds
        if self.redis_sentinel is not None:
            env["REDIS_SENTINELS"] = self.redis_sentinel.sentinels
            env["REDIS_SENTINEL_MASTER"] = self.redis_sentinel.MASTER
        return env

    def _name(self, kind: str) -> str:
        self._names += 1
        return f"{kind}-{self._names}"

    def add_rest_node(self, port: int | None = None, **env: str) -> Process:
        port = port or free_port()
        name = env.pop("NODE_ID", None) or self._name("rest")
        process = Process(name, [sys.executable, "-m", "rest"], self.dir / f"{name}.log",
                          self.node_env(PORT=str(port), NODE_ID=name, **env)).start()
        self.rest.append(process)
        self.rest_ports.append(port)
        _wait(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), name, process)
        return process

    def add_grpc_node(self, port: int | None = None, **env: str) -> Process:
        port = port or free_port()
        name = env.pop("NODE_ID", None) or self._name("grpc")
        process = Process(name, [sys.executable, "-m", "grpc_svc.server"],
                          self.dir / f"{name}.log",
                          self.node_env(GRPC_PORT=str(port), NODE_ID=name, **env)).start()
        self.grpc.append(process)
        self.grpc_ports.append(port)
        _wait(lambda: _port_open(port), name, process)
        return process

    def start_nginx(self) -> Process:
        self.nginx_port = self.nginx_port or free_port()
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.dir.chmod(0o755)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            path = self.dir / "tmp" / sub
            path.mkdir(exist_ok=True)
            path.chmod(0o777)
        servers = " ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in self.rest_ports)
        config = render_nginx((ROOT / "nginx.conf").read_text(), dir=str(self.dir),
                              servers=servers, listen=f"127.0.0.1:{self.nginx_port}",
                              user="user root;" if os.geteuid() == 0 else "")
        conf = self.dir / "nginx.conf"
        conf.write_text(config)
        # Off unless asked: the tests and benchmarks send far more than one person would.
        limits = "on" if self.rate_limits else "off"
        shutil.copy(ROOT / f"nginx.rate-limits.{limits}.conf", self.dir / "rate-limits.conf")
        argv = [require("nginx"), "-p", str(self.dir), "-c", str(conf), "-e", "stderr",
                "-g", "daemon off;"]
        self.nginx = Process("nginx", argv, self.dir / "nginx.log").start()
        _wait(lambda: http_ok(f"{self.api_url}/healthz"), "nginx", self.nginx)
        return self.nginx

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every REST node answers /readyz (Redis reachable)."""
        for process, url in zip(self.rest, self.rest_urls, strict=True):
            _wait(lambda url=url: http_ok(f"{url}/readyz"), process.name, process, timeout)


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rest", type=int, default=2, help="REST nodes (default 2)")
    parser.add_argument("--grpc", type=int, default=0, help="gRPC nodes (default 0)")
    parser.add_argument("--no-nginx", action="store_true", help="no load balancer")
    parser.add_argument("--redis-cluster", action="store_true",
                        help="a Redis Cluster (3 primaries, 3 replicas) instead of one Redis")
    parser.add_argument("--redis-sentinel", action="store_true",
                        help="a primary, a replica and three sentinels instead of one Redis")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the nodes (repeatable)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    signal.signal(signal.SIGTERM, _interrupt)
    with Cluster(rest=args.rest, grpc=args.grpc, nginx=not args.no_nginx, env=env,
                 redis_cluster=args.redis_cluster, redis_sentinel=args.redis_sentinel) as cluster:
        if cluster.redis_cluster is not None:
            for port, server in cluster.redis_cluster.servers.items():
                print(f"redis      127.0.0.1:{port}  (pid {server.pid}, cluster node)")
        elif cluster.redis_sentinel is not None:
            for port, server in cluster.redis_sentinel.servers.items():
                print(f"redis      127.0.0.1:{port}  (pid {server.pid})")
            for port, sentinel in cluster.redis_sentinel.sentinel_processes.items():
                print(f"sentinel   127.0.0.1:{port}  (pid {sentinel.pid}, "
                      f"master name {cluster.redis_sentinel.MASTER})")
        else:
            print(f"redis      {cluster.redis_url}")
        for process, url in zip(cluster.rest, cluster.rest_urls, strict=True):
            print(f"{process.name:<10} {url}  (pid {process.pid})")
        for process, target in zip(cluster.grpc, cluster.grpc_targets, strict=True):
            print(f"{process.name:<10} {target}  (pid {process.pid})")
        if cluster.nginx:
            print(f"nginx      {cluster.api_url}  (pid {cluster.nginx.pid})")
            print(f"\nTry: curl {cluster.api_url}/queue   or   API_URL={cluster.api_url} "
                  "python -m unittest")
        if cluster.grpc:
            print(f"     GRPC_TARGET={cluster.grpc_target} python -m grpc_svc.client queue")
        print("Ctrl-C stops everything.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.alive() for p in [*cluster.rest, *cluster.grpc, cluster.redis]
                      if p is not None):
                time.sleep(0.5)
            print("a process exited; stopping the cluster", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
