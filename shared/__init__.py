"""The queue's core: keys, Lua scripts, atomic operations, validation and errors.

Both front doors (``rest`` and ``grpc_svc``) import this package; it knows nothing
of HTTP or gRPC.
"""
