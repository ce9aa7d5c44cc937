"""What the functions reply and publish (``shared/queue.lua``), decoded.

A success is ``ok, kind, version, length, due, moved, <payload>, <edge>``, its fields
joined with RS when published; a refusal is a short reply that ``refusal`` turns into a
domain error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from . import errors
from .model import RS, SEP, SEQ_WIDTH, Change, NowPlaying, Track, now_playing, queued_track

# how many payload fields each kind of change has
WIDTH = {"add": 3, "remove": 3, "vote": 3, "play": 2, "pause": 2, "resume": 2, "skip": 2,
         "settings": 1, "clear": 0, "ban": 1, "unban": 1}


class Placed(NamedTuple):
    """A queued track with its place in the play order: Redis sorts by score, then
    member."""

    score: float
    member: str
    record: str
    track: Track


def placed(member: str, score: str, record: str) -> Placed:
    return Placed(float(score), member, record, queued_track(member[SEQ_WIDTH:], score, record))


class Reply(NamedTuple):
    """A write's success, as its function replied and published it."""

    change: Change  # without the head
    placed: Placed | None  # the queued track the change was about, where it is now
    edge: Placed | None  # the track at the head's last place, None if the queue is shorter
    due: int | None  # when the room's playback moves on by itself
    moved: bool = False  # tracks other than ``placed`` changed places: read the room again


def settings_of(text: str) -> dict[str, str]:
    """name=value pairs joined with US, as the functions reply with them."""
    return dict(pair.split("=", 1) for pair in text.split(SEP)) if text else {}


def parse(fields: Sequence[str]) -> Reply:
    """A success reply. A length of '' (not looked up) is 0 here: a caller that needs it
    reads it with the head."""
    kind = fields[1]
    width = WIDTH[kind]
    payload = fields[6:6 + width]
    where = None
    track: Track | None = None
    now: NowPlaying | None = None
    settings = None
    guest = None
    if width == 3:
        where = placed(payload[2][:SEQ_WIDTH] + payload[0], payload[1], payload[2])
        track = where.track
    elif width == 2:
        now = now_playing(payload[0], payload[1])
        track = now.track if now is not None else None
    elif kind == "settings":
        settings = settings_of(payload[0])
    elif width == 1:
        guest = payload[0]
    edge_at = 6 + width
    edge = placed(*fields[edge_at:edge_at + 3]) if fields[edge_at] else None
    change = Change(kind, int(fields[2]), int(fields[3]) if fields[3] else 0, track,
                    now=now, settings=settings, guest=guest)
    return Reply(change, where, edge, int(fields[4]) if fields[4] else None, fields[5] == "1")


def decode_event(payload: str) -> Reply:
    """A published change: the function's reply fields joined with RS."""
    return parse(payload.split(RS))


def refusal(reply: list[Any], track_id: str, max_queue: int) -> errors.QueueError:
    """The domain error a refusal means."""
    status = reply[0]
    if status == "not_found":
        return errors.TrackNotFound(track_id)
    if status == "duplicate":
        return errors.DuplicateTrack(track_id)
    if status == "empty":
        return errors.QueueEmpty()
    if status == "full":
        return errors.QueueFull(max_queue)
    if status == "idempotency_mismatch":
        return errors.IdempotencyKeyReused()
    if status == "recent":
        return errors.RecentlyPlayed(track_id, int(reply[1]))
    if status == "stale":
        return errors.PlayChanged(now_playing(reply[1], reply[2]))
    if status == "not_playing":
        return errors.NothingPlaying()
    if status == "skipping_off":
        return errors.SkippingOff()
    simple: dict[str, errors.QueueError] = {
        "no_token": errors.AdminTokenMissing(), "wrong_token": errors.AdminTokenWrong(),
        "banned": errors.Banned(), "guest_only": errors.GuestOnly(), "locked": errors.Locked(),
        "not_guest": errors.NotAGuest(), "host_only": errors.HostOnly(),
        "unknown_token": errors.UnknownToken(), "no_guest_token": errors.GuestTokenMissing(),
        "not_created": errors.NotCreated(),
        "no_voter": errors.InvalidField("voter", "is required to skip (one skip vote per "
                                                 "voter per play), or send a guest token")}
    if status in simple:
        return simple[status]
    if status == "not_yours":
        return errors.NotYours(track_id)
    if status == "guest_full":
        return errors.GuestFull(int(reply[1]))
    if status == "no_guest":
        return errors.UnknownMember("guest", track_id)
    if status == "no_cohost":
        return errors.UnknownMember("co-host", track_id)
    if status == "taken":
        return errors.RoomTaken(track_id)
    raise RuntimeError(f"unexpected reply from a function: {status!r}")
