"""What the service stores about one number: a data subject's right of access.

Gathered from the warehouse (each operator's record, its history, rejected rows),
the published snapshot (what customers are shown) and the compliance store
(which customers looked the number up, and cases whose evidence quotes it). For
compliance staff on the internal API only. The date of birth is not shown here
either, only whether one is on file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from lookup.abuse.store import ComplianceStore
from lookup.api.numbers import to_response
from lookup.api.schemas import Listing
from lookup.index.reader import Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest.warehouse import Warehouse
from lookup.numbers import e164
from lookup.timezones import in_utc, oslo, utc

_T = TypeVar("_T")


class DirectoryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One operator's record of the number, as the warehouse holds it."""

    operator: str
    reservation: str
    valid_from: datetime
    kind: str | None
    first_name: str | None
    last_name: str | None
    business_name: str | None
    org_number: str | None
    street: str | None
    postcode: str | None
    city: str | None
    marketing_reserved: bool
    dated_by_file: bool
    """`valid_from` is when the file came, not a date the operator gave (a broken row's)."""
    birth_date_on_file: bool
    file: str
    """The operator file it came from."""


class Change(msgspec.Struct, frozen=True):
    """A change to the number's record: which file, when, what."""

    file: str
    operator: str
    change: str
    ingested_at: datetime


class Withdrawal(msgspec.Struct, frozen=True):
    """A reservation or hidden address its operator said and no longer holds as its record
    (removed, replaced by an older statement, or said in a file held back), kept as that
    statement alone so that an older record does not undo it."""

    operator: str
    reservation: str
    valid_from: datetime
    dated_by_file: bool
    """`valid_from` is when the file came, not a date the operator gave (a broken row's)."""
    file: str
    """The operator file that removed the record, or said the wish."""


class RejectedRow(msgspec.Struct, frozen=True):
    """A row about the number that ingest rejected (its text withheld if it was reserved)."""

    file: str
    line: int
    reason: str
    detail: str
    raw: str


class SubjectReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every stored record about a number."""

    number: str
    directory: list[DirectoryRecord]
    published: Listing | None
    """What customers are shown now (None: not listed, reserved or unknown alike)."""
    history: list[Change]
    withdrawals: list[Withdrawal]
    rejected_rows: list[RejectedRow]
    lookups: dict[str, Any]
    """The customers' lookups of the number: how many, when, by which accounts."""
    cases: list[int]
    """Compliance cases whose evidence quotes the number."""


def directory_part(
    warehouse: Warehouse, national: str
) -> tuple[list[DirectoryRecord], list[Change], list[Withdrawal], list[RejectedRow]]:
    """The number's records, their history, withdrawals and rejected rows, from the warehouse."""
    # The record's own columns are the Struct's fields but the two derived here.
    stored = DirectoryRecord.__struct_fields__[:-2]
    provenance = _dated_by_file(warehouse)
    columns = [provenance("records", "r") if c == "dated_by_file" else f"r.{c}" for c in stored]
    records = warehouse.query(
        f"SELECT {', '.join(columns)}, r.birth_date IS NOT NULL, "
        "b.file FROM records r JOIN batches b ON b.id = r.batch_id "
        "WHERE r.number = ? ORDER BY r.valid_from DESC, r.operator",
        [national],
    )
    history = warehouse.query(
        "SELECT b.file, c.operator, c.change, b.ingested_at FROM changes c "
        "JOIN batches b ON b.id = c.batch_id WHERE c.number = ? ORDER BY c.batch_id",
        [national],
    )
    withdrawals = warehouse.query(
        f"SELECT w.operator, w.reservation, w.valid_from, {provenance('withdrawals', 'w')}, b.file "
        "FROM withdrawals w "
        "JOIN batches b ON b.id = w.batch_id WHERE w.number = ? ORDER BY w.batch_id",
        [national],
    )
    rejected = warehouse.query(
        "SELECT file, line, reason, detail, raw FROM rejects WHERE number = ? "
        "ORDER BY batch_id, line",
        [national],
    )
    fields = DirectoryRecord.__struct_fields__
    return (
        [_convert(fields, row, DirectoryRecord, valid_from=oslo) for row in records],
        [
            _convert(("file", "operator", "change", "ingested_at"), row, Change, ingested_at=utc)
            for row in history
        ],
        [
            _convert(Withdrawal.__struct_fields__, row, Withdrawal, valid_from=oslo)
            for row in withdrawals
        ],
        [
            _convert(("file", "line", "reason", "detail", "raw"), row, RejectedRow)
            for row in rejected
        ],
    )


def _dated_by_file(warehouse: Warehouse) -> Callable[[str, str], str]:
    """The `dated_by_file` column of a table (by its alias), or false in a warehouse opened
    read-only before an ingest added the column (every date in it was the operator's)."""
    tables = {t for t in ("records", "withdrawals") if warehouse.has_column(t, "dated_by_file")}
    return lambda table, alias: f"{alias}.dated_by_file" if table in tables else "false"


def _convert(
    fields: tuple[str, ...],
    row: tuple[object, ...],
    into: type[_T],
    **times: Callable[[datetime], datetime],
) -> _T:
    """A warehouse row as a Struct, its stored times given their zones (`times`, by field)."""
    values: dict[str, Any] = dict(zip(fields, row, strict=True))
    for field, zoned in times.items():
        values[field] = zoned(values[field])
    return msgspec.convert(values, into)


def _lookups_in_utc(lookups: dict[str, Any]) -> dict[str, Any]:
    """The number's lookups as served: their times offset."""
    [whole] = in_utc([lookups], "first", "last")
    return {**whole, "by_account": in_utc(lookups["by_account"], "first", "last")}


def published_part(snapshots: Path, national: str) -> Listing | None:
    """What the served snapshot shows customers for the number, if anything."""
    pointer = read_pointer(snapshots)
    if pointer is None:
        return None
    snapshot = Snapshot(snapshot_path(snapshots, pointer))
    listing = snapshot.find(national)
    return None if listing is None else to_response(listing, snapshot.name)


def report(
    national: str, warehouse: Warehouse, store: ComplianceStore, snapshots: Path
) -> SubjectReport:
    """Everything stored about a national number."""
    number = e164(national)
    directory, history, withdrawals, rejected = directory_part(warehouse, national)
    return SubjectReport(
        number=number,
        directory=directory,
        published=published_part(snapshots, national),
        history=history,
        withdrawals=withdrawals,
        rejected_rows=rejected,
        lookups=_lookups_in_utc(store.log.lookups_of(number)),
        cases=store.cases.quoting(number),
    )
