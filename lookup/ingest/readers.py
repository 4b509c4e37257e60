"""Readers that turn an operator file's decoded text into raw rows keyed by canonical field.

Readers know the two file formats (CSV with Norwegian column names, JSON Lines
with English field names) and nothing of the rules; a row that cannot even be
split into fields comes out with `error` set, so it is counted, not lost.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from typing import Final

import msgspec

from lookup.errors import FileRejected, RejectReason
from lookup.ingest.files import FileFormat
from lookup.ingest.markers import hides_address, reserved
from lookup.ingest.redact import MASK, reads_as_date
from lookup.jsonkeys import decode_object, repeated_key

# CSV column (lowercased) -> canonical field name; JSON Lines uses the canonical names.
CSV_COLUMNS: Final = {
    "nummer": "number",
    "type": "kind",
    "fornavn": "first_name",
    "etternavn": "last_name",
    "firmanavn": "business_name",
    "orgnr": "org_number",
    "adresse": "street",
    "postnr": "postcode",
    "poststed": "city",
    "reservert": "reservation",
    "reklamereservert": "marketing_reserved",
    "fodselsdato": "birth_date",
    "gyldig_fra": "valid_from",
    "action": "action",
}
REQUIRED_FIELDS: Final = ("number", "kind", "reservation", "valid_from")
COLUMN_OF: Final = {field: column for column, field in CSV_COLUMNS.items()}


SALVAGED_FIELDS: Final = ("number", "reservation", "valid_from", "birth_date")
"""The fields a row that cannot be split is searched for: what honouring a reservation,
and withholding a date of birth, needs."""


class RawRow(msgspec.Struct, frozen=True):
    """One data row as delivered: its line, its text and its fields (not yet validated)."""

    line: int
    raw: str
    fields: dict[str, object]
    error: str | None = None
    """Reason code when the row could not be split into fields at all."""
    detail: str | None = None
    salvaged: dict[str, tuple[str, ...]] = {}
    """For a row that could not be split: what `number`, `reservation` and `valid_from`
    may hold, read leniently, and under `values` every value the row seems to carry."""
    extra: tuple[str, ...] = ()
    """A CSV row's values in columns the contract does not name (`fødselsdato`,
    `personnummer`?): never read, and masked in a rejected row's kept text."""


_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def read_rows(text: str, file_format: FileFormat, *, delta: bool = False) -> Iterator[RawRow]:
    """Rows of a decoded file in the given format (a delta's CSV header must name `action`)."""
    # Not str.splitlines(): it also breaks at U+0085 and U+2028, which occur in names.
    # A lone CR ends a line too: old Mac exports use nothing else.
    lines = _LINE_BREAK.split(text)
    if file_format is FileFormat.CSV:
        return _read_csv(lines, ("action",) if delta else ())
    return _read_jsonl(lines)


def read_reservation_rows(text: str) -> tuple[list[RawRow], int]:
    """The rows of a CSV file rejected for its header, when the header still names the
    number and the reservation once each: enough to honour its reservations. Split at
    `;`, or at the separator the header is split by (commas, tabs): privacy wins over
    form. With another separator, rows that do not split are left out, and counted."""
    lines = _LINE_BREAK.split(text)
    at, declared = _header_at(lines)
    header = lines[at] if at < len(lines) else ""
    named = {COLUMN_OF["number"], COLUMN_OF["reservation"]}
    candidates = [declared] if declared and len(declared) == 1 else []
    delimiter = next(
        (d for d in [*candidates, *_SEPARATORS] if named <= set(_columns(header, d))),
        CSV_DELIMITER,
    )
    rows = list(
        _read_csv(lines, required=("number", "reservation"), only=True, delimiter=delimiter)
    )
    if delimiter == CSV_DELIMITER:
        return rows, 0
    # Commas stand unquoted in addresses ("Storgata 1, 2. etg") of such exports: a row that
    # does not split would have its reservation's place guessed, next to the marketing
    # flag's, and could withdraw a number no one asked to withdraw.
    whole = [row for row in rows if row.error is None]
    return whole, len(rows) - len(whole)


CSV_DELIMITER: Final = ";"
_SEPARATORS: Final = {";": "semicolons", ",": "commas", "\t": "tabs", "|": "bars"}
"""Separators an export may use instead of the contract's, with how they are said."""


def _columns(line: str, delimiter: str) -> list[str]:
    """A header line's column names, as the contract spells them (any case, blanks)."""
    try:
        header = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return []
    return [column.strip().lower() for column in header]


def _header_at(lines: list[str]) -> tuple[int, str | None]:
    """Where the header row is: past blank lines before it, and past Excel's `sep=;` line;
    and the separator such a line declares."""

    def past_blank(at: int) -> int:
        while at < len(lines) and not lines[at].strip():
            at += 1
        return at

    at = past_blank(0)
    declared = None
    if at < len(lines) and lines[at].strip().lower().startswith("sep="):
        # Padded with the separator itself by a spreadsheet that saved it as a row.
        text = lines[at].strip()[4:]
        declared = text[0] if text and len(set(text)) == 1 else text
        at = past_blank(at + 1)  # blank lines after it too
    return at, declared


def _names_columns(line: str, delimiter: str) -> bool:
    """Whether a line split at `delimiter` names two of the contract's columns or more."""
    return len(set(_columns(line, delimiter)) & CSV_COLUMNS.keys()) >= 2


def _header_hint(lines: list[str], at: int) -> str:
    """What a header naming none of the contract's columns most likely is, said without
    quoting it (it may be a subscriber's row)."""
    for delimiter, said in _SEPARATORS.items():
        if delimiter != CSV_DELIMITER and _names_columns(lines[at], delimiter):
            return f"; it is separated by {said}, where the contract has ';'"
    for index in range(at + 1, min(at + 6, len(lines))):
        if _names_columns(lines[index], CSV_DELIMITER):
            return f"; line {index + 1} looks like the header: remove the line(s) above it"
    return "; is the header row missing?"


class _LineFeed:
    """Feeds lines to `csv.reader` and remembers how many it took (quoted fields may span lines)."""

    def __init__(self, lines: list[str], start: int) -> None:
        self.lines = lines
        self.taken = start

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.lines[self.taken - 1] + "\n"


def _read_csv(
    lines: list[str],
    also_required: tuple[str, ...] = (),
    *,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    only: bool = False,
    delimiter: str = CSV_DELIMITER,
) -> Iterator[RawRow]:
    at, declared = _header_at(lines)
    if declared is not None and declared != delimiter and not only:
        said = _SEPARATORS.get(declared, "another separator")
        raise FileRejected(
            RejectReason.BAD_HEADER,
            f"line {at} (Excel's sep= line) declares {said}; the contract's separator is ';'",
        )
    if at >= len(lines):
        raise FileRejected(RejectReason.BAD_HEADER, "the file is empty: no header row")
    try:
        header = next(csv.reader([lines[at]], delimiter=delimiter))
    except csv.Error as exc:
        raise FileRejected(RejectReason.BAD_HEADER, f"cannot split the header row: {exc}") from None
    columns = [column.strip().lower() for column in header]
    _check_header(
        columns, (*required, *also_required), only=only, hint=lambda: _header_hint(lines, at)
    )
    fields_of = [CSV_COLUMNS.get(column) for column in columns]
    feed = _LineFeed(lines, start=at + 1)
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    while True:
        first = feed.taken  # 0-based index of the row's first line
        values: list[str] | None
        try:
            values, problem = next(reader), None
        except StopIteration:
            return
        except csv.Error as exc:
            values, problem = None, f"cannot split the row: {exc}"
        span = lines[first : feed.taken]
        if len(span) > 1 and (
            values is None
            or len(values) != len(columns)
            or any(_is_whole_row(line, len(columns), delimiter) for line in span[1:])
        ):
            # An unclosed quote ran on into the rows below it: every physical line is
            # then a row of its own, so none is lost and each reserved one is honoured.
            for offset, line in enumerate(span):
                if line.strip():
                    yield _split_line(line, first + offset + 1, columns, fields_of, delimiter)
            continue
        raw = "\n".join(span)
        if values is None:
            yield _unsplit(first + 1, raw, columns, problem or "cannot split the row", delimiter)
            continue
        if not values or not raw.strip():
            continue
        if len(values) != len(columns):
            detail = f"{len(values)} fields where the header has {len(columns)}"
            yield _unsplit(first + 1, raw, columns, detail, delimiter)
            continue
        if [value.replace("\ufeff", "").strip().lower() for value in values] == columns:
            # Read as a row, its `reservert` would be a reservation marker with no number.
            detail = f"line {first + 1} repeats the header row (files joined together?)"
            yield RawRow(first + 1, raw, {}, "header_again", detail)
            continue
        yield _row(first + 1, raw, values, fields_of)


def _is_whole_row(line: str, width: int, delimiter: str) -> bool:
    """Whether a line inside a quoted field reads as a complete row by itself."""
    try:
        return len(next(csv.reader([line], delimiter=delimiter, strict=True))) == width
    except (csv.Error, StopIteration):
        return False


def _split_line(
    line: str, number: int, columns: list[str], fields_of: list[str | None], delimiter: str
) -> RawRow:
    try:
        values = next(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return _unsplit(number, line, columns, f"cannot split the row: {exc}", delimiter)
    if len(values) != len(columns):
        detail = f"{len(values)} fields where the header has {len(columns)}"
        return _unsplit(number, line, columns, detail, delimiter)
    return _row(number, line, values, fields_of)


def _row(line: int, raw: str, values: list[str], fields_of: list[str | None]) -> RawRow:
    fields: dict[str, object] = {f: v for f, v in zip(fields_of, values, strict=True) if f}
    if len(fields) == len(values):
        return RawRow(line, raw, fields)
    extra = tuple(v for f, v in zip(fields_of, values, strict=True) if f is None and v.strip())
    return RawRow(line, raw, fields, extra=extra)


def _unsplit(line: int, raw: str, columns: list[str], detail: str, delimiter: str) -> RawRow:
    """A row that cannot be split, with what its fields may hold read leniently."""
    values = [value.strip().strip('"').strip() for value in raw.replace("\n", " ").split(delimiter)]
    salvaged: dict[str, tuple[str, ...]] = {"values": tuple(values)}
    for field in SALVAGED_FIELDS:
        if COLUMN_OF[field] not in columns:
            continue
        index = columns.index(COLUMN_OF[field])
        # Counted from the left and from the right: a stray or missing separator
        # shifts only the fields on one side of it.
        positions = {index, index - len(columns) + len(values)}
        salvaged[field] = tuple(values[i] for i in sorted(positions) if 0 <= i < len(values))
    return RawRow(line, raw, {}, "bad_row", detail, salvaged)


def _check_header(
    columns: list[str],
    required: tuple[str, ...],
    *,
    only: bool = False,
    hint: Callable[[], str] = lambda: "; is the header row missing?",
) -> None:
    """Refuse a header missing a required column or naming a column twice (with `only`,
    one of the required ones: the others are not read); `hint` says what a header naming
    none of the contract's columns most likely is."""
    watched = {COLUMN_OF[field] for field in required} if only else set(CSV_COLUMNS)
    seen: set[str] = set()
    for column in columns:
        if column in seen and column in watched:
            raise FileRejected(RejectReason.BAD_HEADER, f"column {column!r} appears twice")
        seen.add(column)
    # A delta without `action` would reject every row one by one for the same reason.
    missing = [COLUMN_OF[field] for field in required if COLUMN_OF[field] not in seen]
    if missing:
        # Only the contract's column names are quoted: a file without its header row has
        # a subscriber's row there (a reserved one's name, a date of birth).
        known = [column for column in columns if column in CSV_COLUMNS]
        others = len(columns) - len(known)
        found = ", ".join(known) if known else "none of the contract's columns"
        if others:
            found += f" and {others} other field(s)"
        said = "" if known else hint()
        raise FileRejected(
            RejectReason.BAD_HEADER,
            f"missing required column(s): {', '.join(missing)} (the header has {found}{said})",
        )


def _read_jsonl(lines: list[str]) -> Iterator[RawRow]:
    for index, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = decode_object(line)
        except (msgspec.DecodeError, RecursionError) as exc:
            # Nested thousands deep, a line is no row either: the rest of the file is read.
            detail = f"not a JSON object: {exc}"
            yield RawRow(index, _mask_hidden(line), {}, "bad_json", detail, _salvage(line))
            continue
        try:
            repeated = repeated_key(line, len(fields))
        except RecursionError:
            # Too deep to look for a repeated key: not trusted as a row either.
            detail = "nested too deep to tell whether a key is given twice"
            kept = _shown(list(fields.items()))  # as read, for the kept text only
            yield RawRow(index, kept, {}, "bad_json", detail, _salvage(line))
            continue
        if repeated is None:
            # Keys as the contract names them whatever their case ("Reservation", as a C#
            # serializer writes it), or as the CSV header does ("reservert"): read as
            # unknown, a reservation under one was not applied.
            pairs = [(_json_key(key), value) for key, value in fields.items()]
            by_field: dict[str, object] = {}
            for key, value in pairs:
                if key in by_field:
                    repeated = (key, pairs)
                    break
                by_field[key] = value
            else:
                yield RawRow(index, line, by_field)
                continue
        if repeated is not None:
            # A decoder keeps the last silently: `"reservation":"reserved",
            # "reservation":"listed"` would list a subscriber. Which holds cannot be told;
            # read as a broken row, a reservation among the values still withdraws it.
            key, pairs = repeated
            # Read as the contract's fields ("Reservation" twice is a reservation given twice).
            pairs = [(_json_key(name), value) for name, value in pairs]
            key = _json_key(key)
            # A key of the operator's own is not quoted: it may be anything, a date of birth.
            named = repr(key) if key in COLUMN_OF else "a key"
            detail = f"{named} is given more than once: which value holds cannot be told"
            # Kept as parsed, as a whole row's reject is: the date of birth and the values
            # of keys the contract does not name withheld whatever their form.
            yield RawRow(index, _shown(pairs), {}, "bad_json", detail, _from_pairs(pairs))


def _json_key(key: str) -> str:
    """A JSON Lines key as the contract names its field: any case, and `reservert` for
    the reservation (the one key whose loss lists a subscriber); another key as written
    (the CSV's `type` or `adresse` beside the contract's own are an export's extras)."""
    folded = key.strip().lower()
    if folded == COLUMN_OF["reservation"]:
        return "reservation"
    return folded if folded in COLUMN_OF else key


def _from_pairs(pairs: list[tuple[str, object]]) -> dict[str, tuple[str, ...]]:
    """What an object giving a key twice says, as a broken row's salvage: every value of
    each field, read from the parse (JSON's `true`, or a marker in an array, is one)."""
    salvaged: dict[str, tuple[str, ...]] = {}
    values: list[str] = []
    for key, value in pairs:
        texts = tuple(_scalars(value, reservation=key == "reservation"))
        if key == "reservation":
            # Parsed, not guessed: judged as a whole row's field is (`Ja`, `hemmelig`), and
            # handed on as the contract's code, which a broken row's judgement reads.
            texts = tuple(_as_code(text) for text in texts)
        values.extend(texts)
        if key in SALVAGED_FIELDS:
            salvaged[key] = salvaged.get(key, ()) + texts
    return {**salvaged, "values": tuple(values)}


def _shown(pairs: list[tuple[str, object]]) -> str:
    """A row giving a key twice as its reject keeps it: decoded, with the date of birth, the
    values (and names) of keys outside the contract, and whatever reads as a date withheld."""
    parts = []
    for key, value in pairs:
        known = key in COLUMN_OF
        # The number field is the row's number, kept: "23051975" is one and reads as a date.
        if key == "number":
            shown = value
        else:
            shown = _undated(value) if known and key != "birth_date" else MASK
        parts.append(
            f"{json.dumps(key if known else MASK, ensure_ascii=False)}: "
            f"{json.dumps(shown, ensure_ascii=False, default=str)}"
        )
    return "{" + ", ".join(parts) + "}"


def _undated(value: object, depth: int = 8) -> object:
    """A parsed value with each part that reads as a date withheld, judged decoded (a
    "1980-02-03\\n" encoded again would hide it from patterns), numbers too (1.9800203e7);
    deeper than `depth`, withheld whole."""
    if depth == 0:
        return MASK
    if isinstance(value, list | tuple):
        return [_undated(item, depth - 1) for item in value]
    if isinstance(value, dict):
        return {str(k): _undated(v, depth - 1) for k, v in value.items()}
    return MASK if reads_as_date(value) else value


def _as_code(text: str) -> str:
    if reserved(text):
        return "reserved"
    return "address_hidden" if hides_address(text) else text


def _scalars(value: object, *, reservation: bool, depth: int = 5) -> Iterator[str]:
    """A JSON value's texts and numbers as text, arrays and objects opened `depth` deep;
    `true` in the reservation is a reservation."""
    if value is True and reservation:
        yield "reserved"
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, tuple):  # one of an object's pairs: its key and its value
        for item in value:
            yield from _scalars(item, reservation=reservation, depth=depth)
    elif isinstance(value, list) and depth > 1:  # an array, or an object's pairs
        for item in value:
            yield from _scalars(item, reservation=reservation, depth=depth - 1)


_JSON_STRING: Final = r"""(?:"((?:[^"\\]|\\.)*)"|'([^']*)')"""
_JSON_VALUE: Final = re.compile(_JSON_STRING)


def _salvage(line: str) -> dict[str, tuple[str, ...]]:
    """What a line of broken JSON says, found by pattern rather than by parsing."""
    salvaged: dict[str, tuple[str, ...]] = {
        "values": tuple(a or b for a, b in _JSON_VALUE.findall(line))
    }
    for field in SALVAGED_FIELDS:
        # Its keys as `_json_key` reads them: any case, `reservert` for the reservation.
        key = f"(?:{field}|{COLUMN_OF[field]})" if field == "reservation" else field
        pattern = rf"""(?<!\w)["']?{key}["']?\s*:\s*(?:{_JSON_STRING}|(\d+))"""
        found = re.findall(pattern, line, re.IGNORECASE)
        salvaged[field] = tuple(next((g for g in groups if g), "") for groups in found)
    return salvaged


_TOKEN: Final = re.compile(r'"((?:[^"\\]|\\.)*)"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
_UNICODE_ESCAPE: Final = re.compile(r"\\u([0-9a-fA-F]{4})")
_ESCAPE: Final = re.compile(r"\\.?")


def _mask_hidden(line: str) -> str:
    """A line no decoder reads, its dates that no pattern over the text sees withheld, in
    one pass: strings that read as a date only decoded ("1980\\u002d02\\u002d03",
    "1980-02-03\\n"), and numbers that do only as integers (1.9800203e7, -19800203.0)."""

    def masked(match: re.Match[str]) -> str:
        written = match[0]
        if match[1] is not None:
            if "\\" not in written:
                return written
            # Leniently: one bad escape elsewhere in the string must not keep the date.
            decoded = _UNICODE_ESCAPE.sub(lambda m: chr(int(m[1], 16)), match[1])
            # Other escapes (\\n, a stray \\q) are no part of a date: dropped.
            return f'"{MASK}"' if reads_as_date(_ESCAPE.sub("", decoded)) else written
        if ("." in written or "e" in written.lower()) and reads_as_date(float(written)):
            return MASK
        return written

    return _TOKEN.sub(masked, line)
