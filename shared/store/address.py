"""Where a Redis is and how to greet it: ``redis://[[user]:password@]host[:port][/db]``,
``rediss://`` for TLS, ``unix:///path/to.sock[?db=N]``."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class Address:
    host: str = "localhost"
    port: int = DEFAULT_PORT
    path: str | None = None  # a unix socket instead of host and port
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Address:
        """The address of a Redis URL; ValueError saying what is wrong with it."""
        parts = urlsplit(url)
        if parts.password:  # the URL as errors show it
            url = url.replace(f":{parts.password}@", ":***@", 1)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"must start with redis://, rediss:// or unix://, got {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"has a port that is not a number 1-65535: {url!r}") from None
        password = unquote(parts.password) if parts.password is not None else None
        username = unquote(parts.username) if parts.username else None
        db_text = parse_qs(parts.query).get("db", [""])[0]
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(f"needs the socket's path: unix:///path/to.sock, got {url!r}")
            return cls(path=parts.path, db=_db(db_text or "0", url), username=username,
                       password=password)
        if not parts.hostname:
            raise ValueError(f"needs a host: redis://host:port/db, got {url!r}")
        return cls(host=parts.hostname, port=port or DEFAULT_PORT,
                   db=_db(parts.path.strip("/") or db_text or "0", url), username=username,
                   password=password, tls=parts.scheme == "rediss")

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def greeting(self) -> list[tuple[Any, ...]]:
        """The commands a new connection sends first: AUTH, SELECT."""
        steps: list[tuple[Any, ...]] = []
        if self.password:
            steps.append(("AUTH", self.username, self.password) if self.username
                         else ("AUTH", self.password))
        if self.db:
            steps.append(("SELECT", self.db))
        return steps

    async def open_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(self.host, self.port, ssl=self.ssl())

    def ssl(self) -> ssl.SSLContext | None:
        return ssl.create_default_context() if self.tls else None


def _db(text: str, url: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"has a database that is not a number: {url!r}")
    return int(text)
