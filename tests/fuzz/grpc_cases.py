"""Seeded gRPC cases: messages with broken fields, garbage bytes, odd metadata, unknown
methods."""

from __future__ import annotations

import random
from typing import NamedTuple

from proto import queue_pb2 as pb

from .values import (
    FUZZ_ROOMS,
    G_METHODS,
    G_ODD_ROOMS,
    HUGE,
    HUGE_CASES,
    READ_ONLY,
    SEED,
    SERVICE,
    UNKNOWN_METHODS,
    F,
    T,
    clip,
)


class GrpcCase(NamedTuple):
    n: int
    label: str
    method: str  # the full path
    raw: bytes
    metadata: tuple
    bad: bool  # breaks a rule: must be refused (INVALID_ARGUMENT unless ``huge``)
    names: frozenset  # what the details of INVALID_ARGUMENT must name (one of)
    huge: bool  # over a server limit: RESOURCE_EXHAUSTED is the answer
    known: bool  # a method the server has
    reply: type | None  # the reply message, to check that an OK reply parses

    def __str__(self) -> str:
        metadata = [(k, clip(v, 60)) for k, v in self.metadata[:3]]
        return (f"seed {SEED} gRPC case {self.n} ({self.label}): {self.method} "
                f"{clip(self.raw)} metadata {metadata}")


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class GrpcFuzzer:
    """Seeded gRPC cases: messages with broken fields, garbage bytes, odd metadata,
    unknown methods."""

    def __init__(self, rng: random.Random, rooms: list[str]):
        self.rng, self.rooms = rng, rooms

    def cases(self, count: int) -> list[GrpcCase]:
        makers = [(self.message, 55), (self.garbage, 20), (self.metadata, 10),
                  (self.watch, 5), (self.unknown, 4), (self.large, 1)]
        weights = [w for _, w in makers]
        huge = {n: i for i, n in enumerate(sorted(self.rng.sample(range(count), HUGE_CASES)))}
        return [self.huge(n, huge[n]) if n in huge
                else self.rng.choices(makers, weights)[0][0](n) for n in range(count)]

    def case(self, n, label, name, raw, *, metadata=(), bad=False, names=(), huge=False):
        reply = G_METHODS[name].reply if name in G_METHODS else None
        return GrpcCase(n, label, SERVICE + name, raw, tuple(metadata), bool(bad),
                        frozenset(names), huge, True, reply)

    def valid_message(self, name: str, n: int):
        request, host = G_METHODS[name].request, G_METHODS[name].host
        room = self.rng.choice(self.rooms[:FUZZ_ROOMS // 2] if host else self.rooms)
        if request is pb.Track:
            return pb.Track(id=f"g{n}", title="Song", artist="Artist", duration=200, room=room)
        track_id = self.rng.choice(["abc", "123", f"g{self.rng.randrange(n + 1)}"])
        if request is pb.VoteRequest:
            return pb.VoteRequest(id=track_id, up=True, room=room)
        if request is pb.TrackId:
            return pb.TrackId(id=track_id, room=room)
        return pb.Empty(room=room)

    def message(self, n) -> GrpcCase:
        rng = self.rng
        name = rng.choices(list(G_METHODS), [m.weight for m in G_METHODS.values()])[0]
        host, pools = G_METHODS[name].host, G_METHODS[name].fields
        message = self.valid_message(name, n)
        rules = {}  # field -> whether its last value keeps the rules
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.25:
                field, (value, ok) = "room", rng.choice(G_ODD_ROOMS)
            else:
                field = rng.choice(list(pools))
                value, ok = rng.choice(pools[field])
            setattr(message, field, value)
            rules[field] = ok
        if not host and F in rules.values() and rng.random() < 0.1:
            message.room, rules["room"] = "", T  # the default room, with a request to refuse
        bad, names = F in rules.values(), set(rules)
        raw = message.SerializeToString()
        if rng.random() < 0.1:  # unknown fields: skipped by the parser
            raw += rng.choice([b"\xf8\x01\x05", b"\xa2\x06\x03abc", b"\xfd\x07\x01\x02\x03\x04"])
        label = f"{name} {'/'.join(sorted(names))}"
        if name == "Watch" and not bad:
            return self.case(n, label, name, raw)  # a live stream: its snapshot, then cancelled
        return self.case(n, label, name, raw, bad=bad, names=names)

    def garbage(self, n) -> GrpcCase:
        """Bytes no parser accepts, for any method; random bytes for read-only ones."""
        rng = self.rng
        if rng.random() < 0.3:
            name = rng.choice(READ_ONLY)
            size = rng.choice([1, 5, 50, 500, 5000])
            raw = rng.choice([bytes(rng.randrange(256) for _ in range(size)),
                              b"\x0a\x00" * size, b"\x08\x01" * size,
                              b"\x10" + b"\xff" * 9 + b"\x01", b"\x10\x80\x80\x80\x80\x10",
                              b"\x0b" * 50 + b"\x0c" * 50])
            return self.case(n, f"{name} random bytes", name, raw)
        name = rng.choice(list(G_METHODS))
        prefix = self.valid_message(name, n).SerializeToString()
        raw = rng.choice([
            b"\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(50))),  # field 0
            b"\xff" * rng.randint(10, 20),  # a varint that never ends
            prefix + b"\x0a" + varint(1000) + b"abc",  # a length past the end
            prefix + b"\x0a\x02\xff\xfe",  # invalid UTF-8 in a string field
            prefix + b"\x0a\x03\xed\xa0\x80",  # an encoded surrogate
            prefix + b"\x0a\x02\xc0\xaf",  # an overlong encoding
            b"\x0c", b"\x0b" * 1000, b"\x13" * 20_000 + b"\x14" * 20_000,  # groups
            prefix + b"\x0d\x01\x02",  # a cut fixed32
            prefix + b"\x0e", prefix + b"\x0f",  # wire types 6 and 7
            prefix + b"\x0a\x05ab",  # a string cut short
        ])
        full = G_METHODS[name].request.DESCRIPTOR.full_name
        return self.case(n, f"{name} garbage", name, raw, bad=True, names={full})

    def metadata(self, n) -> GrpcCase:
        rng = self.rng
        name = rng.choice([m for m in G_METHODS if m != "Watch"])
        raw = self.valid_message(name, n).SerializeToString()
        kind = rng.randrange(5)
        bad = huge = False
        if kind == 0:
            key, ok = rng.choice([(f"{self.rooms[0]}-grpc-{n}", T), ("", T), ("a b", F),
                                  ("x" * 256, F), ("{" + " " * 10 + "}", F)])
            metadata, bad = [("idempotency-key", key)], ok is F
        elif kind == 1:
            metadata = [("authorization",
                         rng.choice(["Bearer", "Basic x", "", "Bearer " + "t" * 1000]))]
        elif kind == 2:
            metadata, huge = [("x-junk", "j" * rng.choice([9_000, 20_000]))], True
        elif kind == 3:
            metadata = [("x-junk-bin", bytes(rng.randrange(256) for _ in range(100)))]
        else:
            metadata = [(f"x-k{i}", "v" * 10) for i in range(50)]
        return self.case(n, f"{name} metadata {metadata[0][0]}", name, raw, metadata=metadata,
                         bad=bad, names={"Idempotency-Key"}, huge=huge)

    def watch(self, n) -> GrpcCase:
        rng = self.rng
        if rng.random() < 0.2:
            room = rng.choice(self.rooms)
            return self.case(n, "Watch", "Watch", pb.Empty(room=room).SerializeToString())
        room, _ = rng.choice(G_ODD_ROOMS)
        return self.case(n, "Watch room", "Watch", pb.Empty(room=room).SerializeToString(),
                         bad=True, names={"room"})

    def unknown(self, n) -> GrpcCase:
        return GrpcCase(n, "unknown method", self.rng.choice(UNKNOWN_METHODS),
                        pb.Empty(room=self.rooms[0]).SerializeToString(), (), True, frozenset(),
                        False, False, None)

    def large(self, n) -> GrpcCase:
        """Strings of 100 KB-900 KB: under the 1 MiB message limit, over the rules."""
        size = self.rng.choice([100_000, 900_000])
        field, name = self.rng.choice([("title", "AddTrack"), ("voter", "VoteTrack"),
                                       ("id", "GetMetadata"), ("room", "GetQueue")])
        message = self.valid_message(name, n)
        setattr(message, field, "L" * size)
        return self.case(n, f"{name} {field} large", name, message.SerializeToString(),
                         bad=True, names={field})

    def huge(self, n, which: int) -> GrpcCase:
        field, name = [("title", "AddTrack"), ("voter", "VoteTrack"),
                       ("room", "GetQueue")][which % 3]
        message = self.valid_message(name, n)
        setattr(message, field, "H" * HUGE)
        return self.case(n, f"{name} 10 MB {field}", name, message.SerializeToString(),
                         bad=True, huge=True)

