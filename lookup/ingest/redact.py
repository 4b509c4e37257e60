"""What a rejected row's kept text and reason may hold: no date of birth, in any form. Pure.

A rejected row is stored with its text, for the operator to find and mend it. A date
of birth is shown nowhere, not even to compliance, so it is masked wherever it stands:
in the field the contract or the header names, in a field a shifted column put it in,
anywhere in a row that could not be split. The row's own number is kept.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

from lookup.numbers import InvalidNumber, classify

_MONTHS: Final = "jan|feb|mar|apr|mai|may|jun|jul|aug|sep|okt|oct|nov|des|dec"
_YEAR: Final = "(?:18|19|20)[0-9]{2}"
"""A year a person alive was born in, or a record dated."""
_DATE_LIKE: Final = re.compile(
    r"(?:(?:f\.|født:?)\s*)?"  # "f. 17.05.1975", "født: 17.05.1975": born
    r"(?:[0-9]{1,4}[-./ ]\s*[0-9]{1,2}[-./ ]\s*[0-9]{1,4}"  # 1975-05-17, 17. 05 1975
    rf"|[0-9]{{1,2}}(?:st|nd|rd|th)?[-. ]*(?:{_MONTHS})[a-z]*[-. ]*[0-9]{{2,4}}"  # 17. mai 1975
    rf"|(?:{_MONTHS})[a-z]*\.?\s*[0-9]{{1,2}}(?:st|nd|rd|th)?,?\s*[0-9]{{2,4}}"  # May 17, 1975
    r"|[0-9]{6}[- ]?[0-9]{5}"  # a national identity number (fødselsnummer): the date and more
    # ISO 8601's rarer forms, of a plausible year only (a postcode `1234-5` or a street
    # `Postboks 6745.5` must stay readable for the operator mending the row): week dates
    # (1975-W20-6), ordinal dates (1975-137 is 17 May 1975), a year and month (1975-05).
    rf"|{_YEAR}-?W(?:0[1-9]|[1-4][0-9]|5[0-3])(?:-?[1-7])?"
    rf"|{_YEAR}-(?:00[1-9]|0[1-9][0-9]|[12][0-9][0-9]|3[0-5][0-9]|36[0-6])"
    rf"|{_YEAR}[-./](?:0?[1-9]|1[0-2])"
    r"|[0-9]{6,8})(?:[T ][0-9:.,+Z-]*)?[.,]?",
    re.IGNORECASE,
)
"""A date of birth in the forms people write one, or a national identity number."""
_DIGIT: Final = re.compile(
    r"[\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089\u2460-\u24ff\u2776-\u2793]"
)
"""A digit of any script or form: superscript, subscript and circled ones too."""
_DASHES: Final = str.maketrans(
    dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63", "-")
)
"""Hyphens and dashes of other widths, and minus signs (a `-` in a date)."""
_BORN: Final = re.compile(
    rf"(?<!\w)(?:f\.|født:?|fodt:?|born:?|b\.)\s*(?:[0-9]|(?:{_MONTHS}))", re.IGNORECASE
)
"""Part of a date said to be a birth date: `f. 1975`, `født 17. mai`, `b. 1975`."""
_DOTS: Final = str.maketrans(dict.fromkeys(",·_", "."))
"""Other marks a date's parts are written apart with (`17,05,1975`, `17·05·1975`)."""
_SPACED_SEPARATOR: Final = re.compile(r"(?<=[0-9]) *([-./]) *(?=[0-9])")
_DATE_INSIDE: Final = re.compile(rf"(?<!\w)(?:{_DATE_LIKE.pattern})(?![0-9])", re.IGNORECASE)
"""A date as `_DATE_LIKE` reads one, inside a longer text."""
_JSON_TEXT: Final = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'""")
"""A JSON string, escapes and all (or single-quoted, as broken JSON has them)."""
_BARE_VALUE: Final = re.compile(r"(?<=[:\[,])\s*[0-9][0-9./ T:-]{4,}[0-9](?=\s*(?:[,}\]]|$))")
"""A JSON value written without quotes that may be a date (1975-05-17, 19750517) or an
identity number, after a key or in an array."""
MASK: Final = "[withheld]"
MAX_KEPT: Final = 2000
"""Characters of a rejected row's text kept: enough to find and mend it, not a megabyte."""


def looks_like_date(value: str) -> bool:
    """Whether a value reads as a date of birth (or an identity number)."""
    return _DATE_LIKE.fullmatch(value.strip()) is not None


def reads_as_date(value: object, depth: int = 8) -> bool:
    """Whether a parsed value reads as a date (of birth), or holds one (in an array or an
    object): once what cannot be seen is taken out (a NUL, a zero-width space), with its
    blanks as one space or none ("1975-05-17 12:00", "1980-\\t02-\\t03"), a number as an
    integer (1.9800203e7, -19800203). "23.05.1975" is a phone number's digits too: it is
    the row's number only in the number field, which callers judge apart."""
    if isinstance(value, list | tuple | dict) and depth:
        items = value.items() if isinstance(value, dict) else value
        return any(reads_as_date(item, depth - 1) for item in items)
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        if not value.is_integer() or abs(value) >= 1e12:
            return False
        value = int(value)
    if isinstance(value, int):
        value = str(abs(value))
    if not isinstance(value, str):
        return False
    seen = "".join(c for c in value if c.isprintable() or c.isspace())
    return looks_like_date(" ".join(seen.split())) or looks_like_date("".join(seen.split()))


def mask_values(raw: str, values: Iterable[str]) -> str:
    """The raw text with these values masked, each longer than two characters (a field
    the contract or the header names as a date of birth, whatever its form; a column it
    does not name at all)."""
    for value in values:
        text = value.strip()
        if len(text) > 2:
            raw = raw.replace(text, MASK)
    return raw


def mask_cells(
    raw: str, *, whole: Iterable[str] = (), anywhere: Iterable[str] = (), keep: str | None = None
) -> str:
    """A CSV row's text with every field holding one of the `whole` values masked whole (an
    address: not the postcode's digits inside a phone number), and the `anywhere` values
    (dates, values of columns the contract does not name) masked wherever they stand, a
    date of birth written into a name too; the field holding `keep` (the row's number)
    only when it is one whole. A text that does not read back as one row of fields is
    masked wherever the values stand (`mask_values`)."""
    whole_set = {value.strip() for value in whole if value.strip()}
    parts = sorted({v.strip() for v in anywhere if len(v.strip()) > 2}, key=len, reverse=True)
    if not whole_set and not parts:
        return raw
    rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter=";"))
    if len(rows) != 1:
        return mask_values(raw, [*whole_set, *parts])
    fields = [_masked(field, whole_set, parts, keep) for field in rows[0]]
    if fields == rows[0]:
        return raw
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="").writerow(fields)
    return out.getvalue()


def _masked(field: str, whole: set[str], parts: list[str], keep: str | None) -> str:
    text = field.strip()
    if keep is not None and text == keep.strip():
        return field  # the row's number, to find the row by (an extra column may repeat it)
    if text in whole or text in parts:
        return MASK
    for part in parts:
        field = field.replace(part, MASK)
    return field


def holds_date(value: object, depth: int = 8) -> bool:
    """Whether a parsed value reads as a date (of birth) or holds one anywhere inside it,
    or part of one said to be a birth date (`f. 1975`, `født 17. mai`): in its text, or in
    an array or object."""
    if isinstance(value, list | tuple | dict) and depth:
        items = value.items() if isinstance(value, dict) else value
        return any(holds_date(item, depth - 1) for item in items)
    if isinstance(value, str) and not _DIGIT.search(value):
        return False  # every date is written with digits: most names have none
    if reads_as_date(value):
        return True
    if not isinstance(value, str):
        return False
    plain = _plain(value)
    return bool(_DATE_INSIDE.search(plain) or _BORN.search(plain))


_DAY: Final = "(?:0?[1-9]|[12][0-9]|3[01])"
_MONTH_NAME: Final = (
    "(?:jan(?:uar|uary)?|feb(?:ruar|ruary)?|mar(?:s|ch)?|apr(?:il)?|mai|may|jun[ie]?"
    "|jul[iy]?|aug(?:ust)?|sep(?:t|tember)?|o[ck]t(?:ober)?|nov(?:ember)?|de[sc](?:ember)?)"
)
"""A month's name in Norwegian or English, whole or cut short (`mai`, `sept`, `October`)."""
_FULL_YEAR: Final = "(?:19|20)[0-9]{2}"
_FULL_DATE: Final = re.compile(
    r"(?<![0-9])(?:"
    rf"[0-9]{{1,2}} ?[-./] ?[0-9]{{1,2}} ?[-./] ?{_FULL_YEAR}"  # 17.05.1975, 17/5-1975
    # Month and day of two digits: `Storvegen 1995/3/1` is a farm's number.
    rf"|{_FULL_YEAR} ?[-./] ?(?:0[1-9]|1[0-2]) ?[-./] ?(?:0[1-9]|[12][0-9]|3[01])"
    rf"|{_FULL_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"  # 19750517
    rf"|(?:0[1-9]|[12][0-9]|3[01])(?:0[1-9]|1[0-2]){_FULL_YEAR}"  # 17051975
    # A national identity number (a D-number's day is 40 more): its date, and five digits.
    r"|(?:[04][1-9]|[1256][0-9]|[37][01])(?:0[1-9]|1[0-2])[0-9]{2} ?[0-9]{5}"
    # 17. mai 1975, but not with a name after it: `8. mai 1945-plassen` is a square. Not
    # month first: `Mars 1, 2000 Lillestrøm` is a street, its house and its postcode.
    rf"|{_DAY}\.? ?{_MONTH_NAME}\.? ?{_FULL_YEAR}(?![0-9])(?!-[^\W\d_])"
    r")(?![0-9])",
    re.IGNORECASE,
)
"""A date with a four-digit year in the forms people write one (`17.05.1975`, `1975/05/17`,
`19750517`, `17. mai 1975`), or a national identity number: in an address, never a house
number, a postcode, a range or a street named after a day."""


_BORN_IN_ADDRESS: Final = re.compile(
    rf"(?<!\w)(?:født:?|fodt:?|born:?|f\.(?= ?[0-9]{{1,2}}[./-]))\s*(?:[0-9]|(?:{_MONTHS}))",
    re.IGNORECASE,
)
"""A date said to be a birth date in an address field: `født 1975`, `f. 17/5-75` (an `f.`
before a day and month only: `Storgata 2 f. 3` is a flat)."""


def address_holds_date(text: str) -> bool:
    """Whether an address field (a street, a city) shows a date: one without letters that
    reads as a date whole (`17.05.75`, `19750517`), one with its four-digit year inside it,
    or one said to be a birth date (`f. 17/5-75`). Not `holds_date`'s looser reading: house
    numbers read as parts of dates (`Markveien 191`, `Strandveien 1-3/5`)."""
    if not _DIGIT.search(text):
        return False
    if not any(c.isalpha() for c in text) and reads_as_date(text):
        return True
    # Not `_plain`'s commas as dots: "Storgata 1-3, 2000 Lillestrøm" is a range and a
    # postcode, "12 B, 2. etasje" a house letter; nor "b." as born: a house letter.
    plain = unicodedata.normalize("NFKC", text)
    return bool(_FULL_DATE.search(plain) or _BORN_IN_ADDRESS.search(plain))


def _plain(text: str) -> str:
    """A text as dates in it are looked for: in its compatibility form (fullwidth digits),
    without format characters (zero-width, soft hyphen), every dash a `-`, every blank a
    space."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = " ".join(text.translate(_DASHES).translate(_DOTS).split())
    return _SPACED_SEPARATOR.sub(r"\1", text)  # "17 - 05 - 1975" is 17-05-1975


def mask_broken(raw: str, *, json: bool, number: str | None, birth_dates: Iterable[str]) -> str:
    """A row that could not be split, with every value that reads as a date of birth
    masked, or stands where the birth-date field may be (`birth_dates`), the row's own
    `number` in any written form excepted. A shifted field or an unnamed key can put the
    date anywhere (a valid-from date goes too). In one pass over the text: a value at a
    time took minutes on a line of megabytes."""
    named = {v.strip().replace("\\/", "/") for v in birth_dates if len(v.strip()) > 2}

    def masked(value: str) -> bool:
        text = value.strip().strip('"').strip().replace("\\/", "/")
        return (text in named or looks_like_date(text)) and not is_number(text, number)

    if not json:
        return ";".join(MASK if masked(field) else field for field in raw.split(";"))
    raw = _JSON_TEXT.sub(_replace(lambda m: masked(m[1] or m[2] or "")), raw)
    # Values the salvage cannot read as strings: a bare 19750517, 1975-05-17, or
    # 17057512345 in an array.
    raw = _BARE_VALUE.sub(_replace(lambda m: masked(m[0])), raw)
    # And what the birth-date key holds, wherever the broken quoting left it.
    return mask_values(raw, birth_dates)


def _replace(masked: Callable[[re.Match[str]], bool]) -> Callable[[re.Match[str]], str]:
    return lambda match: f'"{MASK}"' if masked(match) else match[0]


_DAYS_IN: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGIT_READINGS: Final = {
    6: ("DDMMYY", "YYMMDD", "MMDDYY", "YYDDMM", "DMYYYY", "MDYYYY", "YYYYMD", "YYYYDM"),
    7: (
        *("DMMYYYY", "DDMYYYY", "MDDYYYY", "MMDYYYY"),
        *("YYYYMDD", "YYYYMMD", "YYYYDMM", "YYYYDDM"),
    ),
    8: ("DDMMYYYY", "MMDDYYYY", "YYYYMMDD", "YYYYDDMM"),
}
"""Every order of day, month and year a date is written in as digits alone (leading zeros
left out included)."""


def quoted_number(value: str) -> str:
    """A mistyped number as a reject's reason quotes it: as `quoted` does, but digits alone
    are quoted when no order of day, month and year (nor a D- or H-number's) makes a date
    of them. Most 6 to 8 digit numbers are none (`21279132`), and an operator must see
    which number to mend; `17051975` stays unquoted. Only here: in a name or any other
    field, and in a rejected row's kept text, all such digits stay a date."""
    text = value.strip()
    readings = _DIGIT_READINGS.get(len(text), ()) if text.isascii() and text.isdigit() else ()
    if readings and not any(_reads_as(text, order) for order in readings):
        return repr(value)
    return quoted(value)


def _reads_as(digits: str, order: str) -> bool:
    parts = {part: int(digits[order.index(part) : order.rindex(part) + 1]) for part in "DMY"}
    day, month, year = parts["D"], parts["M"], parts["Y"]
    if order in ("DDMMYY", "DDMMYYYY"):  # a date as identity numbers write it: a D-number's
        day = day - 40 if day > 40 else day  # day plus 40, an H-number's month
        month = month - 40 if month > 40 else month
    if order.count("Y") == 4 and not 1880 <= year <= 2100:
        return False
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN[month - 1]


def quoted(value: object) -> str:
    """A value as a reject's reason quotes it: not when it reads as a date, which in a
    field that holds none is a date of birth a shifted column put there."""
    if holds_date(value):
        return "(a date, not quoted)"
    return repr(value)


def capped(text: str) -> str:
    """A kept text cut to `MAX_KEPT` characters, saying how many more there were."""
    if len(text) <= MAX_KEPT:
        return text
    return f"{text[:MAX_KEPT]}... [{len(text) - MAX_KEPT} more characters]"


def is_number(value: str, number: str | None) -> bool:
    """Whether a broken row's value is its number, in whatever written form."""
    if number is None:
        return False
    try:
        return classify(value)[0] == number
    except InvalidNumber:
        return False


def withheld(number: str | None, row: str = "reserved") -> str:
    """The text kept of a reserved (or address-hidden) subscriber's row: its number alone."""
    return f"[{row} row withheld; number {number or 'unreadable'}]"
