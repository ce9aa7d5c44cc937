"""The host check, the same for both front doors."""

from __future__ import annotations

import hmac

from .errors import AdminTokenMissing, AdminTokenWrong


def check_admin(token: str, authorization: str | None) -> None:
    """Pass when no admin token is configured, or when ``authorization`` is
    ``Bearer <token>``; compared in constant time."""
    if not token:
        return
    if not authorization:
        raise AdminTokenMissing()
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
        raise AdminTokenWrong()
