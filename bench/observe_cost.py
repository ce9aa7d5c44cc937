"""What observing a request costs, in process and without a network: an ASGI app that
answers at once, called with and without ``rest.middleware.Observe`` (request id, metrics,
the access-log check), and ``grpc_svc.service.observed`` around an empty gRPC handler.

    python -m bench.observe_cost        # best of 5 rounds of 200,000 calls each
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from grpc_svc.service import observed
from rest.middleware import Observe
from shared.stats import Requests

CALLS = 200_000
ROUNDS = 5


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    pass


async def _receive() -> Any:
    return {"type": "http.request"}


async def per_call(app: Any) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        scope = {"type": "http", "method": "GET", "path": "/queue",
                 "headers": [(b"host", b"localhost"), (b"accept", b"*/*")]}
        await app(scope, _receive, _send)
    return (time.perf_counter() - started) / CALLS * 1e6


class Context:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python"),)


def grpc_per_call() -> float:
    calls, context = Requests(), Context()
    started = time.perf_counter()
    for _ in range(CALLS):
        with observed(context, "GetQueue", "/queue.QueueService/GetQueue", calls):  # type: ignore[arg-type]
            pass
    return (time.perf_counter() - started) / CALLS * 1e6


async def main() -> None:
    wrapped = Observe(answer, Requests())
    bare, observing = [], []
    for _ in range(ROUNDS):
        bare.append(await per_call(answer))
        observing.append(await per_call(wrapped))
    grpc = min(grpc_per_call() for _ in range(ROUNDS))
    print(f"REST: an ASGI call {min(bare):.2f} us bare, {min(observing):.2f} us observed "
          f"(+{min(observing) - min(bare):.2f} us per request)")
    print(f"gRPC: observed() {grpc:.2f} us per call")


if __name__ == "__main__":
    asyncio.run(main())
