"""Redis Cluster clients on the node's own workload: ours (``shared.store``) against
redis-py's asyncio ``RedisCluster`` (hiredis), coredis' ``RedisCluster`` and valkey-glide's
``GlideClusterClient`` (issue 12, point 2).

    python -m bench.clients [--seconds 5] [--clients ours,redis-py,coredis,glide]
                            [--fail-seconds 15] [--no-failover]

Starts a Redis Cluster (3 primaries + 3 replicas, ``tests.redis_servers.RedisCluster``),
loads the function library on every primary with the node's own code
(``Cluster.ensure_library``), then runs each client in a process of its own. Every client
is wrapped as a ``shared.store.client.Client`` (``_run``: one command, or one MULTI/EXEC),
so the workload is the node's code itself, ``shared.queue.Queue``:

* write: ``Queue.add`` = one MULTI / FCALL add_<v> (the keys and args the node passes) /
  ZCARD / ZRANGE 0 24 WITHSCORES / EXEC, (HMGET only for records the Queue lacks);
* read: ``Queue.page(room, 0, 25)`` with the Queue's record cache off = one MULTI / GET /
  ZCARD / ZRANGE 0 24 WITHSCORES / EXEC, then HMGET of the 25 records;

20 asyncio tasks (uvloop, as the nodes run) for ``--seconds`` each, over 100 rooms (all
three shards), after one second of warm-up. Reported per client: ops/s, p50/p99 latency,
the process's CPU seconds per 1000 ops (``time.process_time``: every thread, so a client's
own I/O threads count too).

Then a failure check per client: the same writes (a fresh track id each, no idempotency
key, so that a write the client sent twice answers "duplicate") for ``--fail-seconds``,
one primary ``kill -9``-ed (by its PID) after 3 s. Recorded: calls stuck > 2 s (each call
is bounded at 10 s), writes the client ran twice (the second answered "duplicate"), writes
acknowledged but not stored (lost with the primary: replication is asynchronous), writes
that failed but were stored (the 503 a caller retries with an idempotency key), how long
after the kill the shard served a write again, and whether the client served it without a
restart. The killed server is started again (it rejoins as a replica) before the next
client. Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared import functions
from shared.config import Settings
from shared.errors import DuplicateTrack, QueueError, StoreUnavailable
from shared.queue import Queue
from shared.store.address import Address
from shared.store.client import Client, ReplyError
from shared.store.cluster import Cluster, slot_of
from shared.store.pipe import Command
from shared.validation import NewTrack

CLIENTS = ("ours", "redis-py", "coredis", "glide")
TASKS = 20
ROOMS = 100
HEAD = 25
TIMEOUT = 0.75  # the node's REDIS_TIMEOUT: each client's request timeout where it has one
CALL_BOUND = 10.0  # seconds a failure-check call may take before it counts as hung
STUCK = 2.0
KILL_AFTER = 3.0


# -- the candidates, each as the node's Client ----------------------------------------------

def _keys(command: Command) -> list[int]:
    """Positions of a command's keys (the queue's commands name their key first)."""
    if command[0] in ("FCALL", "FCALL_RO"):
        return list(range(3, 3 + int(command[2])))
    return [1]


class Ours(Cluster):
    name = "ours"

    def __init__(self, seeds: Sequence[tuple[str, int]]):
        super().__init__([Address.from_url(f"redis://{h}:{p}") for h, p in seeds], TIMEOUT,
                         functions.SOURCE)

    async def start(self) -> None:
        await self.refresh()


class RedisPy(Client):
    """redis-py's asyncio RedisCluster (hiredis parser, RESP2, decoded replies); a
    transaction is its ``pipeline(transaction=True)`` (see ``_run`` for how commands are
    queued in it)."""

    name = "redis-py"

    def __init__(self, seeds: Sequence[tuple[str, int]]):
        super().__init__(TIMEOUT, functions.SOURCE)
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        self.rc = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds],
                               decode_responses=True, socket_timeout=TIMEOUT,
                               socket_connect_timeout=TIMEOUT, protocol=2)

    async def start(self) -> None:
        await self.rc.initialize()

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        from redis.exceptions import ClusterError, RedisError, ResponseError

        try:
            if multi:
                pipe = self.rc.pipeline(transaction=True)
                for command in commands:
                    # the public pipe.execute_command runs this coroutine in a new thread
                    # with an event loop of its own (asyncio.run) for every command queued,
                    # which fails under concurrency ("attached to a different loop"):
                    # await it on the node's loop instead
                    await pipe._execution_strategy._execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
                return [ReplyError(str(r)) if isinstance(r, Exception) else r for r in replies]
            return await self.rc.execute_command(*commands[0])
        except ResponseError as exc:
            if isinstance(exc, ClusterError):
                raise StoreUnavailable(type(exc).__name__) from exc
            return ReplyError(str(exc))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def everywhere(self, command: Command) -> list[Any]:
        from redis.asyncio.cluster import RedisCluster

        return list((await self.rc.execute_command(
            *command, target_nodes=RedisCluster.PRIMARIES)).values())

    async def aclose(self) -> None:
        await self.rc.aclose()


class Coredis(Client):
    """coredis' RedisCluster (RESP3 only since 6.0; decoded replies); a transaction is its
    ``pipeline(transaction=True)``. Raw commands go through ``create_request`` with keys
    marked as ``Key`` (for routing) and no reply conversion; a RESP3 ZRANGE WITHSCORES
    (pairs, float scores) is flattened back to what the node reads."""

    name = "coredis"

    def __init__(self, seeds: Sequence[tuple[str, int]]):
        super().__init__(TIMEOUT, functions.SOURCE)
        from coredis import RedisCluster
        from coredis.response._callbacks import NoopCallback
        from coredis.typing import Key

        self.Key, self.noop = Key, NoopCallback()
        self.rc = RedisCluster(startup_nodes=[{"host": h, "port": p} for h, p in seeds],
                               decode_responses=True, stream_timeout=TIMEOUT,
                               connect_timeout=TIMEOUT)

    async def start(self) -> None:
        await self.rc.__aenter__()

    def _args(self, command: Command) -> list[Any]:
        keyed = _keys(command)
        return [self.Key(a) if i in keyed else a for i, a in enumerate(command) if i]

    @staticmethod
    def _flat(command: Command, reply: Any) -> Any:
        if command[0] == "ZRANGE" and isinstance(reply, list) and reply and \
                isinstance(reply[0], list):
            return [str(x) for pair in reply for x in pair]
        return reply

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        from coredis.exceptions import RedisClusterError, RedisError, ResponseError

        try:
            if multi:
                pipe = self.rc.pipeline(transaction=True, raise_on_error=False)
                async with pipe:
                    for command in commands:
                        pipe.create_request(command[0].encode(), *self._args(command),
                                            callback=self.noop)
                return [ReplyError(str(r)) if isinstance(r, Exception) else self._flat(c, r)
                        for c, r in zip(commands, pipe.results or (), strict=True)]
            command = commands[0]
            return self._flat(command, await self.rc.create_request(
                command[0].encode(), *self._args(command), callback=self.noop))
        except ResponseError as exc:
            if isinstance(exc, RedisClusterError):
                raise StoreUnavailable(type(exc).__name__) from exc
            return ReplyError(str(exc))
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def everywhere(self, command: Command) -> list[Any]:
        out = []
        for primary in self.rc.primaries:
            out.append(await primary.create_request(command[0].encode(), *command[1:],
                                                    callback=self.noop))
        return out

    async def aclose(self) -> None:
        await self.rc.__aexit__(None, None, None)


def _decode(reply: Any) -> Any:
    if type(reply) is bytes:
        return reply.decode()
    if type(reply) is list:
        return [_decode(x) for x in reply]
    if type(reply) is dict:  # ZRANGE WITHSCORES comes as {member: score}: flatten it
        return [str(x) if type(x) is float else _decode(x)
                for pair in reply.items() for x in pair]
    return reply


class Glide(Client):
    """valkey-glide's GlideClusterClient (RESP2, request_timeout 750 ms); a transaction
    is an atomic ``ClusterBatch`` of custom commands. Its replies are bytes: decoded here
    (the node's code works on str)."""

    name = "glide"

    def __init__(self, seeds: Sequence[tuple[str, int]]):
        super().__init__(TIMEOUT, functions.SOURCE)
        self.seeds = seeds
        self.client: Any = None

    async def start(self) -> None:
        from glide import (
            GlideClusterClient,
            GlideClusterClientConfiguration,
            NodeAddress,
            ProtocolVersion,
        )

        config = GlideClusterClientConfiguration(
            [NodeAddress(h, p) for h, p in self.seeds], request_timeout=int(TIMEOUT * 1000),
            protocol=ProtocolVersion.RESP2)
        self.client = await GlideClusterClient.create(config)

    async def _run(self, commands: Sequence[Command], multi: bool, confirm: bool = False
                   ) -> Any:
        from glide import ClusterBatch, GlideError, RequestError

        try:
            if multi:
                batch = ClusterBatch(is_atomic=True)
                for command in commands:
                    batch.custom_command([str(a) for a in command])
                replies = await self.client.exec(batch, raise_on_error=False)
                if replies is None:
                    return ReplyError("EXECABORT")
                return [ReplyError(str(r)) if isinstance(r, Exception) else _decode(r)
                        for r in replies]
            return _decode(await self.client.custom_command([str(a) for a in commands[0]]))
        except RequestError as exc:
            if type(exc) is not RequestError:  # TimeoutError, ConnectionError, ...
                raise StoreUnavailable(type(exc).__name__) from exc
            return ReplyError(str(exc))
        except GlideError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def everywhere(self, command: Command) -> list[Any]:
        from glide import AllPrimaries

        reply = await self.client.custom_command([str(a) for a in command], AllPrimaries())
        return list(reply.values()) if isinstance(reply, dict) else [reply]

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()


KINDS = {k.name: k for k in (Ours, RedisPy, Coredis, Glide)}


class ColdQueue(Queue):
    """The node's read path with its record cache off: every page reads its records."""

    def _keep(self, room: str, member: str, record: str) -> None:
        pass


def settings() -> Settings:
    return Settings(max_queue=10_000_000)


def new_track(tag: str) -> NewTrack:
    return NewTrack(tag, "A title", "An artist", 180)


# -- the workers (one process per client) --------------------------------------------------

async def _measure(work, seconds: float) -> dict[str, Any]:
    """``TASKS`` tasks calling ``work(task, n)`` for one warm-up second, then ``seconds``."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    state = {"measuring": False, "stop": False}

    async def task(i: int) -> None:
        n = 0
        while not state["stop"]:
            n += 1
            t0 = time.perf_counter()
            try:
                await work(i, n)
            except (QueueError, StoreUnavailable) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if state["measuring"]:
                latencies.append(time.perf_counter() - t0)

    tasks = [asyncio.create_task(task(i)) for i in range(TASKS)]
    await asyncio.sleep(1.0)
    state["measuring"] = True
    cpu0, t0, n0 = time.process_time(), time.perf_counter(), len(latencies)
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    ops = len(latencies) - n0
    state["stop"] = True
    await asyncio.wait(tasks, timeout=5)
    lat = sorted(latencies[:ops])
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {"ops": ops, "ops_per_s": round(ops / wall), "p50_ms": round(q[49] * 1e3, 2),
            "p99_ms": round(q[98] * 1e3, 2),
            "cpu_s_per_1000": round(cpu * 1000 / max(1, ops), 4), "errors": errors}


async def bench_worker(kind: str, seeds: list[tuple[str, int]], seconds: float) -> dict:
    client = KINDS[kind](seeds)
    await client.start()
    try:
        writer, reader = Queue(client, settings()), ColdQueue(client, settings())
        run = uuid.uuid4().hex[:6]
        rooms = [f"b{run}-{i}" for i in range(ROOMS)]
        for room in rooms:  # prefill: the head holds 25 tracks
            await asyncio.gather(*(writer.add(room, new_track(f"p{j}"), head=0)
                                   for j in range(HEAD)))

        async def write(task: int, n: int) -> None:
            await writer.add(rooms[(task * 7 + n) % ROOMS], new_track(f"t{task}-{n}"))

        async def read(task: int, n: int) -> None:
            page = await reader.page(rooms[(task * 7 + n) % ROOMS], 0, HEAD)
            if len(page.tracks) != HEAD:
                raise QueueError(f"a page of {len(page.tracks)} tracks")

        return {"write": await _measure(write, seconds), "read": await _measure(read, seconds)}
    finally:
        await client.aclose()


async def fail_worker(kind: str, seeds: list[tuple[str, int]], seconds: float,
                      victim_pid: int, rooms: list[str]) -> dict:
    client = KINDS[kind](seeds)
    await client.start()
    queue = Queue(client, settings())
    calls: list[tuple[float, float, str, str, str]] = []  # start, took, room, id, outcome
    stop = False
    t_start = time.perf_counter()

    async def task(i: int) -> None:
        n = 0
        while not stop:
            n += 1
            room, track_id = rooms[(i * 7 + n) % len(rooms)], f"f{i}-{n}"
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(queue.add(room, new_track(track_id)), CALL_BOUND)
                outcome = "ok"
            except TimeoutError:
                outcome = "hung"
            except DuplicateTrack:
                outcome = "duplicate"
            except StoreUnavailable as exc:
                outcome = f"unavailable:{exc.detail}"
            except Exception as exc:
                outcome = f"error:{type(exc).__name__}:{str(exc)[:80]}"
            t1 = time.perf_counter()
            calls.append((t0 - t_start, t1 - t0, room, track_id, outcome))
            if outcome != "ok":
                await asyncio.sleep(0.01)  # as a caller backs off after a 503

    tasks = [asyncio.create_task(task(i)) for i in range(TASKS)]
    await asyncio.sleep(KILL_AFTER)
    killed_at = time.perf_counter() - t_start
    if victim_pid:
        os.kill(victim_pid, signal.SIGKILL)  # (0: the conductor moves a slot instead)
    await asyncio.sleep(seconds - KILL_AFTER)
    stop = True
    await asyncio.wait(tasks, timeout=CALL_BOUND + 5)
    try:
        await client.aclose()
    except Exception as exc:
        print(f"{kind}: close failed: {exc!r}", file=sys.stderr)
    return {"killed_at": killed_at, "calls": calls}


# -- the conductor ----------------------------------------------------------------------

def run_worker(argv: list[str], timeout: float) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.clients", *argv], capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"worker {argv[:3]} failed:\n{out.stderr[-3000:]}")
    if out.stderr.strip():
        print(out.stderr.strip()[-2000:], file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _with_ours(seeds, action):
    client = Ours(seeds)
    try:
        await client.start()
        return await action(client)
    finally:
        await client.aclose()


def judge(result: dict, victim_rooms: set[str], stored: set[tuple[str, str]]) -> dict:
    killed_at, calls = result["killed_at"], result["calls"]
    on_victim = [c for c in calls if c[2] in victim_rooms]
    others = [c for c in calls if c[2] not in victim_rooms]
    served = [c[0] + c[1] for c in on_victim if c[4] == "ok" and c[0] > killed_at]
    failed_after = [c for c in on_victim if c[4] != "ok" and c[0] + c[1] > killed_at]
    end = max(c[0] + c[1] for c in calls)
    acked = {(c[2], c[3]) for c in calls if c[4] == "ok"}
    failed = {(c[2], c[3]) for c in calls if c[4] not in ("ok", "duplicate")}
    outcomes: dict[str, int] = {}
    for c in calls:
        key = c[4][:100] if c[4].startswith("error:") else c[4]
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "writes": len(calls),
        "outcomes": outcomes,
        "stuck_over_2s": sum(1 for c in calls if c[1] > STUCK),
        "longest_call_s": round(max(c[1] for c in calls), 2),
        "sent_twice": sum(1 for c in calls if c[4] == "duplicate"),
        "acked_lost": len(acked - stored),
        "failed_but_stored": len(failed & stored),
        "served_again_s": round(min(served) - killed_at, 2) if served else None,
        "last_failure_s": round(max(c[0] + c[1] for c in failed_after) - killed_at, 2)
        if failed_after else None,
        "recovered": any(c[4] == "ok" and c[0] > end - 2.0 for c in on_victim),
        "failed_on_other_shards": sum(1 for c in others if c[4] != "ok"),
    }


def conductor(args: argparse.Namespace) -> int:
    from tests.cluster import Process, require
    from tests.redis_servers import RedisCluster

    kinds = [k for k in args.clients.split(",") if k]
    out: dict[str, Any] = {"tasks": TASKS, "rooms": ROOMS, "seconds": args.seconds,
                           "bench": {}, "moved": {}, "failover": {}}
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        cluster = RedisCluster(Path(tmp), Process, require)
        try:
            cluster.start()
            seeds = [("127.0.0.1", p) for p in cluster.ports[:3]]
            seed_arg = ",".join(f"{h}:{p}" for h, p in seeds)
            asyncio.run(_with_ours(seeds, lambda c: c.ensure_library()))
            for kind in kinds:
                print(f"bench {kind} ...", file=sys.stderr)
                try:
                    out["bench"][kind] = run_worker(
                        ["--worker", "bench", "--client", kind, "--seeds", seed_arg,
                         "--seconds", str(args.seconds)], timeout=4 * args.seconds + 120)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    out["bench"][kind] = {"error": str(exc)[-1500:]}
                print(json.dumps({kind: out["bench"][kind]}), file=sys.stderr)
            if args.migrate:
                for kind in kinds:
                    try:
                        out["moved"][kind] = moved(cluster, kind, args.fail_seconds)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        out["moved"][kind] = {"error": str(exc)[-1500:]}
                    print(json.dumps({kind: out["moved"][kind]}), file=sys.stderr)
            if not args.no_failover:
                for n, kind in enumerate(kinds):
                    try:
                        out["failover"][kind] = failover(cluster, kind, n, args.fail_seconds)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        out["failover"][kind] = {"error": str(exc)[-1500:]}
                    print(json.dumps({kind: out["failover"][kind]}), file=sys.stderr)
        finally:
            cluster.stop()
    report(out)
    return 0


def moved(cluster, kind: str, seconds: float) -> dict:
    """The same writes for ``seconds``; after 3 s the slot of the busiest room (a fifth of
    the writes) moves to another primary (``migrate_slot``: IMPORTING/MIGRATING, MIGRATE
    key by key, SETSLOT NODE), so the client meets ASK and then MOVED."""
    from tests.redis_servers import migrate_slot, slot_owner

    tag = uuid.uuid4().hex[:4]
    hot = f"mv{tag}-hot"
    rooms = [hot] * 20 + [f"mv{tag}-{i}" for i in range(ROOMS - 20)]
    primaries = cluster.primary_ports()
    slot = slot_of(f"mq:{{{hot}}}:queue")
    source = slot_owner(primaries[0], slot)
    target = next(p for p in primaries if p != source)
    seed_arg = ",".join(f"127.0.0.1:{p}" for p in primaries)
    worker = subprocess.Popen(
        [sys.executable, "-m", "bench.clients", "--worker", "fail", "--client", kind,
         "--seeds", seed_arg, "--fail-seconds", str(seconds), "--victim-pid", "0",
         "--rooms", ",".join(rooms)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        time.sleep(KILL_AFTER + 0.5)  # the worker's start, then its first 3 s
        started = time.monotonic()
        keys = migrate_slot(slot, source, target, primaries, batch=1)
        took = time.monotonic() - started
        stdout, stderr = worker.communicate(timeout=seconds + 60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
    if worker.returncode != 0:
        raise RuntimeError(f"worker failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])

    async def stored(client: Ours) -> set[tuple[str, str]]:
        got: set[tuple[str, str]] = set()
        for room in set(rooms):
            ids = await client.execute("HKEYS", f"mq:{{{room}}}:tracks")
            got.update((room, i) for i in ids)
        return got

    held = asyncio.run(_with_ours([("127.0.0.1", p) for p in primaries], stored))
    verdict = judge(result, {hot}, held)
    verdict.update({"keys_moved": keys, "move_took_s": round(took, 2)})
    return verdict


def failover(cluster, kind: str, n: int, seconds: float) -> dict:
    victim = sorted(cluster.primary_ports())[n % 3]
    pid = cluster.servers[victim].pid
    seeds = [("127.0.0.1", p) for p in cluster.primary_ports()]
    seed_arg = ",".join(f"{h}:{p}" for h, p in seeds)
    rooms = [f"fo{n}{uuid.uuid4().hex[:4]}-{i}" for i in range(ROOMS)]

    async def on_victim(client: Ours) -> set[str]:
        return {r for r in rooms
                if client.slots[slot_of(f"mq:{{{r}}}:queue")].port == victim}

    victim_rooms = asyncio.run(_with_ours(seeds, on_victim))
    print(f"failover {kind}: kill -9 {pid} (port {victim}, {len(victim_rooms)} rooms)",
          file=sys.stderr)
    try:
        result = run_worker(["--worker", "fail", "--client", kind, "--seeds", seed_arg,
                             "--fail-seconds", str(seconds), "--victim-pid", str(pid),
                             "--rooms", ",".join(rooms)], timeout=seconds + 90)
    finally:
        if cluster.servers[victim].alive():
            cluster.servers[victim].kill()
        cluster.wait_ok(60)  # the replica promoted
        alive = [("127.0.0.1", p) for p in cluster.primary_ports()]

        async def stored(client: Ours) -> set[tuple[str, str]]:
            got: set[tuple[str, str]] = set()
            for room in rooms:
                ids = await client.execute("HKEYS", f"mq:{{{room}}}:tracks")
                got.update((room, i) for i in ids)
            return got

        held = asyncio.run(_with_ours(alive, stored))
        cluster.start_node(victim)  # back as a replica of the promoted one
        cluster.wait_ok(60)
    verdict = judge(result, victim_rooms, held)
    verdict["victim_rooms"] = len(victim_rooms)
    return verdict


def report(out: dict) -> None:
    versions = {}
    for package in ("redis", "coredis", "valkey-glide", "hiredis", "uvloop"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = None
    out["versions"] = versions
    print("| client | op | ops/s | p50 ms | p99 ms | CPU s / 1000 ops | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for kind, result in out["bench"].items():
        if "error" in result:
            print(f"| {kind} | - | failed: see the JSON | | | | |")
            continue
        for op in ("write", "read"):
            r = result[op]
            print(f"| {kind} | {op} | {r['ops_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r['cpu_s_per_1000']} | {r['errors'] or ''} |")
    if out["moved"]:
        print()
        print("| client (slot moved) | writes | outcomes | sent twice | acked, lost | "
              "failed on the moved room | stuck > 2 s |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
        for kind, v in out["moved"].items():
            if "error" in v:
                print(f"| {kind} | failed: see the JSON | | | | | |")
                continue
            bad = sum(n for k, n in v["outcomes"].items() if k != "ok")
            print(f"| {kind} | {v['writes']} | {bad} not ok: {v['outcomes']} | "
                  f"{v['sent_twice']} | {v['acked_lost']} | {bad - v['failed_on_other_shards']}"
                  f" | {v['stuck_over_2s']} |")
    if out["failover"]:
        print()
        print("| client | writes | stuck > 2 s (longest) | sent twice | acked, lost | "
              "failed, stored | shard served again after | last failure after | "
              "recovered | failed elsewhere |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
        for kind, v in out["failover"].items():
            if "error" in v:
                print(f"| {kind} | failed: see the JSON | | | | | | | | |")
                continue
            print(f"| {kind} | {v['writes']} | {v['stuck_over_2s']} ({v['longest_call_s']} s) "
                  f"| {v['sent_twice']} | {v['acked_lost']} | {v['failed_but_stored']} | "
                  f"{v['served_again_s']} s | {v['last_failure_s']} s | "
                  f"{'yes' if v['recovered'] else 'NO'} | {v['failed_on_other_shards']} |")
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--fail-seconds", type=float, default=15.0)
    parser.add_argument("--no-failover", action="store_true")
    parser.add_argument("--migrate", action="store_true",
                        help="also move a busy room's slot under each client's load")
    parser.add_argument("--worker", choices=("bench", "fail"), help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", help=argparse.SUPPRESS)
    parser.add_argument("--victim-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rooms", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker:
        return conductor(args)
    seeds = [(h, int(p)) for h, _, p in (s.rpartition(":") for s in args.seeds.split(","))]
    import uvloop  # as the nodes run

    random.seed(0)
    if args.worker == "bench":
        result = uvloop.run(bench_worker(args.client, seeds, args.seconds))
    else:
        result = uvloop.run(fail_worker(args.client, seeds, args.fail_seconds,
                                        args.victim_pid, args.rooms.split(",")))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
