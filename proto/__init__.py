"""The wire format: ``queue.proto`` and the Python stubs generated from it.

The stubs (``queue_pb2.py``, ``queue_pb2.pyi``, ``queue_pb2_grpc.py``) are committed, so
nobody runs protoc by hand; after editing the .proto, run ``python -m proto.generate``.
``tests/test_grpc_wire.py`` fails when the committed stubs differ from what the .proto gives.
"""
