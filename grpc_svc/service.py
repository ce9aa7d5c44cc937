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


def change_pb(message: str, change: Change) -> pb.QueueResponse:
    return pb.QueueResponse(message=message, queue=[track_pb(t) for t in change.head],
                            track=track_pb(change.track) if change.track else None,
                            version=change.version, length=change.length)


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
                    lambda change: change_pb("Track added", change))

    def RemoveTrack(self, request: pb.TrackId, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.remove(room_of(request.room), validation.track_id(request.id),
                                     idempotency_key=meta.idempotency_key),
                    lambda change: change_pb("Track removed", change))

    def VoteTrack(self, request: pb.VoteRequest, meta: Metadata) -> Plan:
        voter = validation.voter(request.voter, self.settings.require_voter)
        return Plan(self.plan.vote(room_of(request.room), validation.track_id(request.id),
                                   request.up, voter, idempotency_key=meta.idempotency_key),
                    lambda change: change_pb("Vote recorded", change))

    def GetQueue(self, request: pb.Empty, meta: Metadata) -> Plan:
        offset, limit = _page(request)

        def reply(page: Page) -> pb.QueueList:
            return pb.QueueList(queue=[track_pb(t) for t in page.tracks], version=page.version,
                                length=page.length)

        return Plan(self.plan.page(room_of(request.room), offset, limit), reply)

    def GetMetadata(self, request: pb.TrackId, meta: Metadata) -> Plan:
        return Plan(self.plan.metadata(room_of(request.room), validation.track_id(request.id)),
                    track_pb)

    def PlayNext(self, request: pb.Empty, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.play_next(room_of(request.room), idempotency_key=meta.idempotency_key),
                    lambda change: track_pb(change.track))

    def GetHistory(self, request: pb.Empty, meta: Metadata) -> Plan:
        offset, limit = _page(request)
        return Plan(self.plan.history(room_of(request.room), offset, limit),
                    lambda tracks: pb.QueueList(queue=[track_pb(t) for t in tracks]))

    def NowPlaying(self, request: pb.Empty, meta: Metadata) -> Plan:
        return Plan(self.plan.now_playing(room_of(request.room)),
                    lambda track: pb.NowPlayingReply(track=track_pb(track) if track else None))

    def Clear(self, request: pb.Empty, meta: Metadata) -> Plan:
        self._host(meta)
        return Plan(self.plan.clear(room_of(request.room), idempotency_key=meta.idempotency_key),
                    lambda change: pb.QueueResponse(message="Room cleared", version=change.version))


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
