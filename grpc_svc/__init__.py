"""The gRPC front door: the server (``python -m grpc_svc.server``) and the command-line
client (``python -m grpc_svc.client``)."""

from proto import queue_pb2

# The service's full name, as every call path, health check and retry policy spells it.
SERVICE: str = queue_pb2.DESCRIPTOR.services_by_name["QueueService"].full_name
