"""The ingest log in the warehouse: each operator file's batch, its rejected rows, and
what was published.

What the pipeline asks of files seen before (a repeat, a stale one, a twin of the same
moment, a held full file under a delta) is answered here; the operator records
themselves are `Warehouse`'s. Both share one connection, so one transaction holds a
file's batch and its records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import duckdb
import msgspec
import pyarrow as pa

from lookup.errors import RejectReason
from lookup.ingest.duck import first_row, run
from lookup.ingest.files import OperatorFileName
from lookup.ingest.records import Rejected
from lookup.ingest.rules import PRECEDENCE_SQL

WITHHOLD_REJECTS: Final = (
    """
UPDATE rejects SET
    raw = '[reserved row withheld; number ' || s.number || ']',
    detail = 'withheld: the number is reserved now'
FROM (
    WITH winners AS (
        SELECT number, reservation, valid_from FROM records WHERE number IN ({touched})
        QUALIFY row_number() OVER (PARTITION BY number ORDER BY """
    + PRECEDENCE_SQL
    + """) = 1
    )
    SELECT number FROM winners WHERE reservation = 'reserved'
    UNION
    SELECT w.number FROM withdrawals w LEFT JOIN winners x ON x.number = w.number
    WHERE w.reservation = 'reserved' AND (x.number IS NULL OR w.valid_from >= x.valid_from)
    AND w.number IN ({touched})
) s
WHERE rejects.number = s.number
  AND rejects.detail <> 'withheld: the number is reserved now'
"""
)
"""A reserved subscriber keeps no data with the service beyond the reservation: the raw
text of their rejected rows (a name, an address, a birth date), earlier ones and the file's
own, goes too; so when the file's reservation was kept out as older than one the operator
dated, or a rejected row names a number reserved before. Reserved as the snapshot sees it:
its winning record, or a reservation's withdrawal veiling it (ported away, the reservation
stays as that statement); not a record another operator's newer listing outranks. For the
numbers the query `touched` gives."""
FILES_NUMBERS: Final = "SELECT number FROM rejects WHERE batch_id = $batch"
"""The numbers of a batch's rejected rows."""


class Batch(msgspec.Struct, kw_only=True):
    """One operator file's ingest: what it was and what became of it."""

    file: str
    operator: str | None = None
    kind: str | None = None
    produced_at: datetime | None = None
    digest: str | None = None
    status: str = "applied"
    reason: str | None = None
    detail: str | None = None
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_superseded: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    forced: bool = False
    id: int | None = None


class BatchLog:
    """The batches, rejects and publishes of one warehouse connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def add(self, batch: Batch, rejects: Sequence[Rejected] = ()) -> int:
        """Record a batch and its rejects; returns the batch id."""
        row = first_row(self._con, "SELECT nextval('batch_ids')")
        assert row is not None
        batch.id = int(row[0])
        fields = [name for name in Batch.__struct_fields__ if name != "id"]
        run(
            self._con,
            f"INSERT INTO batches (id, {', '.join(fields)}, ingested_at) "
            f"VALUES (?, {', '.join('?' for _ in fields)}, ?)",
            [batch.id, *(getattr(batch, name) for name in fields), _utc_now()],
        )
        if rejects:
            self._con.register(
                "_rejects",
                pa.table(
                    {
                        "line": [r.line for r in rejects],
                        "reason": [r.reason for r in rejects],
                        "detail": [r.detail for r in rejects],
                        "raw": [r.raw for r in rejects],
                        "applied": [r.record is not None for r in rejects],
                        "number": pa.array([r.number for r in rejects], pa.string()),
                    }
                ),
            )
            run(
                self._con,
                "INSERT INTO rejects (batch_id, file, line, reason, detail, raw, "
                "reservation_applied, number) "
                "SELECT ?, ?, line, reason, detail, raw, applied, number FROM _rejects",
                [batch.id, batch.file],
            )
            self._con.unregister("_rejects")
            # The file's own, for a number reserved before it (a file held back applies
            # nothing, so this is all the withholding it gets).
            run(self._con, WITHHOLD_REJECTS.format(touched=FILES_NUMBERS), {"batch": batch.id})
        return batch.id

    def update_counts(self, batch: Batch) -> None:
        """Store the change counts of an applied batch (and its detail, which notes them)."""
        run(
            self._con,
            "UPDATE batches SET added = ?, updated = ?, removed = ?, detail = ? WHERE id = ?",
            [batch.added, batch.updated, batch.removed, batch.detail, batch.id],
        )

    def erase_rejects(self, number: str) -> int:
        """Blank the text of a number's rejected rows on its subject's request; how many.

        Its directory records stay: they are each operator's delivery, renewed every
        night; a subject leaves the directory by reserving with their operator."""
        row = first_row(
            self._con,
            "UPDATE rejects SET raw = '[erased on request]', detail = 'erased on request' "
            "WHERE number = ? AND raw <> '[erased on request]'",
            [number],
        )
        return int(row[0]) if row else 0

    def repeat_of(self, operator: str, digest: str, produced_at: datetime) -> str | None:
        """Whether this content was applied for the operator before: `same` when it is the
        same file (its timestamp) or the last the operator's data changed by, `older` when
        files of the operator changed its data since; None when it is new.

        In the order batches were applied, not by timestamp: two files may share one. A
        held batch changes data too (its reservations).
        """
        row = first_row(
            self._con,
            """
            SELECT bool_or(b.produced_at = ?), max(b.id) FROM batches b
            WHERE b.operator = ? AND b.digest = ? AND b.status = 'applied'
            """,
            [produced_at, operator, digest],
        )
        if row is None or row[1] is None:
            return None
        same_file, last_copy = bool(row[0]), int(row[1])
        newer = first_row(
            self._con,
            "SELECT count(*) FROM batches WHERE operator = ? AND id > ? "
            "AND status IN ('applied', 'held')",
            [operator, last_copy],
        )
        return "same" if same_file or not (newer and newer[0]) else "older"

    def last_applied_at(self, operator: str) -> datetime | None:
        """Timestamp of the newest file applied for an operator."""
        row = first_row(
            self._con,
            "SELECT max(produced_at) FROM batches WHERE operator = ? AND status = 'applied'",
            [operator],
        )
        return None if row is None else row[0]

    def held_base(self, name: OperatorFileName) -> str | None:
        """The full file a delta is the change on top of (the operator's newest up to the
        delta's time), when it was held for a bound that `--force` lifts and not applied
        since: its file name."""
        row = first_row(
            self._con,
            """
            SELECT file, status = 'held' AND reason IN (?, ?) FROM batches
            WHERE operator = ? AND kind = 'full' AND produced_at <= ?
                AND status IN ('applied', 'held')
            ORDER BY produced_at DESC, status = 'applied' DESC, id DESC LIMIT 1
            """,
            [
                RejectReason.TOO_MANY_REJECTS,
                RejectReason.SHRINKS_TOO_MUCH,
                name.operator,
                name.produced_at,
            ],
        )
        return str(row[0]) if row is not None and row[1] else None

    def same_stamp(
        self,
        name: OperatorFileName,
        digest: str,
        *,
        after: int = 0,
        rewritten: str | None = None,
    ) -> str | None:
        """Another file (other bytes) of the same operator, kind and timestamp as this one,
        applied before it, in a batch after `after`. A held one is no twin: nothing of it
        was applied but its reservations, which stay (`_stale`), and its correction, sent
        again under its name, must go in. Nor is the file itself, `rewritten` in place
        since it was read (an upload a watcher took at a pause, then finished): two
        copies of one name from two folders are twins, which is newer cannot be told."""
        row = first_row(
            self._con,
            "SELECT file FROM batches WHERE operator = ? AND kind = ? AND produced_at = ? "
            "AND status = 'applied' AND digest IS DISTINCT FROM ? AND id > ? "
            "AND file IS DISTINCT FROM ? ORDER BY id LIMIT 1",
            [name.operator, name.kind, name.produced_at, digest, after, rewritten],
        )
        return str(row[0]) if row is not None else None

    def newest(self) -> int:
        """Id of the newest batch, whatever became of it (0 when none): `last_batch_id` is
        the newest that changed a record."""
        row = first_row(self._con, "SELECT coalesce(max(id), 0) FROM batches")
        return 0 if row is None else int(row[0])

    def delta_applied_at(self, operator: str, produced_at: datetime) -> bool:
        """Whether a delta of the operator stamped `produced_at` was applied (or held, its
        reservations applied), but one held as the change on top of this full file, which
        waits for it."""
        row = first_row(
            self._con,
            "SELECT count(*) FROM batches WHERE operator = ? AND kind = 'delta' "
            "AND produced_at = ? AND status IN ('applied', 'held') "
            "AND reason IS DISTINCT FROM ?",
            [operator, produced_at, RejectReason.AFTER_HELD_FULL],
        )
        return bool(row and row[0])

    def recent(self, limit: int = 20) -> list[Batch]:
        """The newest batches, newest first."""
        fields = Batch.__struct_fields__
        rows = self._con.execute(
            f"SELECT {', '.join(fields)} FROM batches ORDER BY id DESC LIMIT ?", [limit]
        ).fetchall()
        return [Batch(**dict(zip(fields, row, strict=True))) for row in rows]

    def reject_counts(self, batch_id: int) -> dict[str, int]:
        """Rejects of a batch, counted by reason."""
        rows = self._con.execute(
            "SELECT reason, count(*) FROM rejects WHERE batch_id = ? GROUP BY reason ORDER BY 1",
            [batch_id],
        ).fetchall()
        return {str(reason): int(count) for reason, count in rows}

    def record_publish(self, snapshot: str, last_batch: int, listings: int) -> None:
        """Remember what was published."""
        run(
            self._con,
            "INSERT INTO publishes SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ? FROM publishes",
            [snapshot, last_batch, listings, _utc_now()],
        )


def _utc_now() -> datetime:
    """Now in UTC, as the warehouse keeps its own times (DuckDB's `now()::TIMESTAMP` is the
    host's local time)."""
    return datetime.now(UTC).replace(tzinfo=None)
