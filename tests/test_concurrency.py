"""The concurrency invariants (tests/doors.py) through nginx over two REST nodes, and over
two gRPC nodes balanced round robin, with 20 concurrent clients."""

from __future__ import annotations

import unittest

from .doors import GrpcDoor, Invariants, RestDoor
from .support import api_url, unique


class RestInvariants(Invariants, unittest.TestCase):
    def setUp(self) -> None:
        self.door = RestDoor(api_url(), unique("race"))
        self.addCleanup(self.door.close)


class GrpcInvariants(Invariants, unittest.TestCase):
    def setUp(self) -> None:
        self.door = GrpcDoor(None, unique("race"))
        self.addCleanup(self.door.close)
