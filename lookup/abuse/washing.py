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

    def count(self, days: deque[Day], t: float, *, new: bool, hit: bool) -> Day | None:
        """Count one lookup at `t` into its day (kept for `washing_span_days`); the day."""
        index = int(t // DAY_SECONDS)
        day = days[-1] if days else None
        if day is None or day.day < index:
            day = Day(index)
            days.append(day)
            while index - days[0].day >= self.policy.washing_span_days:
                days.popleft()
        elif day.day > index:
            # A late event from another worker counts into its own day, if still kept.
            day = next((kept for kept in reversed(days) if kept.day <= index), None)
            if day is None or day.day != index:
                return None
        day.lookups += 1
        day.new += new
        day.new_hits += new and hit
        return day

    def qualifies(self, day: Day) -> bool:
        """Whether a day brought at least `washing_daily_new` new numbers, and they were
        at least `washing_new_share` of its lookups."""
        policy = self.policy
        return day.new >= policy.washing_daily_new and (
            day.new >= policy.washing_new_share * day.lookups
        )

    def holds(self, days: deque[Day], today: Day) -> list[Day] | None:
        """The qualifying days of the span, when `today` is one of them and they are at least
        `washing_days`."""
        if today.new < self.policy.washing_daily_new or not self.qualifies(today):
            return None
        qualifying = [day for day in days if self.qualifies(day)]
        return qualifying if len(qualifying) >= self.policy.washing_days else None
