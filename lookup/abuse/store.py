"""The compliance store: one DuckDB file holding the lookup log, the cases and their
findings, and the decisions' audit trail.

Owned by the process that runs the detector. `commit` is where the parts meet:
a batch of lookups, the findings it raised and where the batch ends in its
channel are written all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lookup.abuse.cases import Cases
from lookup.abuse.decisions import Decisions
from lookup.abuse.detectors import Finding
from lookup.abuse.events import LookupEvent
from lookup.abuse.lookuplog import LookupLog, log_batch
from lookup.abuse.storefile import StoreFile


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

    def delivered(self, channel: str) -> str | None:
        """How far the batches of an event channel are committed (None: nothing yet)."""
        rows = self.file.rows("SELECT position FROM delivered WHERE channel = ?", [channel])
        return str(rows[0][0]) if rows else None
