"""The catalogue: importing each format (bad rows reported and skipped, nothing else lost),
what a search matches and how it ranks, search and add by id over REST, gRPC and the CLI,
``--replace`` under concurrent searches, and the page's search box in Chromium.

The catalogue is one per deployment, so these tests run only against the local cluster
(importing needs its Redis), and each test's tracks carry a word of their own (``tag``)
that its searches include, so tests never see each other's tracks.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from pathlib import Path
from unittest import mock

import grpc

import shared.catalogue as catalogue
from proto import queue_pb2 as pb
from proto import queue_pb2_grpc as pb_grpc
from shared import store
from shared.config import Settings

from .browser import Browser, chromium
from .support import Http, admin_headers, grpc_channel, local_cluster, unique

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "catalogue"


def tag() -> str:
    """A word no other test's tracks have (letters only: a word of its own)."""
    return "qz" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def run_import(*paths: Path | str, replace: bool = False) -> tuple[int, dict, str]:
    """``python -m shared.catalogue import --json`` against the local cluster's Redis:
    (exit status, the summary, stderr)."""
    cluster = local_cluster()
    env = {**os.environ, **cluster.redis_env()}
    argv = [sys.executable, "-m", "shared.catalogue", "import", "--json",
            *(["--replace"] if replace else []), *map(str, paths)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env=env)
    summary = json.loads(result.stdout) if result.returncode == 0 else {}
    return result.returncode, summary, result.stderr


def write(directory: str, name: str, text: str) -> Path:
    path = Path(directory, name)
    path.write_text(text, encoding="utf-8")
    return path


class CatalogueCase(unittest.TestCase):
    def setUp(self) -> None:
        self.cluster = local_cluster()
        self.http = Http(self.cluster.api_url)
        self.addCleanup(self.http.close)
        self.dir = tempfile.mkdtemp(prefix="catalogue-")
        self.tag = tag()

    def search(self, q: str, limit: int | None = None) -> list[dict]:
        query = {"q": q} if limit is None else {"q": q, "limit": limit}
        reply = self.http.get("/catalogue/search?" + urllib.parse.urlencode(query))
        self.assertEqual(reply.status, 200, reply.body)
        return reply.json()["tracks"]

    def titles(self, q: str, limit: int | None = None) -> list[str]:
        return [t["title"] for t in self.search(q, limit)]

    def imported(self, *paths: Path | str, replace: bool = False) -> dict:
        code, summary, stderr = run_import(*paths, replace=replace)
        self.assertEqual(code, 0, stderr)
        return summary

    def skipped(self, summary: dict) -> dict[str, str]:
        return {row["where"]: row["why"] for row in summary["skipped"]}


class CatalogueImport(CatalogueCase):
    def test_csv_bad_rows_are_reported_and_skipped_and_the_rest_imported(self):
        t = self.tag
        path = write(self.dir, "library.csv", (
            "id,title,artist,duration,album,year\n"
            f"{t}-1,Jóga {t},Björk,5:05,Homogenic,1997\n"
            f"{t}-2,,Björk,300,Homogenic,1997\n"               # line 3: no title
            f"{t}-3,Hunter {t},Björk,four minutes,,1997\n"      # line 4: bad duration
            f"{t}-4,\"Comma, Inside {t}\",\"AC/DC\",215,,\n"    # quoted comma: fine
            f"bad id!,Title {t},Artist,200,,\n"                 # line 6: bad id
            f"{t}-1,Again {t},Someone,100,,\n"                  # line 7: duplicate id
            f"{t}-5,Only Three {t},Columns\n"                   # line 8: too few columns
            f"{t}-6,Unravel {t},Björk,201.4,Homogenic,\n"))
        summary = self.imported(path)
        self.assertEqual(summary["imported"], 3)
        self.assertEqual(summary["added"], 3)
        skipped = self.skipped(summary)
        self.assertEqual(set(skipped), {f"{path}:{n}" for n in (3, 4, 6, 7, 8)})
        self.assertIn("title", skipped[f"{path}:3"])
        self.assertIn("duration", skipped[f"{path}:4"])
        self.assertIn("id", skipped[f"{path}:6"])
        self.assertIn(f"{path}:2", skipped[f"{path}:7"])  # where the id was first
        self.assertIn("columns", skipped[f"{path}:8"])
        track = self.http.get(f"/catalogue/tracks/{t}-1").json()
        self.assertEqual((track["title"], track["artist"], track["album"], track["duration"]),
                         (f"Jóga {t}", "Björk", "Homogenic", 305))
        self.assertEqual(track["extra"], {"year": "1997"})
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-6").json()["duration"], 201)
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-4").json()["artist"], "AC/DC")
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-2").status, 404)

    def test_a_csv_without_the_needed_columns_is_reported(self):
        path = write(self.dir, "wrong.csv", "name,singer\nA,B\n")
        summary = self.imported(path)
        self.assertEqual(summary["imported"], 0)
        self.assertIn("id, title, artist", self.skipped(summary)[f"{path}:1"])

    def test_json_lines(self):
        t = self.tag
        path = write(self.dir, "library.jsonl", "\n".join([
            json.dumps({"id": f"{t}-1", "title": f"Hoppípolla {t}", "artist": "Sigur Rós",
                        "duration": 268, "album": "Takk...", "genre": "post-rock"}),
            "{not json",                                                    # line 2
            json.dumps([f"{t}-2", "a list"]),                               # line 3
            "",
            json.dumps({"id": 42, "title": f"Numeric id {t}", "artist": "X"}),
            json.dumps({"id": f"{t}-3", "title": f"Deep {t}", "artist": "X",
                        "tags": {"nested": True}}),                         # line 6
            json.dumps({"id": f"{t}-4", "title": "x" * 201, "artist": "X"}),  # line 7
        ]) + "\n")
        summary = self.imported(path)
        self.assertEqual(summary["imported"], 2)
        skipped = self.skipped(summary)
        self.assertEqual(set(skipped), {f"{path}:{n}" for n in (2, 3, 6, 7)})
        self.assertIn("JSON", skipped[f"{path}:2"])
        self.assertIn("object", skipped[f"{path}:3"])
        self.assertIn("tags", skipped[f"{path}:6"])
        self.assertIn("title", skipped[f"{path}:7"])
        track = self.http.get(f"/catalogue/tracks/{t}-1").json()
        self.assertEqual(track["extra"], {"genre": "post-rock"})
        self.assertEqual(self.titles(f"numeric {t}"), [f"Numeric id {t}"])

    def test_json_lines_that_python_reads_and_json_has_not_are_reported(self):
        t = self.tag
        path = write(self.dir, "odd.jsonl", "\n".join([
            json.dumps({"id": f"{t}-1", "title": f"Huge {t}", "artist": "X", "duration": 1}
                       ).replace('"duration": 1', '"duration": 1e400'),
            json.dumps({"id": f"{t}-2", "title": f"NaN {t}", "artist": "X", "duration": 1}
                       ).replace('"duration": 1', '"duration": NaN'),
            "[" * 100_000,                                                  # line 3
            json.dumps({"id": f"{t}-4", "ID": "other", "title": f"Cased {t}", "artist": "X"}),
            json.dumps({"id": f"{t}-5", "title": f"Fine {t}", "artist": "X"}),
        ]) + "\n")
        summary = self.imported(path)
        self.assertEqual(summary["imported"], 1)
        skipped = self.skipped(summary)
        self.assertEqual(set(skipped), {f"{path}:{n}" for n in (1, 2, 3, 4)})
        self.assertIn("duration", skipped[f"{path}:1"])
        self.assertIn("NaN", skipped[f"{path}:2"])
        self.assertIn("nested", skipped[f"{path}:3"])
        self.assertIn("twice", skipped[f"{path}:4"])
        self.assertEqual(self.titles(f"fine {t}"), [f"Fine {t}"])

    def test_wide_exports_and_long_locations_are_kept(self):
        t = self.tag
        columns = [f"c{n}" for n in range(30)]
        url = "https://stream.example/" + "a" * 300
        path = write(self.dir, "wide.csv", "id,title,artist," + ",".join(columns) + ",,\n"
                     + f"{t}-1,Wide {t},X," + ",".join(str(n) for n in range(30)) + ",,\n"
                     + f"{t}-2,Long {t},X," + url + "," * 29 + ",,\n")
        summary = self.imported(path)
        self.assertEqual(summary["skipped"], [])
        self.assertEqual(summary["imported"], 2)
        wide = self.http.get(f"/catalogue/tracks/{t}-1").json()
        self.assertEqual(len(wide["extra"]), 30)
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-2").json()["extra"], {"c0": url})

    def test_m3u_playlists(self):
        t = self.tag
        path = write(self.dir, "party.m3u8", (
            "#EXTM3U\n"
            f"#EXTINF:354,Queen - Bohemian Rhapsody {t}\n"
            "music/queen/bohemian.flac\n"
            f'#EXTINF:-1 id="{t}-radio",Some Station - Live Set {t}\n'
            "http://radio.example/stream\n"
            "music/orphan.mp3\n"                                 # line 6: no #EXTINF
            f"#EXTINF:200,No dash title {t}\n"                   # line 7: no artist
            "music/nodash.mp3\n"
            "#EXTINF:abc\n"                                       # line 9: unreadable
            "music/broken.mp3\n"))
        summary = self.imported(path)
        self.assertEqual(summary["imported"], 2)
        skipped = self.skipped(summary)
        self.assertEqual(set(skipped), {f"{path}:{n}" for n in (6, 7, 9, 10)})
        self.assertIn("#EXTINF", skipped[f"{path}:6"])
        self.assertIn("artist", skipped[f"{path}:7"])
        found = self.search(f"bohemian {t}")
        self.assertEqual([(x["artist"], x["duration"]) for x in found], [("Queen", 354)])
        radio = self.http.get(f"/catalogue/tracks/{t}-radio").json()
        self.assertEqual((radio["title"], radio["duration"]), (f"Live Set {t}", 0))
        self.assertEqual(radio["extra"]["location"], "http://radio.example/stream")

    def test_a_folder_of_audio_files(self):
        summary = self.imported(FIXTURES / "audio")
        self.assertEqual(summary["imported"], 2)
        skipped = self.skipped(summary)
        folder = FIXTURES / "audio"
        self.assertIn("artist", skipped[str(folder / "no artist.wav")])
        self.assertIn("audio", skipped[str(folder / "not really.mp3")])
        self.assertEqual(len(skipped), 2)  # cover.jpg is no audio file: not a row at all
        found = {t["title"]: t for t in self.search("olof qzaudio")}
        self.assertEqual(set(found), {"Fjöllin hafa vakað", "02 Vinur minn"})
        first = found["Fjöllin hafa vakað"]
        self.assertEqual((first["album"], first["duration"]), ("Við og við", 2))
        self.assertEqual(first["extra"]["date"], "2007")

    def test_reimporting_updates_in_place(self):
        t = self.tag
        header = "id,title,artist,duration\n"
        self.imported(write(self.dir, "a.csv", header + f"{t}-1,Old name {t},A,100\n"
                                                          f"{t}-2,Kept {t},A,100\n"))
        summary = self.imported(write(self.dir, "b.csv", header + f"{t}-1,New name {t},A,120\n"
                                                                  f"{t}-2,Kept {t},A,100\n"))
        self.assertEqual((summary["added"], summary["updated"], summary["unchanged"]), (0, 1, 1))
        self.assertEqual(self.titles(f"{t} old"), [])
        self.assertEqual(self.titles(f"{t} new"), [f"New name {t}"])
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-1").json()["duration"], 120)

    def test_unknown_formats_and_missing_files_are_reported(self):
        summary = self.imported(write(self.dir, "notes.txt", "hello\n"),
                                Path(self.dir, "missing.csv"))
        skipped = self.skipped(summary)
        self.assertIn("unknown format", skipped[str(Path(self.dir, "notes.txt"))])
        self.assertIn("does not exist", skipped[str(Path(self.dir, "missing.csv"))])


class CatalogueSearch(CatalogueCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.t = t = tag()
        rows = [
            ("beat", f"Beat {t}", "Someone", ""),
            ("beatit", f"Beat {t} It", "Michael Jackson", "Thriller"),
            ("beaten", f"Beaten {t} Path", "Walker", ""),
            ("beatles", "Come Together", f"The Beatles {t}", "Abbey Road"),
            ("bjork", f"Jóga {t}", "Björk", "Homogenic"),
            ("strasse", f"Straße {t}", "Kraftwerk", "Trans-Europa Express"),
            ("cafe", f"Café {t}", "Tacvba", "Re"),
            ("ndash", f"Don't Stop {t}", "R.E.M.", "Out of Time"),
            ("compat", f"ＡＢＢＡ ℌits {t}", "ℂoral Band", ""),  # fullwidth, letters without case
        ]
        rows += [(f"n{i}", f"Filler {i} {t}", "Filler Band", "") for i in range(30)]
        directory = tempfile.mkdtemp(prefix="catalogue-")
        text = "id,title,artist,album,duration\n" + "".join(
            f'{t}-{key},"{title}","{artist}","{album}",200\n'
            for key, title, artist, album in rows)
        code, _, stderr = run_import(write(directory, "search.csv", text))
        assert code == 0, stderr

    def ids(self, q: str, limit: int | None = None) -> list[str]:
        return [str(x["id"]).removeprefix(f"{self.t}-") for x in self.search(q, limit)]

    def test_word_prefixes_of_title_artist_and_album(self):
        t = self.t
        self.assertEqual(set(self.ids(f"beat {t}")), {"beat", "beatit", "beaten", "beatles"})
        self.assertEqual(self.ids(f"{t} thrill"), ["beatit"])  # the album
        self.assertEqual(self.ids(f"{t} jack"), ["beatit"])  # the artist
        self.assertEqual(self.ids(f"{t} eat"), [])  # inside a word is no prefix

    def test_case_and_accents_are_ignored(self):
        t = self.t
        self.assertEqual(self.ids(f"bjork {t}"), ["bjork"])
        self.assertEqual(self.ids(f"BJÖRK {t.upper()}"), ["bjork"])
        self.assertEqual(self.ids(f"joga {t}"), ["bjork"])
        self.assertEqual(self.ids(f"strasse {t}"), ["strasse"])  # ß is ss
        self.assertEqual(self.ids(f"cafe {t}"), ["cafe"])
        self.assertEqual(self.ids(f"CAFÉ {t}"), ["cafe"])
        self.assertEqual(self.ids(f"abba hits coral band {t}"), ["compat"])
        self.assertEqual(self.ids(f"ℂORAL ＨＩＴＳ {t}"), ["compat"])
        # one kept answer for both spellings, each echoed as it was typed
        for typed in (f"Café {t}", f"cafe {t.upper()}"):
            reply = self.http.get("/catalogue/search?" + urllib.parse.urlencode({"q": typed}))
            self.assertEqual(reply.json()["query"], typed)
            self.assertEqual([x["title"] for x in reply.json()["tracks"]], [f"Café {t}"])

    def test_punctuation_apostrophes_and_initials(self):
        t = self.t
        self.assertEqual(self.ids(f"dont {t}"), ["ndash"])
        self.assertEqual(self.ids(f"don't {t}"), ["ndash"])
        self.assertEqual(self.ids(f"rem {t}"), ["ndash"])
        self.assertEqual(self.ids(f"r.e.m. {t}"), ["ndash"])
        self.assertEqual(self.ids(f"trans europa {t}"), ["strasse"])  # the hyphen splits

    def test_every_word_must_match(self):
        t = self.t
        self.assertEqual(self.ids(f"beat {t} michael"), ["beatit"])
        self.assertEqual(self.ids(f"beat {t} kraftwerk"), [])

    def test_ranking_exact_title_then_title_prefix_then_the_rest(self):
        t = self.t
        ranked = self.ids(f"beat {t}")
        self.assertEqual(ranked[0], "beat")  # the title is the query
        self.assertEqual(ranked[1:3], ["beatit", "beaten"])  # titles that start with it
        self.assertEqual(ranked[3], "beatles")  # the artist matches: the rest

    def test_ties_are_broken_by_times_played(self):
        t = self.t
        room = unique("plays")
        for _ in range(2):  # Filler 7 played twice, Filler 3 once
            self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-n7"})
            self.http.post(f"/rooms/{room}/play_next", headers=admin_headers())
        self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-n3"})
        self.http.post(f"/rooms/{room}/play_next", headers=admin_headers())
        found = self.search(f"filler {t}", 5)
        self.assertEqual([x["id"] for x in found[:2]], [f"{t}-n7", f"{t}-n3"])
        self.assertEqual([x["plays"] for x in found[:3]], [2, 1, 0])

    def test_limit(self):
        t = self.t
        self.assertEqual(len(self.search(f"filler {t}")), 20)  # the default
        self.assertEqual(len(self.search(f"filler {t}", 3)), 3)
        self.assertEqual(len(self.search(f"filler {t}", 100)), 30)

    def test_bad_queries_are_422_naming_the_field(self):
        for query, field in (("", "q"), ("   ", "q"), ("x" * 201, "q"), ("!!! ...", "q"),
                             (" ".join(["a"] * 17), "q"), ("\u0301", "q")):
            reply = self.http.get("/catalogue/search?" + urllib.parse.urlencode({"q": query}))
            self.assertEqual(reply.status, 422, (query, reply.body))
            self.assertTrue(reply.detail.startswith(f"{field}:"), reply.detail)
        self.assertEqual(self.http.get("/catalogue/search").status, 422)
        for limit in ("0", "101", "-1"):
            reply = self.http.get(f"/catalogue/search?q=a&limit={limit}")
            self.assertEqual(reply.status, 422, limit)
            self.assertTrue(reply.detail.startswith("limit:"), reply.detail)
        self.assertEqual(self.http.get("/catalogue/search?q=a&limit=ten").status, 400)
        self.assertEqual(self.http.get("/catalogue/search?q=%00").status, 422)
        long = self.http.get("/catalogue/search?q=a&limit=" + "9" * 40)  # whole, out of range
        self.assertEqual(long.status, 422, long)
        self.assertTrue(long.detail.startswith("limit:"), long.detail)
        junk = self.http.get("/catalogue/search?q=a&%FF=%FE&x=%E9")  # read by nobody: ignored
        self.assertEqual(junk.status, 200, junk)
        for raw, field in (("q=caf%E9", "q"), ("limit=%FF&q=a", "limit")):
            reply = self.http.get(f"/catalogue/search?{raw}")  # Latin-1, not UTF-8
            self.assertEqual(reply.status, 400, (raw, reply))
            self.assertTrue(reply.detail.startswith(f"{field}: is not valid UTF-8"),
                            reply.detail)

    def test_a_query_nothing_matches(self):
        self.assertEqual(self.search(f"{self.t} zzzzzz"), [])
        self.assertEqual(self.search(tag()), [])


class CatalogueIndex(CatalogueCase):
    """The word index under updates (posting lists long enough to be split into chunks),
    and a node's answers narrowed from its own earlier ones."""

    def csv(self, name: str, rows: list[tuple[str, str, str]]) -> Path:
        return write(self.dir, name, "id,title,artist,duration\n" + "".join(
            f'{i},"{title}","{artist}",200\n' for i, title, artist in rows))

    def ids(self, q: str) -> list[str]:
        return [str(x["id"]) for x in self.search(q, 100)]

    def test_an_update_that_changes_a_tracks_words_leaves_no_stale_match(self):
        t = self.tag
        red, blue = f"r{t}", f"b{t}"
        ids = [f"{t}-{i:03d}" for i in range(300)]  # a word of 300 tracks: several chunks
        self.imported(self.csv("a.csv", [(i, f"Song {t} {n}", f"Band {red}")
                                         for n, i in enumerate(ids)]))
        self.assertEqual(self.ids(red), ids[:100])
        moved = ids[::3]
        # a third change their words; new ids sort between the old ones
        added = [f"{i}m" for i in ids[1::50]]
        self.imported(self.csv("b.csv", [(i, f"Song {t}", f"Band {blue}") for i in moved]
                               + [(i, f"Song {t}", f"Band {red}") for i in added]))
        kept = sorted(set(ids) - set(moved) | set(added))
        self.assertEqual(self.ids(blue), moved[:100])
        self.assertEqual(self.ids(red), kept[:100])
        self.assertEqual(self.ids(f"{red} {t}"), kept[:100])
        self.assertEqual(self.ids(f"{blue} band"), moved[:100])
        # every track back to red: blue is a word of no track, none of its entries stale
        self.imported(self.csv("c.csv", [(i, f"Song {t}", f"Band {red}") for i in moved]))
        self.assertEqual(self.ids(blue), [])
        self.assertEqual(self.ids(f"{t} {red} song"), sorted(set(ids) | set(added))[:100])

    def test_a_played_title_match_leads_a_broad_query_whatever_the_limit(self):
        """60 titles start with the query, so the first page holds only the first of them
        alphabetically; the last one, played once, still comes first, with 60 tracks of
        other queries played more (more than catalogue.TOP: the most played alone would
        not find it; the titles read when tracks were played do, SCAN of them)."""
        t, other = self.tag, tag()
        rows = [(f"{t}-{n:02}", f"{t} song {n:02}", "Band") for n in range(60)]
        rows += [(f"{other}-{n:02}", f"{other} hit {n:02}", "Band") for n in range(60)]
        self.imported(self.csv("broad.csv", rows))
        env = self.cluster.redis_env()

        async def play() -> None:
            redis = store.connect(Settings.from_env(env))
            try:
                for n in range(60):
                    for _ in range(2):
                        await catalogue.count_play(redis, f"{other}-{n:02}")
                await catalogue.count_play(redis, f"{t}-59")
            finally:
                await redis.aclose()

        async def forget() -> None:  # (plays rank every search: leave none to other tests)
            redis = store.connect(Settings.from_env(env))
            try:
                await redis.execute("ZREM", catalogue.keys.CATALOGUE.plays,
                                    *(f"{other}-{n:02}" for n in range(60)), f"{t}-59")
                await redis.execute("INCR", catalogue.keys.CATALOGUE.played)
            finally:
                await redis.aclose()

        self.addCleanup(asyncio.run, forget())
        asyncio.run(play())
        for limit in (3, 8, 20):
            found = self.search(t, limit)
            self.assertEqual([x["id"] for x in found[:2]], [f"{t}-59", f"{t}-00"], limit)
            self.assertEqual(found[0]["plays"], 1)
        self.assertLess(catalogue.TOP, 60)
        self.assertLess(60, catalogue.SCAN)

    def test_a_narrowed_answer_is_the_one_redis_gives(self):
        t = self.tag
        rows = [(f"{t}-{n}", title, artist) for n, (title, artist) in enumerate([
            (f"{t} Fever", "Anna"), (f"{t} Fever Moon", "Ben"), (f"{t} Feverish", "Carla"),
            (f"Moon {t}", "Fever Band"), (f"Night {t}", "The Fevers"), (f"Mood {t}", "Fe Ma"),
            (f"{t} Fever Mountain", "Fever Moor"), (f"Other {t}", "Zed Moon"),
            (f"{t} Fe", "Moonfever"), (f"Away {t}", "Fever Morning")])]
        self.imported(self.csv("n.csv", rows))
        env = self.cluster.redis_env()

        async def compare() -> int:
            redis = store.connect(Settings.from_env(env))
            try:
                for track_id, plays in ((f"{t}-3", 2), (f"{t}-4", 2), (f"{t}-6", 1)):
                    for _ in range(plays):
                        await catalogue.count_play(redis, track_id)
                node = catalogue.Catalogue(redis)
                with mock.patch.object(catalogue, "narrow", wraps=catalogue.narrow) as spy:
                    for limit in (100, 3):
                        typed = ""
                        for letter in f"{t} fever mo":
                            typed += letter
                            mine = await node.search(typed, limit)
                            fresh = await catalogue.Catalogue(redis).search(typed, limit)
                            self.assertEqual(mine, fresh, typed)
                    return spy.call_count
            finally:
                await redis.aclose()

        self.assertGreater(asyncio.run(compare()), 5)

    def test_a_kept_answer_lasts_until_the_catalogue_or_its_plays_change(self):
        """A node's answer is kept while nothing changed, however long (up to KEEP); once
        a play is counted, until it is FRESH seconds old; an import makes it stale at once."""
        t = self.tag
        self.imported(self.csv("k.csv", [(f"{t}-1", f"Kept {t}", "One"),
                                         (f"{t}-2", f"Kept {t} Too", "Two")]))
        env = self.cluster.redis_env()

        async def scenario() -> None:
            redis = store.connect(Settings.from_env(env))
            now = [1000.0]
            node = catalogue.Catalogue(redis, clock=lambda: now[0])
            try:
                with mock.patch.object(redis, "fcall", wraps=redis.fcall) as spy:
                    async def plays(q: str) -> list[int]:
                        return [x.plays for x in (await node.search(q)).tracks]

                    def searches() -> int:  # the ones that reached Redis
                        return sum(c.args[0] == catalogue.SEARCH for c in spy.call_args_list)

                    self.assertEqual(await plays(f"kept {t}"), [0, 0])
                    now[0] += catalogue.FRESH * 10  # nothing changed: kept
                    self.assertEqual(await plays(f"kept {t}"), [0, 0])
                    self.assertEqual(searches(), 1)
                    await catalogue.count_play(redis, f"{t}-2")  # played: that answer is old
                    self.assertEqual(await plays(f"kept {t}"), [0, 1])
                    self.assertEqual(searches(), 2)
                    await catalogue.count_play(redis, f"{t}-2")
                    now[0] += catalogue.FRESH / 2  # played again, but this answer is FRESH
                    self.assertEqual(await plays(f"kept {t}"), [0, 1])
                    self.assertEqual(searches(), 2)
                    now[0] += catalogue.FRESH  # now it is not
                    self.assertEqual(await plays(f"kept {t}"), [0, 2])
                    self.assertEqual(searches(), 3)
                    now[0] += catalogue.KEEP  # a bound, whatever happened
                    self.assertEqual(await plays(f"kept {t}"), [0, 2])
                    self.assertEqual(searches(), 4)
                    await asyncio.to_thread(self.imported, self.csv("k2.csv", [
                        (f"{t}-3", f"Kept {t} Three", "Three")]))
                    self.assertEqual(await plays(f"kept {t}"), [0, 2, 0])  # at once
                    self.assertEqual(searches(), 5)
            finally:
                await redis.aclose()

        asyncio.run(scenario())

    def test_a_following_node_checks_kept_answers_by_the_announcements(self):
        """A node that follows the catalogue's changes answers a kept search without asking
        Redis anything. Its clock is stopped here, so only an announcement can make the
        answer stale: an import shows, and so does a change made while the node's
        subscription was cut (restored, it reads the counters again)."""
        t = self.tag
        self.imported(self.csv("f.csv", [(f"{t}-1", f"Heard {t}", "One")]))
        env = self.cluster.redis_env()

        async def scenario() -> None:
            redis = store.connect(Settings.from_env(env))
            node = catalogue.Catalogue(redis, clock=lambda: 1000.0)
            node.follow()
            try:
                self.assertTrue(await node.following())
                with mock.patch.object(redis, "execute", wraps=redis.execute) as asked, \
                        mock.patch.object(redis, "fcall", wraps=redis.fcall) as searched:
                    def reached() -> tuple[int, int]:  # (counters read, searches) by Redis
                        return (sum(c.args[0] == "MGET" for c in asked.call_args_list),
                                sum(c.args[0] == catalogue.SEARCH
                                    for c in searched.call_args_list))

                    async def ids() -> list[str]:
                        return [x.id for x in (await node.search(f"heard {t}")).tracks]

                    async def eventually(want: list[str], what: str) -> None:
                        for _ in range(250):  # the announcement is on its way
                            if await ids() == want:
                                return
                            await asyncio.sleep(0.02)
                        self.fail(f"{what}: still {await ids()}")

                    self.assertEqual(await ids(), [f"{t}-1"])
                    self.assertEqual(await ids(), [f"{t}-1"])
                    self.assertEqual(reached(), (0, 1))  # kept, and Redis not asked
                    await asyncio.to_thread(self.imported, self.csv("f2.csv", [
                        (f"{t}-2", f"Heard {t} Two", "Two")]))
                    await eventually([f"{t}-1", f"{t}-2"], "an import announced")
                    self.assertEqual(reached()[1], 2)
                    # cut: the next change's announcement is lost, the restored
                    # subscription says so
                    await redis.everywhere(("CLIENT", "KILL", "TYPE", "pubsub"))
                    await node.put([catalogue.entry(f"{t}-3", f"Heard {t} Three", "Three",
                                                    None, 200)])
                    await eventually([f"{t}-1", f"{t}-3", f"{t}-2"],
                                     "a change while the subscription was cut")
            finally:
                await node.close()
                await redis.aclose()

        asyncio.run(scenario())

    def test_an_answer_evicted_while_its_check_waits_is_kept_again(self):
        """Searches that evict the answer another search found and is checking (a node
        with a full cache): the other still answers, never a 500."""
        t = self.tag
        self.imported(self.csv("e.csv", [(f"{t}-{n}", f"Evict {t} {n}", "Band")
                                         for n in range(4)]))
        env = self.cluster.redis_env()

        async def scenario() -> list[list[str]]:
            redis = store.connect(Settings.from_env(env))
            node = catalogue.Catalogue(redis, cached=1)
            try:
                await node.search(f"evict {t} 0")
                # the first's call reaches Redis before the second's check, so its answer
                # is kept (evicting the second's) while the second waits for its reply
                found = await asyncio.gather(node.search(f"evict {t} 1"),
                                             node.search(f"evict {t} 0"))
                return [[x.id for x in f.tracks] for f in found]
            finally:
                await redis.aclose()

        self.assertEqual(asyncio.run(scenario()), [[f"{t}-1"], [f"{t}-0"]])


class CatalogueUpgrade(CatalogueCase):
    def test_an_older_releases_index_is_rebuilt_by_the_next_node_to_start(self):
        """Tracks stored by the release that kept one sorted-set entry per word and track
        (``cat:words``, words space-separated in the record): a node that starts finds
        that index and indexes every stored track anew, so none is lost to a search."""
        t = self.tag
        self.imported(write(self.dir, "new.csv", f"id,title,artist,duration\n"
                                                 f"{t}-new,Fresh {t},Now,100\n"))
        env = self.cluster.redis_env()
        k = catalogue.keys.CATALOGUE
        words = f"{t} oldie", "old band"

        async def plant() -> None:
            redis = store.connect(Settings.from_env(env))
            try:
                record = catalogue.SEP.join((f"Oldie {t}", "Old Band", "", "200", *words, ""))
                await redis.transaction([
                    ("HSET", k.records, f"{t}-old", record),
                    ("ZADD", catalogue.LEGACY_INDEX, 0, f"{t}\0{t}-old", 0, f"oldie\0{t}-old"),
                    ("INCR", k.version)])
            finally:
                await redis.aclose()

        asyncio.run(plant())
        self.assertEqual(self.titles(f"{t} oldie"), [])  # stored, but not in the new index
        node = self.cluster.add_rest_node()
        try:
            deadline = time.monotonic() + 30
            while not self.titles(f"{t} oldie") and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(self.titles(f"{t} oldie"), [f"Oldie {t}"])
            self.assertEqual(self.titles(f"old band {t}"), [f"Oldie {t}"])
            self.assertEqual(self.titles(f"fresh {t}"), [f"Fresh {t}"])  # kept as it was
            self.assertEqual(self.search(f"{t} oldie")[0]["artist"], "Old Band")
        finally:
            node.stop()
            self.cluster.rest.remove(node)
            self.cluster.rest_ports.pop()

        async def legacy_left() -> int:
            redis = store.connect(Settings.from_env(env))
            try:
                return int(await redis.execute("EXISTS", catalogue.LEGACY_INDEX))
            finally:
                await redis.aclose()

        self.assertEqual(asyncio.run(legacy_left()), 0)


class CatalogueApi(CatalogueCase):
    def setUp(self) -> None:
        super().setUp()
        t = self.tag
        self.imported(write(self.dir, "api.csv", "id,title,artist,album,duration\n"
                                                 f"{t}-1,Hunter {t},Björk,Homogenic,255\n"
                                                 f"{t}-2,Jóga {t},Björk,Homogenic,305\n"))
        self.room = unique("cat")

    def test_get_one_track(self):
        track = self.http.get(f"/catalogue/tracks/{self.tag}-1").json()
        self.assertEqual(track, {"id": f"{self.tag}-1", "title": f"Hunter {self.tag}",
                                 "artist": "Björk", "album": "Homogenic", "duration": 255,
                                 "plays": 0})
        missing = self.http.get(f"/catalogue/tracks/{self.tag}-9")
        self.assertEqual(missing.status, 404)
        self.assertIn("catalogue", missing.detail)
        self.assertEqual(self.http.get("/catalogue/tracks/bad%20id").status, 422)

    def test_add_by_catalogue_id_over_rest(self):
        reply = self.http.post(f"/rooms/{self.room}/add_track", {"id": f"{self.tag}-1"})
        self.assertEqual(reply.status, 200, reply.body)
        track = reply.json()["track"]
        self.assertEqual((track["title"], track["artist"], track["duration"]),
                         (f"Hunter {self.tag}", "Björk", 255))
        queued = self.http.get(f"/rooms/{self.room}/queue").json()
        self.assertEqual([q["id"] for q in queued], [f"{self.tag}-1"])
        given = self.http.post(f"/rooms/{self.room}/add_track",
                               {"id": f"{self.tag}-2", "duration": 10}).json()["track"]
        self.assertEqual(given["duration"], 10)  # a duration given wins
        again = self.http.post(f"/rooms/{self.room}/add_track", {"id": f"{self.tag}-1"})
        self.assertEqual(again.status, 409)
        unknown = self.http.post(f"/rooms/{self.room}/add_track", {"id": f"{self.tag}-9"})
        self.assertEqual(unknown.status, 404)
        self.assertIn("title and artist", unknown.detail)
        half = self.http.post(f"/rooms/{self.room}/add_track", {"id": "x1", "title": "T"})
        self.assertEqual(half.status, 422)
        self.assertIn("artist", half.detail)
        full = self.http.post(f"/rooms/{self.room}/add_track",
                              {"id": f"{self.tag}-1x", "title": "Not there", "artist": "A"})
        self.assertEqual(full.status, 200)  # a full body still works, catalogue or not
        bad_room = self.http.post("/rooms/bad%20room/add_track", {"id": f"{self.tag}-9"})
        self.assertEqual(bad_room.status, 422, bad_room)  # the room first, then the catalogue
        self.assertIn("room", bad_room.detail)

    def test_search_add_and_get_over_grpc(self):
        with grpc_channel() as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            found = stub.SearchCatalogue(pb.CatalogueQuery(query=f"BJORK {self.tag}"), timeout=5)
            self.assertEqual([t.id for t in found.tracks], [f"{self.tag}-1", f"{self.tag}-2"])
            self.assertEqual(found.tracks[0].album, "Homogenic")
            one = stub.SearchCatalogue(pb.CatalogueQuery(query=f"{self.tag} jog", limit=1),
                                       timeout=5)
            self.assertEqual([t.title for t in one.tracks], [f"Jóga {self.tag}"])
            track = stub.GetCatalogueTrack(pb.TrackId(id=f"{self.tag}-2"), timeout=5)
            self.assertEqual((track.artist, track.duration), ("Björk", 305))
            added = stub.AddTrack(pb.Track(id=f"{self.tag}-2", room=self.room), timeout=5)
            self.assertEqual((added.track.title, added.track.duration),
                             (f"Jóga {self.tag}", 305))
            for call, code in (
                    (lambda: stub.AddTrack(pb.Track(id=f"{self.tag}-9", room=self.room),
                                           timeout=5), grpc.StatusCode.NOT_FOUND),
                    (lambda: stub.GetCatalogueTrack(pb.TrackId(id=f"{self.tag}-9"), timeout=5),
                     grpc.StatusCode.NOT_FOUND),
                    (lambda: stub.SearchCatalogue(pb.CatalogueQuery(query=""), timeout=5),
                     grpc.StatusCode.INVALID_ARGUMENT),
                    (lambda: stub.SearchCatalogue(pb.CatalogueQuery(query="a", limit=101),
                                                  timeout=5), grpc.StatusCode.INVALID_ARGUMENT)):
                with self.assertRaises(grpc.RpcError) as caught:
                    call()
                self.assertEqual(caught.exception.code(), code, caught.exception.details())
            for query in ("", "!!!", " ".join(["a"] * 17)):  # the proto's field, not REST's q
                with self.assertRaises(grpc.RpcError) as caught:
                    stub.SearchCatalogue(pb.CatalogueQuery(query=query), timeout=5)
                self.assertTrue(caught.exception.details().startswith("query:"),
                                caught.exception.details())
            with self.assertRaises(grpc.RpcError) as caught:  # the room is checked first
                stub.AddTrack(pb.Track(id=f"{self.tag}-9", room="bad room"), timeout=5)
            self.assertIn("room", caught.exception.details())
        queued = self.http.get(f"/rooms/{self.room}/queue").json()
        self.assertEqual([q["id"] for q in queued], [f"{self.tag}-2"])

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "grpc_svc.client", "--target",
                self.cluster.grpc_target, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)

    def test_the_cli_searches_and_adds_by_id(self):
        out = self.cli("search", "bjork", self.tag)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"Hunter {self.tag}", out.stdout)
        self.assertIn("Homogenic", out.stdout)
        found = json.loads(self.cli("--json", "search", f"hunt {self.tag}").stdout)
        self.assertEqual([t["id"] for t in found], [f"{self.tag}-1"])
        none = self.cli("search", tag())
        self.assertEqual((none.returncode, none.stdout.strip()), (0, "(no track matches)"))
        added = self.cli("--room", self.room, "add", "--id", f"{self.tag}-1")
        self.assertEqual(added.returncode, 0, added.stderr)
        self.assertIn(f"Hunter {self.tag}", added.stdout)
        missing = self.cli("--room", self.room, "add", "--id", f"{self.tag}-9")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("NOT_FOUND", missing.stderr)
        half = self.cli("add", "--id", "x", "--title", "T")
        self.assertEqual(half.returncode, 2)
        self.assertEqual(self.cli("search", "!!!").returncode, 1)
        latin = subprocess.run([sys.executable.encode(), b"-m", b"grpc_svc.client", b"--target",
                                self.cluster.grpc_target.encode(), b"search", b"caf\xe9"],
                               capture_output=True, text=True, timeout=30, cwd=ROOT)
        self.assertEqual(latin.returncode, 2, latin.stderr)
        self.assertIn("not valid UTF-8", latin.stderr)
        self.assertNotIn("Traceback", latin.stderr)


class ReplaceCatalogue(CatalogueCase):
    def test_replace_swaps_the_whole_catalogue_at_once(self):
        t = self.tag
        header = "id,title,artist,duration\n"
        old = write(self.dir, "old.csv", header + "".join(
            f"{t}-old-{i},Old {t} {i},Band,100\n" for i in range(60)))
        new = write(self.dir, "new.csv", header + "".join(
            f"{t}-new-{i},New {t} {i},Band,100\n" for i in range(3000)))
        self.imported(old, replace=True)
        self.assertEqual(len(self.search(t, 100)), 60)

        answers: list[set[str]] = []
        stop = threading.Event()
        failures: list[str] = []

        def search() -> None:
            http = Http(self.cluster.api_url)
            try:
                while not stop.is_set() and len(answers) < 5000:
                    reply = http.get(f"/catalogue/search?q={t}&limit=100")
                    if reply.status != 200:
                        failures.append(f"{reply.status} {reply.body[:100]!r}")
                        return
                    answers.append({x["id"].split("-")[1] for x in reply.json()["tracks"]})
            finally:
                http.close()

        threads = [threading.Thread(target=search) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            summary = self.imported(new, replace=True)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        self.assertEqual(failures, [])
        self.assertTrue(summary["replaced"])
        self.assertEqual(summary["tracks"], 3000)
        self.assertGreater(len(answers), 10)
        mixed = [a for a in answers if len(a) != 1]
        self.assertEqual(mixed, [], "an answer mixed the old and the new catalogue")
        self.assertEqual(answers[0], {"old"})
        self.assertEqual(self.search(t, 5)[0]["id"].split("-")[1], "new")
        self.assertEqual(self.http.get(f"/catalogue/tracks/{t}-old-1").status, 404)

    def test_a_retried_add_by_id_gets_its_first_answer_after_the_catalogue_changed(self):
        t, room = self.tag, unique("retry")
        self.imported(write(self.dir, "a.csv", f"id,title,artist\n{t}-1,First {t},A\n"
                                                f"{t}-2,Second {t},B\n"))
        key = {"Idempotency-Key": f"k-{t}"}
        first = self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-1"}, headers=key)
        self.assertEqual(first.status, 200, first)
        self.imported(write(self.dir, "b.csv", f"id,title,artist\n{t}-1,Renamed {t},A\n"))
        again = self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-1"}, headers=key)
        self.assertEqual((again.status, again.json()), (200, first.json()))  # not a 422
        self.imported(write(self.dir, "c.csv", f"id,title,artist\n{t}-3,Other {t},C\n"),
                      replace=True)
        gone = self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-1"}, headers=key)
        self.assertEqual((gone.status, gone.json()), (200, first.json()))  # not a 404
        never = self.http.post(f"/rooms/{room}/add_track", {"id": f"{t}-2"},
                               headers={"Idempotency-Key": f"k2-{t}"})
        self.assertEqual(never.status, 404, never)  # a first try of a gone track: not there
        self.assertIn("catalogue", never.detail)
        queued = self.http.get(f"/rooms/{room}/queue").json()
        self.assertEqual([(q["id"], q["title"]) for q in queued], [(f"{t}-1", f"First {t}")])
        with grpc_channel(self.cluster.grpc_target) as channel:
            stub = pb_grpc.QueueServiceStub(channel)
            meta = (("idempotency-key", f"g-{t}"),)
            added = stub.AddTrack(pb.Track(id=f"{t}-3", room=room), metadata=meta, timeout=5)
            self.imported(write(self.dir, "d.csv", f"id,title,artist\n{t}-4,Last {t},D\n"),
                          replace=True)
            retried = stub.AddTrack(pb.Track(id=f"{t}-3", room=room), metadata=meta, timeout=5)
            self.assertEqual(retried, added)

    def test_replace_with_nothing_leaves_the_catalogue_alone(self):
        t = self.tag
        self.imported(write(self.dir, "one.csv", f"id,title,artist\n{t}-1,Keep {t},A\n"))
        code, _, stderr = run_import(write(self.dir, "bad.csv", "id,title,artist\n,,\n"),
                                     replace=True)
        self.assertEqual(code, 1)
        self.assertIn("nothing to import", stderr)
        self.assertEqual(self.titles(f"keep {t}"), [f"Keep {t}"])


@unittest.skipIf(chromium() is None, "chromium is not installed (apt-get install -y chromium)")
class CataloguePage(CatalogueCase):
    def test_type_see_results_and_add_with_enter_or_a_click(self):
        t = self.tag
        self.imported(write(self.dir, "page.csv", "id,title,artist,album,duration\n"
                                                  f"{t}-1,Hoppípolla {t},Sigur Rós,Takk...,268\n"
                                                  f"{t}-2,Glósóli {t},Sigur Rós,Takk...,375\n"))
        room = unique("page")
        with Browser(width=420, height=1400, mobile=True) as browser:
            browser.open(f"{self.cluster.api_url}/rooms/{room}/")
            browser.wait_for("document.getElementById('status').textContent === 'live'",
                             what="the event stream to connect")
            browser.type_into("#find-input", f"sigur ros {t} hopp")
            browser.wait_for("document.querySelectorAll('#find-results li').length === 1",
                             timeout=6, what="one result")
            self.assertIn(f"Hoppípolla {t}", browser.js(
                "document.querySelector('#find-results li').textContent"))
            browser.page("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter",
                                                    "code": "Enter", "windowsVirtualKeyCode": 13})
            browser.wait_for(f"document.querySelector('#queue li[data-id=\"{t}-1\"]')",
                             timeout=6, what="the track to be queued")
            # a new query replaces the results; a click adds
            browser.js("const i = document.getElementById('find-input'); i.value = ''; "
                       "i.dispatchEvent(new Event('input'))")
            browser.type_into("#find-input", f"{t} glo")
            selector = f'#find-results li[data-id="{t}-2"]'
            browser.wait_for(f"document.querySelector('{selector}')", timeout=6,
                             what="the second song")
            browser.click(selector)
            browser.wait_for(f"document.querySelector('#queue li[data-id=\"{t}-2\"]')",
                             timeout=6, what="the clicked track to be queued")
        queued = self.http.get(f"/rooms/{room}/queue").json()
        self.assertEqual([(q["id"], q["duration"]) for q in queued],
                         [(f"{t}-1", 268), (f"{t}-2", 375)])

    def test_the_last_query_wins_when_answers_come_out_of_order(self):
        t = self.tag
        self.imported(write(self.dir, "order.csv", "id,title,artist\n"
                                                   f"{t}-slow,Slow {t},A\n{t}-fast,Fast {t},B\n"))
        with Browser() as browser:
            browser.open(f"{self.cluster.api_url}/rooms/{unique('page')}/")
            # the first query's answer is held back until the second one has been shown
            browser.js("""(() => {
                const real = window.fetch;
                window.fetch = (url, options) => {
                    if (String(url).includes('slow')) {  // not cancellable, and late
                        const answer = real(url);
                        return new Promise((resolve) => setTimeout(() => resolve(answer), 800));
                    }
                    return real(url, options);
                };
                window.searchNow = (q) => searchCatalogue(q);
            })()""")
            browser.js(f"searchNow('slow {t}'); setTimeout(() => searchNow('fast {t}'), 50)")
            browser.wait_for("document.querySelector('#find-results li')?.textContent"
                             f".includes('Fast {t}')", what="the latest answer")
            time.sleep(1.2)  # the slow answer has arrived by now
            self.assertIn(f"Fast {t}", browser.js(
                "document.getElementById('find-results').textContent"))
            self.assertNotIn(f"Slow {t}", browser.js(
                "document.getElementById('find-results').textContent"))
