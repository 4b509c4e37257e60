"""The DuckDB warehouse: operator records, their withdrawals and change history; its
ingest log (batches, rejects, publishes) is `log` (`batchlog.BatchLog`).

Written only by ingest. Each operator file is applied in one transaction, so a
process killed half-way leaves the warehouse as it was before that file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lookup.errors import WarehouseBusy
from lookup.ingest.batchlog import FILES_NUMBERS, WITHHOLD_REJECTS, Batch, BatchLog
from lookup.ingest.duck import first_row, run
from lookup.ingest.files import FileKind
from lookup.ingest.records import Action, Record, Reservation
from lookup.ingest.rules import (
    PRECEDENCE_SQL,
    PRIVACY_RANK,
    PRIVACY_RANK_SQL,
    privacy_rank_sql,
)
from lookup.ingest.schema import SCHEMA
from lookup.ingest.upgrades import has_column, upgrade
from lookup.ingest.veil import ADDRESS, veil, veil_staged

_NO_ADDRESS: Final = ", ".join(f"{column} = NULL" for column in ADDRESS)
"""What a hidden address takes from a record: the veil's address columns."""

_SAID_BEFORE: Final = (
    """SELECT 1 FROM withdrawals w WHERE w.operator = $op
    AND w.number = {number} AND w.valid_from >= {valid_from} AND NOT w.dated_by_file
    AND """
    + privacy_rank_sql("w.reservation")
    + """ >= {rank}"""
)
"""A withdrawal of the operator's, dated by it, as private and as new as one about to be
saved: said once, not again each night an old file is sent again (a broken row's, dated by
its file, ends with the next whole row and cannot stand in for it)."""

_PRECEDENCE_UNVEILED_FIRST: Final = PRECEDENCE_SQL.replace(
    "operator ASC", "veiled ASC, operator ASC"
)
"""`PRECEDENCE_SQL`, but on a whole tie a record with its data before a veiled one."""
# Columns compared to tell an update from an unchanged re-delivery.
_CONTENT: Final = (
    "number_type",
    "reservation",
    "valid_from",
    "kind",
    "first_name",
    "last_name",
    "business_name",
    "org_number",
    "street",
    "postcode",
    "city",
    "marketing_reserved",
    "birth_date",
    "dated_by_file",
    "veiled",
)
_RECORD_SCHEMA: Final = pa.schema(
    [
        ("number", pa.string()),
        ("number_type", pa.string()),
        ("reservation", pa.string()),
        ("valid_from", pa.timestamp("us")),
        ("kind", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("business_name", pa.string()),
        ("org_number", pa.string()),
        ("street", pa.string()),
        ("postcode", pa.string()),
        ("city", pa.string()),
        ("marketing_reserved", pa.bool_()),
        ("birth_date", pa.date32()),
        ("dated_by_file", pa.bool_()),
        ("veiled", pa.int8()),
    ]
)


class Warehouse:
    """A connection to the warehouse file; one writer process at a time."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        if not read_only:  # a reader creates nothing (`ingest status` of a mistyped dir)
            path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            self._con = duckdb.connect(":memory:")
        else:
            try:
                self._con = duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    raise WarehouseBusy(
                        f"{path} is in use by another process (one ingest at a time)"
                    ) from exc
                raise
        if not read_only or not path.exists():
            self._exec(SCHEMA)
            upgrade(self._con)
        self.log = BatchLog(self._con)

    def has_column(self, table: str, column: str) -> bool:
        """Whether a table has the column (one opened read-only may not be upgraded yet)."""
        return has_column(self._con, table, column)

    def _exec(self, sql: str, params: object = None) -> None:
        run(self._con, sql, params)

    def _one(self, sql: str, params: object = None) -> tuple[Any, ...] | None:
        return first_row(self._con, sql, params)

    def close(self) -> None:
        """Close the connection (checkpointing the write-ahead log)."""
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a failure or a kill inside leaves no trace."""
        self._exec("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._exec("ROLLBACK")
            raise
        self._exec("COMMIT")

    def operator_size(self, operator: str) -> int:
        """How many numbers an operator currently delivers."""
        row = self._one("SELECT count(*) FROM records WHERE operator = ?", [operator])
        return 0 if row is None else int(row[0])

    def reservations_newer(self, operator: str, reservations: Sequence[Record]) -> list[Record]:
        """Those of these reservations dated after the operator's record of their number
        (one it lists or hides the address of: not one reserved already)."""
        if not reservations:
            return []
        stored = {
            number: (valid_from, reservation)
            for number, valid_from, reservation in self._con.execute(
                "SELECT number, valid_from, reservation FROM records WHERE operator = ? "
                "AND number IN (SELECT unnest(?::VARCHAR[]))",
                [operator, [r.number for r in reservations]],
            ).fetchall()
        }
        return [
            r
            for r in reservations
            if r.number in stored
            and stored[r.number][1] != Reservation.RESERVED
            and r.valid_from > stored[r.number][0]
        ]

    def known_numbers(self, operator: str, numbers: Sequence[str]) -> set[str]:
        """Which of these numbers the operator delivered before."""
        if not numbers:
            return set()
        self._con.register("_probe", pa.table({"number": pa.array(numbers, pa.string())}))
        try:
            rows = self._con.execute(
                "SELECT r.number FROM records r JOIN _probe p USING (number) WHERE r.operator = ?",
                [operator],
            ).fetchall()
        finally:
            self._con.unregister("_probe")
        return {row[0] for row in rows}

    def withdrew_since(self, batch_id: int) -> bool:
        """Whether batches after `batch_id` reserved a number or hid an address."""
        row = self._one(
            "SELECT (SELECT count(*) FROM changes c JOIN records r "
            "ON r.operator = c.operator AND r.number = c.number "
            "WHERE c.batch_id > $batch AND r.reservation <> 'listed') "
            "+ (SELECT count(*) FROM withdrawals WHERE batch_id > $batch)",
            {"batch": batch_id},
        )
        return bool(row and row[0])

    def apply(
        self, batch: Batch, kind: FileKind, records: Sequence[Record], keep: Sequence[str]
    ) -> None:
        """Apply a file's records for its operator and log what changed.

        `keep` lists numbers whose rows were rejected: a full file does not
        remove them (an operator's typo must not unlist a subscriber).
        """
        operator = batch.operator
        upserts = [r for r in records if r.action is Action.UPSERT]
        deletes = [r.number for r in records if r.action is Action.DELETE]
        staged = _records_table(upserts)
        try:
            self._con.register("_staged", staged)
            stale = self._stale(operator, batch.produced_at, batch.file)
            if stale:
                # Kept as they are, and not removed by a full file either.
                kept = pa.array(list(stale))
                staged = staged.filter(pc.invert(pc.is_in(staged["number"], kept)))
                self._con.register("_staged", staged)
                keep = [*keep, *sorted(stale)]
                _note_stale(batch, stale)
            self._con.register("_staged", veil_staged(self._con, staged, operator))
            self._con.register("_keep", pa.table({"number": pa.array(keep, pa.string())}))
            self._con.register("_deletes", pa.table({"number": pa.array(deletes, pa.string())}))
            if kind is FileKind.FULL:
                gone = (
                    "SELECT number FROM records WHERE operator = $op "
                    "AND number NOT IN (SELECT number FROM _staged) "
                    "AND number NOT IN (SELECT number FROM _keep)"
                )
            else:
                gone = (
                    "SELECT number FROM records WHERE operator = $op "
                    "AND number IN (SELECT number FROM _deletes)"
                )
            changed = " OR ".join(f"r.{c} IS DISTINCT FROM s.{c}" for c in _CONTENT)
            params = {"op": operator, "batch": batch.id}
            # A record of the operator's (`r`) whose statement is not among its withdrawals.
            said = _SAID_BEFORE.format(
                number="r.number", rank=privacy_rank_sql("r.reservation"), valid_from="r.valid_from"
            )
            unsaid = f"NOT EXISTS ({said})"
            steps = (
                f"""INSERT INTO changes
                SELECT $batch, $op, s.number,
                       CASE WHEN r.number IS NULL THEN 'added' ELSE 'updated' END
                FROM _staged s LEFT JOIN records r ON r.operator = $op AND r.number = s.number
                WHERE r.number IS NULL OR {changed}""",
                f"INSERT INTO changes SELECT $batch, $op, number, 'removed' FROM ({gone})",
                f"""INSERT INTO withdrawals
                    (number, operator, reservation, valid_from, batch_id, dated_by_file)
                SELECT number, $op, reservation, valid_from, $batch, dated_by_file FROM records r
                WHERE operator = $op AND reservation <> 'listed' AND number IN ({gone})
                AND {unsaid}""",
                # A flag the operator dated, replaced by a stricter record dated before it
                # or by a broken row's (dated by its file): its statement stays, to veil
                # what it veiled (an older export's reservation must not bare an address
                # the operator hid later, once the export's listing or a port outranks it).
                f"""INSERT INTO withdrawals
                    (number, operator, reservation, valid_from, batch_id, dated_by_file)
                SELECT r.number, $op, r.reservation, r.valid_from, $batch, false
                FROM records r JOIN _staged s ON s.number = r.number
                WHERE r.operator = $op AND r.reservation <> 'listed'
                AND r.dated_by_file IS NOT true
                AND {privacy_rank_sql("s.reservation")} > {privacy_rank_sql("r.reservation")}
                AND (s.dated_by_file OR s.valid_from < r.valid_from)
                AND {unsaid}""",
                f"""DELETE FROM records WHERE operator = $op AND (
                    number IN (SELECT number FROM _staged) OR number IN ({gone}))""",
                # The operator listing the number again says what holds now: its own
                # earlier withdrawal of it is over (a subscriber who lifted a reservation).
                # Only a listing: a reservation or hidden address staged (from a held file,
                # an old file sent again, a broken row) may be dated before the withdrawal,
                # which must go on veiling the records dated between the two. Nor a listing
                # dated before a withdrawal the operator dated: an old export sent again.
                """DELETE FROM withdrawals w WHERE operator = $op AND EXISTS (
                    SELECT 1 FROM _staged s WHERE s.number = w.number
                    AND s.reservation = 'listed'
                    AND (w.dated_by_file OR s.valid_from >= w.valid_from))""",
                # A broken row's, dated by its file, says when the service learnt of it, not
                # from when it held: the operator's next whole row of the number says more,
                # a hidden address as much as a listing. Not another operator's: it may be
                # one that lost the number long before and still delivers it.
                """DELETE FROM withdrawals w WHERE operator = $op AND w.dated_by_file
                AND EXISTS (
                    SELECT 1 FROM _staged s WHERE s.number = w.number
                    AND NOT s.dated_by_file)""",
                f"""INSERT INTO records (operator, number, {", ".join(_CONTENT)}, batch_id)
                SELECT $op, number, {", ".join(_CONTENT)}, $batch FROM _staged""",
            )
            applied = (
                f"SELECT number FROM _staged UNION SELECT number FROM _keep UNION {FILES_NUMBERS}"
            )
            for step in (*steps, WITHHOLD_REJECTS.format(touched=applied)):
                self._exec(step, {k: v for k, v in params.items() if f"${k}" in step})
            veil(self._con)
            counts = self._con.execute(
                "SELECT change, count(*) FROM changes WHERE batch_id = ? GROUP BY change",
                [batch.id],
            ).fetchall()
        finally:
            for name in ("_staged", "_keep", "_deletes"):
                with suppress(duckdb.Error):
                    self._con.unregister(name)
        # Deletes of numbers the operator does not have change nothing; said, not dropped.
        idle = len(set(deletes)) - int(dict(counts).get("removed", 0))
        if idle > 0:
            note = f"{idle} delete(s) of numbers {operator} does not list changed nothing"
            batch.detail = f"{batch.detail}; {note}" if batch.detail else note
        self._count_changes(batch, counts)

    def _stale(
        self, operator: str | None, produced_at: datetime | None, file: str
    ) -> dict[str, str]:
        """Numbers whose reserved or address-hidden record of this operator the staged record
        would replace with one saying no more, and why it must not: the operator dated the
        flag after the staged record (`dated`), or the staged record is a broken row's,
        dated only by its file (`broken`): an old export sent again must not lift a flag;
        or a held file stamped after this one (`produced_at`), or another with it, wrote the
        flag (`held`): a full file forced alone, before the delta held on top of it, must
        not bare what that delta reserved, whatever the dates; nor a file of the same moment
        what its held twin reserved (the file's own held run is not one: forced, it goes in).

        A flag dated by its file (a broken row's) yields to any later whole row: its date
        is when the service learnt of it, and the operator's rows keep their own dates.
        """
        rows = self._con.execute(
            f"""WITH held AS (
                SELECT id FROM batches
                WHERE operator = $op AND status = 'held'
                AND (produced_at > $at OR (produced_at = $at AND file <> $file))
            )
            SELECT s.number, CASE
                WHEN h.id IS NOT NULL THEN 'held'
                WHEN s.dated_by_file THEN 'broken' ELSE 'dated' END
            FROM _staged s JOIN records r ON r.operator = $op AND r.number = s.number
            LEFT JOIN held h ON h.id = r.batch_id
            WHERE r.reservation <> 'listed'
            AND {privacy_rank_sql("s.reservation")} <= {privacy_rank_sql("r.reservation")}
            AND (
                h.id IS NOT NULL
                OR (r.dated_by_file IS NOT true
                    AND (s.dated_by_file OR s.valid_from < r.valid_from))
            )""",
            {"op": operator, "at": produced_at, "file": file},
        ).fetchall()
        return {str(number): str(why) for number, why in rows}

    def hide_addresses(self, batch: Batch, hidden: Mapping[str, datetime | None]) -> None:
        """Hide the address of these listed numbers of the batch's operator; nothing else
        changes. A wish dated after the number's record (the row's date, when it can be
        trusted) is also kept as a withdrawal of that date.

        For a file held back, and for rows rejected for something else: their wish to
        hide the address is honoured at once, but nothing else they say is added (no
        new name, no new number). Kept as the operator dated it, an older export sent
        again cannot bare the address with a listing dated between the two.
        """
        self._con.register(
            "_hide",
            pa.table(
                {
                    "number": pa.array(list(hidden), pa.string()),
                    "valid_from": pa.array(list(hidden.values()), pa.timestamp("us")),
                }
            ),
        )
        try:
            params = {"op": batch.operator, "batch": batch.id}
            mine = "r.operator = $op AND r.number = h.number"
            steps = (
                f"""INSERT INTO changes SELECT $batch, $op, r.number, 'updated'
                FROM records r JOIN _hide h ON {mine} WHERE r.reservation = 'listed'""",
                # The record keeps its date: dated on, it could outrank another operator's
                # reservation, and a file held back must only take data away.
                f"""UPDATE records r SET reservation = 'address_hidden', {_NO_ADDRESS},
                    batch_id = $batch
                FROM _hide h WHERE {mine} AND r.reservation = 'listed'""",
                # The wish, dated after the record, outlives it as a withdrawal: an older
                # export's listing dated between the two must not bare the address (a
                # listing dated after it ends it, as any withdrawal).
                f"""INSERT INTO withdrawals
                    (number, operator, reservation, valid_from, batch_id, dated_by_file)
                SELECT r.number, $op, 'address_hidden', h.valid_from, $batch, false
                FROM records r JOIN _hide h ON {mine}
                WHERE h.valid_from IS NOT NULL
                AND (h.valid_from > r.valid_from OR r.dated_by_file) AND NOT EXISTS ({
                    _SAID_BEFORE.format(
                        number="r.number",
                        rank=PRIVACY_RANK[Reservation.ADDRESS_HIDDEN],
                        valid_from="h.valid_from",
                    )
                })""",
                # A wish for a number the operator has no record of yet (a file held back
                # brings none): kept as the withdrawal alone, it still takes the address
                # from another operator's older record.
                f"""INSERT INTO withdrawals
                    (number, operator, reservation, valid_from, batch_id, dated_by_file)
                SELECT h.number, $op, 'address_hidden', h.valid_from, $batch, false
                FROM _hide h
                WHERE h.valid_from IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM records r WHERE r.operator = $op AND r.number = h.number)
                AND NOT EXISTS ({
                    _SAID_BEFORE.format(
                        number="h.number",
                        rank=PRIVACY_RANK[Reservation.ADDRESS_HIDDEN],
                        valid_from="h.valid_from",
                    )
                })""",
                # A wish kept only as a withdrawal (its record says more: a reservation
                # dated before it) still hides another operator's address: a change to
                # publish, or the served snapshot would go on showing it.
                """INSERT INTO changes SELECT DISTINCT $batch, $op, w.number, 'updated'
                FROM withdrawals w WHERE w.batch_id = $batch AND w.operator = $op
                AND NOT EXISTS (
                    SELECT 1 FROM changes c WHERE c.batch_id = $batch AND c.number = w.number)""",
            )
            for step in steps:
                self._exec(step, params)
            veil(self._con)
            counts = self._con.execute(
                "SELECT change, count(*) FROM changes WHERE batch_id = ? GROUP BY change",
                [batch.id],
            ).fetchall()
        finally:
            with suppress(duckdb.Error):
                self._con.unregister("_hide")
        self._count_changes(batch, counts)

    def _count_changes(self, batch: Batch, counts: Sequence[tuple[Any, ...]]) -> None:
        tally = dict(counts)
        batch.added = int(tally.get("added", 0))
        batch.updated = int(tally.get("updated", 0))
        batch.removed = int(tally.get("removed", 0))
        self.log.update_counts(batch)

    def last_batch_id(self) -> int:
        """Id of the newest batch that changed a record (0 when none): what to publish up to."""
        row = self._one("SELECT coalesce(max(batch_id), 0) FROM changes")
        return 0 if row is None else int(row[0])

    def listable(self) -> pa.Table:
        """Every number's winning record, reserved ones left out, sorted by number.

        A withdrawal as new as the winner (or newer) veils it as records do on a tie: a
        reservation withdraws it, a hidden address hides its address.
        """
        return self._con.sql(
            f"""
            WITH winners AS (
                -- A record a reservation took the data of still outranks older ones (a
                -- previous subscriber's), but is not served: what it said is gone (its
                -- operator's next delivery of it, unveiled, brings it). On a whole tie
                -- the record that still says something wins.
                SELECT * FROM records
                QUALIFY row_number() OVER (
                    PARTITION BY number ORDER BY {_PRECEDENCE_UNVEILED_FIRST}
                ) = 1
            ),
            veils AS (
                SELECT w.number, max(x.rank) AS rank
                FROM winners w JOIN (
                    SELECT number, valid_from, {PRIVACY_RANK_SQL} AS rank FROM withdrawals
                ) x ON x.number = w.number AND x.valid_from >= w.valid_from
                GROUP BY w.number
            )
            SELECT number, number_type, kind,
                   CASE WHEN v.rank = 1 THEN 'address_hidden' ELSE reservation END AS reservation,
                   first_name, last_name, business_name, org_number,
                   CASE WHEN v.rank IS NULL THEN street END AS street,
                   CASE WHEN v.rank IS NULL THEN postcode END AS postcode,
                   CASE WHEN v.rank IS NULL THEN city END AS city,
                   marketing_reserved, birth_date, valid_from
            FROM winners w LEFT JOIN veils v USING (number)
            WHERE reservation <> 'reserved' AND v.rank IS DISTINCT FROM 2 AND w.veiled < 2
            ORDER BY CAST('47' || number AS BIGINT)
            """
        ).to_arrow_table()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run a read query (for status and tests)."""
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.IGNORECASE):
            raise ValueError("only read queries")
        return self._con.execute(sql, list(params)).fetchall()


def _note_stale(batch: Batch, stale: dict[str, str]) -> None:
    """Say in the batch's detail how many records were kept reserved or address-hidden."""
    counts = Counter(stale.values())
    notes = [
        f"{counts[kind]} record(s) kept reserved or address-hidden {why}"
        for kind, why in (
            (
                "dated",
                "as the operator dated them: the file's record of each says no more, dated before",
            ),
            (
                "broken",
                "as the operator dated them: the file's is a broken row's, dated only by the file",
            ),
            ("held", "as a held later file of the operator says"),
        )
        if counts[kind]
    ]
    batch.detail = "; ".join(filter(None, [batch.detail, *notes]))


def _records_table(records: Sequence[Record]) -> pa.Table:
    columns = {name: [getattr(r, name) for r in records] for name in _RECORD_SCHEMA.names}
    return pa.table(columns, schema=_RECORD_SCHEMA)
