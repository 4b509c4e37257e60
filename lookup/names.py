"""Compare and fold Norwegian names. Pure."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from rapidfuzz import fuzz

_APOSTROPHES: Final = dict.fromkeys(map(ord, "'’`´"))
"""Dropped, not a break between words: `O'Brien` is one word."""
# Folding makes "Bjørn Sæther" and "Bjoern Saether" the same string; the
# reverse spellings are common in systems that could not store æ, ø, å.
_FOLD: Final = (
    str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "é": "e"}) | _APOSTROPHES
)


_FOLD_SHORT: Final = (
    str.maketrans({"æ": "a", "ø": "o", "å": "a", "ä": "a", "ö": "o", "é": "e"}) | _APOSTROPHES
)
"""Each letter one letter: a slip on "ø" itself ("Bjarn" for "Bjørn") is then one edit,
where spelt out ("bjoern") it is two."""
_BETWEEN_WORDS: Final = re.compile(r"[^\w\s]|_")
"""What is not part of a word: punctuation (`Restaurant "Polar"`, `Johansen, Anne`, `A/S`),
hyphens, symbols."""


def fold(name: str) -> str:
    """Lowercase, Norwegian letters spelt out in ASCII, punctuation as a space, whitespace
    collapsed."""
    return _folded(name, _FOLD)


def fold_short(name: str) -> str:
    """As `fold`, but each Norwegian letter a single ASCII letter (ø as o, å as a)."""
    return _folded(name, _FOLD_SHORT)


def _folded(name: str, table: dict[int, str | None]) -> str:
    # Apostrophes first (NFKC makes "´" a space and an accent; the table drops those NFKC
    # makes, "＇"); then NFKC: "å" may arrive decomposed (as macOS sends it).
    text = unicodedata.normalize("NFKC", name.translate(_APOSTROPHES)).lower().translate(table)
    if not text.isascii():
        # Accents and other marks are no letters of their own ("é" is "e"), nor breaks
        # between words, which the pattern below would make of them; nor are invisible
        # format characters a text copied from a web page or a PDF carries (a soft hyphen,
        # a zero-width space: "Han\u00adsen" is Hansen).
        text = "".join(
            c
            for c in unicodedata.normalize("NFKD", text)
            if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
        )
    return " ".join(_BETWEEN_WORDS.sub(" ", text).split())


def match_score(query: str, name: str) -> float:
    """How well a name a client holds matches the listed name, 0 to 100."""
    return round(fuzz.token_sort_ratio(fold(query), fold(name)), 1)
