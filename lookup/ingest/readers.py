"""Readers that turn an operator file's bytes into raw rows keyed by canonical field.

Readers know the two file formats (CSV with Norwegian column names, JSON Lines
with English field names) and nothing of the rules; a row that cannot even be
split into fields comes out with `error` set, so it is counted, not lost.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from typing import Final

import msgspec

from lookup.errors import FileRejected, RejectReason
from lookup.ingest.files import FileFormat

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


class RawRow(msgspec.Struct, frozen=True):
    """One data row as delivered: its line, its text and its fields (not yet validated)."""

    line: int
    raw: str
    fields: dict[str, object]
    error: str | None = None
    """Reason code when the row could not be split into fields at all."""
    detail: str | None = None


def decode(data: bytes, *, gzipped: bool) -> str:
    """Unpack and decode a file: UTF-8 (with or without BOM), else ISO-8859-1."""
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected(RejectReason.UNREADABLE, f"not a valid gzip file: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Older exports are Latin-1; every byte decodes, so the text is never lost.
        return data.decode("iso-8859-1")


def read_rows(text: str, file_format: FileFormat) -> Iterator[RawRow]:
    """Rows of a decoded file in the given format."""
    # Not str.splitlines(): it also breaks at U+0085 and U+2028, which occur in names.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if file_format is FileFormat.CSV:
        return _read_csv(lines)
    return _read_jsonl(lines)


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


def _read_csv(lines: list[str]) -> Iterator[RawRow]:
    if not lines or not lines[0].strip():
        raise FileRejected(RejectReason.BAD_HEADER, "the file is empty: no header row")
    header = next(csv.reader([lines[0]], delimiter=";"))
    columns = [column.strip().lower() for column in header]
    _check_header(columns)
    fields_of = [CSV_COLUMNS.get(column) for column in columns]
    feed = _LineFeed(lines, start=1)
    reader = csv.reader(feed, delimiter=";", strict=True)
    while True:
        first = feed.taken  # 0-based index of the row's first line
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raw = "\n".join(lines[first : feed.taken])
            yield RawRow(first + 1, raw, {}, "bad_row", f"cannot split the row: {exc}")
            continue
        raw = "\n".join(lines[first : feed.taken])
        if not values or not raw.strip():
            continue
        if len(values) != len(columns):
            yield RawRow(
                first + 1,
                raw,
                {},
                "bad_row",
                f"{len(values)} fields where the header has {len(columns)}",
            )
            continue
        fields: dict[str, object] = {
            field: value for field, value in zip(fields_of, values, strict=True) if field
        }
        yield RawRow(first + 1, raw, fields)


def _check_header(columns: list[str]) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen and column in CSV_COLUMNS:
            raise FileRejected(RejectReason.BAD_HEADER, f"column {column!r} appears twice")
        seen.add(column)
    missing = [COLUMN_OF[field] for field in REQUIRED_FIELDS if COLUMN_OF[field] not in seen]
    if missing:
        raise FileRejected(
            RejectReason.BAD_HEADER,
            "missing required column(s): " + ", ".join(missing) + f" (header: {';'.join(columns)})",
        )


_decode_object = msgspec.json.Decoder(dict[str, object])


def _read_jsonl(lines: list[str]) -> Iterator[RawRow]:
    for index, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = _decode_object.decode(line)
        except msgspec.DecodeError as exc:
            yield RawRow(index, line, {}, "bad_json", f"not a JSON object: {exc}")
            continue
        yield RawRow(index, line, fields)
