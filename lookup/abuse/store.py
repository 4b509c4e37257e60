"""The compliance store: one DuckDB file holding the lookup log, the cases and their
findings, and the decisions' audit trail.

Owned by the process that runs the detector. `commit` is where the parts meet:
a batch of lookups, the findings it raised and where the batch ends in its
channel are written all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from lookup.abuse.cases import HELD, Cases, Condition
from lookup.abuse.decisions import Decisions
from lookup.abuse.detectors import Finding
from lookup.abuse.events import LookupEvent, utc_now
from lookup.abuse.lookuplog import LookupLog, log_batch
from lookup.abuse.retention import Sweep
from lookup.abuse.storefile import StoreFile


class Erasure(NamedTuple):
    """What a data subject's erasure request did."""

    at: datetime
    lookups: int
    """Lookups whose number was erased."""
    held_by: list[str]
    """The accounts under legal hold that keep lookups of it."""
    findings: int
    """Findings whose evidence quoted it, now quoting `erased`."""
    hold: list[str]
    """Every account under legal hold then (an open case): their late lookups keep it too."""


class Swept(NamedTuple):
    """What a retention sweep did."""

    lookups: int
    """Lookups deleted."""
    findings: int
    """Findings whose evidence quoted numbers of lookups past their terms, now `expired`."""


def _due(sweep: Sweep) -> list[Condition]:
    """Conditions on rows of an account at a time (`account`, `ts`) that a sweep says are
    due: none of an account with an open case (legal hold)."""
    unheld = f"account NOT IN ({HELD})"
    return [
        (
            f"ts < ? AND {unheld} AND NOT list_contains(?::VARCHAR[], account)",
            [sweep.default_cutoff, sorted(sweep.cutoffs)],
        ),
        *(
            (f"account = ? AND ts < ? AND {unheld}", [account, cutoff])
            for account, cutoff in sorted(sweep.cutoffs.items())
        ),
    ]


class ComplianceStore:
    """The compliance file and its parts: `log`, `cases` and `decisions`."""

    def __init__(self, path: Path) -> None:
        self.file = StoreFile(path)
        self.log = LookupLog(self.file)
        self.cases = Cases(self.file)
        self.decisions = Decisions(self.file)

    def close(self) -> None:
        """Close the file."""
        self.file.close()

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
        # Built before the lock is taken: a big batch's table takes as long as its insert.
        batch = log_batch(events) if events else None
        with self.file.transaction() as con:
            if batch is not None:
                self.log.insert(con, batch)
            case_ids = [
                self.cases.insert(con, finding, act)
                for finding, act in zip(findings, enforced or [True] * len(findings), strict=True)
            ]
            if mark is not None:
                con.execute("INSERT OR REPLACE INTO delivered VALUES (?, ?)", list(mark)).fetchall()
        return case_ids

    def erase(self, number: str, actor: str, reason: str) -> Erasure:
        """A data subject's erasure request (a number, E.164), in one transaction: its
        lookups and the findings quoting it, but those of the accounts under legal hold.
        The request is recorded (who, why, how many) without the number: a hash of one of
        10^8 numbers would keep it."""
        with self.file.transaction() as con:
            at = utc_now()
            hold = [str(r[0]) for r in con.execute(f"{HELD} ORDER BY 1").fetchall()]
            erased, kept, held_by = self.log.erase(con, number, at, hold)
            findings = self.cases.erase(con, number)
            con.execute(
                "INSERT INTO erasures (ts, actor, reason, erased, held, findings) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [at, actor, reason, erased, kept, findings],
            ).fetchall()
        return Erasure(at, erased, held_by, findings, hold)

    def sweep(self, sweep: Sweep) -> Swept:
        """Delete the lookups past their account's terms and quote their numbers as expired
        in the findings of the same time, in one transaction. The legal hold is read in it:
        a case opened meanwhile by the monitor's other thread cannot lose its evidence to a
        stale list."""
        due = _due(sweep)
        with self.file.transaction() as con:
            return Swept(self.log.prune(con, due), self.cases.expire(con, due))

    def record_access(self, actor: str, reason: str) -> datetime:
        """Record that a data subject's records were shown (who, why, when), without the
        number, as an erasure is: the report shows whether the number is reserved, which no
        other path tells, so each one read leaves its reader's name."""
        at = utc_now()
        with self.file.transaction() as con:
            con.execute(
                "INSERT INTO subject_accesses (ts, actor, reason) VALUES (?, ?, ?)",
                [at, actor, reason],
            ).fetchall()
        return at

    def delivered(self, channel: str) -> str | None:
        """How far the batches of an event channel are committed (None: nothing yet)."""
        rows = self.file.rows("SELECT position FROM delivered WHERE channel = ?", [channel])
        return str(rows[0][0]) if rows else None
