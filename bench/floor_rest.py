"""The REST floor: a bare Starlette app that answers every path with a small JSON body,
served exactly as our node is (``rest.__main__.config``: uvloop, the same HTTP protocol,
keep-alive and collector settings). ``python -m bench.floor_rest`` on $PORT."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rest.__main__ import config, tune_gc
from shared.config import Settings


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": "ok", "id": 123, "votes": 1})


app = Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "POST"])])


def main() -> int:
    tune_gc()
    uvicorn.Server(config(app, Settings.from_env())).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
