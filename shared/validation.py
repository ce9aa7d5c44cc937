"""Turn untrusted values into typed, checked ones, or raise ``InvalidField``.

Both front doors call these with whatever the client sent (JSON values, query strings,
protobuf fields); the messages name the field and the rule, so a person can fix it.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .errors import InvalidField, MalformedRequest

ID_RULE = "1-64 characters from A-Z a-z 0-9 . _ : -"
ROOM_RULE = "1-64 characters from A-Z a-z 0-9 _ -"
MAX_TEXT = 200
MAX_DURATION = 86_400
MAX_VOTER = 64
MAX_PAGE = 2**31 - 1
DEFAULT_ROOM = "default"
DEFAULT_HEAD = 25
MAX_HEAD = 100

_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ROOM = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Control characters (they would break logs, pages and our record separators) and lone
# surrogates (they cannot be stored as UTF-8).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_WHOLE = re.compile(r"-?[0-9]{1,30}")  # ASCII digits only (int() also takes "+5", "1_0", "٥")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class NewTrack(NamedTuple):
    id: str
    title: str
    artist: str
    duration: int


def room(value: Any) -> str:
    if isinstance(value, str) and _ROOM.fullmatch(value):
        return value
    raise InvalidField("room", f"must be {ROOM_RULE}, got {_show(value)}")


def track_id(value: Any, field: str = "id") -> str:
    """An id as the opaque string it is stored as; a JSON integer >= 0 becomes its digits."""
    if isinstance(value, str):
        if _ID.fullmatch(value):
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            digits = str(value)
            if len(digits) <= 64:
                return digits
    elif value is None:
        raise InvalidField(field, f"is required ({ID_RULE}, or a whole number >= 0)")
    raise InvalidField(field, f"must be {ID_RULE}, or a whole number >= 0, got {_show(value)}")


def text(field: str, value: Any) -> str:
    if value is None:
        raise InvalidField(field, f"is required (1-{MAX_TEXT} characters)")
    if not isinstance(value, str):
        raise InvalidField(field, f"must be a string of 1-{MAX_TEXT} characters, got {_kind(value)}")
    value = value.strip()
    if not value:
        raise InvalidField(field, "must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidField(field, f"must be at most {MAX_TEXT} characters, got {len(value)}")
    if _FORBIDDEN.search(value):
        raise InvalidField(field, "must not contain control characters")
    return value


def duration(value: Any) -> int:
    """Whole seconds, 0-86400; 0 (or absent) means unknown."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidField("duration", f"must be a whole number of seconds, got {_kind(value)}")
    if not 0 <= value <= MAX_DURATION:
        raise InvalidField("duration", f"must be between 0 and {MAX_DURATION} seconds, got {value}")
    return value


def new_track(id: Any, title: Any, artist: Any, duration_: Any) -> NewTrack:
    return NewTrack(track_id(id), text("title", title), text("artist", artist), duration(duration_))


def voter(value: Any, required: bool = False) -> str | None:
    """A voter id, or None for an anonymous vote (refused when ``required``)."""
    if value is None or value == "":
        if required:
            raise InvalidField("voter", "is required on this server (anonymous votes are off)")
        return None
    if not isinstance(value, str):
        raise InvalidField("voter", f"must be a string of 1-{MAX_VOTER} characters, got {_kind(value)}")
    if len(value) > MAX_VOTER:
        raise InvalidField("voter", f"must be at most {MAX_VOTER} characters, got {len(value)}")
    if _FORBIDDEN.search(value) or not value.strip():
        raise InvalidField("voter", "must be printable and not blank")
    return value


def up(value: Any) -> bool:
    """A vote's direction: true/false, 1/0, yes/no (any case); absent means up."""
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise InvalidField("up", f"must be true/false, 1/0 or yes/no, got {_show(value)}")


def query_int(field: str, raw: str | None, default: int | None, low: int, high: int = MAX_PAGE) -> int | None:
    """A whole number from a query string: unreadable is malformed, out of range is invalid."""
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw):
        raise MalformedRequest(f"{field} must be a whole number, got {_show(raw)}")
    return bounded(field, int(raw), low, high)


def bounded(field: str, value: int, low: int, high: int = MAX_PAGE) -> int:
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}, got {value}")
    return value


def head_size(value: int | None) -> int:
    return DEFAULT_HEAD if value is None else bounded("head", value, 0, MAX_HEAD)


def idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if _IDEMPOTENCY_KEY.fullmatch(value):
        return value
    raise InvalidField("Idempotency-Key", "must be 1-255 printable ASCII characters without spaces")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", str: "a string",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text_ = str(value)
        return text_ if len(text_) <= 40 else text_[:40] + "..."
    return _kind(value)
