"""The REST floor: a bare Starlette app that returns a small JSON body, served exactly as
our node is (rest.__main__'s uvicorn settings). ``python -m bench.floor_rest`` on $PORT."""

from __future__ import annotations

import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": "ok", "id": 123, "votes": 1})


app = Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "POST"])])


def main() -> int:
    uvicorn.run("bench.floor_rest:app", host="127.0.0.1", port=int(os.environ.get("PORT", "8000")),
                loop="uvloop", http="httptools", lifespan="on", access_log=False,
                server_header=False, log_level="warning", timeout_keep_alive=75)
    return 0


if __name__ == "__main__":
    sys.exit(main())
