"""A synthetic catalogue for the benchmark: as many tracks as asked, written as CSV
(id,title,artist,album,duration,year), the same ones for the same seed.

    python -m bench.catalogue_data --tracks 100000 --out bench/out/catalogue-100k.csv

Titles and album names draw common title words with a Zipf-like skew (a few words such
as "love" or "the" are in thousands of titles, most in a handful), plus made-up words;
artists are made-up names and bands, about one in eight with an accent, grouped into
albums of 8-14 tracks, so that the index's words are spread about the way a real
library's are.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import sys
from collections.abc import Iterator
from pathlib import Path

_COMMON = """love you me my the night heart baby time way day life one world home light
dream fire rain girl boy man woman soul away tonight forever never again back down up out
in on of to a and with without all no yes blue red black white gold silver green summer
winter spring autumn sun moon star stars sky sea river road city town street wild free
young old new last first little big sweet bad good crazy lonely broken lost running dancing
walking falling flying burning shining crying waiting coming going home heaven hell angel
devil ghost shadow dark bright cold hot fever kiss touch hold tell say talk sing song songs
music radio dance party rock roll blues soul jazz funk disco king queen prince lady mister
honey sugar candy cherry paradise island highway train car ride drive money diamond
dreams eyes hands lips face head mind body blood tears smile rainbow thunder storm wind
ocean wave waves shore beach desert mountain valley garden rose roses flower flowers tree
midnight morning evening sunday monday friday saturday christmas holiday birthday memory
memories story letter promise secret stranger friend friends lover lovers enemy hero
everything nothing something anything someone nobody everybody together alone forever
always sometimes maybe tomorrow yesterday today now then here there where when why how
what who this that these those is are was be been being do don't can't won't i'm it's
we're they're let's hey oh yeah la na ooh electric magic cosmic atomic digital golden
velvet crystal neon echo echoes mirror glass stone steel paper fire ice"""
COMMON = _COMMON.split()
_SYLLABLES = ("ka lo mi ra ven to sa li no da re ta mo lu be si ga na fe ro zu ki ma ne pa "
             "vi lor tan mar sel dor kin bel fra gio stel an el or um is ar")
SYLLABLES = _SYLLABLES.split()
ACCENTS = str.maketrans("aeiounc", "áéíöüñç")
_FIRST = ("Anna Ben Carla David Elena Frank Greta Hugo Ines Jonas Klara Leo Maria Nils Olga "
         "Paul Rosa Sven Tina Umberto Vera Walter Xenia Yusuf Zoe Amélie Björn Chloé Dário "
         "Émile Fátima Gösta Héctor Iñaki José Jürgen Łukasz Maël Noémie Øystein Renée "
         "Søren Zoë")
FIRST = _FIRST.split()


def zipf_picker(rng: random.Random, words: list[str], skew: float = 0.7):
    weights = [1 / (rank + 1) ** skew for rank in range(len(words))]
    cumulative = list(itertools.accumulate(weights))
    return lambda k=1: rng.choices(words, cum_weights=cumulative, k=k)


def made_up(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.translate(ACCENTS) if rng.random() < 0.12 else word


def artist_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return f"{rng.choice(FIRST)} {made_up(rng).capitalize()}"
    if roll < 0.65:
        return f"The {made_up(rng).capitalize()}s"
    if roll < 0.85:
        return f"{made_up(rng).capitalize()} {made_up(rng).capitalize()}"
    return made_up(rng).capitalize()


def phrase(rng: random.Random, common, low: int, high: int) -> str:
    count = rng.randint(low, high)
    parts = [made_up(rng) if rng.random() < 0.3 else w for w in common(count)]
    text = " ".join(parts)
    text = text[0].upper() + text[1:]
    if rng.random() < 0.05:
        text += rng.choice([" (Live)", " (Remastered)", "!", "?", " - Radio Edit", " Pt. 2"])
    return text


def tracks(count: int, seed: int = 7) -> Iterator[tuple[str, str, str, str, int, int]]:
    """(id, title, artist, album, duration, year) for ``count`` tracks."""
    rng = random.Random(seed)
    common = zipf_picker(rng, COMMON)
    made = 0
    while made < count:
        artist = artist_name(rng)
        for _ in range(rng.randint(1, 4)):
            album = phrase(rng, common, 1, 4)
            year = rng.randint(1960, 2026)
            for _ in range(rng.randint(8, 14)):
                if made >= count:
                    return
                made += 1
                duration = max(60, min(900, int(rng.gauss(235, 60))))
                yield (str(100_000 + made), phrase(rng, common, 1, 5), artist, album,
                       duration, year)


def write(path: Path, count: int, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "title", "artist", "album", "duration", "year"))
        writer.writerows(tracks(count, seed))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/out/catalogue-100k.csv"))
    args = parser.parse_args()
    print(write(args.out, args.tracks, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
