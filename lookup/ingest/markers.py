"""What reads as a reservation or a hidden address in a row's reservation field. Pure.

Privacy wins over form: a marker written outside the contract's codes, wrapped in JSON,
or with unseen characters stuck to it still says what the subscriber wants. Used by row
validation, and by the reader for rows whose fields cannot be trusted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final

from lookup.text import CONTROL_CHARACTERS

_RESERVED_MARKERS: Final = frozenset({"j", "reserved"})
"""The contract's reservation codes, in any case or spacing."""
_ADDRESS_HIDDEN_MARKERS: Final = frozenset({"a", "address_hidden"})
_ADDRESS_HIDDEN_WORDS: Final = _ADDRESS_HIDDEN_MARKERS | frozenset(
    {"address hidden", "hidden address", "no address", "without address", "unlisted address"}
    | {"adresse skjult", "skjult adresse", "uten adresse", "adresse sperret", "sperret adresse"}
    | {"adressesperre", "adressebeskyttet", "adresse beskyttet", "beskyttet adresse"}
)
"""What reads as "address hidden" in a known reservation field, the contract's codes or not
(`A.`, `Adresse skjult`, `address-hidden`), written with any case, blanks, `_` or `-`
between its words: the row is rejected for it, but the address goes all the same, as a
reservation's words withdraw the number. One that starts with a word of
`_RESERVED_WORDS` (`Sperret adresse`, as protected persons' addresses are described,
`Skjult adresse`) withdraws the number: privacy wins over form."""
_WORDS: Final = re.compile(r"[^\W_]+")
"""A marker's words: letters and digits, whatever stands between them (blanks, `_`, `-`,
quotes, `!`, `/`), for the phrases and the one-letter codes (`J/A`)."""
_RESERVED_WORDS: Final = _RESERVED_MARKERS | frozenset(
    {"ja", "y", "yes", "true", "reservert", "hemmelig", "hemmeleg", "secret", "unlisted"}
    | {"skjult", "sperret", "sperra", "confidential", "konfidensiell"}
    | {"unpublished", "exdirectory", "nonpublished"}
)
"""What reads as "reserved" in a known reservation field, the contract's codes or not
(`Ja`, `hemmelig`, `secret`, JSON's `true`; and `1` alone, of an export writing 1/0): the
row is rejected for it, but its number is
withdrawn all the same, as a subscriber shown against their wish is the harm that cannot be
undone. Only these words: an export writing "not reserved" its own way (`Nej`, `0`) must
not withdraw a whole directory, so another word is only an error. Not where a broken
row's fields are guessed: a first name "Y" could stand there."""
_RESERVED_PHRASES: Final = (
    ("ex", "directory"),
    ("non", "published"),
    ("not", "listed"),
    ("not", "published"),
    ("do", "not", "list"),
    ("ikke", "listet"),
    ("ikke", "oppført"),
    ("ikke", "oppfort"),
    ("nei", "til", "oppføring"),
)
"""What reads as "reserved" in words that a reserving word does not start: a refusal of
the listing ("not listed", "nei til oppføring"), not of the reservation ("ikke reservert")."""
_LISTING_PHRASES: Final = (
    ("ja", "til", "oppføring"),
    ("ja", "til", "oppforing"),
    ("reservert", "mot", "reklame"),
    ("reservert", "mot", "telefonsalg"),
    ("reservert", "mot", "markedsføring"),
)
"""What a reserving word starts but is no directory reservation: "yes to being listed",
and the marketing opt-outs (`reklamereservert` is their own field)."""
_SAYS_YES: Final = frozenset({"reservasjon", "reservation", "ja", "j", "yes", "y", "true"})
"""Words that, with reserving words alone, still say "reserved": `Reservert: Ja`,
`Ja, reservert`, `Reservasjon: Ja`."""
_QUOTES: Final = "'\"«»‹›‘’‚“”„`()[]"
"""What may wrap a marker, or its first word: `'J'`, `«J»`, `(J)`."""
_UNSEEN: Final = frozenset({"Cc", "Cf"})
"""What may cling to a reservation marker unseen: control and format characters (zero-width
ones, a byte-order mark, direction marks and isolates: `\ufeffJ` and `\u2066J\u2069` are J)."""
_UNSEEN_MARKS: Final = frozenset("\u034f\u180e") | frozenset(map(chr, range(0xFE00, 0xFE10)))
"""Invisible marks of other categories: a grapheme joiner, variation selectors."""


def reserved(value: object, *, strict: bool = False) -> bool:
    """Whether a value reads as a reservation marker, in any case or spacing (a control
    character around it too); unless `strict` (a broken row's guessed places), the words
    of `_RESERVED_WORDS` and JSON's `true` count as well."""
    if value is True:
        return not strict
    if isinstance(value, list | dict) and not strict:
        # `["reserved"]`, `{"reserved": true}`: the wrong shape for a marker, which the
        # row is rejected for, but the subscriber's wish is plain.
        return any(reserved(item) for item in _inside(value))
    if not isinstance(value, str):
        return False
    word = _seen(value).strip().lower()
    if strict:
        return word in _RESERVED_MARKERS
    if word.strip(_QUOTES).strip() == "1":
        return True  # an export writing its flags 1/0; the 1 alone ("1. Ikke reservert" not)
    # "J.", "Hemmelig nummer", "reservert mot oppslag", "Reservert - vises ikke": the
    # first word says it ("ikke reservert", not reserved, does not start with one). Only
    # the first word as written: "Reservert: Nei", "Y/N", "Ja/Nei" and "Yes, listed" are
    # an export's own way of writing "not reserved" (or its list of the choices), which
    # must not withdraw a whole directory.
    words = _WORDS.findall(word)
    if _starts(words, _LISTING_PHRASES):
        return False
    if _starts(words, _RESERVED_PHRASES) or _codes(words, "j"):
        return True
    if len(words) > 1 and all(w in _RESERVED_WORDS or w in _SAYS_YES for w in words):
        return True
    word = word.strip(_QUOTES).strip()
    first = word.split(maxsplit=1)[0].rstrip(".!").strip(_QUOTES) if word else ""
    # "Hemmelig-nummer": a reserving word and more, joined by a hyphen ("J-N" is not).
    head = first.split("-", 1)[0]
    return (
        word in _RESERVED_WORDS
        or first in _RESERVED_WORDS
        or (len(head) > 2 and head in _RESERVED_WORDS)
    )


def _starts(words: list[str], phrases: tuple[tuple[str, ...], ...]) -> bool:
    """Whether the words begin with one of the phrases."""
    return any(tuple(words[: len(phrase)]) == phrase for phrase in phrases)


def _codes(words: list[str], code: str) -> bool:
    """Whether words are the contract's one-letter codes alone, this one among them: `J/A`,
    `A, J` (not `N/A`, an export's "not applicable")."""
    return code in words and all(w in ("j", "a") for w in words)


def _seen(value: str) -> str:
    """A marker's text without what cannot be seen around or in it, in its compatibility
    form (a fullwidth `Ｊ` is a J)."""
    if value.isascii():
        return CONTROL_CHARACTERS.sub("", value)
    seen = "".join(
        c for c in value if c not in _UNSEEN_MARKS and unicodedata.category(c) not in _UNSEEN
    )
    return unicodedata.normalize("NFKC", seen)


def hides_address(value: object, *, strict: bool = False) -> bool:
    """Whether a value reads as the address-hidden marker, in any case or spacing (a
    control character around it too), or holds one (`["address_hidden"]`); unless
    `strict` (a broken row's guessed places), the words of `_ADDRESS_HIDDEN_WORDS` count
    as well."""
    if isinstance(value, list | dict):
        return any(hides_address(item, strict=strict) for item in _inside(value))
    if not isinstance(value, str):
        return False
    word = _seen(value).strip().lower()
    if strict:
        return word in _ADDRESS_HIDDEN_MARKERS
    # As one spacing writes its words: `address-hidden.` is `address hidden`.
    words = _WORDS.findall(word)
    return " ".join(words) in _ADDRESS_HIDDEN_WORDS or _codes(words, "a")


def _inside(value: list[object] | dict[object, object], depth: int = 4) -> Iterator[object]:
    """The scalars a JSON array or object holds, keys included, `depth` levels down."""
    parts: list[object] = (
        [part for pair in value.items() for part in pair] if isinstance(value, dict) else value
    )
    for part in parts:
        if isinstance(part, list | dict):
            if depth > 1:
                yield from _inside(part, depth - 1)
        else:
            yield part
