"""What the command-line client prints: readable tables and lines, or the JSON of
``--json``, from the service's replies."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from proto import queue_pb2 as pb
from shared.model import iso_time


def track_dict(track: pb.Track) -> dict:
    out = {"id": track.id, "title": track.title, "artist": track.artist,
           "duration": track.duration, "votes": track.votes}
    if track.added_at:
        out["added_at"] = iso_time(track.added_at)
    if track.played_at:
        out["played_at"] = iso_time(track.played_at)
    if track.play_id:
        out["play_id"] = track.play_id
    if track.skipped:
        out["skipped"] = True
    if track.fallback:
        out["fallback"] = True
    return out


def clock(seconds: int) -> str:
    if not seconds:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(track: pb.Track) -> str:
    votes = f"{track.votes} vote" + ("" if abs(track.votes) == 1 else "s")
    return f'{track.id} "{track.title}" by {track.artist} ({clock(track.duration)}, {votes})'


def table(tracks, played: bool = False) -> str:
    if not tracks:
        return "(none)"
    rows = [("#", "ID", "TITLE", "ARTIST", "LENGTH", "VOTES") + (("PLAYED",) if played else ())]
    for n, t in enumerate(tracks, 1):
        row = (str(n), t.id, t.title, t.artist, clock(t.duration), str(t.votes))
        rows.append(row + ((iso_time(t.played_at)[11:19],) if played else ()))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell[:40].ljust(w)
                               for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def change_dict(reply: pb.QueueResponse) -> dict[str, Any]:
    out: dict[str, Any] = {"message": reply.message}
    if reply.HasField("track"):
        out["track"] = track_dict(reply.track)
    out.update(queue=[track_dict(t) for t in reply.queue], version=reply.version,
               length=reply.length)
    return out


def change_text(reply: pb.QueueResponse) -> str:
    head = f"{reply.message}: {describe(reply.track)}" if reply.HasField("track") else reply.message
    hidden = reply.length - len(reply.queue)
    more = f"\n… and {hidden} more" if hidden > 0 else ""
    return f"{head}\n\nQueue ({reply.length}):\n{table(reply.queue)}{more}"


def event_text(event: pb.QueueEvent) -> str:
    if event.type == "snapshot":
        now = f"now playing {describe(event.now_playing)}" if event.HasField("now_playing") \
            else "nothing playing"
        return f"[v{event.version}] snapshot: {event.length} queued, {now}\n{table(event.queue)}"
    what = describe(event.track) if event.HasField("track") else ""
    return f"[v{event.version}] {event.type} {what}".rstrip() + f" ({event.length} queued)"


def now_dict(reply: pb.NowPlayingReply) -> dict[str, Any] | None:
    """Now playing with its clock, as REST renders it (times ISO 8601, position seconds)."""
    if not reply.HasField("track"):
        return None
    return {**track_dict(reply.track), "play_id": reply.play_id,
            "started_at": iso_time(reply.started_at),
            "ends_at": iso_time(reply.ends_at) if reply.ends_at else None,
            "paused": reply.paused, "position": round(reply.position, 3),
            "skip_votes": reply.skip_votes, "skip_threshold": reply.skip_threshold,
            "fallback": reply.track.fallback}


def now_text(reply: pb.NowPlayingReply) -> str:
    """Now playing: 12 "Song" by Artist (3:20, 0 votes)  1:05 / 3:20, ends 12:03:04
    [play 7; skip votes 1 of 3]"""
    if not reply.HasField("track"):
        return "Nothing is playing."
    track = reply.track
    at = clock(int(reply.position)) if reply.position >= 1 else "0:00"
    state = "paused" if reply.paused else (
        f"ends {iso_time(reply.ends_at)[11:19]} UTC" if reply.ends_at else "length unknown")
    skips = f"; skip votes {reply.skip_votes} of {reply.skip_threshold}" \
        if reply.skip_threshold else ""
    replay = "; a replay from the history" if track.fallback else ""
    return (f"Now playing: {describe(track)}  {at} / {clock(track.duration)}, {state} "
            f"[play {reply.play_id}{skips}{replay}]")


def settings_dict(reply: pb.Settings) -> dict[str, Any]:
    return MessageToDict(reply, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)


def settings_text(reply: pb.Settings) -> str:
    return "\n".join(f"{name:<18} {_shown(value)}"
                     for name, value in settings_dict(reply).items())


def _shown(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def catalogue_dict(track: pb.CatalogueTrack) -> dict[str, Any]:
    out: dict[str, Any] = {"id": track.id, "title": track.title, "artist": track.artist,
                           "album": track.album or None, "duration": track.duration,
                           "plays": track.plays}
    if track.extra:
        out["extra"] = dict(track.extra)
    return out


def catalogue_table(tracks) -> str:
    if not tracks:
        return "(no track matches)"
    rows = [("#", "ID", "TITLE", "ARTIST", "ALBUM", "LENGTH", "PLAYS")]
    rows += [(str(n), t.id, t.title, t.artist, t.album, clock(t.duration), str(t.plays))
             for n, t in enumerate(tracks, 1)]
    widths = [min(max(len(r[i]) for r in rows), 32) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell[:32].ljust(w)
                               for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
