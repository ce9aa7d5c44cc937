"""Who asks: the server's ADMIN_TOKEN, and the tokens of created rooms, the same for both
front doors.

A room's host, co-host and guest tokens are random (256 bits) and stored only as their
SHA-256 digest; a request's token is hashed here and looked up by digest inside the
function that acts on it (``who()`` in ``shared/queue.lua``), so a token revoked or banned
stops working at once, on every node, in the same atomic step as the write it would have
made. The server's ADMIN_TOKEN, a configured secret, is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .errors import AdminTokenMissing, AdminTokenWrong

PREFIXES = {"host": "mqh_", "cohost": "mqc_", "guest": "mqg_"}


def check_admin(token: str, authorization: str | None) -> None:
    """Pass when no admin token is configured, or when ``authorization`` is
    ``Bearer <token>``; compared in constant time."""
    if not token:
        return
    if not authorization:
        raise AdminTokenMissing()
    if not is_admin(token, authorization):
        raise AdminTokenWrong()


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None for none; any other
    scheme is a token that matches nothing)."""
    if not authorization:
        return None
    scheme, _, given = authorization.partition(" ")
    return given.strip() if scheme.lower() == "bearer" else "\0" + authorization


def is_admin(admin_token: str, authorization: str | None) -> bool:
    given = bearer(authorization)
    return bool(admin_token) and given is not None and hmac.compare_digest(
        given.encode(), admin_token.encode())


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor(admin_token: str, authorization: str | None) -> str:
    """Who asks, as the functions read it: '1' if the server's ADMIN_TOKEN was sent, '1' if
    the server has none, then the SHA-256 of the bearer token ('' for none)."""
    given = bearer(authorization)
    admin = "1" if admin_token and given is not None and hmac.compare_digest(
        given.encode(), admin_token.encode()) else "0"
    return admin + ("0" if admin_token else "1") + ("" if given is None else digest(given))


def new_token(kind: str) -> str:
    """A fresh token for a host, co-host or guest: its kind's prefix and 256 random bits."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(4)
