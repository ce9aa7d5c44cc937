"""The node's logs: one line per record on stderr, text or (``LOG_FORMAT=json``) one JSON
object per line, each with the node's name and the id of the request it belongs to.

A request's id comes from its ``X-Request-Id`` header (``x-request-id`` metadata over
gRPC): nginx's ``$request_id``, or a client's own if it is sane (``sane``); else the node
makes one (``new_id``). The front door sets it in ``REQUEST_ID`` for the request's task,
so every line logged while serving it carries it; lines logged elsewhere (start-up, the
schedule) carry "-". Access lines (logger ``access``, at INFO) add the method, route
template (never the raw path, which may hold a query), status and duration. Nothing here
logs a header or a query string, so a token sent in either never reaches a log.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from typing import Any

import orjson

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")

access = logging.getLogger("access")


def sane(value: str | None) -> str | None:
    """A client's request id, if it is 1-128 characters of letters, digits and ``._:@/+=-``
    (so that it cannot break a log line or a header); else None."""
    return value if value is not None and _SANE.fullmatch(value) else None


def new_id() -> str:
    """A fresh id, 32 hex digits like nginx's ``$request_id``."""
    return os.urandom(16).hex()


class _Context(logging.Filter):
    def __init__(self, node: str):
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.node = self.node
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601 with milliseconds), level, node,
    request_id, logger, message, the access fields when the record has them, and the
    traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        ms = int(record.created * 1000) % 1000
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{ms:03d}Z",
            "level": record.levelname.lower(),
            "node": getattr(record, "node", ""),
            "request_id": getattr(record, "request_id", "-"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def setup(level: str, log_format: str, node: str) -> None:
    """Send every logger's records (uvicorn's and grpc's too) to stderr, in the format
    asked for, at ``level`` and above."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context(node))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    number = logging.getLevelName(level.upper())
    root.setLevel(number if isinstance(number, int) else logging.DEBUG)  # uvicorn's "trace"


def log_access(method: str, route: str, status: int | str, seconds: float) -> None:
    """One access line for a finished request (the caller checks that INFO is on)."""
    ms = round(seconds * 1000, 3)
    access.info("%s %s %s %.3f ms", method, route, status, ms,
                extra={"method": method, "route": route, "status": status, "duration_ms": ms})
