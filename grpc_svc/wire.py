"""Replies in protobuf wire format, assembled from each track's serialized bytes.

A repeated or nested message field is its tag, its length and its bytes, so a 25-track head
costs a join instead of 25 messages built and copied; each track's bytes are made once by
the generated class and kept on the (shared) track. Field tags come from the generated
descriptors, so the .proto stays the one source of the wire format;
tests/test_grpc_wire.py checks that these bytes parse to exactly what the generated
classes would build.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import FieldDescriptor

from proto import queue_pb2 as pb
from shared.live import Event
from shared.model import Change, Snapshot, Track

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
                    added_at=track.added_at, played_at=track.played_at or 0)


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


def now_bytes(track: Track | None) -> bytes:
    """A serialized NowPlayingReply."""
    return message(NOW["track"], track_bytes(track)) if track else b""


def _event(kind: str, version: int, track: Track | None, head: list[Track], length: int,
           now: Track | None) -> bytes:
    t = EVENT
    return b"".join((message(t["type"], kind.encode()), number(t["version"], version),
                     message(t["track"], track_bytes(track)) if track else b"",
                     tracks(t["queue"], head), number(t["length"], length),
                     message(t["now_playing"], track_bytes(now)) if now else b""))


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    """A serialized QueueEvent of type "snapshot"."""
    return _event("snapshot", snapshot.version, None, snapshot.head, snapshot.length,
                  snapshot.now_playing)


def event_bytes(event: Event) -> bytes:
    """A serialized QueueEvent of one change."""
    change = event.change
    return _event(change.kind, change.version, change.track, change.head, change.length,
                  change.track if change.kind == "play" else None)
