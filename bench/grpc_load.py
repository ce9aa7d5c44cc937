"""gRPC load generator: grpc.aio, many calls in flight over a few channels.

    python -m bench.grpc_load --target 127.0.0.1:50051 --op vote --concurrency 20

Prints a JSON summary (stdout) and a markdown row (stderr).
"""

from __future__ import annotations

import sys

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

from .common import GONE, OK, Workload, drive, main

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


async def load(args, workload: Workload):
    # distinct channel args, so that each channel gets a connection of its own
    channels = [grpc.aio.insecure_channel(args.target, options=[("bench.channel", i)])
                for i in range(CHANNELS)]
    stubs = [pb_grpc.QueueServiceStub(c) for c in channels]
    mixed = workload.operation == "mixed"

    def client(stub: pb_grpc.QueueServiceStub):
        async def call_one(op: str, track_id: str) -> str:
            try:
                await call(stub, args.room, op, track_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND and mixed:
                    return GONE
                return exc.code().name
            return OK
        return call_one

    try:
        return await drive(workload, args, args.label or args.target,
                           [client(stubs[n % CHANNELS]) for n in range(args.concurrency)])
    finally:
        for channel in channels:
            await channel.close()


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], "127.0.0.1:50051", load))
