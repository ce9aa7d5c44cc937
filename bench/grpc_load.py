"""gRPC load generator: grpc.aio, many calls in flight over a few channels.

    python -m bench.grpc_load --target 127.0.0.1:50051 --op vote --concurrency 20

Prints a JSON summary (stdout) and a markdown row (stderr).
"""

from __future__ import annotations

import asyncio
import sys
import time

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .common import Result, Workload, arguments, prefill, report

CHANNELS = 4


def call(stub: pb_grpc.QueueServiceStub, room: str, op: str, track_id: str):
    if op == "add":
        return stub.AddTrack(pb.Track(id=track_id, title="T" * 20, artist="A" * 20, duration=180,
                                      room=room), timeout=10)
    if op == "vote":
        return stub.VoteTrack(pb.VoteRequest(id=track_id, up=True, room=room), timeout=10)
    if op == "play_next":
        return stub.PlayNext(pb.Empty(room=room), timeout=10)
    if op == "queue":
        return stub.GetQueue(pb.Empty(room=room, limit=25), timeout=10)
    if op == "metadata":
        return stub.GetMetadata(pb.TrackId(id=track_id, room=room), timeout=10)
    raise ValueError(op)


async def run(target: str, room: str, workload: Workload, concurrency: int, requests: int,
              duration: float, warmup: int, label: str, prefilled: int) -> Result:
    # distinct channel args, so that each channel gets a connection of its own
    channels = [grpc.aio.insecure_channel(target, options=[("bench.channel", i)])
                for i in range(CHANNELS)]
    stubs = [pb_grpc.QueueServiceStub(c) for c in channels]
    result = Result(label or target, workload.operation, concurrency, prefilled)
    budget = {"warmup": warmup, "left": requests}
    deadline = [0.0]
    start = asyncio.Event()

    async def client(n: int) -> None:
        stub = stubs[n % CHANNELS]
        while budget["warmup"] > 0:
            budget["warmup"] -= 1
            try:
                await call(stub, room, *workload.pick())
            except grpc.aio.AioRpcError:
                pass
        await start.wait()
        while budget["left"] > 0 and time.monotonic() < deadline[0]:
            budget["left"] -= 1
            result.requests += 1
            op, track_id = workload.pick()
            began = time.perf_counter()
            try:
                await call(stub, room, op, track_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND and workload.operation == "mixed":
                    result.latencies.append(time.perf_counter() - began)
                    result.gone += 1
                else:
                    result.errors[exc.code().name] += 1
                continue
            result.latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(client(n)) for n in range(concurrency)]
    while budget["warmup"] > 0 and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    began = time.monotonic()
    deadline[0] = began + duration
    start.set()
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - began
    for channel in channels:
        await channel.close()
    return result


def main() -> int:
    args = arguments(__doc__.splitlines()[0], "127.0.0.1:50051")
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
