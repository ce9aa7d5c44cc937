"""Reading a library into the catalogue: CSV, JSON Lines, M3U/M3U8 playlists and folders
of audio files, each row checked (``shared.catalogue.entry``) and written in batches.

A bad row is reported with its file and line (or the file alone, for an audio file) and
skipped; it never stops the import. Re-importing updates tracks in place. ``replace``
builds the new catalogue beside the old one and swaps it in with one atomic call, so
searches see the old catalogue or the new one, never a mix; an import that reads no track
at all leaves the catalogue as it was. One import runs at a time (a lock in Redis).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidField
from . import Catalogue, Entry, entry

BATCH = 250  # tracks per call: each holds Redis ~20-40 ms on a shared 2-core box (100: ~18)
LOCK_MS = 60_000  # the import lock, renewed with every batch
AUDIO = frozenset((".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav",
                   ".wma", ".aif", ".aiff", ".ape", ".wv", ".mpc", ".dsf"))
TEXT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                ".m3u": "m3u", ".m3u8": "m3u"}
FORMATS = ".csv, .jsonl (or .ndjson), .m3u, .m3u8, an audio file or a folder of them"
_CLOCK = re.compile(r"(?:(\d{1,2}):)?(\d{1,3}):([0-5]\d)")
_EXTINF = re.compile(r"#EXTINF:\s*(-?\d+(?:\.\d+)?)([^,]*),(.*)")
_ATTRIBUTE = re.compile(r'([A-Za-z0-9_-]+)="([^"]*)"')
ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "albumartist": "TPE2", "album": "TALB",
              "date": "TDRC", "genre": "TCON", "tracknumber": "TRCK",
              "musicbrainz_trackid": "UFID:http://musicbrainz.org"}
_ESCAPED = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


class Skipped(Exception):
    """A row that cannot be imported, and why."""


@dataclass
class Summary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    replaced: bool = False
    total: int = 0  # tracks in the catalogue afterwards
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "replaced": self.replaced,
                "skipped": [{"where": w, "why": y} for w, y in self.skipped],
                "tracks": self.total, "seconds": round(self.seconds, 2)}


Row = tuple[str, "Entry | Skipped"]  # where (file:line), and the track or why not


# -- values -------------------------------------------------------------------------------

def seconds(value: Any) -> int | None:
    """A duration as libraries write it: whole or fractional seconds, "3:45" or "1:02:03";
    None (unknown) when empty. InvalidField otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField("duration", "must be a number of seconds or m:ss, got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):  # NaN, or 1e400 read as inf
            raise InvalidField("duration", f"must be a number of seconds, got {value}")
        return round(value) if value >= 0 else None if value == -1 else _negative(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        clock = _CLOCK.fullmatch(text)
        if clock:
            hours, minutes, secs = (int(x or 0) for x in clock.groups())
            return hours * 3600 + minutes * 60 + secs
        try:
            number = float(text)
        except ValueError:
            raise InvalidField("duration", f"must be a number of seconds or m:ss, got "
                                           f"{text[:20]!r}") from None
        if not math.isfinite(number):
            raise InvalidField("duration", f"must be a number of seconds, got {text[:20]!r}")
        return round(number) if number >= 0 else None if number == -1 else _negative(number)
    raise InvalidField("duration", "must be a number of seconds or m:ss")


def _negative(value: float) -> int:
    raise InvalidField("duration", f"must not be negative, got {value:g}")


def checked(values: dict[str, Any]) -> Entry:
    """A track from a row's named values (id, title, artist, album, duration, the rest
    extra). Skipped, naming the field, if a value breaks its rules."""
    named: dict[str, Any] = {}
    for key, value in values.items():
        if key is None:
            continue
        name = str(key).strip().lower()
        if name in named:
            raise Skipped(f"names {name!r} twice (names are read without case)")
        named[name] = value
    values = named
    for name, value in values.items():
        if isinstance(value, str) and _ESCAPED.search(value):
            raise Skipped(f"{name}: is not valid UTF-8")
    extra = {k: v for k, v in values.items()
             if k not in ("id", "title", "artist", "album", "duration")}
    try:
        return entry(values.get("id"), values.get("title"), values.get("artist"),
                     values.get("album"), seconds(values.get("duration")), extra)
    except InvalidField as exc:
        raise Skipped(exc.detail) from None


def derived_id(kind: str, location: str) -> str:
    """A stable id for a track known only by where it is (a playlist entry, a file)."""
    return f"{kind}-{hashlib.sha1(location.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}"


# -- readers: each yields (where, Entry or Skipped) -------------------------------------

def read_csv(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    reader = csv.reader(lines)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield f"{path}:1", Skipped(f"the header cannot be read: {exc}")
        return
    while header and not header[-1]:  # spreadsheets export empty trailing columns
        header.pop()
    missing = [name for name in ("id", "title", "artist") if name not in header]
    if missing:
        yield f"{path}:1", Skipped(f"the header lacks {', '.join(missing)} (expected "
                                   "id,title,artist,duration and any other columns)")
        return
    seen_header = set()
    for name in header:
        if name in seen_header:
            yield f"{path}:1", Skipped(f"the header names {name!r} twice")
            return
        seen_header.add(name)
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            yield f"{path}:{start}", Skipped(f"not readable as CSV: {exc}")
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path}:{start}"
        if len(row) > len(header) and not any(cell.strip() for cell in row[len(header):]):
            row = row[:len(header)]
        if len(row) != len(header):
            yield where, Skipped(f"has {len(row)} columns, the header {len(header)}")
            continue
        try:
            yield where, checked(dict(zip(header, row, strict=True)))
        except Skipped as exc:
            yield where, exc


def _not_json(name: str) -> Any:
    """NaN and Infinity, which Python's json reads but JSON does not have."""
    raise ValueError(f"{name} is not a JSON number")


def read_jsonl(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line, parse_constant=_not_json)
        except ValueError as exc:
            yield where, Skipped(f"not valid JSON ({exc.args[0].split(':')[0]})")
            continue
        except RecursionError:
            yield where, Skipped("not valid JSON here (nested too deeply)")
            continue
        if not isinstance(value, dict):
            yield where, Skipped("is not a JSON object")
            continue
        try:
            yield where, checked(value)
        except Skipped as exc:
            yield where, exc


def read_m3u(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    """Extended M3U: ``#EXTINF:<seconds> [attributes],<artist> - <title>`` before each
    entry's location (``#EXTALB:`` and ``#EXTART:`` too). The id is the entry's
    ``id="..."`` attribute, else one derived from its location."""
    info: tuple[int, str, dict[str, str]] | None = None
    album = artist_tag = ""
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.upper() == "#EXTM3U":
            continue
        if line.startswith("#EXTINF:"):
            match = _EXTINF.match(line)
            if match is None:
                yield f"{path}:{number}", Skipped("#EXTINF should read "
                                                  "'#EXTINF:<seconds>,<artist> - <title>'")
                info = None
                continue
            info = (number, match.group(3).strip(), dict(_ATTRIBUTE.findall(match.group(2))))
            info[2]["duration"] = match.group(1)
            continue
        if line.startswith("#EXTALB:"):
            album = line[8:].strip()
            continue
        if line.startswith("#EXTART:"):
            artist_tag = line[8:].strip()
            continue
        if line.startswith("#"):
            continue
        if info is None:
            yield f"{path}:{number}", Skipped(f"{line[:60]!r} has no #EXTINF line before it "
                                              "(its title and artist)")
            continue
        at, text, attributes = info
        info = None
        where = f"{path}:{at}"
        artist, dash, title = text.partition(" - ")
        if not dash:
            artist, title = artist_tag, text
        if not artist.strip():
            yield where, Skipped("no artist: #EXTINF should read '<seconds>,<artist> - <title>'")
            continue
        location = line if "://" in line else str((path.parent / line).resolve())
        values = {"id": attributes.pop("id", None) or derived_id("m3u", location),
                  "title": title, "artist": artist, "album": album or None,
                  "duration": attributes.pop("duration"), "location": location}
        try:
            yield where, checked(values)
        except Skipped as exc:
            yield where, exc


def read_audio(path: Path) -> Row:
    """One audio file's tags (mutagen): title (else the file's name), artist, album, its
    length; the id is its MusicBrainz track id, else one derived from its path."""
    import mutagen

    where = str(path)
    try:
        audio = mutagen.File(path, easy=True)
    except Exception as exc:  # mutagen raises many kinds for a damaged file
        return where, Skipped(f"cannot be read as audio ({type(exc).__name__}: {exc})")
    if audio is None:
        return where, Skipped("is not an audio file mutagen can read")
    tags = audio.tags or {}

    def tag(name: str) -> str | None:
        """An easy tag (FLAC, Ogg, MP3, MP4...), else its ID3 frame (WAV, AIFF)."""
        try:
            values = tags.get(name) or tags.get(ID3_FRAMES.get(name, ""))
        except Exception:  # a tag mutagen cannot read counts as absent
            return None
        values = getattr(values, "text", values)  # an ID3 frame holds its values in .text
        return str(values[0]).strip() if values else None

    length = getattr(audio.info, "length", None) if audio.info else None
    artist = tag("artist") or tag("albumartist")
    if not artist:
        return where, Skipped("has no artist tag")
    values = {"id": tag("musicbrainz_trackid") or derived_id("file", str(path.resolve())),
              "title": tag("title") or path.stem, "artist": artist, "album": tag("album"),
              "duration": length, "location": str(path.resolve())}
    for name in ("date", "genre", "tracknumber"):
        if tag(name):
            values[name] = tag(name)
    try:
        return where, checked(values)
    except Skipped as exc:
        return where, exc


def audio_files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(root, name) for name in sorted(files)
                  if Path(name).suffix.lower() in AUDIO]
    return found


class Source:
    """One path given to the importer: its rows, and how far reading it has got."""

    def __init__(self, path: Path):
        self.path = path
        self.done = 0  # bytes read (text) or files read (folders)
        if path.is_dir():
            self.files = audio_files(path)
            self.size = len(self.files)
        else:
            self.files = []
            self.size = path.stat().st_size if path.is_file() else 0

    def rows(self) -> Iterator[Row]:
        path = self.path
        if path.is_dir():
            if not self.files:
                yield str(path), Skipped("has no audio files (" + ", ".join(sorted(AUDIO)) + ")")
            for number, file in enumerate(self.files, 1):
                yield read_audio(file)
                self.done = number
            return
        if not path.exists():
            yield str(path), Skipped("does not exist")
            return
        suffix = path.suffix.lower()
        if suffix in AUDIO:
            yield read_audio(path)
            self.done = self.size
            return
        kind = TEXT_FORMATS.get(suffix)
        if kind is None:
            yield str(path), Skipped(f"unknown format (expected {FORMATS})")
            return
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                    newline="" if kind == "csv" else None)
            reader = {"csv": read_csv, "jsonl": read_jsonl, "m3u": read_m3u}[kind]
            yield from reader(path, _Counting(text, raw, self))
        self.done = self.size


class _Counting:
    """Lines of a text file, noting how many bytes have been read (for the progress bar)."""

    def __init__(self, text: IO[str], raw: IO[bytes], source: Source):
        self.text, self.raw, self.source = text, raw, source

    def __iter__(self) -> Iterator[str]:
        for number, line in enumerate(self.text):
            if number % 1024 == 0:
                self.source.done = self.raw.tell()
            yield line


# -- the progress bar ---------------------------------------------------------------------

class Progress:
    """A one-line bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, sources: list[Source], out: IO[str] | None):
        self.sources, self.out = sources, out
        self.total = sum(s.size for s in sources) or 1
        self.started = self.drawn = time.monotonic()

    def update(self, tracks: int, final: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if not final and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = 1.0 if final else min(1.0, sum(s.done for s in self.sources) / self.total)
        filled = int(share * 30)
        self.out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}  {tracks:,} tracks"
                       f"  {now - self.started:.1f} s" + ("\n" if final else ""))
        self.out.flush()


# -- the import ---------------------------------------------------------------------------

async def run(catalogue: Catalogue, paths: list[Path], replace: bool = False,
              progress: IO[str] | None = None,
              on_batch: Callable[[int], None] | None = None) -> Summary:
    """Import ``paths`` (see the module docstring). RuntimeError if another import holds
    the lock, or if ``replace`` found nothing to import."""
    started = time.monotonic()
    token = uuid.uuid4().hex
    if not await catalogue.lock(token, LOCK_MS):
        raise RuntimeError("another import is running; try again when it has finished")
    summary = Summary(replaced=replace)
    try:
        await catalogue.upgrade(token)  # an older release's index first, if there is one
        if replace:
            await catalogue.discard_staged()
        sources = [Source(path) for path in paths]
        bar = Progress(sources, progress)
        seen: dict[str, str] = {}
        batch: list[Entry] = []

        async def flush() -> None:
            if not await catalogue.lock(token, LOCK_MS):
                raise RuntimeError("the import lost its lock (it was held for over a minute "
                                   "without a batch); nothing more was written")
            added, updated, unchanged = await catalogue.put(batch, staged=replace)
            summary.added += added
            summary.updated += updated
            summary.unchanged += unchanged
            batch.clear()
            if on_batch is not None:
                on_batch(summary.imported)

        for source in sources:
            for where, row in source.rows():
                if isinstance(row, Skipped):
                    summary.skipped.append((where, str(row)))
                    continue
                first = seen.get(row.id)
                if first is not None:
                    summary.skipped.append((where, f"id {row.id!r} was imported already "
                                                   f"from {first}"))
                    continue
                seen[row.id] = where
                batch.append(row)
                if len(batch) >= BATCH:
                    await flush()
                    bar.update(summary.imported)
        if batch:
            await flush()
        bar.update(summary.imported, final=True)
        if replace:
            if not summary.imported:
                await catalogue.discard_staged()
                raise RuntimeError("nothing to import: the catalogue is left as it was")
            summary.total = await catalogue.swap()
        else:
            summary.total = await catalogue.size()
    finally:
        await catalogue.lock(token, 0)
    summary.seconds = time.monotonic() - started
    return summary


SHOWN = 50  # skipped rows listed one by one; the rest are counted


def report(summary: Summary, out: IO[str] = sys.stdout) -> None:
    """The summary in words: what was imported, updated and skipped, where and why."""
    if summary.replaced:
        out.write(f"Replaced the catalogue: {summary.total:,} tracks "
                  f"({summary.seconds:.1f} s).\n")
    else:
        out.write(f"Imported {summary.imported:,} tracks: {summary.added:,} new, "
                  f"{summary.updated:,} updated, {summary.unchanged:,} unchanged "
                  f"({summary.seconds:.1f} s); the catalogue has {summary.total:,}.\n")
    if summary.skipped:
        out.write(f"Skipped {len(summary.skipped):,}:\n")
        for where, why in summary.skipped[:SHOWN]:
            out.write(f"  {where}: {why}\n")
        if len(summary.skipped) > SHOWN:
            out.write(f"  ... and {len(summary.skipped) - SHOWN:,} more (--json lists all)\n")
