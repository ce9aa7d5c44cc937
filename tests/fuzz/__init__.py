"""The seeded fuzz of both front doors (run by tests/test_fuzz.py): the value tables
(``values``), the REST and raw-HTTP cases (``rest_cases``), the gRPC cases
(``grpc_cases``), and the judges that send each case and say what was wrong with its
answer (``judges``)."""
