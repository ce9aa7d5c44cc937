"""The Redis function library (``queue.lua`` and the catalogue's ``catalogue/catalogue.lua``),
with its constants filled in from Python.

The library's name and its functions' names carry a version, the first hex digits of a
hash of the source: nodes of two releases (during a rolling deploy) each call their own
functions and never replace each other's. A node loads its library when it starts and
again when a Redis answers that a function is missing (a new, flushed or restored
server); Redis persists and replicates loaded libraries, so that is rare.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from string import Template

from .model import SEQ_WIDTH
from .validation import IDEMPOTENCY_TTL, MAX_ID

EVENT_HEAD = 25  # an event's edge is the track at this place of the queue

# The catalogue's functions (shared/catalogue/catalogue.lua) are part of the same library.
_FILES = (Path(__file__).with_name("queue.lua"),
          Path(__file__).parent / "catalogue" / "catalogue.lua")
_TEMPLATE = Template("\n".join(path.read_text() for path in _FILES)).safe_substitute(
    SEQ_WIDTH=SEQ_WIDTH, IDEMPOTENCY_TTL=IDEMPOTENCY_TTL, EVENT_HEAD=EVENT_HEAD,
    MAX_ID=MAX_ID)
VERSION = hashlib.sha1(_TEMPLATE.encode()).hexdigest()[:10]
SOURCE = Template(_TEMPLATE).substitute(VERSION=VERSION)
LIBRARY = f"musicq_{VERSION}"


def name(function: str) -> str:
    """The versioned name a function is called by: ``add`` -> ``add_<version>``."""
    return f"{function}_{VERSION}"


ADD, REMOVE, VOTE, PLAY_NEXT, CLEAR, METADATA = map(
    name, ("add", "remove", "vote", "play_next", "clear", "metadata"))
ADVANCE_DUE, SKIP, PAUSE, RESUME, CONFIGURE, NOW_PLAYING, DUE, SETTLE = map(
    name, ("advance_due", "skip", "pause", "resume", "configure", "now_playing", "due",
           "settle"))
BAN, UNBAN, CREATE_ROOM, ADD_COHOST, REVOKE_COHOST, JOIN, MINE, WHOAMI = map(
    name, ("ban", "unban", "create_room", "add_cohost", "revoke_cohost", "join", "mine",
           "whoami"))
PLAYBACK = ("ballots", "voted", "playing", "history", "played", "plays", "skips", "settings",
            "tokens", "owned", "byvoter")

# The room keys each write takes after queue, tracks, version and its idempotency key,
# in queue.lua's order (passing fewer keys costs Redis less).
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    ADD: ("seq", "played", "settings", "playing", "tokens", "owned"),
    VOTE: ("ballots", "voted", "tokens", "owned", "byvoter", "settings"),
    REMOVE: ("ballots", "voted", "tokens", "owned", "byvoter", "settings"),
    **{f: PLAYBACK for f in (PLAY_NEXT, ADVANCE_DUE, SKIP, PAUSE, RESUME, CONFIGURE, CLEAR,
                             BAN, UNBAN)},
}
NOW_KEYS = ("playing", "skips", "settings")  # now_playing's KEYS
MINE_KEYS = ("tokens", "owned", "queue", "tracks")
