"""The compliance store (DuckDB): lookup log, findings, cases and the decision audit trail.

Owned by the process that runs the detector. Decisions are append-only and
hash-chained (`lookup.abuse.audit`): the rows and the chain's head are written
in one transaction, so an edit, insertion or removal made behind the service's
back, the newest row's included, shows in `verify_audit()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import msgspec
import pyarrow as pa

from lookup.abuse.audit import DECISIONS, GENESIS, Decision, intact, seal
from lookup.abuse.detectors import Finding
from lookup.abuse.events import LookupEvent, utc_now
from lookup.abuse.retention import Sweep
from lookup.errors import LookupServiceError

_SCHEMA: Final = """
CREATE SEQUENCE IF NOT EXISTS finding_ids START 1;
CREATE SEQUENCE IF NOT EXISTS case_ids START 1;
CREATE SEQUENCE IF NOT EXISTS decision_ids START 1;
CREATE TABLE IF NOT EXISTS lookup_log (
    ts TIMESTAMP NOT NULL, account VARCHAR NOT NULL, key VARCHAR NOT NULL, ip VARCHAR NOT NULL,
    number VARCHAR NOT NULL, outcome VARCHAR NOT NULL, endpoint VARCHAR NOT NULL
);
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
_LOG_SCHEMA: Final = pa.schema(
    [("ts", pa.timestamp("us"))]
    + [(name, pa.string()) for name in ("account", "key", "ip", "number", "outcome", "endpoint")]
)
"""Columns of `lookup_log`, in the order of `LookupEvent`'s fields."""
TIMELINE_BEFORE: Final = 50
"""Lookups a case's timeline shows up to each finding (as many as its evidence quotes)."""
TIMELINE_AFTER: Final = 10
"""Lookups it shows after each finding (what the account did next)."""
TIMELINE_REACH: Final = timedelta(days=1)
"""How far from a finding a lookup may be to count as near it."""
TIMELINE_MOMENTS: Final = 10
"""Findings a timeline covers at most (the first and the latest): at most 600 rows."""
_TIMELINE_COLUMNS: Final = ("ts", "key", "ip", "number", "outcome", "endpoint")


def _log_batch(events: Sequence[LookupEvent]) -> pa.Table:
    # Typed columns: inferring the types took a third of building the table.
    columns = list(zip(*map(msgspec.structs.astuple, events), strict=True))
    return pa.table(
        [pa.array(columns[0], _LOG_SCHEMA.field(0).type)]
        + [pa.array(column, pa.string()) for column in columns[1:]],
        schema=_LOG_SCHEMA,
    )


class CaseNotFound(LookupServiceError):
    """No case with that id."""


class CaseClosed(LookupServiceError):
    """A decision on a case that is already closed."""


class NotCurrentCase(LookupServiceError):
    """A decision on an older case of an account that has a newer one."""

    def __init__(self, case_id: int, account: str, current: int, current_status: str) -> None:
        self.case_id = case_id
        self.current = current
        self.current_status = current_status
        super().__init__(
            f"case {case_id} is not {account!r}'s current case: case {current} "
            f"({current_status}) is; decide on case {current} (nothing was recorded)"
        )


class Case(msgspec.Struct, frozen=True):
    """An account's review: open from its first finding until cleared or reinstated."""

    id: int
    account: str
    opened_at: datetime
    status: str
    closed_at: datetime | None = None


class ComplianceStore:
    """Thread-safe access to the compliance DuckDB file (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One thread: small batches and small queries, where DuckDB's worker threads only
        # add hand-offs (they cost half again as much CPU per lookup-log insert).
        self._con = duckdb.connect(str(path), config={"threads": 1})
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
        self._con.execute("BEGIN TRANSACTION").fetchall()
        try:
            self._con.execute(schema).fetchall()
            self._con.execute(fill, list(params)).fetchall()
            self._con.execute("COMMIT").fetchall()
        except BaseException:
            self._con.execute("ROLLBACK").fetchall()
            raise

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._con.close()

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def log(self, events: Sequence[LookupEvent]) -> None:
        """Append events to the lookup log in one batch."""
        self.commit(events, [])

    def record(self, finding: Finding) -> int:
        """Store a finding in the account's open case (opening one); returns the case id."""
        return self.commit([], [finding])[0]

    def commit(
        self,
        events: Sequence[LookupEvent],
        findings: Sequence[Finding],
        enforced: Sequence[bool] | None = None,
        mark: tuple[str, str] | None = None,
    ) -> list[int]:
        """Log a batch of events and record the findings they raised, all or nothing;
        returns each finding's case id. `enforced`: per finding, whether its action is
        to be taken (not for an account on `review`); all, if not given.

        One transaction: a monitor that dies part-way leaves neither a logged batch
        whose findings are missing (its warm-up would not raise them again) nor
        findings without their lookups. `mark`: where the batch ends in its channel
        (`delivered`), committed with it, so a restarted monitor skips exactly it.
        """
        if not events and not findings:
            return []
        batch = _log_batch(events) if events else None
        with self._lock:
            self._con.execute("BEGIN TRANSACTION").fetchall()
            try:
                if batch is not None:
                    self._con.from_arrow(batch).insert_into("lookup_log")
                case_ids = [
                    self._record(finding, act)
                    for finding, act in zip(
                        findings, enforced or [True] * len(findings), strict=True
                    )
                ]
                if mark is not None:
                    self._con.execute(
                        "INSERT OR REPLACE INTO delivered VALUES (?, ?)", list(mark)
                    ).fetchall()
                self._con.execute("COMMIT").fetchall()
            except BaseException:
                self._con.execute("ROLLBACK").fetchall()
                raise
        return case_ids

    def _record(self, finding: Finding, enforced: bool) -> int:
        # Within commit's transaction and lock.
        rows = self._con.execute(
            "SELECT id FROM cases WHERE account = ? AND status = 'open'", [finding.account]
        ).fetchall()
        if rows:
            case_id = int(rows[0][0])
        else:
            case_id = int(self._con.execute("SELECT nextval('case_ids')").fetchall()[0][0])
            self._con.execute(
                "INSERT INTO cases VALUES (?, ?, ?, 'open', NULL)",
                [case_id, finding.account, finding.ts],
            ).fetchall()
        self._con.execute(
            "INSERT INTO findings VALUES (nextval('finding_ids'), ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                case_id,
                finding.account,
                finding.kind,
                finding.action,
                finding.ts,
                finding.events_seen,
                msgspec.json.encode(finding.evidence).decode(),
                enforced,
            ],
        ).fetchall()
        return case_id

    def prune(self, sweep: Sweep) -> int:
        """Delete the lookups a retention sweep says are due, but none of an account with an
        open case (legal hold); returns how many went."""
        # The hold is read in the same transaction as the deletes: a case opened meanwhile
        # by the monitor's other thread cannot lose its evidence to a stale list.
        unheld = "account NOT IN (SELECT account FROM cases WHERE status = 'open')"
        deleted = 0
        with self._lock:
            self._con.execute("BEGIN TRANSACTION").fetchall()
            try:
                deleted += self._con.execute(
                    f"DELETE FROM lookup_log WHERE ts < ? AND {unheld} "
                    "AND NOT list_contains(?::VARCHAR[], account)",
                    [sweep.default_cutoff, sorted(sweep.cutoffs)],
                ).fetchall()[0][0]
                for account, cutoff in sorted(sweep.cutoffs.items()):
                    deleted += self._con.execute(
                        f"DELETE FROM lookup_log WHERE account = ? AND ts < ? AND {unheld}",
                        [account, cutoff],
                    ).fetchall()[0][0]
                self._con.execute("COMMIT").fetchall()
            except BaseException:
                self._con.execute("ROLLBACK").fetchall()
                raise
        return int(deleted)

    def lookups_of(self, number: str) -> dict[str, Any]:
        """Customers' lookups of a number (E.164): how many, when, by which accounts."""
        rows = self._rows(
            "SELECT account, count(*), count(*) FILTER (WHERE outcome = 'hit'), min(ts), max(ts) "
            "FROM lookup_log WHERE number = ? AND endpoint = 'numbers' "
            "GROUP BY account ORDER BY 2 DESC, account",
            [number],
        )
        return {
            "total": sum(int(r[1]) for r in rows),
            "first": min((r[3] for r in rows), default=None),
            "last": max((r[4] for r in rows), default=None),
            "by_account": [
                {"account": r[0], "lookups": r[1], "answered": r[2], "first": r[3], "last": r[4]}
                for r in rows
            ],
        }

    def erase_lookups(self, number: str, actor: str, reason: str) -> tuple[int, list[str]]:
        """Anonymise a number (E.164) in the lookup log on its subject's request, except in
        the lookups of accounts with an open case (legal hold); returns how many rows were
        erased and the accounts holding the rest. The request is recorded (who, why, how
        many) without the number: a hash of one of 10^8 numbers would keep it."""
        held_sql = "SELECT account FROM cases WHERE status = 'open'"
        with self._lock:
            self._con.execute("BEGIN TRANSACTION").fetchall()
            try:
                held = [
                    str(r[0])
                    for r in self._con.execute(
                        f"SELECT DISTINCT account FROM lookup_log WHERE number = ? "
                        f"AND account IN ({held_sql}) ORDER BY 1",
                        [number],
                    ).fetchall()
                ]
                kept = self._con.execute(
                    f"SELECT count(*) FROM lookup_log WHERE number = ? AND account IN ({held_sql})",
                    [number],
                ).fetchall()[0][0]
                erased = self._con.execute(
                    f"UPDATE lookup_log SET number = 'erased' WHERE number = ? "
                    f"AND account NOT IN ({held_sql})",
                    [number],
                ).fetchall()[0][0]
                self._con.execute(
                    "INSERT INTO erasures VALUES (?, ?, ?, ?, ?)",
                    [utc_now(), actor, reason, erased, kept],
                ).fetchall()
                self._con.execute("COMMIT").fetchall()
            except BaseException:
                self._con.execute("ROLLBACK").fetchall()
                raise
        return int(erased), held

    def cases_quoting(self, number: str) -> list[int]:
        """Cases whose findings' evidence quotes a number (E.164)."""
        rows = self._rows(
            "SELECT DISTINCT case_id FROM findings WHERE strpos(CAST(evidence AS VARCHAR), ?) > 0 "
            "ORDER BY case_id",
            [f'"{number}"'],
        )
        return [int(r[0]) for r in rows]

    def delivered(self, channel: str) -> str | None:
        """How far the batches of an event channel are committed (None: nothing yet)."""
        rows = self._rows("SELECT position FROM delivered WHERE channel = ?", [channel])
        return str(rows[0][0]) if rows else None

    def findings_since(self, since: datetime) -> list[tuple[str, str, str, datetime, str | None]]:
        """(account, kind, action, ts, the rule's pattern if it names one) of the findings
        raised since `since`, oldest first."""
        return self._rows(
            "SELECT account, kind, action, ts, json_extract_string(evidence, '$.rule.pattern') "
            "FROM findings WHERE ts >= ? ORDER BY ts, id",
            [since],
        )

    def fresh_starts(self) -> dict[str, datetime]:
        """Per account, when compliance last cleared or reinstated it."""
        rows = self._rows(
            "SELECT account, max(ts) FROM decisions "
            "WHERE decision IN ('clear', 'reinstate') GROUP BY account"
        )
        return dict(rows)

    def last_lookups(self, since: datetime, until: datetime) -> list[tuple[str, str, datetime]]:
        """(account, number, last lookup) of the numbers answered between the two times and
        not since, oldest first: the lookups `LookupEvent.looked_up` counts."""
        return self._rows(
            "SELECT account, number, max(ts) AS last FROM lookup_log "
            "WHERE ts >= ? AND outcome <> 'invalid' AND endpoint = 'numbers' "
            "GROUP BY account, number HAVING max(ts) < ? ORDER BY last",
            [since, until],
        )

    def replay(self, since: datetime, into: Callable[[LookupEvent], object]) -> int:
        """Hand the logged lookups from `since` on to `into`, in time order; how many."""
        count = 0
        # On a connection of its own: the compliance API goes on being answered meanwhile
        # (a week's replay takes seconds), and `into` may use the store.
        with self._lock:
            con = self._con.cursor()
        with con:
            relation = con.sql(
                "SELECT ts, account, key, ip, number, outcome, endpoint FROM lookup_log "
                "WHERE ts >= ? ORDER BY ts",
                params=[since],
            )
            for batch in relation.to_arrow_reader(50_000):
                for row in zip(*batch.to_pydict().values(), strict=True):
                    into(
                        LookupEvent(
                            ts=row[0],
                            account=row[1],
                            key=row[2],
                            ip=row[3],
                            number=row[4],
                            outcome=row[5],
                            endpoint=row[6],
                        )
                    )
                    count += 1
        return count

    def pending_decisions(self) -> list[Decision]:
        """The newest decision on each account's newest case, when it has one and its status
        was never carried out."""
        rows = self._rows(
            """
            SELECT * FROM (
                SELECT d.* FROM cases c JOIN decisions d ON d.case_id = c.id
                WHERE c.id IN (SELECT max(id) FROM cases GROUP BY account)
                QUALIFY row_number() OVER (PARTITION BY c.id ORDER BY d.id DESC) = 1
            )
            WHERE id NOT IN (SELECT decision_id FROM decisions_carried_out)
            ORDER BY id
            """
        )
        return [Decision(*row) for row in rows]

    def carried_out(self, decision_id: int) -> None:
        """Note that the key store has the status a decision set."""
        self._rows("INSERT OR IGNORE INTO decisions_carried_out VALUES (?)", [decision_id])

    def open_actions(self) -> list[tuple[int, str, str, str]]:
        """(case id, account, kind, action) of each open case's most severe throttle or
        suspend finding that was to be acted on, oldest case first."""
        return self._rows(
            """
            SELECT c.id, c.account, f.kind, f.action
            FROM cases c JOIN findings f ON f.case_id = c.id
            WHERE c.status = 'open' AND f.enforced AND f.action IN ('suspend', 'throttle')
            QUALIFY row_number() OVER (
                PARTITION BY c.id ORDER BY f.action = 'suspend' DESC, f.id
            ) = 1
            ORDER BY c.id
            """
        )

    def cases(self, status: str | None = None) -> list[dict[str, Any]]:
        """Cases with their findings summarized, newest first."""
        rows = self._rows(
            """
            SELECT c.id, c.account, c.opened_at, c.status, c.closed_at,
                   list(DISTINCT f.kind || ':' || f.action ORDER BY f.kind || ':' || f.action),
                   max(f.ts), count(f.id)
            FROM cases c LEFT JOIN findings f ON f.case_id = c.id
            WHERE ? IS NULL OR c.status = ?
            GROUP BY ALL ORDER BY c.id DESC
            """,
            [status, status],
        )
        return [
            {
                "id": r[0],
                "account": r[1],
                "opened_at": r[2],
                "status": r[3],
                "closed_at": r[4],
                "findings": r[5],
                "last_finding_at": r[6],
                "finding_count": r[7],
            }
            for r in rows
        ]

    def case(self, case_id: int) -> Case:
        """One case, or CaseNotFound."""
        rows = self._rows("SELECT * FROM cases WHERE id = ?", [case_id])
        if not rows:
            raise CaseNotFound(f"no case {case_id}")
        return Case(*rows[0])

    def findings(self, case_id: int) -> list[dict[str, Any]]:
        """Findings of a case with their evidence, oldest first."""
        rows = self._rows(
            "SELECT id, kind, action, ts, events_seen, evidence FROM findings "
            "WHERE case_id = ? ORDER BY id",
            [case_id],
        )
        return [
            {
                "id": r[0],
                "kind": r[1],
                "action": r[2],
                "ts": r[3],
                "events_seen": r[4],
                "evidence": msgspec.json.decode(r[5]),
            }
            for r in rows
        ]

    def timeline(
        self,
        account: str,
        moments: Sequence[datetime],
        *,
        before: int = TIMELINE_BEFORE,
        after: int = TIMELINE_AFTER,
        reach: timedelta = TIMELINE_REACH,
        most: int = TIMELINE_MOMENTS,
    ) -> list[dict[str, Any]]:
        """The account's lookups nearest each moment (traffic data), merged, in time order."""
        chosen = sorted(set(moments))
        if len(chosen) > most:
            # The first opened the case; the latest are what it is about now.
            chosen = chosen[:1] + chosen[len(chosen) - most + 1 :]
        columns = ", ".join(_TIMELINE_COLUMNS)
        # Nearest, not first: a busy account's hour holds thousands of lookups, and the
        # ones that raised a finding are those just before it.
        up_to = (
            f"SELECT rowid, {columns} FROM lookup_log WHERE account = ? "
            "AND ts BETWEEN ? AND ? ORDER BY ts DESC, rowid DESC LIMIT ?"
        )
        next_ = (
            f"SELECT rowid, {columns} FROM lookup_log WHERE account = ? "
            "AND ts > ? AND ts <= ? ORDER BY ts, rowid LIMIT ?"
        )
        rows: dict[int, tuple[Any, ...]] = {}
        with self._lock:  # one read: the rowids that merge overlapping windows hold still
            for moment in chosen:
                for sql, params in (
                    (up_to, [account, moment - reach, moment, before]),
                    (next_, [account, moment, moment + reach, after]),
                ):
                    for row in self._con.execute(sql, params).fetchall():
                        rows[row[0]] = row[1:]
        return [
            dict(zip(_TIMELINE_COLUMNS, rows[rowid], strict=True))
            for rowid in sorted(rows, key=lambda rowid: (rows[rowid][0], rowid))
        ]

    def blocks(self, account: str, since: datetime) -> list[dict[str, Any]]:
        """Number blocks the account looked up since a moment: coverage per block."""
        rows = self._rows(
            """
            SELECT substr(number, 1, 8) AS block, count(DISTINCT number), count(*),
                   count(DISTINCT number) FILTER (WHERE outcome = 'hit'), min(ts), max(ts)
            FROM lookup_log
            WHERE account = ? AND ts >= ? AND outcome <> 'invalid' AND endpoint = 'numbers'
            GROUP BY block ORDER BY 2 DESC LIMIT 20
            """,
            [account, since],
        )
        return [
            {
                "block": f"{r[0]}000..999",
                "distinct": r[1],
                "lookups": r[2],
                "hits": r[3],
                "first": r[4],
                "last": r[5],
            }
            for r in rows
        ]

    def decide(self, case_id: int, decision: str, actor: str, reason: str) -> Decision:
        """Append a decision to the audit trail; clear and reinstate close the case."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        now = utc_now()
        with self._lock:
            self._con.execute("BEGIN TRANSACTION").fetchall()
            try:
                # Checked in the transaction: two officers deciding at once must not both
                # close the case, nor one act on a case the monitor has just superseded.
                case = self._current_case(case_id, decision)
                head = self._con.execute(
                    "SELECT decisions, hash FROM audit_head WHERE id = 1"
                ).fetchall()
                # Chained from the head, not the last row: a deleted newest row leaves the
                # next decision's prev_hash pointing at it, for verify_audit to see.
                count, prev_hash = head[0] if head else (0, GENESIS)
                new_id = int(self._con.execute("SELECT nextval('decision_ids')").fetchall()[0][0])
                sealed = seal(
                    prev_hash, new_id, case_id, case.account, decision, actor, reason, now
                )
                self._con.execute(
                    "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    list(msgspec.structs.astuple(sealed)),
                ).fetchall()
                self._con.execute(
                    "INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", [count + 1, sealed.hash]
                ).fetchall()
                if decision in ("clear", "reinstate"):
                    self._con.execute(
                        "UPDATE cases SET status = 'closed', closed_at = ? WHERE id = ?",
                        [now, case_id],
                    ).fetchall()
                self._con.execute("COMMIT").fetchall()
            except BaseException:
                self._con.execute("ROLLBACK").fetchall()
                raise
        return sealed

    def _current_case(self, case_id: int, decision: str) -> Case:
        """The case a decision may be recorded on, or why not (within decide's transaction)."""
        rows = self._con.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchall()
        if not rows:
            raise CaseNotFound(f"no case {case_id}")
        case = Case(*rows[0])
        if case.status != "open" and decision != "reinstate":
            raise CaseClosed(f"case {case_id} is closed; only 'reinstate' applies to it")
        newest, status = self._con.execute(
            "SELECT id, status FROM cases WHERE account = ? ORDER BY id DESC LIMIT 1",
            [case.account],
        ).fetchall()[0]
        if newest != case_id:
            # A reinstatement through an old case would set the account active while a
            # newer case's findings wait undecided (and a restart's resume() would pause
            # it again), and the audit trail would file it under the wrong case.
            raise NotCurrentCase(case_id, case.account, int(newest), str(status))
        return case

    def decisions(
        self, *, account: str | None = None, case_id: int | None = None
    ) -> list[Decision]:
        """The audit trail, oldest first, for an account or a case (or all)."""
        rows = self._rows(
            "SELECT * FROM decisions WHERE (? IS NULL OR account = ?) "
            "AND (? IS NULL OR case_id = ?) ORDER BY id",
            [account, account, case_id, case_id],
        )
        return [Decision(*row) for row in rows]

    def verify_audit(self) -> bool:
        """Whether the decision chain is intact (no row edited, inserted or removed)."""
        with self._lock:  # the rows and the head as of one moment
            rows = self._con.execute("SELECT * FROM decisions ORDER BY id").fetchall()
            head = self._con.execute(
                "SELECT decisions, hash FROM audit_head WHERE id = 1"
            ).fetchall()
        return intact([Decision(*row) for row in rows], head[0] if head else None)
