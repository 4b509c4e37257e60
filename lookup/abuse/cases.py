"""Cases and their findings: an account's review, open from its first finding until
compliance clears or reinstates it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal, get_args

import duckdb
import msgspec

from lookup.abuse.detectors import Finding
from lookup.abuse.state import ERASED
from lookup.abuse.storefile import StoreFile
from lookup.errors import LookupServiceError

OpenHold = tuple[int, str, str, str, str, datetime]
"""A finding of an open case that held a block: case id, account, kind, action, the held
block's label, when."""
CaseListing = Literal["open", "closed", "all"]
"""Which cases a list shows: of one status, or all."""
CASE_LISTINGS: Final[tuple[str, ...]] = get_args(CaseListing)
HELD: Final = "SELECT account FROM cases WHERE status = 'open'"
"""The accounts under legal hold: those with an open case."""
Condition = tuple[str, list[Any]]
"""A condition on rows of the compliance file, and its parameters."""


EXPIRED: Final = "expired"
"""How evidence quotes a number once the lookups it came from are past their retention."""
# Evidence quotes a number only as a whole JSON string: a block (`"+4722202000..999"`) is
# no number, and stays, as what a hold held.
_QUOTED_NUMBER: Final = r'"\+47[0-9]+"'
_EXPIRED: Final = f'"{EXPIRED}"'


class CaseNotFound(LookupServiceError):
    """No case with that id."""


class Case(msgspec.Struct, frozen=True):
    """An account's review: open from its first finding until cleared or reinstated."""

    id: int
    account: str
    opened_at: datetime
    status: str
    closed_at: datetime | None = None


def case_of(con: duckdb.DuckDBPyConnection, case_id: int) -> Case:
    """One case, or CaseNotFound (on a connection the caller holds)."""
    rows = con.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchall()
    if not rows:
        raise CaseNotFound(f"no case {case_id}")
    return Case(*rows[0])


class Cases:
    """The `cases` and `findings` tables of the compliance file."""

    def __init__(self, file: StoreFile) -> None:
        self._file = file

    @staticmethod
    def insert(con: duckdb.DuckDBPyConnection, finding: Finding, enforced: bool) -> int:
        """Store a finding in the account's open case, opening one, within the caller's
        transaction; returns the case id."""
        rows = con.execute(
            "SELECT id FROM cases WHERE account = ? AND status = 'open'", [finding.account]
        ).fetchall()
        if rows:
            case_id = int(rows[0][0])
        else:
            case_id = int(con.execute("SELECT nextval('case_ids')").fetchall()[0][0])
            con.execute(
                "INSERT INTO cases VALUES (?, ?, ?, 'open', NULL)",
                [case_id, finding.account, finding.ts],
            ).fetchall()
        con.execute(
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

    @staticmethod
    def erase(con: duckdb.DuckDBPyConnection, number: str) -> int:
        """Quote a number (E.164) as erased in the evidence of findings, but in those of the
        accounts under legal hold, within the caller's transaction; how many changed."""
        quoted = msgspec.json.encode(number).decode()
        # Evidence quotes a number only as a whole JSON string (a block is `+4722202000..999`).
        return int(
            con.execute(
                "UPDATE findings SET evidence = replace(CAST(evidence AS VARCHAR), ?, ?) "
                f"WHERE strpos(CAST(evidence AS VARCHAR), ?) > 0 AND account NOT IN ({HELD})",
                [quoted, msgspec.json.encode(ERASED).decode(), quoted],
            ).fetchall()[0][0]
        )

    @staticmethod
    def expire(con: duckdb.DuckDBPyConnection, due: Sequence[Condition]) -> int:
        """Quote every number as expired in the evidence of the findings a retention sweep
        says are `due`, as their lookups are (`ComplianceStore.sweep`), within the caller's
        transaction; how many changed. The rule's figures, the blocks it held and the
        decisions stay with the case."""
        changed = 0
        for condition, parameters in due:
            changed += con.execute(
                "UPDATE findings SET evidence = regexp_replace(CAST(evidence AS VARCHAR), "
                f"'{_QUOTED_NUMBER}', '{_EXPIRED}', 'g') WHERE {condition} "
                f"AND regexp_matches(CAST(evidence AS VARCHAR), '{_QUOTED_NUMBER}')",
                parameters,
            ).fetchall()[0][0]
        return int(changed)

    def summaries(
        self, status: str | None = None, *, limit: int | None = None, before: int | None = None
    ) -> list[dict[str, Any]]:
        """Cases with their findings summarized, newest first: at most `limit`, of ids
        below `before`."""
        rows = self._file.rows(
            """
            SELECT c.id, c.account, c.opened_at, c.status, c.closed_at,
                   list(DISTINCT f.kind || ':' || f.action ORDER BY f.kind || ':' || f.action),
                   max(f.ts), count(f.id)
            FROM cases c LEFT JOIN findings f ON f.case_id = c.id
            WHERE (? IS NULL OR c.status = ?) AND (? IS NULL OR c.id < ?)
            GROUP BY ALL ORDER BY c.id DESC LIMIT ?
            """,
            [status, status, before, before, limit],
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

    def get(self, case_id: int) -> Case:
        """One case, or CaseNotFound."""
        with self._file.reading() as con:
            return case_of(con, case_id)

    def findings(self, case_id: int) -> list[dict[str, Any]]:
        """Findings of a case with their evidence, oldest first; `enforced`: whether its
        action was to be taken (not while the account was on `review`)."""
        rows = self._file.rows(
            "SELECT id, kind, action, ts, events_seen, evidence, coalesce(enforced, true) "
            "FROM findings WHERE case_id = ? ORDER BY id",
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
                "enforced": r[6],
            }
            for r in rows
        ]

    def quoting(self, number: str) -> list[int]:
        """Cases whose findings' evidence quotes a number (E.164)."""
        rows = self._file.rows(
            "SELECT DISTINCT case_id FROM findings WHERE strpos(CAST(evidence AS VARCHAR), ?) > 0 "
            "ORDER BY case_id",
            [f'"{number}"'],
        )
        return [int(r[0]) for r in rows]

    def findings_since(
        self, since: datetime
    ) -> list[tuple[str, str, str, datetime, str | None, bool, str | None]]:
        """(account, kind, action, ts, the rule's pattern if it names one, whether it was
        to be acted on, the block it held if it held one) of the findings raised since
        `since`, oldest first."""
        return self._file.rows(
            "SELECT account, kind, action, ts, json_extract_string(evidence, '$.rule.pattern'), "
            "coalesce(enforced, true), json_extract_string(evidence, '$.hold') "
            "FROM findings WHERE ts >= ? ORDER BY ts, id",
            [since],
        )

    def open_holds(self) -> list[OpenHold]:
        """(case id, account, kind, action, held block, when) of each finding of an open
        case that held a block and was to be acted on, oldest first."""
        return self._file.rows(
            """
            SELECT c.id, c.account, f.kind, f.action, json_extract_string(f.evidence, '$.hold'),
                f.ts
            FROM cases c JOIN findings f ON f.case_id = c.id
            WHERE c.status = 'open' AND f.enforced
                AND json_extract_string(f.evidence, '$.hold') IS NOT NULL
            ORDER BY c.id, f.id
            """
        )

    def open_actions(self) -> list[tuple[int, str, str, str]]:
        """(case id, account, kind, action) of each open case's most severe throttle or
        suspend finding that was to be acted on, oldest case first."""
        return self._file.rows(
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
