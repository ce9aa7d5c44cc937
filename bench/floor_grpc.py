"""The gRPC floor: what a user would write with the generated classes, a bare ``grpc.aio``
servicer of queue.proto that does no work: each method answers with a prebuilt reply of
the size ours sends (a 25-track head), serialized per call by grpc as any servicer's is.
Served as our gRPC node is (grpc.aio on uvloop, the same server options).
``python -m bench.floor_grpc`` on $GRPC_PORT."""

from __future__ import annotations

import os
import sys

import grpc
import uvloop

from grpc_svc.server import OPTIONS
from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc

HEAD = [pb.Track(id=f"floor-{i}", title="T" * 20, artist="A" * 20, duration=180, votes=i,
                 added_at=1_796_000_000_000) for i in range(25)]
CHANGE = pb.QueueResponse(message="Vote recorded", queue=HEAD, track=HEAD[0], version=7,
                          length=25)
LIST = pb.QueueList(queue=HEAD, version=7, length=25)


class Floor(pb_grpc.QueueServiceServicer):
    async def AddTrack(self, request, context):
        return CHANGE

    async def RemoveTrack(self, request, context):
        return CHANGE

    async def VoteTrack(self, request, context):
        return CHANGE

    async def GetQueue(self, request, context):
        return LIST

    async def GetMetadata(self, request, context):
        return HEAD[0]

    async def PlayNext(self, request, context):
        return HEAD[0]

    async def GetHistory(self, request, context):
        return LIST


async def serve(port: int) -> None:
    server = grpc.aio.server(options=OPTIONS)
    pb_grpc.add_QueueServiceServicer_to_server(Floor(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> int:
    uvloop.run(serve(int(os.environ.get("GRPC_PORT", "50051"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
