"""The operator's command: ``python -m shared.catalogue import [--replace] FILE...``.

Reads REDIS_URL (or REDIS_CLUSTER, REDIS_SENTINELS) like a node does. Prints a summary:
tracks imported (new, updated, unchanged) and every skipped row with its file, line and
why; ``--json`` prints it as one JSON object instead. Exit status 0 when the import ran
(even with skipped rows), 1 when it could not (Redis unreachable, another import running,
nothing to import with --replace), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .. import store
from ..config import Settings
from ..errors import StoreUnavailable
from . import Catalogue
from .importer import FORMATS, report, run


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m shared.catalogue",
                                   description="Manage the catalogue guests search.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    load = commands.add_parser("import", help="import tracks into the catalogue",
                               description=f"Import tracks from {FORMATS}. CSV and JSON "
                               "Lines take id, title, artist, duration (seconds or m:ss), "
                               "album, and keep any other columns. Re-importing updates "
                               "tracks in place.")
    load.add_argument("paths", nargs="+", type=Path, metavar="FILE")
    load.add_argument("--replace", action="store_true",
                      help="replace the whole catalogue with these files, in one atomic step")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                      help="the progress bar on stderr (auto: when it is a terminal)")
    return main


async def main_async(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    redis = store.connect(settings)
    shown = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        summary = await run(Catalogue(redis), args.paths, args.replace,
                            sys.stderr if shown else None)
    except StoreUnavailable as exc:
        print(f"error: Redis is unreachable ({exc.detail}); nothing more was imported",
              file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        report(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
