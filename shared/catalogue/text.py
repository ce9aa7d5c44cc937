"""Normalised words: what the catalogue's search compares.

Both sides go through ``words``: the text of a track when it is imported, a query when it
is searched. Case is folded (``str.casefold``: "Straße" -> "strasse"), accents are
stripped (NFKD, then the combining marks dropped: "Björk" -> "bjork"), a few letters that
carry no combining mark are spelt out ("ø" -> "o", "æ" -> "ae"), apostrophes are dropped
("Don't" -> "dont") and so are the dots of initials ("R.E.M." -> "rem", "L.A." -> "la"), and
every other character that is not a letter or a digit separates words ("AC/DC" -> "ac",
"dc"; "Vol.2" -> "vol", "2"). A word is then a run of
letters and digits of any script; scripts written without spaces (Chinese, Japanese) are
one word per run.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters NFKD leaves alone, spelt as people type them without the accent.
_SPELLED = {"æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ð": "d", "þ": "th", "ł": "l",
            "ħ": "h", "ı": "i", "ŀ": "l", "ŧ": "t", "ŋ": "n", "ĸ": "k"}
_DROPPED = "'’ʼ‘`´"  # apostrophes join what they stand between: don't -> dont
_TABLE = str.maketrans({**_SPELLED, **dict.fromkeys(_DROPPED)})
_INITIALS = re.compile(r"\b(?:[^\W_]\.){2,}")  # r.e.m. -> rem
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script


def fold(text: str) -> str:
    """Case folded, accents stripped, spelt out: the text words are cut from."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        # folded again: NFKD makes capitals of letters that have no case ("ℌ" -> "H")
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    folded = folded.translate(_TABLE)
    if "." in folded:
        folded = _INITIALS.sub(lambda m: m.group(0).replace(".", ""), folded)
    return folded


@lru_cache(maxsize=65_536)
def words(text: str) -> tuple[str, ...]:
    """The normalised words of ``text``, in order (repeats kept)."""
    return tuple(_WORD.findall(fold(text)))


def distinct(*texts: str) -> list[str]:
    """The distinct normalised words of the texts, in order of first appearance."""
    return list(dict.fromkeys(w for text in texts for w in words(text)))
