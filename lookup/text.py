"""Checks of free text the service keeps or shows back: control, direction and invisible
characters. Pure."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Unicode's control characters (category Cc), found at C speed: ingest reads millions."""
BIDI_MARKS: Final = frozenset("\u061c\u200e\u200f")
"""The Arabic letter mark and the left-to-right and right-to-left marks: invisible, they
give digits and punctuation around them a direction (`\u200f1234\u200f5678` shows as
56781234)."""
BIDI_CONTROLS: Final = (
    frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069") | BIDI_MARKS
)
"""Embeddings, overrides, isolates and marks: they display text in another order than it
is kept."""


def first_control(text: str, allowed: str = "") -> str | None:
    """The first control character (Unicode category Cc) of `text` not in `allowed`."""
    return next((c for c in text if unicodedata.category(c) == "Cc" and c not in allowed), None)


def printable(text: str) -> str:
    """Text as a report or log line prints it: escaped as Python writes a string (without
    its quotes) when it holds a control or format character, which a terminal would act on
    (an escape sequence, a line break that forges a report line, a text direction
    control)."""
    return text if text.isprintable() else repr(text)[1:-1]


def first_bidi_control(text: str) -> str | None:
    """The first text direction control of `text`."""
    return next((c for c in text if c in BIDI_CONTROLS), None)


def bidi_shown(text: str) -> str:
    """`text` with each text direction control replaced by U+FFFD: what a reader is shown
    where the text must be kept as written otherwise (a refused number's digits)."""
    if not any(c in BIDI_CONTROLS for c in text):
        return text
    return "".join("\ufffd" if c in BIDI_CONTROLS else c for c in text)


def without_format(text: str) -> str:
    """`text` without its format characters (soft hyphens, zero-width ones): what shows."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Characters Unicode calls letters or symbols that show as blank: the Hangul fillers and
the blank Braille pattern."""
_SHOWS_NOTHING: Final = frozenset(("Cf", "Mn", "Me"))
"""Format characters (zero-width ones) and marks, which show on a letter, not alone."""


def invisible(text: str) -> bool:
    """Whether `text` shows nothing: only spaces, format characters (zero-width ones),
    blank letters, and marks with no letter to show on (a lone accent)."""
    return all(
        c.isspace() or c in BLANK_LETTERS or unicodedata.category(c) in _SHOWS_NOTHING for c in text
    )


_TRAIL_BYTES: Final = bytes(range(0x80, 0xC0))
_LEAD_AND_TRAIL: Final = re.compile(
    "[\u00c2-\u00f4]["
    + re.escape(
        "".join(
            sorted(
                set(_TRAIL_BYTES.decode("cp1252", errors="ignore"))
                | set(_TRAIL_BYTES.decode("latin-1"))
            )
        )
    )
    + "]"
)
"""A UTF-8 lead byte (of a two, three or four-byte character) and a continuation byte as
Windows-1252 or Latin-1 show them (`Ã¸`, `â€`):
what every text encoded twice holds, looked for before the costlier check."""


def encoded_twice(text: str) -> bool:
    """Whether text reads as UTF-8 decoded as Windows-1252 or Latin-1 (`BjÃ¸rn` for
    Bjørn): an export that encoded its UTF-8 again. Real names never read so: their
    Latin-1 bytes are not valid UTF-8."""
    if text.isascii() or not _LEAD_AND_TRAIL.search(text):
        return False
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8") != text
        except UnicodeError:
            continue
    return False


_OTHER_CODE_PAGE: Final = re.compile(r"(?<=[^\W\d_])(?:([›†¾¿®¯])(?=[^\W\d_])|(Œ)(?=[a-zß-ÿ]))")
"""How æ, ø and å of a DOS (865) or Mac file read when taken as Windows-1252: `Bj›rn`,
`P†l`, `Bj¿rn`, `S¾ther`, `PŒl`; between two letters, where no name holds them (an Œ
before a small letter only inside a word: `Œdipus`, `ŒUVRE` and `cœur` are names)."""


def other_code_page(text: str) -> str | None:
    """The character that shows a text was written in another code page, if one does."""
    if text.isascii():
        return None
    found = _OTHER_CODE_PAGE.search(text)
    return (found[1] or found[2]) if found else None
