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
_BETWEEN_WORDS: Final = re.compile(r"[^\w\s]|_")
"""What is not part of a word: punctuation (`Restaurant "Polar"`, `Johansen, Anne`, `A/S`),
hyphens, symbols."""
_SPELT_OUT: Final = re.compile("aa|ae|oe")
"""A Norwegian letter spelt out, as `fold` writes it or as a keyboard without it does."""
_ONE_LETTER: Final = {"aa": "a", "ae": "a", "oe": "o"}
_NORWEGIAN_LETTERS: Final = frozenset("æøåäö")


def fold(name: str) -> str:
    """Lowercase, Norwegian letters spelt out in ASCII, punctuation as a space, whitespace
    collapsed."""
    # Apostrophes first (NFKC makes "´" a space and an accent; the table drops those NFKC
    # makes, "＇"); then NFKC: "å" may arrive decomposed (as macOS sends it).
    text = unicodedata.normalize("NFKC", name.translate(_APOSTROPHES)).lower().translate(_FOLD)
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


def shorten(folded: str) -> str:
    """A folded name with each spelt-out Norwegian letter one letter ("bjoern" as "bjorn",
    "aase" as "ase"; so also the "oe" of "Moen", which cannot be told apart)."""
    # A slip on "ø" itself ("Bjarn" for "Bjørn") is then one edit, where spelt out
    # ("bjoern") it is two. Taken from the folded form, so that every spelling folding
    # alike ("Åse", "Aase") shortens alike and a search finds the same names for each.
    return _SPELT_OUT.sub(lambda found: _ONE_LETTER[found.group()], folded)


def has_norwegian_letter(text: str) -> bool:
    """Whether a text is written with æ, ø or å (or ä, ö), composed or not."""
    return not _NORWEGIAN_LETTERS.isdisjoint(unicodedata.normalize("NFKC", text).lower())


def listed_short(name: str, folded: str) -> str:
    """A listed name's one-letter form (`shorten`) when it is written with a Norwegian
    letter, else its folded form: "Sørensen" is "sorensen" to a query typed without "ø",
    but "Moen" is no "Møen" written so."""
    return shorten(folded) if has_norwegian_letter(name) else folded


def match_score(query: str, name: str) -> float:
    """How well a name a client holds matches the listed name, 0 to 100; a name listed with
    a Norwegian letter, spelt out or one letter for each, whichever matches better ("Per
    Sorensen", "Per Soerensen" and "Per Sørensen" all match Per Sørensen whole; "Haaland"
    is no "Haland", nor "Møen" "Moen", as listed so)."""
    folded_query, folded_name = fold(query), fold(name)
    score = fuzz.token_sort_ratio(folded_query, folded_name)
    short = listed_short(name, folded_name)
    if short != folded_name:
        # The query as typed ("Moen" for Møen: its "oe" may be an o and an e) and with its
        # spelt-out letters one letter each ("Aase Braten" for Åse Bråten).
        score = max(
            score,
            fuzz.token_sort_ratio(folded_query, short),
            fuzz.token_sort_ratio(shorten(folded_query), short),
        )
    return round(score, 1)
