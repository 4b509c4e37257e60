"""The list-washing rule: new numbers day after day, hitting as a customer's callers do.

Pure. Washing a bought list passes every scan rule: real numbers, mostly listed,
scattered over the plan, at a customer's pace. What tells it apart is that they
are new: a customer's callers and list refreshes come back to the numbers it
has, so after its first day most of its lookups are repeats; a list washer's
never are. A big customer with a huge base can look the same, so the rule only
flags, for compliance to ask.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

from lookup.abuse.policy import Policy

DAY_SECONDS = 86400


@dataclass(slots=True)
class Day:
    """An account's lookups of numbers on one UTC day."""

    day: int
    """Days since 1970."""
    lookups: int = 0
    new: int = 0
    """Lookups of numbers the account had not looked up within `known_seconds`."""
    new_hits: int = 0


class Washing:
    """The list-washing rule over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def count(self, days: deque[Day], t: float, *, new: bool, hit: bool) -> bool:
        """Count one lookup at `t` into its day (days are kept in order, the newest and the
        `washing_span_days` before it); whether it began a new newest day, which finishes
        the days before it."""
        index = int(t // DAY_SECONDS)
        newest = days[-1] if days else None
        began = newest is None or newest.day < index
        if began:
            day = Day(index)
            days.append(day)
            while index - days[0].day > self.policy.washing_span_days:
                days.popleft()
        elif newest is not None and newest.day == index:
            day = newest
        else:
            # A late event from another worker counts into its own day, while it is kept.
            if days[-1].day - index > self.policy.washing_span_days:
                return False
            found = next((kept for kept in days if kept.day >= index), None)
            if found is None or found.day != index:
                day = Day(index)
                days.insert(days.index(found) if found is not None else len(days), day)
            else:
                day = found
        day.lookups += 1
        day.new += new
        day.new_hits += new and hit
        return began

    def qualifies(self, day: Day) -> bool:
        """Whether a day brought at least `washing_daily_new` new numbers, and they were
        at least `washing_new_share` of its lookups."""
        policy = self.policy
        return day.new >= policy.washing_daily_new and (
            day.new >= policy.washing_new_share * day.lookups
        )

    def holds(self, days: deque[Day]) -> list[Day] | None:
        """The finished days (all but the newest) that qualify, when they are at least
        `washing_days`: a day is judged on all its lookups, not on its first hours (a
        customer's nightly import of sign-ups is all new until its callers ring)."""
        qualifying = [day for day in islice(days, len(days) - 1) if self.qualifies(day)]
        return qualifying if len(qualifying) >= self.policy.washing_days else None
