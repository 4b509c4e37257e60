"""The compliance DuckDB file: its tables, their migrations, one connection and its lock.

The lookup log, the cases and the decision trail (`lookuplog`, `cases`,
`decisions`) are kept in one file so that a batch of lookups and the findings
it raised commit in one transaction; each reads and writes it through here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb

from lookup.abuse.audit import GENESIS
from lookup.errors import LookupServiceError

_SCHEMA: Final = """
CREATE SEQUENCE IF NOT EXISTS finding_ids START 1;
CREATE SEQUENCE IF NOT EXISTS case_ids START 1;
CREATE SEQUENCE IF NOT EXISTS decision_ids START 1;
CREATE TABLE IF NOT EXISTS lookup_log (
    ts TIMESTAMP NOT NULL, account VARCHAR NOT NULL, key VARCHAR NOT NULL, ip VARCHAR NOT NULL,
    number VARCHAR NOT NULL, outcome VARCHAR NOT NULL, endpoint VARCHAR NOT NULL
);
ALTER TABLE lookup_log ADD COLUMN IF NOT EXISTS held BOOLEAN;
ALTER TABLE lookup_log ADD COLUMN IF NOT EXISTS listings INTEGER;
ALTER TABLE lookup_log ADD COLUMN IF NOT EXISTS full_page BOOLEAN;
CREATE TABLE IF NOT EXISTS cases (
    id BIGINT PRIMARY KEY, account VARCHAR NOT NULL, opened_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL, closed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS findings (
    id BIGINT PRIMARY KEY, case_id BIGINT NOT NULL, account VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, action VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    events_seen BIGINT NOT NULL, evidence JSON NOT NULL
);
ALTER TABLE findings ADD COLUMN IF NOT EXISTS enforced BOOLEAN DEFAULT true;
CREATE TABLE IF NOT EXISTS erasures (
    ts TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    erased BIGINT NOT NULL, held BIGINT NOT NULL
);
ALTER TABLE erasures ADD COLUMN IF NOT EXISTS findings BIGINT DEFAULT 0;
CREATE TABLE IF NOT EXISTS subject_accesses (
    ts TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS late_erasures (
    number VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL, held VARCHAR[] NOT NULL
);
ALTER TABLE late_erasures ADD COLUMN IF NOT EXISTS held VARCHAR[] DEFAULT [];
CREATE TABLE IF NOT EXISTS delivered (
    channel VARCHAR PRIMARY KEY, position VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id BIGINT PRIMARY KEY, case_id BIGINT NOT NULL, account VARCHAR NOT NULL,
    decision VARCHAR NOT NULL, actor VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL, prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL
);
"""
_HEAD_SCHEMA: Final = """
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), decisions BIGINT NOT NULL, hash VARCHAR NOT NULL
)
"""
"""The decision chain's head: its length and last hash, one row."""
_CARRIED_OUT_SCHEMA: Final = """
CREATE TABLE decisions_carried_out (decision_id BIGINT PRIMARY KEY)
"""
"""Decisions whose status the key store was given: a restart carries out the others. Apart
from the append-only chain, which it does not change."""


class StoreInUse(LookupServiceError):
    """The compliance file is locked by another process (one detector owns it)."""


_HOLDER: Final = re.compile(r"Conflicting lock is held in .* \(PID (\d+)\)")


def _in_use(path: Path, said: str) -> str:
    """Why the file cannot be opened, in the service's words when another process holds it
    (DuckDB's names its interpreter and a web page)."""
    holder = _HOLDER.search(said)
    if holder is None:
        return f"cannot open the compliance store {path}: {said}"
    return (
        f"the compliance store {path} is in use by process {holder[1]}: another "
        "`lookup serve` or `lookup abuse consume` of this data dir (one monitor owns it)"
    )


class StoreFile:
    """Thread-safe access to the compliance DuckDB file (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One thread: small batches and small queries, where DuckDB's worker threads only
        # add hand-offs (they cost half again as much CPU per lookup-log insert).
        try:
            self._con = duckdb.connect(str(path), config={"threads": 1})
        except duckdb.IOException as exc:
            raise StoreInUse(_in_use(path, str(exc))) from None
        self._con.execute(_SCHEMA).fetchall()
        # A store from before the head takes its chain as it stands. A head row missing
        # from an existing table is not re-created from the rows it guards, or deleting
        # both would pass as intact.
        self._add_table(
            "audit_head",
            _HEAD_SCHEMA,
            "INSERT INTO audit_head SELECT 1, count(*), coalesce(arg_max(hash, id), ?) "
            "FROM decisions",
            [GENESIS],
        )
        # A store from before the table carried out its decisions as they were made.
        self._add_table(
            "decisions_carried_out",
            _CARRIED_OUT_SCHEMA,
            "INSERT INTO decisions_carried_out SELECT id FROM decisions",
        )
        self._lock = threading.Lock()

    def _add_table(self, name: str, schema: str, fill: str, params: Sequence[object] = ()) -> None:
        """Create a table added after stores were first written, filled from what they hold,
        in one transaction; only when it is new."""
        exists = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0]
        if exists:
            return
        with self._transaction(self._con):
            self._con.execute(schema).fetchall()
            self._con.execute(fill, list(params)).fetchall()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._con.close()

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement."""
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, for several reads that must see the file as of one moment."""
        with self._lock:
            yield self._con

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, within a transaction: committed when the block ends, rolled back
        if it raises."""
        with self._lock, self._transaction(self._con):
            yield self._con

    @staticmethod
    @contextmanager
    def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            yield
            con.execute("COMMIT").fetchall()
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the file, for a long read that must not hold the lock."""
        with self._lock:
            return self._con.cursor()
