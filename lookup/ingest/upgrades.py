"""Upgrades of a warehouse written by an older version: columns added since, filled once.

Each runs when the warehouse is opened for writing and does nothing once its column is
there; each adds its column and fills it in one transaction, so a process killed half-way
leaves the warehouse to be upgraded again on the next open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import duckdb

from lookup.errors import RejectReason
from lookup.numbers import InvalidNumber, classify

_JSON_NUMBER: Final = re.compile(r'"number"\s*:\s*"([^"]*)"')


def upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a warehouse's tables up to the current schema."""
    _number_rejects(con)
    _mark_file_dates(con)
    if not has_column(con, "records", "veiled"):
        # The next ingest veils what is due; a listed record without a kind is one whose
        # data a reservation already took (a row without one is rejected), never served.
        with _transaction(con):
            con.execute("ALTER TABLE records ADD COLUMN veiled TINYINT DEFAULT 0")
            con.execute(
                "UPDATE records SET veiled = 2 WHERE kind IS NULL AND reservation <> 'reserved'"
            )


def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Whether the table has the column (a warehouse not yet upgraded may lack it)."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
        [table, column],
    ).fetchall()
    return bool(rows[0][0])


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _named_number(raw: str) -> str | None:
    """The national number a stored row names: a JSON row's `number`, a CSV row's first
    field; None when it names none that is valid."""
    found = _JSON_NUMBER.search(raw)
    try:
        return classify(found.group(1) if found else raw.split(";", 1)[0])[0]
    except InvalidNumber:
        return None


def _number_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """Give rejects stored before they carried their number the number they name.

    Once, when the column is added: later matches are then an equality join (a
    match on each row's digits, per reserved number, took a million-row ingest from
    35 s to beyond 14 minutes).
    """
    if has_column(con, "rejects", "number"):
        return
    with _transaction(con):
        con.execute("ALTER TABLE rejects ADD COLUMN number VARCHAR")
        rows = con.execute("SELECT rowid, raw FROM rejects").fetchall()
        named = [(number, rowid) for rowid, raw in rows if (number := _named_number(raw))]
        if named:
            con.executemany("UPDATE rejects SET number = ? WHERE rowid = ?", named)


def _mark_file_dates(con: duckdb.DuckDBPyConnection) -> None:
    """Tell the file-dated flags of a warehouse made before records said where their date
    came from: once, when the column is added.

    A reservation dated to the second of the file a broken row of the number was
    honoured from (its reject says so), or of a file whose header was rejected (its
    reservations were honoured, its rows not stored), is that row's: marked so, the
    operator's next whole row lifts it, as it did before. Any other date is the
    operator's.
    """
    for table in ("records", "withdrawals"):
        if has_column(con, table, "dated_by_file"):
            continue
        # A record names the batch that wrote it; a withdrawal only the one that removed
        # its record, so any batch of the operator's may be the broken row's.
        same_batch = "b.id = t.batch_id AND " if table == "records" else ""
        with _transaction(con):
            con.execute(f"ALTER TABLE {table} ADD COLUMN dated_by_file BOOLEAN DEFAULT false")
            con.execute(
                f"""UPDATE {table} t SET dated_by_file = true
                WHERE reservation <> 'listed' AND EXISTS (
                    SELECT 1 FROM batches b
                    WHERE {same_batch}b.operator = t.operator AND b.produced_at = t.valid_from
                    AND (b.reason = '{RejectReason.BAD_HEADER}' OR EXISTS (
                        SELECT 1 FROM rejects j WHERE j.batch_id = b.id
                        AND j.number = t.number AND j.reservation_applied)))"""
            )
