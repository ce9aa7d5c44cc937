"""The gRPC front door: ``python -m grpc_svc.server`` and ``python -m grpc_svc.client``."""
