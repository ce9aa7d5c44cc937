"""Domain errors. Each front door maps these to its protocol in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import NowPlaying


class QueueError(Exception):
    """Base of every error a client can cause or be told about."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class MalformedRequest(QueueError):
    """The request could not be read at all (not JSON, not an object, bad query syntax)."""


class InvalidField(QueueError):
    """A value broke its rules; ``field`` names it."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field = field


class TrackNotFound(QueueError):
    def __init__(self, track_id: str, where: str = "in the queue"):
        super().__init__(f"track {track_id!r} is not {where}")
        self.track_id = track_id


class DuplicateTrack(QueueError):
    def __init__(self, track_id: str):
        super().__init__(f"track {track_id!r} is already in the queue")
        self.track_id = track_id


class QueueEmpty(QueueError):
    def __init__(self) -> None:
        super().__init__("the queue is empty: add a track first")


class QueueFull(QueueError):
    def __init__(self, limit: int):
        super().__init__(f"the queue is full ({limit} tracks): play or remove tracks first")
        self.limit = limit


class RecentlyPlayed(QueueError):
    """The room refuses repeats (no_repeat_minutes) and this track was played lately."""

    def __init__(self, track_id: str, until_ms: int):
        from .model import iso_time

        super().__init__(f"track {track_id!r} was played less than the room's no-repeat time "
                         f"ago: it may be added again from {iso_time(until_ms)}")
        self.track_id, self.until_ms = track_id, until_ms


class PlayChanged(QueueError):
    """A compare-and-set play next named a play that is no longer the current one."""

    def __init__(self, now: NowPlaying | None):
        super().__init__("that play is no longer the current one: nothing was changed")
        self.now = now  # what is current instead


class NothingPlaying(QueueError):
    def __init__(self) -> None:
        super().__init__("nothing is playing: play a track first")


class SkippingOff(QueueError):
    def __init__(self) -> None:
        super().__init__("skipping is off in this room (its skip_threshold is 0)")


class IdempotencyKeyReused(QueueError):
    def __init__(self) -> None:
        super().__init__(
            "this idempotency key was already used for a different request; use a new key"
        )


class AdminTokenMissing(QueueError):
    """401: a host operation without a token."""

    def __init__(self, detail: str = "this operation is for the host: send the admin token "
                                      "(or in a created room, its host token)") -> None:
        super().__init__(detail)


class AdminTokenWrong(QueueError):
    """403: a token that may not do this."""

    def __init__(self, detail: str = "the admin token is wrong (or this token is not a host's "
                                      "of this room)") -> None:
        super().__init__(detail)


class UnknownToken(AdminTokenWrong):
    def __init__(self) -> None:
        super().__init__("this token is not one of this room's: a guest token works only in "
                         "the room it was made for (join it: POST /rooms/{room}/guests)")


class GuestTokenMissing(AdminTokenMissing):
    def __init__(self) -> None:
        super().__init__("this is a guest's view: send your guest token for this room")


class GuestOnly(AdminTokenMissing):
    def __init__(self) -> None:
        super().__init__("this room takes adds, votes and skips from its guests only: join it "
                         "first (POST /rooms/{room}/guests) and send your guest token")


class Banned(AdminTokenWrong):
    def __init__(self) -> None:
        super().__init__("this guest was banned from the room by its host")


class Locked(AdminTokenWrong):
    def __init__(self) -> None:
        super().__init__("the queue is locked: only the host adds tracks now")


class NotYours(AdminTokenWrong):
    def __init__(self, track_id: str) -> None:
        super().__init__(f"track {track_id!r} was added by someone else: a guest may remove "
                         "only their own tracks")


class NotAGuest(AdminTokenWrong):
    def __init__(self) -> None:
        super().__init__("this is a guest's view: send a guest token of this room")


class GuestFull(QueueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"you have {limit} tracks queued, the most this room allows per "
                         "guest: wait until one is played")
        self.limit = limit


class RoomTaken(QueueError):
    def __init__(self, room: str) -> None:
        super().__init__(f"room {room!r} exists already: choose another name")


class RoomReserved(RoomTaken):
    def __init__(self, room: str) -> None:
        QueueError.__init__(self, f"room {room!r} is the server's own room, never created: its "
                                  "host is the server's ADMIN_TOKEN; choose another name")


class HostOnly(AdminTokenWrong):
    def __init__(self) -> None:
        super().__init__("co-hosts are made and revoked by the room's host (or the server's "
                         "admin token), not by a co-host")


class NotCreated(QueueError):
    def __init__(self) -> None:
        super().__init__("co-hosts are for created rooms (POST /rooms): this room has no host "
                         "token")


class UnknownMember(QueueError):
    """404: no such guest or co-host in the room."""

    def __init__(self, kind: str, member_id: str) -> None:
        super().__init__(f"there is no {kind} {member_id!r} in this room")


class TooManyRequests(QueueError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class StoreUnavailable(QueueError):
    def __init__(self, reason: str = "") -> None:
        text = "the queue's store (Redis) is unreachable; try again shortly"
        super().__init__(f"{text} ({reason})" if reason else text)
        self.reason = reason  # what the metrics count it as (``shared.stats.error_kind``)
