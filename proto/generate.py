"""Regenerate the committed stubs from queue.proto: ``python -m proto.generate``."""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = "proto/queue.proto"


def generate(out: Path) -> None:
    """Write queue_pb2.py, queue_pb2.pyi and queue_pb2_grpc.py into out/proto/."""
    (out / "proto").mkdir(parents=True, exist_ok=True)
    code = protoc.main(["grpc_tools.protoc", f"-I{ROOT}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_python_out={out}", str(ROOT / PROTO)])
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {code})")


def main() -> int:
    generate(ROOT)
    print(f"generated the stubs of {PROTO} in proto/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
