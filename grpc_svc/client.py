"""The command-line client of the gRPC service.

    python -m grpc_svc.client [--target HOST:PORT] [--room R] [--json] COMMAND [options]

Commands: add, remove, vote, queue, metadata, play, history, now, clear, watch, pause,
resume, skip, settings, create-room, join, ban, unban, cohost, me, search. ``--token`` (default
$ADMIN_TOKEN) is sent as the authorization: the server's admin token, a room's host or
co-host token, or a guest's. The
target defaults to $GRPC_TARGET, else localhost:50051; ``dns:///host:port`` (every address
the name resolves to) and ``ipv4:a:p,b:q`` targets are balanced round robin. Output is a
readable table, or JSON with --json. A failed call prints one line with its reason on
stderr and exits with 1 (2 for a usage error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import grpc

from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc
from shared.validation import BOOLEAN_RULE, boolean

from . import SERVICE
from .render import (
    catalogue_dict,
    catalogue_table,
    change_dict,
    change_text,
    describe,
    event_text,
    now_dict,
    now_text,
    settings_dict,
    settings_text,
    table,
    track_dict,
)

# Round robin over every address of the target. With an explicit resolver scheme
# (dns:///name:port, ipv4:a:p,b:q) the client balances over the nodes themselves, so it
# also watches each one's health and skips those not SERVING (a node shutting down drains
# that way). A plain host:port may be a load balancer, whose health is not one node's.
# Reads are retried on UNAVAILABLE (a node went away mid-call): repeating them is harmless.
# Writes are not: one that reached Redis before its node died must not run twice (send an
# idempotency key and retry it yourself).
READS = [{"service": SERVICE, "method": method}
         for method in ("GetQueue", "GetMetadata", "GetHistory", "NowPlaying", "GetSettings",
                        "SearchCatalogue", "GetCatalogueTrack")]
RETRY_READS = {"name": READS, "retryPolicy": {
    "maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}
BALANCED = {"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [RETRY_READS]}
HEALTH_CHECKED = {**BALANCED, "healthCheckConfig": {"serviceName": SERVICE}}
WATCH_RETRY = 1.0
SETTINGS = ("autoplay", "skip_threshold", "fallback", "no_repeat_minutes", "require_guest",
            "max_per_guest", "locked", "order")


READ_PATHS = frozenset(f"/{m['service']}/{m['method']}" for m in READS)


class ReadAgain(grpc.UnaryUnaryClientInterceptor):
    """gRPC retries a call only until the node's first answer (its headers) arrives: after
    that the call is "committed". A node killed between its headers and its reply (they
    are written one after the other) fails a read with UNAVAILABLE that the retry policy
    may not repeat. A read is harmless to repeat, so it is tried once more, within what is
    left of its deadline."""

    def intercept_unary_unary(self, continuation, details, request):
        started = time.monotonic()
        outcome = continuation(details, request)
        if (details.method not in READ_PATHS or outcome.code() != grpc.StatusCode.UNAVAILABLE
                or not outcome.initial_metadata()):
            return outcome
        timeout = details.timeout
        if timeout is not None:
            timeout -= time.monotonic() - started
            if timeout <= 0:
                return outcome
        return continuation(details._replace(timeout=timeout), request)  # a namedtuple


def channel(target: str) -> grpc.Channel:
    config = HEALTH_CHECKED if target.startswith(("dns:", "ipv4:", "ipv6:")) else BALANCED
    return grpc.intercept_channel(
        grpc.insecure_channel(target, options=[("grpc.service_config", json.dumps(config))]),
        ReadAgain())


# -- commands -----------------------------------------------------------------------------

def _metadata(args) -> list:
    metadata = []
    if args.token:
        metadata.append(("authorization", f"Bearer {args.token}"))
    if args.idempotency_key:
        metadata.append(("idempotency-key", args.idempotency_key))
    return metadata


def run(args, stub: pb_grpc.QueueServiceStub, out) -> None:
    call = dict(timeout=args.timeout, metadata=_metadata(args))
    room = args.room
    command = args.command
    if command == "add":
        reply = stub.AddTrack(pb.Track(id=args.id, title=args.title or "",
                                       artist=args.artist or "", duration=args.duration,
                                       room=room), **call)
        emit(args, out, change_dict(reply), change_text(reply))
    elif command == "search":
        found = stub.SearchCatalogue(pb.CatalogueQuery(query=" ".join(args.query),
                                                       limit=args.limit), **call)
        emit(args, out, [catalogue_dict(t) for t in found.tracks],
             catalogue_table(found.tracks))
    elif command == "remove":
        reply = stub.RemoveTrack(pb.TrackId(id=args.id, room=room), **call)
        emit(args, out, change_dict(reply), change_text(reply))
    elif command == "vote":
        reply = stub.VoteTrack(pb.VoteRequest(id=args.id, up=args.up, room=room,
                                              voter=args.voter or ""), **call)
        emit(args, out, change_dict(reply), change_text(reply))
    elif command in ("queue", "history"):
        request = pb.Empty(room=room, limit=args.limit, offset=args.offset)
        method = stub.GetQueue if command == "queue" else stub.GetHistory
        reply = method(request, **call)
        title = f"Queue ({reply.length}):" if command == "queue" else "History (newest first):"
        emit(args, out, [track_dict(t) for t in reply.queue],
             f"{title}\n{table(reply.queue, played=command == 'history')}")
    elif command == "metadata":
        track = stub.GetMetadata(pb.TrackId(id=args.id, room=room), **call)
        text = "\n".join(f"{k:<10} {v}" for k, v in track_dict(track).items())
        emit(args, out, track_dict(track), text)
    elif command == "play":
        track = stub.PlayNext(pb.Empty(room=room, expected_play_id=args.if_playing), **call)
        emit(args, out, {"now_playing": track_dict(track)},
             f"Now playing: {describe(track)} [play {track.play_id}]")
    elif command in ("now", "pause", "resume"):
        method = {"now": stub.NowPlaying, "pause": stub.Pause, "resume": stub.Resume}[command]
        reply = method(pb.Empty(room=room), **call)
        emit(args, out, {"now_playing": now_dict(reply)}, now_text(reply))
    elif command == "skip":
        skipped = stub.Skip(pb.SkipRequest(room=room, voter=args.voter), **call)
        emit(args, out, {"skipped": skipped.skipped, "now_playing": now_dict(skipped.now_playing)},
             ("Skipped. " if skipped.skipped else "Skip vote recorded. ")
             + now_text(skipped.now_playing))
    elif command == "create-room":
        created = stub.CreateRoom(pb.CreateRoomRequest(room=room), **call)
        emit(args, out, {"room": created.room, "host_token": created.host_token},
             f"Room {created.room} created. Its host token (shown once; keep it):\n"
             f"{created.host_token}")
    elif command == "join":
        joined = stub.Join(pb.JoinRequest(room=room, name=args.name), **call)
        emit(args, out, {"guest": joined.guest, "guest_token": joined.guest_token,
                         "name": joined.name},
             f"Joined as {joined.name} ({joined.guest}). Your guest token (shown once):\n"
             f"{joined.guest_token}")
    elif command in ("ban", "unban"):
        method = stub.Ban if command == "ban" else stub.Unban
        reply = method(pb.GuestRequest(room=room, guest=args.guest), **call)
        emit(args, out, {"message": reply.message, "guest": args.guest},
             f"{reply.message}: {args.guest}.")
    elif command == "cohost":
        if args.revoke:
            reply = stub.RevokeCohost(pb.CohostRequest(room=room, cohost=args.revoke), **call)
            emit(args, out, {"message": reply.message, "cohost": args.revoke},
                 f"{reply.message}: {args.revoke}.")
        else:
            cohost = stub.AddCohost(pb.Empty(room=room), **call)
            emit(args, out, {"cohost": cohost.cohost, "token": cohost.token},
                 f"Co-host {cohost.cohost} added. Its token (shown once):\n{cohost.token}")
    elif command == "me":
        mine = stub.Me(pb.Empty(room=room), **call)
        emit(args, out, {"guest": mine.guest, "name": mine.name,
                         "tracks": [{**track_dict(t.track), "position": t.position}
                                    for t in mine.tracks]},
             f"{mine.name} ({mine.guest}): {len(mine.tracks)} queued\n"
             + "\n".join(f"#{t.position:<4} {describe(t.track)}" for t in mine.tracks))
    elif command == "settings":
        changes = {name: getattr(args, name) for name in SETTINGS
                   if getattr(args, name) is not None}
        if changes:
            settings = stub.UpdateSettings(pb.SettingsRequest(
                room=room, settings=pb.Settings(**changes)), **call)
        else:
            settings = stub.GetSettings(pb.Empty(room=room), **call)
        emit(args, out, settings_dict(settings), settings_text(settings))
    elif command == "clear":
        reply = stub.Clear(pb.Empty(room=room), **call)
        emit(args, out, {"message": reply.message, "version": reply.version}, reply.message + ".")
    elif command == "watch":
        watch(args, stub, out)


def watch(args, stub, out) -> None:
    """Print every change until Ctrl-C; reconnects (and gets a fresh snapshot) if the
    stream breaks."""
    while True:
        try:
            for event in stub.Watch(pb.Empty(room=args.room), metadata=_metadata(args)):
                data = {"type": event.type, "version": event.version, "length": event.length,
                        "queue": [track_dict(t) for t in event.queue]}
                if event.HasField("track"):
                    data["track"] = track_dict(event.track)
                if event.HasField("now_playing"):
                    data["now_playing"] = track_dict(event.now_playing)
                if event.HasField("playing"):
                    data["now_playing"] = now_dict(event.playing)
                if event.HasField("settings"):
                    data["settings"] = settings_dict(event.settings)
                emit(args, out, data, event_text(event))
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            print(f"watch: {_reason(exc)}; reconnecting", file=sys.stderr, flush=True)
        time.sleep(WATCH_RETRY)


def emit(args, out, data, text: str) -> None:
    if args.json:
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        out.write(text + "\n")
    out.flush()


def _reason(exc: grpc.RpcError) -> str:
    return f"{exc.code().name}: {exc.details() or 'no details'}"


# -- arguments ----------------------------------------------------------------------------

def _boolean(text: str) -> bool:
    value = boolean(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected {BOOLEAN_RULE}, got {text!r}")
    return value


def _common(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The global options, accepted before and after the command."""
    value = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    target = os.environ.get("GRPC_TARGET") or "localhost:50051"
    parser.add_argument("--target", default=value(target),
                        help="HOST:PORT, dns:///HOST:PORT or ipv4:A:P,B:Q "
                             "(default: $GRPC_TARGET, else localhost:50051)")
    parser.add_argument("--room", default=value(""), help="the room (default: default)")
    parser.add_argument("--json", action="store_true", default=value(False),
                        help="print JSON instead of tables")
    parser.add_argument("--token", default=value(os.environ.get("ADMIN_TOKEN", "")),
                        help="the admin token, a room's host or co-host token, or a guest "
                             "token (default: $ADMIN_TOKEN)")
    parser.add_argument("--timeout", type=float, default=value(5.0),
                        help="seconds before a call gives up (default 5)")
    parser.add_argument("--idempotency-key", default=value(None),
                        help="make a write safe to retry: a repeat returns the first result")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m grpc_svc.client",
                                   description="Talk to the music queue over gRPC.")
    _common(main, defaults=True)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        _common(sub, defaults=False)
        return sub

    add = command("add", "add a track; with --id alone, a track of the catalogue")
    add.add_argument("--id", required=True)
    add.add_argument("--title", help="required unless the id is a catalogue track's")
    add.add_argument("--artist", help="required unless the id is a catalogue track's")
    add.add_argument("--duration", type=int, default=0,
                     help="seconds (default 0: unknown, or the catalogue's)")
    search = command("search", "search the catalogue: every word a prefix of a word of the "
                               "title, artist or album, case and accents ignored")
    search.add_argument("query", nargs="+", metavar="QUERY")
    search.add_argument("--limit", type=int, default=0, help="how many (default 20, at most "
                                                             "100)")
    command("remove", "remove a queued track (host)").add_argument("--id", required=True)
    vote = command("vote", "vote a queued track up or down")
    vote.add_argument("--id", required=True)
    vote.add_argument("--up", type=_boolean, default=True, metavar="true|false",
                      help="true votes up (default), false down")
    vote.add_argument("--voter", help="one ballot per voter per track (default: anonymous)")
    for name, text in (("queue", "the queue in play order"),
                       ("history", "played tracks, newest first")):
        sub = command(name, text)
        sub.add_argument("--limit", type=int, default=0, help="how many (default: all)")
        sub.add_argument("--offset", type=int, default=0)
    command("metadata", "a queued, playing or played track").add_argument("--id", required=True)
    play = command("play", "play the next track (host)")
    play.add_argument("--if-playing", type=int, default=0, metavar="PLAY_ID",
                      help="only while this play is the current one (a player reporting "
                           "the end of a track); else ABORTED and nothing changes")
    command("now", "the track playing now, with its clock")
    command("pause", "stop the clock of the track playing now (host)")
    command("resume", "restart the clock where it stopped (host)")
    command("skip", "vote to skip the track playing now, once per voter per play") \
        .add_argument("--voter", default="", help="who votes (not needed with a guest token)")
    settings = command("settings", "show the room's settings; with options, change them "
                                   "(host)")
    settings.add_argument("--autoplay", type=_boolean, metavar="on|off",
                          help="move on by itself when a track ends")
    settings.add_argument("--skip-threshold", type=int, metavar="N",
                          help="distinct skip votes that skip a track (0: off)")
    settings.add_argument("--fallback", choices=("none", "history"),
                          help="what an advance on an empty queue plays")
    settings.add_argument("--no-repeat-minutes", type=int, metavar="N",
                          help="refuse adds of tracks played this recently (0: off)")
    settings.add_argument("--require-guest", type=_boolean, metavar="on|off",
                          help="adds, votes and skips need a guest token")
    settings.add_argument("--max-per-guest", type=int, metavar="N",
                          help="queued tracks per guest (0: no limit)")
    settings.add_argument("--locked", type=_boolean, metavar="on|off",
                          help="only hosts may add")
    settings.add_argument("--order", choices=("votes", "fair"), help="the play order")
    command("create-room", "create the room given with --room (or a new name): prints its "
                           "host token, once")
    command("join", "join the room as a guest: prints your guest token, once") \
        .add_argument("--name", required=True, help="your name in the room")
    command("ban", "ban a guest (host): their tracks and votes go").add_argument(
        "--guest", required=True, help="the guest's id (g-...)")
    command("unban", "lift a guest's ban (host)").add_argument(
        "--guest", required=True, help="the guest's id (g-...)")
    cohost = command("cohost", "add a co-host (host): prints its token; --revoke ID ends one")
    cohost.add_argument("--revoke", metavar="ID", help="the co-host to revoke (c-...)")
    command("me", "your own queued tracks and their places (guest token)")
    command("clear", "empty the room: queue, now playing and history (host)")
    command("watch", "print every change of the room until Ctrl-C")
    return main


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    options = parser()
    args = options.parse_args(argv)
    if args.command == "add" and (args.title is None) != (args.artist is None):
        options.error("add: give both --title and --artist, or neither (a catalogue track "
                      "by its --id alone)")
    for name, value in vars(args).items():  # (bytes the shell passed that are not UTF-8)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str) and not _utf8(one):
                options.error(f"{name}: is not valid UTF-8")
    try:
        with channel(args.target) as chan:
            run(args, pb_grpc.QueueServiceStub(chan), sys.stdout)
    except grpc.RpcError as exc:
        print(f"error: {_reason(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130 if args.command != "watch" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
