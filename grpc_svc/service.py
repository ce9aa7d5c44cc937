"""The gRPC methods: an ordinary servicer over the shared async core.

Each method validates its request, runs ONE shared operation (one atomic Redis step) and
returns the serialized reply (``grpc_svc.wire``). ``handlers()`` turns the servicer into
the handler table the server registers: it parses each request itself, so that a malformed
one is INVALID_ARGUMENT rather than INTERNAL, maps domain errors to status codes in one
place, sends ``x-node-id`` and ``x-request-id`` with every answer, and counts and logs
every call (``observed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from proto import queue_pb2 as pb
from shared import errors, validation
from shared.catalogue import Catalogue, CatalogueTrack
from shared.config import Settings
from shared.live import Live, follow
from shared.logs import REQUEST_ID, access, log_access, new_id, sane
from shared.model import Snapshot
from shared.playback import Playback
from shared.queue import Queue
from shared.rooms import JoinLimit, Rooms
from shared.stats import Requests

from . import wire

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
    errors.RecentlyPlayed: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NothingPlaying: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SkippingOff: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PlayChanged: grpc.StatusCode.ABORTED,
    errors.GuestFull: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RoomTaken: grpc.StatusCode.ALREADY_EXISTS,
    errors.NotCreated: grpc.StatusCode.FAILED_PRECONDITION,
    errors.UnknownMember: grpc.StatusCode.NOT_FOUND,
    errors.TooManyRequests: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
Context = grpc.aio.ServicerContext


def status_of(exc: errors.QueueError) -> grpc.StatusCode:
    return next(CODES[k] for k in type(exc).__mro__ if k in CODES)


def room_of(value: str) -> str:
    return validation.room(value) if value else validation.DEFAULT_ROOM


def page_of(request: pb.Empty) -> tuple[int, int | None]:
    offset = validation.bounded("offset", request.offset, 0)
    return offset, validation.bounded("limit", request.limit, 0) or None


def metadata(context: Context, name: str) -> str | None:
    value = dict(context.invocation_metadata() or ()).get(name)
    return None if value is None else str(value)


def idempotency_key(context: Context) -> str | None:
    return validation.idempotency_key(metadata(context, "idempotency-key"))


def token(context: Context) -> str | None:
    """The authorization metadata: the functions decide what it may do (``shared.auth``)."""
    return metadata(context, "authorization")


def client_address(context: Context, trusted: frozenset[str]) -> str:
    """The client's address, for per-client limits: the peer's (ipv4:1.2.3.4:5678 ->
    1.2.3.4), or when the peer is a proxy in ``trusted`` (FORWARDED_ALLOW_IPS, read as
    uvicorn reads it: "*" trusts every peer), the nearest address of its X-Forwarded-For
    that is not one (nginx.grpc.conf sends the header), so clients behind one load
    balancer do not share one bucket."""
    host = context.peer().partition(":")[2].rpartition(":")[0].strip("[]")
    forwarded = metadata(context, "x-forwarded-for")
    if not forwarded or ("*" not in trusted and host not in trusted):
        return host
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if "*" in trusted:
        return hops[0] if hops else host
    return next((hop for hop in reversed(hops) if hop not in trusted), host)


class QueueServicer:
    """One method per RPC, named as in queue.proto."""

    def __init__(self, queue: Queue, live: Live, playback: Playback, rooms: Rooms,
                 settings: Settings):
        self.queue, self.live, self.playback, self.settings = queue, live, playback, settings
        self.rooms = rooms
        self.join_limit = JoinLimit(settings.guest_joins_per_minute)
        self.proxies = frozenset(ip.strip() for ip in settings.forwarded_allow_ips.split(","))
        self.catalogue = Catalogue(playback.redis)


    async def AddTrack(self, request: pb.Track, context: Context) -> bytes:
        room = room_of(request.room)  # (checked before the catalogue is asked)
        if not request.title and not request.artist:  # a catalogue track (0: its duration)
            change = await self.queue.add_from_catalogue(
                room, self.catalogue, validation.track_id(request.id), request.duration or None,
                idempotency_key=idempotency_key(context), authorization=token(context))
            return wire.change_bytes("Track added", change)
        track = validation.new_track(request.id, request.title, request.artist,
                                     request.duration)
        change = await self.queue.add(room, track, idempotency_key=idempotency_key(context),
                                      authorization=token(context))
        return wire.change_bytes("Track added", change)

    async def RemoveTrack(self, request: pb.TrackId, context: Context) -> bytes:
        change = await self.queue.remove(room_of(request.room), validation.track_id(request.id),
                                         idempotency_key=idempotency_key(context),
                                         authorization=token(context))
        return wire.change_bytes("Track removed", change)

    async def VoteTrack(self, request: pb.VoteRequest, context: Context) -> bytes:
        given = token(context)
        voter = validation.voter(request.voter, self.settings.require_voter and given is None)
        change = await self.queue.vote(room_of(request.room), validation.track_id(request.id),
                                       request.up, voter,
                                       idempotency_key=idempotency_key(context),
                                       authorization=given)
        return wire.change_bytes("Vote recorded", change)

    async def GetQueue(self, request: pb.Empty, context: Context) -> bytes:
        page = await self.queue.page(room_of(request.room), *page_of(request))
        return wire.list_bytes(page.tracks, page.version, page.length)

    async def GetMetadata(self, request: pb.TrackId, context: Context) -> bytes:
        track = await self.queue.metadata(room_of(request.room), validation.track_id(request.id))
        return wire.track_bytes(track)

    async def PlayNext(self, request: pb.Empty, context: Context) -> bytes:
        expected = validation.bounded("expected_play_id", request.expected_play_id, 0) or None
        change = await self.queue.play_next(room_of(request.room), head=0,  # the reply: a track
                                            idempotency_key=idempotency_key(context),
                                            expected_play_id=expected,
                                            authorization=token(context))
        assert change.track is not None
        return wire.track_bytes(change.track)

    async def GetHistory(self, request: pb.Empty, context: Context) -> bytes:
        return wire.list_bytes(await self.queue.history(room_of(request.room),
                                                        *page_of(request)))

    async def NowPlaying(self, request: pb.Empty, context: Context) -> bytes:
        now, _, server_time = await self.queue.now_playing(room_of(request.room))
        return wire.now_bytes(now, server_time)

    async def Pause(self, request: pb.Empty, context: Context) -> bytes:
        change = await self.playback.pause(room_of(request.room),
                                           idempotency_key=idempotency_key(context),
                                           authorization=token(context))
        return wire.now_bytes(change.now)

    async def Resume(self, request: pb.Empty, context: Context) -> bytes:
        change = await self.playback.resume(room_of(request.room),
                                            idempotency_key=idempotency_key(context),
                                            authorization=token(context))
        return wire.now_bytes(change.now)

    async def Skip(self, request: pb.SkipRequest, context: Context) -> bytes:
        given = token(context)
        # (none and no guest token: the function refuses, after the room's own rules)
        voter = validation.voter(request.voter)
        change = await self.playback.skip(room_of(request.room), voter,
                                          idempotency_key=idempotency_key(context),
                                          authorization=given)
        return pb.SkipReply(skipped=change.kind == "play",
                            now_playing=wire.now_pb(change.now)).SerializeToString()

    async def GetSettings(self, request: pb.Empty, context: Context) -> bytes:
        current = await self.playback.settings(room_of(request.room))
        return pb.Settings(**current).SerializeToString()

    async def UpdateSettings(self, request: pb.SettingsRequest, context: Context) -> bytes:
        given = request.settings
        updates = {f.name: getattr(given, f.name) for f in given.DESCRIPTOR.fields
                   if given.HasField(f.name)}
        current = await self.playback.configure(room_of(request.room), updates,
                                                idempotency_key=idempotency_key(context),
                                                authorization=token(context))
        return pb.Settings(**current).SerializeToString()

    async def Clear(self, request: pb.Empty, context: Context) -> bytes:
        change = await self.queue.clear(room_of(request.room),
                                        idempotency_key=idempotency_key(context),
                                        authorization=token(context))
        return wire.change_bytes("Room cleared", change)

    async def CreateRoom(self, request: pb.CreateRoomRequest, context: Context) -> bytes:
        room = validation.room(request.room) if request.room else f"room-{secrets.token_hex(4)}"
        host_token = await self.rooms.create(room)
        return pb.CreateRoomReply(room=room, host_token=host_token).SerializeToString()

    async def AddCohost(self, request: pb.Empty, context: Context) -> bytes:
        cohost, cohost_token = await self.rooms.add_cohost(room_of(request.room), token(context))
        return pb.CohostReply(cohost=cohost, token=cohost_token).SerializeToString()

    async def RevokeCohost(self, request: pb.CohostRequest, context: Context) -> bytes:
        cohost = validation.member_id("cohost", request.cohost)
        await self.rooms.revoke_cohost(room_of(request.room), cohost, token(context))
        return pb.QueueResponse(message="Co-host revoked").SerializeToString()

    async def Join(self, request: pb.JoinRequest, context: Context) -> bytes:
        name = validation.guest_name(request.name)
        self.join_limit.take(client_address(context, self.proxies))
        guest, guest_token = await self.rooms.join(room_of(request.room), name)
        return pb.JoinReply(guest=guest, guest_token=guest_token, name=name).SerializeToString()

    async def Ban(self, request: pb.GuestRequest, context: Context) -> bytes:
        guest = validation.member_id("guest", request.guest)
        change = await self.playback.ban(room_of(request.room), guest,
                                         idempotency_key=idempotency_key(context),
                                         authorization=token(context))
        return pb.QueueResponse(message="Guest banned", version=change.version
                                ).SerializeToString()

    async def Unban(self, request: pb.GuestRequest, context: Context) -> bytes:
        guest = validation.member_id("guest", request.guest)
        change = await self.playback.unban(room_of(request.room), guest,
                                           idempotency_key=idempotency_key(context),
                                           authorization=token(context))
        return pb.QueueResponse(message="Ban lifted", version=change.version
                                ).SerializeToString()

    async def Me(self, request: pb.Empty, context: Context) -> bytes:
        mine = await self.rooms.mine(room_of(request.room), token(context))
        return pb.MineReply(guest=mine.guest, name=mine.name, tracks=[
            pb.MyTrack(track=wire.track_pb(track), position=position)
            for position, track in mine.tracks]).SerializeToString()
    async def SearchCatalogue(self, request: pb.CatalogueQuery, context: Context) -> bytes:
        limit = validation.bounded("limit", request.limit, 0, validation.MAX_RESULTS)
        try:
            found = await self.catalogue.search(validation.search_query(request.query),
                                                limit or validation.DEFAULT_RESULTS)
        except errors.InvalidField as exc:
            if exc.field != "q":
                raise
            raise errors.InvalidField("query", str(exc).removeprefix("q: ")) from None
        return found.rendered("grpc", lambda f: pb.CatalogueResult(
            tracks=[catalogue_pb(t) for t in f.tracks]).SerializeToString())

    async def GetCatalogueTrack(self, request: pb.TrackId, context: Context) -> bytes:
        track = await self.catalogue.track(validation.track_id(request.id))
        return catalogue_pb(track).SerializeToString()

    async def Watch(self, request: pb.Empty, context: Context) -> AsyncIterator[bytes]:
        """A snapshot of the room, then one event per change (``shared.live.follow``); each
        event is serialized once per node."""
        room = room_of(request.room)
        guest = None
        given = token(context)
        if given is not None:  # a guest's stream ends when the guest is banned
            role, member, _ = await self.rooms.whoami(room, given)
            if role == "banned":
                raise errors.Banned()
            guest = member if role == "guest" else None
        async for item in follow(self.live, room, guest=guest):
            if isinstance(item, Snapshot):
                yield wire.snapshot_bytes(item)
            elif item is not None:
                yield item.rendered("grpc", wire.event_bytes)


def catalogue_pb(track: CatalogueTrack) -> pb.CatalogueTrack:
    return pb.CatalogueTrack(id=track.id, title=track.title, artist=track.artist,
                             album=track.album, duration=track.duration, plays=track.plays,
                             extra=track.extra)


# -- the handler table --------------------------------------------------------------------

Unary = Callable[[Any, Context], Awaitable[bytes]]
Streaming = Callable[[Any, Context], AsyncIterator[bytes]]


def parse(message_class: type[Message], raw: bytes) -> Any:
    try:
        return message_class.FromString(raw)
    except DecodeError:
        raise errors.MalformedRequest(
            f"the request is not a valid {message_class.DESCRIPTOR.full_name} message") from None


def refuse(context: Context, exc: errors.QueueError) -> bytes:
    """End a call with the error's status. Not ``context.abort()``: that raises inside the
    ``except`` that caught ``exc``, and the exception, its traceback and the handler's frame
    then hold each other in a cycle that only the garbage collector frees, whose pauses
    were most of the tail latency of calls that are refused a lot."""
    context.set_code(status_of(exc))
    context.set_details(exc.detail)
    return b""


class Call:
    """What a call's handler tells ``observed``: the status it ends with."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = "OK"


def request_id_of(context: Context) -> str:
    """The call's ``x-request-id`` metadata if it is sane (the client's or nginx's), else a
    new id."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return sane(str(value)) or new_id()
    return new_id()


@contextlib.contextmanager
def observed(context: Context, name: str, path: str, calls: Requests) -> Iterator[Call]:
    """A call's id (``x-request-id`` metadata: the client's or nginx's if sane, else a new
    one) in every line logged while serving it, and its record when it ends: counted by
    method and status code with its latency, and an access line at INFO."""
    started = time.perf_counter()
    REQUEST_ID.set(request_id_of(context))  # the call's own task: no reset needed
    call = Call()
    calls.in_flight += 1
    try:
        yield call
    except (asyncio.CancelledError, GeneratorExit):  # the client went away
        call.code = "CANCELLED"
        raise
    except BaseException:  # an abort() with its code, or a bug
        if call.code == "OK":
            call.code = "UNKNOWN"
        raise
    finally:
        calls.in_flight -= 1
        seconds = time.perf_counter() - started
        calls.observe((name, call.code), seconds)
        if access.isEnabledFor(logging.INFO):
            log_access("grpc", path, call.code, seconds)


Node = tuple[tuple[str, str], ...]


def _unary(method: Unary, message_class: type[Message], node: Node, name: str,
           calls: Requests) -> grpc.RpcMethodHandler:
    path = f"/{pb.DESCRIPTOR.services_by_name['QueueService'].full_name}/{name}"

    async def handle(raw: bytes, context: Context) -> bytes:
        with observed(context, name, path, calls) as call:
            try:
                request = parse(message_class, raw)
                idempotency_key(context)  # a malformed key is refused whatever the call
                reply = await method(request, context)
            except errors.QueueError as exc:
                reply = refuse(context, exc)
                call.code = status_of(exc).name
            # Last: a call whose initial metadata reached the client is committed and cannot
            # be retried, so a node dying in the middle of a read would fail it for good.
            await context.send_initial_metadata((*node, ("x-request-id", REQUEST_ID.get())))
            return reply

    return grpc.unary_unary_rpc_method_handler(handle, response_serializer=bytes)


def _streaming(method: Streaming, message_class: type[Message], node: Node, name: str,
               calls: Requests) -> grpc.RpcMethodHandler:
    path = f"/{pb.DESCRIPTOR.services_by_name['QueueService'].full_name}/{name}"

    async def handle(raw: bytes, context: Context) -> AsyncIterator[bytes]:
        with observed(context, name, path, calls) as call:
            await context.send_initial_metadata((*node, ("x-request-id", REQUEST_ID.get())))
            try:
                async for reply in method(parse(message_class, raw), context):
                    yield reply
            except errors.QueueError as exc:
                call.code = status_of(exc).name
                await context.abort(status_of(exc), exc.detail)

    return grpc.unary_stream_rpc_method_handler(handle, response_serializer=bytes)


def handlers(servicer: QueueServicer, node_id: str, calls: Requests | None = None
             ) -> dict[str, grpc.RpcMethodHandler]:
    """Every method of the service, from its descriptor: name -> handler; each call is
    counted in ``calls``."""
    node = (("x-node-id", node_id),)
    calls = calls or Requests()
    table = {}
    for method in pb.DESCRIPTOR.services_by_name["QueueService"].methods:
        request = getattr(pb, method.input_type.name)
        call = getattr(servicer, method.name)
        table[method.name] = (_streaming if method.server_streaming else _unary)(
            call, request, node, method.name, calls)
    return table
