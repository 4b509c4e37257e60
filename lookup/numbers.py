"""Normalize written Norwegian phone numbers, fast enough for the request path.

`phonenumbers` (Google's libphonenumber) is the authority on the Norwegian
numbering plan, but parsing with it costs tens of microseconds. This module
accepts the common written forms with a strict hand-written scanner and checks
the digits against the numbering-plan patterns taken from `phonenumbers`' own
metadata, so the two cannot drift apart; `tests/test_numbers.py` checks the
agreement on generated inputs.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Final

import phonenumbers
from phonenumbers import PhoneMetadata

COUNTRY_CODE: Final = "47"

# +47 covers mainland Norway and Svalbard/Jan Mayen (region SJ, numbers 79...).
_REGIONS: Final = tuple(
    metadata
    for region in phonenumbers.region_codes_for_country_code(int(COUNTRY_CODE))
    if (metadata := PhoneMetadata.metadata_for_region(region)) is not None
)


class NumberType(StrEnum):
    """Kind of number per the numbering plan (names follow libphonenumber)."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    PERSONAL_NUMBER = "personal_number"
    VOIP = "voip"
    UAN = "uan"
    VOICEMAIL = "voicemail"


# libphonenumber's order of checks, so a number matching two patterns gets its type.
_TYPE_ORDER: Final = (
    (NumberType.PREMIUM_RATE, "premium_rate"),
    (NumberType.TOLL_FREE, "toll_free"),
    (NumberType.SHARED_COST, "shared_cost"),
    (NumberType.VOIP, "voip"),
    (NumberType.PERSONAL_NUMBER, "personal_number"),
    (NumberType.UAN, "uan"),
    (NumberType.VOICEMAIL, "voicemail"),
    (NumberType.FIXED_LINE, "fixed_line"),
    (NumberType.MOBILE, "mobile"),
)


def _pattern(desc: object) -> re.Pattern[str] | None:
    pattern = getattr(desc, "national_number_pattern", None)
    return re.compile(pattern) if pattern else None


class _Region:
    """The numbering-plan patterns of one region sharing +47."""

    def __init__(self, metadata: PhoneMetadata) -> None:
        self.leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        self.types = tuple(
            (kind, compiled)
            for kind, attr in _TYPE_ORDER
            if (compiled := _pattern(getattr(metadata, attr))) is not None
        )


_PLAN: Final = tuple(_Region(metadata) for metadata in _REGIONS)
_GENERAL: Final = re.compile(
    "|".join(
        f"(?:{metadata.general_desc.national_number_pattern})"
        for metadata in _REGIONS
        if metadata.general_desc is not None
    )
)
# Valid when some type pattern of some region matches, as in libphonenumber's is_valid_number.
_VALID: Final = re.compile(
    "|".join(f"(?:{pattern.pattern})" for region in _PLAN for _, pattern in region.types)
)
_POSSIBLE_LENGTHS: Final = frozenset(
    length
    for metadata in _REGIONS
    if metadata.general_desc is not None
    for length in metadata.general_desc.possible_length or ()
)
_SHORTEST: Final = min(_POSSIBLE_LENGTHS)
_LONGEST: Final = max(_POSSIBLE_LENGTHS)

# Separators people put between digit groups; anything else is rejected.
_SEPARATORS: Final = frozenset(" -./()\u00a0\u202f\u205f\u3000") | frozenset(
    map(chr, [*range(0x2000, 0x200A), 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2212])
)
"""Between digits: spaces of every width and the dashes word processors put there (a
non-breaking hyphen, an en dash, a minus sign)."""
_FULLWIDTH_PLUS: Final = str.maketrans({"\uff0b": "+"})


class InvalidReason(StrEnum):
    """Why a written number was refused; each has its own message."""

    EMPTY = "empty"
    LETTERS = "letters"
    MALFORMED = "malformed"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NOT_NORWEGIAN = "not_norwegian"
    NOT_IN_PLAN = "not_in_plan"


_MESSAGES: Final = {
    InvalidReason.EMPTY: "no number given",
    InvalidReason.LETTERS: "a phone number cannot contain letters",
    InvalidReason.MALFORMED: "only digits, spaces, - . ( ) and a leading + are allowed",
    InvalidReason.TOO_SHORT: "too few digits for a Norwegian number (8, or 5 for short numbers)",
    InvalidReason.TOO_LONG: "too many digits for a Norwegian number (8, or 5 for short numbers)",
    InvalidReason.NOT_NORWEGIAN: "only Norwegian numbers (+47) are covered",
    InvalidReason.NOT_IN_PLAN: "not a number in the Norwegian numbering plan",
}


SHOWN_INPUT: Final = 40
"""Characters of a refused input repeated back in messages (and kept in the lookup log)."""


def shown(raw: str, limit: int = SHOWN_INPUT) -> str:
    """The input as messages repeat it: at most `limit` characters, then "…"."""
    return raw if len(raw) <= limit else raw[:limit] + "…"


class InvalidNumber(ValueError):
    """A written number that is not a valid Norwegian number."""

    def __init__(self, raw: str, reason: InvalidReason) -> None:
        self.raw = raw
        self.reason = reason
        # A refused input can be any length: echo its start, not a megabyte of it.
        super().__init__(f"{shown(raw)!r}: {_MESSAGES[reason]}")

    @property
    def message(self) -> str:
        """The human-readable reason, without the input."""
        return _MESSAGES[self.reason]


def normalize(raw: str) -> str:
    """Return the national number (digits only) for a written Norwegian number."""
    # Fast path: the form CRMs send nearly always.
    if len(raw) == 8 and raw.isascii() and raw.isdigit():
        if _VALID.fullmatch(raw) is None:
            raise InvalidNumber(raw, InvalidReason.NOT_IN_PLAN)
        return raw
    return _normalize_written(raw)


_TRUNK_ZERO: Final = re.compile(r"((?:\+|00) ?47) ?\(0\) ?")
"""`+47 (0) 22 20 24 00`: a trunk prefix as other countries write one, which Norway has
not; read without it when only that reading is a number (`+47 (0)2400` is 02400)."""


def _normalize_written(raw: str) -> str:
    # Not NFKC: it would read superscript or circled digits, which no one writes a phone
    # number in (nor libphonenumber reads), as digits.
    text = (raw if raw.isascii() else raw.translate(_FULLWIDTH_PLUS)).strip()
    if not text:
        raise InvalidNumber(raw, InvalidReason.EMPTY)
    trunk = _TRUNK_ZERO.match(text)
    if trunk is not None:
        try:
            return _read(raw, f"{trunk.group(1)} {text[trunk.end() :]}")
        except InvalidNumber:
            pass
    return _read(raw, text)


def _read(raw: str, text: str) -> str:
    """The national number `text` (`raw` as written, trimmed) spells."""
    international = False
    if text[0] == "+":
        international = True
        text = text[1:]
    elif text.startswith("(+"):
        international = True
        text = text[2:].replace(")", " ", 1)
    digits = []
    for char in text:
        if "0" <= char <= "9":
            digits.append(char)
        elif char.isdecimal():  # a fullwidth digit, another script's: ٢ is 2
            digits.append(str(unicodedata.decimal(char)))
        elif char in _SEPARATORS:
            continue
        elif char.isalpha():
            raise InvalidNumber(raw, InvalidReason.LETTERS)
        else:
            raise InvalidNumber(raw, InvalidReason.MALFORMED)
    number = "".join(digits)
    if not number:
        raise InvalidNumber(raw, InvalidReason.EMPTY)
    if not international and number.startswith("00"):
        # International call prefix written as 00.
        international = True
        number = number[2:]
    if international:
        if not number.startswith(COUNTRY_CODE):
            raise InvalidNumber(raw, InvalidReason.NOT_NORWEGIAN)
        number = number[len(COUNTRY_CODE) :]
    elif number.startswith(COUNTRY_CODE):
        # Country code written without '+' ("4722202400"): strip it on the same
        # condition libphonenumber does, so both read such input alike.
        rest = number[len(COUNTRY_CODE) :]
        if len(number) > _LONGEST or (
            _GENERAL.fullmatch(number) is None and _GENERAL.fullmatch(rest) is not None
        ):
            number = rest
    if len(number) < _SHORTEST:
        raise InvalidNumber(raw, InvalidReason.TOO_SHORT)
    if len(number) > _LONGEST:
        raise InvalidNumber(raw, InvalidReason.TOO_LONG)
    if len(number) not in _POSSIBLE_LENGTHS:
        reason = InvalidReason.TOO_SHORT if len(number) < _LONGEST else InvalidReason.TOO_LONG
        raise InvalidNumber(raw, reason)
    if _VALID.fullmatch(number) is None:
        raise InvalidNumber(raw, InvalidReason.NOT_IN_PLAN)
    return number


def number_type(national: str) -> NumberType:
    """Classify a normalized national number by the numbering plan."""
    for region in _PLAN:
        if region.leading is not None and region.leading.match(national) is None:
            continue
        for kind, pattern in region.types:
            if pattern.fullmatch(national) is not None:
                return kind
    raise InvalidNumber(national, InvalidReason.NOT_IN_PLAN)


def classify(raw: str) -> tuple[str, NumberType]:
    """Normalize and classify; ingest calls this once per delivered number."""
    national = normalize(raw)
    return national, number_type(national)


def to_key(national: str) -> int:
    """Sort key of a national number: the E.164 digits as an integer.

    The country code in front keeps leading zeros of short numbers ("02400")
    distinct from any other number.
    """
    return int(COUNTRY_CODE + national)


def from_key(key: int) -> str:
    """National number for a key made by `to_key`."""
    return str(key)[len(COUNTRY_CODE) :]


def e164(national: str) -> str:
    """E.164 form, e.g. +4722202400."""
    return f"+{COUNTRY_CODE}{national}"


def national_format(national: str) -> str:
    """The way Norwegians write it: mobile and 8xx service numbers in 3-2-3 groups
    (`412 34 567`, `800 12 345`), others in pairs (`22 20 24 00`)."""
    if len(national) != 8:
        return national
    if national[0] in "489":
        return f"{national[:3]} {national[3:5]} {national[5:]}"
    return f"{national[:2]} {national[2:4]} {national[4:6]} {national[6:]}"
