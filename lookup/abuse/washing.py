"""The list-washing rule: new numbers day after day, hitting as a customer's callers do.

Pure. Washing a bought list passes every scan rule: real numbers, mostly listed,
scattered over the plan, at a customer's pace. What tells it apart is that they
are new: a customer's callers and list refreshes come back to the numbers it
has, so after its first day most of its lookups are repeats; a list washer's
never are. A big customer with a huge base can look the same, so the rule only
flags, for compliance to ask.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

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


class Clearance(NamedTuple):
    """List-washing flags compliance cleared: the busiest day that counted towards them,
    and until when (seconds since 1970) the bar it raises holds."""

    busiest: int
    until: float


class Washing:
    """The list-washing rule over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def count(self, days: deque[Day], t: float, *, new: bool, hit: bool) -> bool:
        """Count one lookup at `t` into its day (days are kept in order, the newest and the
        `washing_span_days` before it); whether it began a new newest day, which finishes
        the days before it."""
        index = int(t // DAY_SECONDS)
        span = self.policy.washing_span_days
        began = not days or days[-1].day < index
        if began:
            days.append(Day(index))
            while index - days[0].day > span:
                days.popleft()
        elif days[-1].day - index > span:
            return False  # a late event from another worker, older than the days kept
        day = days[-1]
        if day.day != index:
            # A late event counts into its own day, inserted in order if new.
            position = next((p for p in range(len(days) - 1, -1, -1) if days[p].day <= index), -1)
            if position < 0 or days[position].day != index:
                position += 1
                days.insert(position, Day(index))
            day = days[position]
        day.lookups += 1
        day.new += new
        day.new_hits += new and hit
        return began

    @staticmethod
    def holding(day: int, cleared: Clearance | None) -> Clearance | None:
        """The clearance, if it still holds on a day (days since 1970)."""
        return cleared if cleared is not None and day * DAY_SECONDS < cleared.until else None

    def bar(self, day: int, cleared: Clearance | None) -> int:
        """New numbers a day needs to count: `washing_daily_new`, or while a clearance
        holds, more than `washing_cleared_factor` times its busiest day."""
        policy = self.policy
        held = self.holding(day, cleared)
        if held is None:
            return policy.washing_daily_new
        raised = math.floor(policy.washing_cleared_factor * held.busiest) + 1
        return max(policy.washing_daily_new, raised)

    def qualifies(self, day: Day, bar: int) -> bool:
        """Whether a day brought at least `bar` new numbers, and they were at least
        `washing_new_share` of its lookups."""
        return day.new >= bar and day.new >= self.policy.washing_new_share * day.lookups

    def holds(self, days: deque[Day], cleared: Clearance | None = None) -> bool:
        """Whether at least `washing_days` of the finished days (all but the newest)
        qualify: a day is judged on all its lookups, not on its first hours (a customer's
        nightly import of sign-ups is all new until its callers ring)."""
        bar = self.bar(days[-1].day, cleared)
        qualifying = sum(self.qualifies(day, bar) for day in islice(days, len(days) - 1))
        return qualifying >= self.policy.washing_days

    def clearance(self, flags: Sequence[dict[str, Any]], cleared_at: float) -> Clearance | None:
        """What clearing list-washing flags (their evidence) at `cleared_at` allows: their
        busiest day among those that counted by the figures each flag quotes (a busy day
        of mostly repeats in the same week did not), for `washing_cleared_days`."""
        counted = [
            day["new"]
            for flag in flags
            for day in flag["days"]
            if day["new"] >= flag["rule"]["daily_new_at_least"]
            and day["new"] >= flag["rule"]["new_share_at_least"] * day["lookups"]
        ]
        if not counted:
            return None
        return Clearance(max(counted), cleared_at + self.policy.washing_cleared_days * DAY_SECONDS)
