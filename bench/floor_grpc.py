"""The gRPC floor: a bare grpc.aio unary echo (every method of queue.QueueService answers
with the request's bytes), served as our gRPC node is (grpc.aio on uvloop, the same server
options). ``python -m bench.floor_grpc`` on $GRPC_PORT."""

from __future__ import annotations

import os
import sys

import grpc
import uvloop

from grpc_svc import SERVICE
from grpc_svc.server import OPTIONS
from proto import queue_pb2 as pb


async def echo(raw: bytes, context) -> bytes:
    return raw


async def serve(port: int) -> None:
    server = grpc.aio.server(options=OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {
            m.name: handler for m in pb.DESCRIPTOR.services_by_name["QueueService"].methods
            if not m.server_streaming}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> int:
    uvloop.run(serve(int(os.environ.get("GRPC_PORT", "50051"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
