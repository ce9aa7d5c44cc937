"""The gRPC methods, written once for both servers.

A method turns a request into a plan: the ONE shared ``Command`` to run and a function
that turns its result into the reply. ``grpc_svc.server`` executes plans on a sync
(thread pool) or a ``grpc.aio`` server; the planning, validation, replies and the error
mapping below are the same for both.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import grpc
from google.protobuf.message import DecodeError

from proto import queue_pb2 as pb
from shared import errors, validation
from shared.auth import check_admin
from shared.config import Settings
from shared.model import Track
from shared.queue import Change, Command, Page, Queue

CODES = {
    errors.MalformedRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidField: grpc.StatusCode.INVALID_ARGUMENT,
    errors.IdempotencyKeyReused: grpc.StatusCode.INVALID_ARGUMENT,
    errors.TrackNotFound: grpc.StatusCode.NOT_FOUND,
    errors.DuplicateTrack: grpc.StatusCode.ALREADY_EXISTS,
    errors.QueueEmpty: grpc.StatusCode.FAILED_PRECONDITION,
    errors.QueueFull: grpc.StatusCode.FAILED_PRECONDITION,
    errors.AdminTokenMissing: grpc.StatusCode.UNAUTHENTICATED,
    errors.AdminTokenWrong: grpc.StatusCode.PERMISSION_DENIED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: errors.QueueError) -> grpc.StatusCode:
    return next(CODES[k] for k in type(exc).__mro__ if k in CODES)


class Plan(NamedTuple):
    command: Command
    reply: Callable[[Any], Any]


_INT32 = 2**31 - 1


def track_pb(track: Track) -> pb.Track:
    return pb.Track(id=track.id, title=track.title, artist=track.artist,
                    votes=max(-_INT32 - 1, min(track.votes, _INT32)), duration=track.duration,
                    added_at=track.added_at, played_at=track.played_at or 0)


# Replies are assembled from each track's serialized bytes, kept on the (shared) track:
# a repeated or nested message field is its tag, its length and its bytes, so a 25-track
# head costs a join instead of 25 messages built and copied. tests/test_grpc_wire.py
# checks that these bytes parse to exactly what the generated classes would build.

def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def track_bytes(track: Track) -> bytes:
    rendered = track.cache.get("pb")
    if rendered is None:
        rendered = track.cache["pb"] = track_pb(track).SerializeToString()
    return rendered


def _message(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(data)) + data


def _number(tag: int, value: int) -> bytes:
    return bytes((tag,)) + _varint(value) if value else b""


def _tracks(tag: int, tracks: list[Track]) -> bytes:
    return b"".join([_message(tag, track_bytes(t)) for t in tracks])


def change_bytes(message: str, change: Change) -> bytes:
    """A serialized QueueResponse: message 1, queue 2, track 3, version 4, length 5."""
    return b"".join((_message(0x0A, message.encode()) if message else b"",
                     _tracks(0x12, change.head),
                     _message(0x1A, track_bytes(change.track)) if change.track else b"",
                     _number(0x20, change.version), _number(0x28, change.length)))


def list_bytes(tracks: list[Track], version: int = 0, length: int = 0) -> bytes:
    """A serialized QueueList: queue 1, version 2, length 3."""
    return _tracks(0x0A, tracks) + _number(0x10, version) + _number(0x18, length)


def parse(message_class, raw: bytes):
    """Requests arrive as bytes so that a malformed one is INVALID_ARGUMENT, not INTERNAL."""
    try:
        return message_class.FromString(raw)
    except DecodeError:
        raise errors.MalformedRequest(
            f"the request is not a valid {message_class.DESCRIPTOR.full_name} message") from None


def room_of(value: str) -> str:
    return validation.room(value) if value else validation.DEFAULT_ROOM


def _page(request: pb.Empty) -> tuple[int, int | None]:
    offset = validation.bounded("offset", request.offset, 0)
    limit = validation.bounded("limit", request.limit, 0) or None
    return offset, limit


class Metadata(NamedTuple):
    authorization: str | None
    idempotency_key: str | None

    @classmethod
    def of(cls, pairs) -> "Metadata":
        found = dict(pairs or ())
        return cls(found.get("authorization"),
                   validation.idempotency_key(found.get("idempotency-key")))


class QueueMethods:
    """One method per RPC: (request, metadata) -> Plan. Validation errors raise here;
    refusals (not found, duplicate, ...) raise when the plan's command is decoded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.plan = Queue(lambda command: command, settings)  # builds commands, runs none

    def _host(self, meta: Metadata) -> None:
        check_admin(self.settings.admin_token, meta.authorization)

    def AddTrack(self, request: pb.Track, meta: Metadata) -> Plan:
        track = validation.new_track(request.id, request.title, request.artist, request.duration)
        return Plan(self.plan.add(room_of(request.room), track,
                                  idempotency_key=meta.idempotency_key),
                    lambda change: change_bytes("Track added", change))

    def RemoveTrack(self, request: pb.TrackId, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.remove(room_of(request.room), validation.track_id(request.id),
                                     idempotency_key=meta.idempotency_key),
                    lambda change: change_bytes("Track removed", change))

    def VoteTrack(self, request: pb.VoteRequest, meta: Metadata) -> Plan:
        voter = validation.voter(request.voter, self.settings.require_voter)
        return Plan(self.plan.vote(room_of(request.room), validation.track_id(request.id),
                                   request.up, voter, idempotency_key=meta.idempotency_key),
                    lambda change: change_bytes("Vote recorded", change))

    def GetQueue(self, request: pb.Empty, meta: Metadata) -> Plan:
        offset, limit = _page(request)

        return Plan(self.plan.page(room_of(request.room), offset, limit),
                    lambda page: list_bytes(page.tracks, page.version, page.length))

    def GetMetadata(self, request: pb.TrackId, meta: Metadata) -> Plan:
        return Plan(self.plan.metadata(room_of(request.room), validation.track_id(request.id)),
                    track_bytes)

    def PlayNext(self, request: pb.Empty, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.play_next(room_of(request.room), head=0,  # the reply is the track
                                        idempotency_key=meta.idempotency_key),
                    lambda change: track_bytes(change.track))

    def GetHistory(self, request: pb.Empty, meta: Metadata) -> Plan:
        offset, limit = _page(request)
        return Plan(self.plan.history(room_of(request.room), offset, limit),
                    list_bytes)

    def NowPlaying(self, request: pb.Empty, meta: Metadata) -> Plan:
        return Plan(self.plan.now_playing(room_of(request.room)),
                    lambda track: _message(0x0A, track_bytes(track)) if track else b"")

    def Clear(self, request: pb.Empty, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.clear(room_of(request.room), idempotency_key=meta.idempotency_key),
                    lambda change: change_bytes("Room cleared", change))


# name -> request message, for every unary method
UNARY = {
    "AddTrack": pb.Track,
    "RemoveTrack": pb.TrackId,
    "VoteTrack": pb.VoteRequest,
    "GetQueue": pb.Empty,
    "GetMetadata": pb.TrackId,
    "PlayNext": pb.Empty,
    "GetHistory": pb.Empty,
    "NowPlaying": pb.Empty,
    "Clear": pb.Empty,
}
SERVICE = "queue.QueueService"
