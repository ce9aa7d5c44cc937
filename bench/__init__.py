"""Load generators and the benchmark report (``python -m bench.report``)."""
