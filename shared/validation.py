"""Turn untrusted values into typed, checked ones, or raise ``InvalidField``.

Both front doors call these with whatever the client sent (JSON values, query strings,
protobuf fields); the messages name the field and the rule, so a person can fix it.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .errors import InvalidField, MalformedRequest

MAX_ID = 64
MAX_ROOM = 64
ID_RULE = f"1-{MAX_ID} characters from A-Z a-z 0-9 . _ : -"
ROOM_RULE = f"1-{MAX_ROOM} characters from A-Z a-z 0-9 _ -"
MAX_TEXT = 200
MAX_GUEST_NAME = 40
MAX_DURATION = 86_400
MAX_VOTER = 64
MAX_PAGE = 2**31 - 1
DEFAULT_ROOM = "default"
DEFAULT_HEAD = 25
MAX_HEAD = 100
MAX_BODY = 64 * 1024  # bytes of a REST request body
IDEMPOTENCY_TTL = 600  # seconds a write's first answer is kept for its retries
MAX_IDEMPOTENCY_KEY = 255
MAX_QUERY = 200  # characters of a catalogue search
MAX_QUERY_WORDS = 16
DEFAULT_RESULTS = 20  # catalogue search results unless ?limit= says
MAX_RESULTS = 100

ID_PATTERN = rf"[A-Za-z0-9._:-]{{1,{MAX_ID}}}"
ROOM_PATTERN = rf"[A-Za-z0-9_-]{{1,{MAX_ROOM}}}"
_ID = re.compile(ID_PATTERN)
_ROOM = re.compile(ROOM_PATTERN)
# Control characters (they would break logs, pages and our record separators) and lone
# surrogates (they cannot be stored as UTF-8).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")
_DIGITS = re.compile(r"-?[0-9]+")
_WHOLE = re.compile(r"-?[0-9]{1,30}")  # ASCII digits only (int() also takes "+5", "1_0", "٥")
_KINDS = {dict: "an object", list: "an array", bool: "a boolean", str: "a string",
          int: "a number", float: "a number", type(None): "null"}
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
            if len(digits) <= MAX_ID:
                return digits
    elif value is None:
        raise InvalidField(field, f"is required ({ID_RULE}, or a whole number >= 0)")
    raise InvalidField(field, f"must be {ID_RULE}, or a whole number >= 0, got {_show(value)}")


def text(field: str, value: Any, longest: int = MAX_TEXT) -> str:
    if value is None:
        raise InvalidField(field, f"is required (1-{longest} characters)")
    if not isinstance(value, str):
        raise InvalidField(field, f"must be a string of 1-{longest} characters, "
                                  f"got {_kind(value)}")
    trimmed: str = value.strip()
    if not trimmed:
        raise InvalidField(field, "must not be empty")
    if len(trimmed) > longest:
        raise InvalidField(field, f"must be at most {longest} characters, got {len(trimmed)}")
    if _FORBIDDEN.search(trimmed):
        raise InvalidField(field, "must not contain control characters")
    return trimmed


def search_query(value: Any) -> str:
    """A catalogue search as typed: 1-200 characters, trimmed; its words are the catalogue's
    business (``shared.catalogue``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidField("q", f"is required: the words to search for (1-{MAX_QUERY} "
                                "characters)")
    if not isinstance(value, str):
        raise InvalidField("q", f"must be a string of 1-{MAX_QUERY} characters, "
                                f"got {_kind(value)}")
    trimmed: str = value.strip()
    if len(trimmed) > MAX_QUERY:
        raise InvalidField("q", f"must be at most {MAX_QUERY} characters, got {len(trimmed)}")
    if _FORBIDDEN.search(trimmed):
        raise InvalidField("q", "must not contain control characters")
    return trimmed


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


def voter(value: Any, required: bool = False,
          why: str = "on this server (anonymous votes are off)") -> str | None:
    """A voter id, or None for an anonymous vote (refused when ``required``)."""
    if value is None or value == "":
        if required:
            raise InvalidField("voter", f"is required {why}")
        return None
    if not isinstance(value, str):
        raise InvalidField("voter", f"must be a string of 1-{MAX_VOTER} characters, "
                                    f"got {_kind(value)}")
    if len(value) > MAX_VOTER:
        raise InvalidField("voter", f"must be at most {MAX_VOTER} characters, got {len(value)}")
    if _FORBIDDEN.search(value) or not value.strip():
        raise InvalidField("voter", "must be printable and not blank")
    return value


BOOLEAN_RULE = "true/false, 1/0, yes/no or on/off"


def boolean(text: str) -> bool | None:
    """true/false, 1/0, yes/no, on/off in any case (spaces around ignored), else None:
    the one reading of a yes-or-no word, for the environment, query strings and the CLI."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def up(value: Any) -> bool:
    """A vote's direction: a JSON boolean, 1/0 or a boolean word; absent means up."""
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and (read := boolean(value)) is not None:
        return read
    raise InvalidField("up", f"must be {BOOLEAN_RULE}, got {_show(value)}")


def query_int(field: str, raw: str | None, default: int | None, low: int,
              high: int = MAX_PAGE) -> int | None:
    """A whole number from a query string: unreadable is malformed, out of range is invalid."""
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw):
        if _DIGITS.fullmatch(raw):  # a whole number, only too long to be in range
            raise InvalidField(field, f"must be between {low} and {high}, got {_show(raw)}")
        raise MalformedRequest(f"{field} must be a whole number, got {_show(raw)}")
    return bounded(field, int(raw), low, high)


def bounded(field: str, value: int, low: int, high: int = MAX_PAGE) -> int:
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}, got {value}")
    return value


def head_size(value: int | None) -> int:
    return DEFAULT_HEAD if value is None else bounded("head", value, 0, MAX_HEAD)


def play_id(header: str | None) -> int | None:
    """If-Match: the play id a play next is conditional on ("12", 12 or W/"12"); None for
    no condition (absent or *)."""
    if header is None or header.strip() in ("", "*"):
        return None
    if "," in header:
        raise MalformedRequest(f"If-Match takes one play id (that of now playing, like "
                               f'"12"), got {_show(header)}')
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise MalformedRequest(f'If-Match must be the play id of now playing, like "12", '
                               f"got {_show(header)}")
    return int(text)


def idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if _IDEMPOTENCY_KEY.fullmatch(value):
        return value
    raise InvalidField("Idempotency-Key", f"must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII "
                       "characters without spaces")


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text_ = str(value)
        return text_ if len(text_) <= 40 else text_[:40] + "..."
    return _kind(value)


def guest_name(value: Any) -> str:
    return text("name", value, MAX_GUEST_NAME)


def member_id(field: str, value: Any) -> str:
    """A guest's or co-host's id as the server made it (g-1a2b3c4d, c-...)."""
    if not isinstance(value, str) or not re.fullmatch(r"[gc]-[0-9a-f]{8}", value):
        raise InvalidField(field, f"must be an id this server gave out, like g-1a2b3c4d, got "
                                  f"{_show(value)}")
    return value
