"""Replies in protobuf wire format, assembled from each track's serialized bytes.

A repeated or nested message field is its tag, its length and its bytes, so a 25-track head
costs a join instead of 25 messages built and copied; each track's bytes are made once by
the generated class and kept on the (shared) track. Field tags come from the generated
descriptors, so the .proto stays the one source of the wire format;
tests/test_grpc_wire.py checks that these bytes parse to exactly what the generated
classes would build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.descriptor import FieldDescriptor

from proto import queue_pb2 as pb
from shared.live import Event
from shared.model import Change, NowPlaying, Snapshot, Track
from shared.settings import effective

_INT32 = 2**31 - 1
_LENGTH_DELIMITED = (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING,
                     FieldDescriptor.TYPE_BYTES)


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tags(message: type) -> dict[str, bytes]:
    """Every field's tag (number and wire type) as the bytes that start it."""
    return {f.name: varint(f.number << 3 | (2 if f.type in _LENGTH_DELIMITED else 0))
            for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


RESPONSE = tags(pb.QueueResponse)
LIST = tags(pb.QueueList)
EVENT = tags(pb.QueueEvent)
NOW = tags(pb.NowPlayingReply)


def track_pb(track: Track) -> pb.Track:
    return pb.Track(id=track.id, title=track.title, artist=track.artist,
                    votes=max(-_INT32 - 1, min(track.votes, _INT32)), duration=track.duration,
                    added_at=track.added_at, played_at=track.played_at or 0,
                    play_id=track.play_id or 0, skipped=track.skipped, fallback=track.fallback,
                    added_by_guest=track.added_by[0] if track.added_by else "",
                    added_by_name=track.added_by[1] if track.added_by else "")


def track_bytes(track: Track) -> bytes:
    rendered: bytes | None = track.rendered.get("pb")
    if rendered is None:
        rendered = track.rendered["pb"] = track_pb(track).SerializeToString()
    return rendered


def message(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


def number(tag: bytes, value: int) -> bytes:
    return tag + varint(value) if value else b""


def tracks(tag: bytes, items: Iterable[Track]) -> bytes:
    return b"".join([message(tag, track_bytes(t)) for t in items])


def change_bytes(text: str, change: Change) -> bytes:
    """A serialized QueueResponse."""
    t = RESPONSE
    return b"".join((message(t["message"], text.encode()) if text else b"",
                     tracks(t["queue"], change.head),
                     message(t["track"], track_bytes(change.track)) if change.track else b"",
                     number(t["version"], change.version), number(t["length"], change.length)))


def list_bytes(items: list[Track], version: int = 0, length: int = 0) -> bytes:
    """A serialized QueueList."""
    return tracks(LIST["queue"], items) + number(LIST["version"], version) \
        + number(LIST["length"], length)


def now_pb(now: NowPlaying | None, server_time: int = 0) -> pb.NowPlayingReply:
    """Now playing with its clock (only the server time when nothing plays)."""
    if now is None:
        return pb.NowPlayingReply(server_time=server_time)
    track, clock = now.track, now.clock
    return pb.NowPlayingReply(
        track=track_pb(track), play_id=clock.play_id, started_at=clock.started,
        ends_at=clock.ends_at(track.duration) or 0, paused=clock.paused,
        position=clock.position_ms(track.duration) / 1000, skip_votes=clock.skips,
        skip_threshold=clock.skip_threshold, server_time=clock.now)


def now_bytes(now: NowPlaying | None, server_time: int = 0) -> bytes:
    """A serialized NowPlayingReply."""
    return now_pb(now, server_time).SerializeToString()


def settings_pb(stored: Mapping[str, str]) -> pb.Settings:
    """Every setting of a room (defaults for those never set)."""
    return pb.Settings(**effective(stored))


def _event(kind: str, version: int, track: Track | None, head: list[Track], length: int,
           now: NowPlaying | None = None, playing: bool = False,
           settings: Mapping[str, str] | None = None, server_time: int = 0) -> bytes:
    t = EVENT
    return b"".join((message(t["type"], kind.encode()), number(t["version"], version),
                     message(t["track"], track_bytes(track)) if track else b"",
                     tracks(t["queue"], head), number(t["length"], length),
                     message(t["now_playing"], track_bytes(now.track)) if now else b"",
                     message(t["playing"], now_bytes(now, server_time)) if playing else b"",
                     message(t["settings"], settings_pb(settings).SerializeToString())
                     if settings is not None else b""))


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    """A serialized QueueEvent of type "snapshot"."""
    return _event("snapshot", snapshot.version, None, snapshot.head, snapshot.length,
                  snapshot.now_playing, True, snapshot.settings, snapshot.time)


def event_bytes(event: Event) -> bytes:
    """A serialized QueueEvent of one change."""
    change = event.change
    playing = change.kind in ("play", "pause", "resume", "skip")
    return _event(change.kind, change.version, change.track, change.head, change.length,
                  change.now if playing else None, playing, change.settings)
