"""Block holds: an account's lookups in one allocation block refused pending review.

Evidence of a block scan that is too thin to pause the account (a handful of a
block's numbers within minutes, or a count that reaches only the flag bound)
cannot tell a scan's first minutes from a new customer's first callers. A hold
stops the scan where it stands, in the whole allocation block (a scan of a
mobile block is found in one of its thousands), and costs a customer only its
callers from that block until compliance reviews it. Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from lookup.abuse.events import national_number
from lookup.abuse.policy import allocation_size
from lookup.abuse.state import block_label


class Hold(NamedTuple):
    """One held allocation block: its size and its first number (national)."""

    size: int
    first: int

    @classmethod
    def of(cls, number: int) -> Hold:
        """The allocation block a national number is in."""
        size = allocation_size(number)
        return cls(size, number // size * size)

    @classmethod
    def parse(cls, label: str) -> Hold:
        """The hold a block label names (`+4721279000..999`, as evidence writes it); the
        allocation block holding the labelled block's first number."""
        first, dots, last = label.partition("..")
        if not (dots and first.startswith("+47") and first[3:].isdigit() and last.isdigit()):
            raise ValueError(f"{label!r} is not a block like +4721279000..999")
        return cls.of(int(first[3:]))

    @property
    def label(self) -> str:
        """The block as evidence and problem details name it."""
        return block_label(self.first // self.size, self.size)

    def covers(self, number: int) -> bool:
        """Whether a national number is in the block."""
        return 0 <= number - self.first < self.size


class Swarmed(NamedTuple):
    """A block many new accounts split between them (the swarm rule): refused, until
    `until`, to accounts opened (first used: `Account.opened`) after `opened_after` (naive
    UTC, as events carry time)."""

    hold: Hold
    opened_after: datetime
    until: datetime

    def refuses(self, opened: datetime | None, now: datetime) -> bool:
        """Whether it refuses an account opened at `opened` now (None: one not used yet, or
        whose opening is unknown, is taken for a new one)."""
        return now < self.until and (opened is None or opened > self.opened_after)


def swarmed(
    swarms: Mapping[Hold, Swarmed], number: int, opened: datetime | None, now: datetime
) -> Swarmed | None:
    """The swarm refusing a national number to an account opened at `opened`, if one does
    (`swarms` by block: it is read on every lookup)."""
    swarm = swarms.get(Hold.of(number))
    return swarm if swarm is not None and swarm.refuses(opened, now) else None


def standing(swarms: Iterable[Swarmed], now: datetime) -> list[Swarmed]:
    """The swarms refusing their blocks at `now`, the soonest to end first."""
    return sorted((swarm for swarm in swarms if swarm.until > now), key=attrgetter("until"))


def swarm_in(evidence: Mapping[str, Any]) -> Swarmed | None:
    """The swarmed block a finding's evidence names, if it names one."""
    figures = evidence.get("swarmed")
    if not isinstance(figures, Mapping):
        return None
    return Swarmed(
        Hold.parse(evidence["block"]),
        datetime.fromisoformat(figures["accounts_opened_after"]),
        datetime.fromisoformat(figures["until"]),
    )


def held(holds: Collection[Hold], number: int) -> Hold | None:
    """The hold covering a national number, if one does (`holds` a set: it is read on
    every lookup)."""
    hold = Hold.of(number)
    return hold if hold in holds else None


def hold_in(evidence: Mapping[str, Any]) -> Hold | None:
    """The block a finding holds, if its evidence names one."""
    label = evidence.get("hold")
    return Hold.parse(label) if isinstance(label, str) else None


def _enforced_holds(findings: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Hold, datetime]]:
    """Each block a case's findings held, with when (enforced ones only: an account on
    `review` is only flagged)."""
    for finding in findings:
        if finding["enforced"] and (hold := hold_in(finding["evidence"])) is not None:
            yield hold, finding["ts"]


def holds_of(findings: Iterable[Mapping[str, Any]]) -> set[Hold]:
    """The blocks a case's findings held (enforced ones)."""
    return {hold for hold, _ in _enforced_holds(findings)}


def mark_held(
    timeline: Iterable[dict[str, Any]],
    findings: Iterable[Mapping[str, Any]],
    released: datetime | None = None,
) -> None:
    """Tell (`held`) the lookups of a case's timeline logged before the log recorded which
    were refused in a held block (`held` null): each made in a block one of its findings
    held (one `enforced`: an account on `review` is only flagged), after that finding and
    before the hold was `released`. Servers follow a hold within
    `LOOKUP_KEY_REFRESH_SECONDS`, so the first of those may still have been answered; the
    lookups logged since say what was answered."""
    holds = list(_enforced_holds(findings))
    for item in timeline:
        if item["held"] is not None:
            continue
        number = national_number(item["number"])
        item["held"] = (
            number is not None
            and item["endpoint"] == "numbers"
            and (released is None or item["ts"] < released)
            and any(hold.covers(number) and item["ts"] > at for hold, at in holds)
        )
