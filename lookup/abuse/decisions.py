"""Compliance's decisions: the append-only, hash-chained audit trail in the compliance
file, and which decisions the key store has carried out.

The rows and the chain's head (`lookup.abuse.audit`) are written in one
transaction, so an edit, insertion or removal made behind the service's back,
the newest row's included, shows in `verify()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import msgspec

from lookup.abuse.audit import DECISIONS, GENESIS, ChainCheck, Decision, check, seal
from lookup.abuse.cases import Case, case_of
from lookup.abuse.detectors import WASHING
from lookup.abuse.events import utc_now
from lookup.abuse.storefile import StoreFile
from lookup.errors import LookupServiceError


class CaseClosed(LookupServiceError):
    """A decision on a case that is already closed."""


class NotCurrentCase(LookupServiceError):
    """A decision on an older case of an account that has a newer one."""

    def __init__(self, case_id: int, account: str, current: int, current_status: str) -> None:
        self.case_id = case_id
        self.current = current
        self.current_status = current_status
        super().__init__(
            f"case {case_id} is not the current case of account {account!r}: case {current} "
            f"({current_status}) is; decide on case {current} (nothing was recorded)"
        )


def _current_case(con: duckdb.DuckDBPyConnection, case_id: int, decision: str) -> Case:
    """The case a decision may be recorded on, or why not (within decide's transaction)."""
    case = case_of(con, case_id)
    if case.status != "open" and decision != "reinstate":
        raise CaseClosed(f"case {case_id} is closed; only 'reinstate' applies to it")
    newest, status = con.execute(
        "SELECT id, status FROM cases WHERE account = ? ORDER BY id DESC LIMIT 1",
        [case.account],
    ).fetchall()[0]
    if newest != case_id:
        # A reinstatement through an old case would set the account active while a
        # newer case's findings wait undecided (and a restart's resume() would pause
        # it again), and the audit trail would file it under the wrong case.
        raise NotCurrentCase(case_id, case.account, int(newest), str(status))
    return case


class Decisions:
    """The `decisions`, `audit_head` and `decisions_carried_out` tables."""

    def __init__(self, file: StoreFile) -> None:
        self._file = file

    def decide(self, case_id: int, decision: str, actor: str, reason: str) -> Decision:
        """Append a decision to the audit trail; clear and reinstate close the case."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        now = utc_now()
        with self._file.transaction() as con:
            # Checked in the transaction: two officers deciding at once must not both
            # close the case, nor one act on a case the monitor has just superseded.
            case = _current_case(con, case_id, decision)
            head = con.execute("SELECT decisions, hash FROM audit_head WHERE id = 1").fetchall()
            # Chained from the head, not the last row: a deleted newest row leaves the
            # next decision's prev_hash pointing at it, for verify() to see.
            count, prev_hash = head[0] if head else (0, GENESIS)
            new_id = int(con.execute("SELECT nextval('decision_ids')").fetchall()[0][0])
            sealed = seal(prev_hash, new_id, case_id, case.account, decision, actor, reason, now)
            con.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                list(msgspec.structs.astuple(sealed)),
            ).fetchall()
            con.execute(
                "INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", [count + 1, sealed.hash]
            ).fetchall()
            if decision in ("clear", "reinstate"):
                # A reinstatement of a closed case leaves the time it was closed.
                con.execute(
                    "UPDATE cases SET status = 'closed', closed_at = ? "
                    "WHERE id = ? AND status = 'open'",
                    [now, case_id],
                ).fetchall()
        return sealed

    def trail(self, *, account: str | None = None, case_id: int | None = None) -> list[Decision]:
        """The audit trail, oldest first, for an account or a case (or all)."""
        rows = self._file.rows(
            "SELECT * FROM decisions WHERE (? IS NULL OR account = ?) "
            "AND (? IS NULL OR case_id = ?) ORDER BY id",
            [account, account, case_id, case_id],
        )
        return [Decision(*row) for row in rows]

    def verify(self, recorded: tuple[int, str] | None = None) -> ChainCheck:
        """Whether the decision chain is intact (no row edited, inserted or removed) and
        passes through a head `recorded` elsewhere earlier, if given (`audit.check`)."""
        with self._file.reading() as con:  # the rows and the head as of one moment
            rows = con.execute("SELECT * FROM decisions ORDER BY id").fetchall()
            head = con.execute("SELECT decisions, hash FROM audit_head WHERE id = 1").fetchall()
        return check([Decision(*row) for row in rows], head[0] if head else None, recorded)

    def pending(self) -> list[Decision]:
        """The newest decision on each account's newest case, when it has one and its status
        was never carried out."""
        rows = self._file.rows(
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
        self._file.rows("INSERT OR IGNORE INTO decisions_carried_out VALUES (?)", [decision_id])

    def cleared_washing(
        self, since: datetime, account: str | None = None
    ) -> dict[str, tuple[datetime, list[dict[str, Any]]]]:
        """Per account (or for one): when compliance last cleared a case holding list-washing
        flags, since `since`, with no warning or suspension on the case, and the flags'
        evidence."""
        rows = self._file.rows(
            """
            WITH cleared AS (
                SELECT case_id, account, max(ts) AS ts FROM decisions
                WHERE decision = 'clear' AND ts >= ? AND (? IS NULL OR account = ?)
                    AND case_id NOT IN (
                        SELECT case_id FROM decisions WHERE decision IN ('warn', 'suspend')
                    )
                GROUP BY ALL
            ),
            flags AS (
                SELECT c.case_id, c.account, c.ts, f.id, f.evidence
                FROM cleared c JOIN findings f ON f.case_id = c.case_id
                WHERE json_extract_string(f.evidence, '$.rule.pattern') = ?
            )
            -- The flags of each account's last cleared case that had any.
            SELECT account, ts, evidence FROM flags
            QUALIFY case_id = arg_max(case_id, ts) OVER (PARTITION BY account)
            ORDER BY id
            """,
            [since, account, account, WASHING],
        )
        cleared: dict[str, tuple[datetime, list[dict[str, Any]]]] = {}
        for name, ts, evidence in rows:
            cleared.setdefault(name, (ts, []))[1].append(msgspec.json.decode(evidence))
        return cleared

    def fresh_starts(self) -> dict[str, datetime]:
        """Per account, when compliance last cleared or reinstated it."""
        rows = self._file.rows(
            "SELECT account, max(ts) FROM decisions "
            "WHERE decision IN ('clear', 'reinstate') GROUP BY account"
        )
        return dict(rows)
