"""Votes and reads against a gRPC target for a while; prints the outcomes as JSON.

    python -m tests.scale_load TARGET ROOM SECONDS

Used by tests/compose_check.py from inside the Compose network (client-side round robin
over dns:///queue-service:50051) while the stack scales down.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import grpc

from grpc_svc.client import channel
from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc


def main(argv: list[str]) -> int:
    target, room, seconds = argv[1], argv[2], float(argv[3])
    outcomes, lock = Counter(), threading.Lock()
    deadline = time.monotonic() + min(seconds, 120)
    with channel(target) as chan:
        stub = pb_grpc.QueueServiceStub(chan)

        def run() -> None:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                kind = "vote" if i % 2 else "queue"
                try:
                    if kind == "vote":
                        stub.VoteTrack(pb.VoteRequest(id="hit", up=True, room=room), timeout=5)
                    else:
                        stub.GetQueue(pb.Empty(room=room, limit=5), timeout=5)
                    outcome = f"{kind} OK"
                except grpc.RpcError as exc:
                    outcome = f"{kind} {exc.code().name}"
                with lock:
                    outcomes[outcome] += 1

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(json.dumps(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
