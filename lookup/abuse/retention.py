"""How long the lookup log keeps an account's lookups (the customer's traffic data). Pure.

The terms: 18 months by default, 3 to 120 months per customer, deleted within
3 months after the customer relationship ends, and never while a case is open
on the account (legal hold). This module says which lookups are due; the
compliance store deletes them and the monitor runs the sweep.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

import msgspec

from lookup.errors import LookupServiceError

MIN_MONTHS: Final = 3
MAX_MONTHS: Final = 120
AFTER_END: Final = timedelta(days=60)
"""How long an ended account's lookups stay: time to settle a dispute over the last
invoice, and a month inside the terms' three (the sweep runs hourly)."""


class RetentionError(LookupServiceError):
    """A retention period outside the terms' 3 to 120 months."""


def check_months(months: int) -> int:
    """`months`, if the terms allow it as a retention period."""
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise RetentionError(
            f"retention must be {MIN_MONTHS} to {MAX_MONTHS} months (got {months})"
        )
    return months


def months_before(moment: datetime, months: int) -> datetime:
    """The same time of day `months` calendar months earlier (the 31st becomes the
    month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


class AccountTerms(msgspec.Struct, frozen=True):
    """What retention an account's contract sets."""

    name: str
    months: int | None = None
    """Its own retention period; None: the service default."""
    ended_at: datetime | None = None
    """When the customer relationship ended; None: it goes on."""


class Sweep(msgspec.Struct, frozen=True):
    """Which lookups are due for deletion now."""

    default_cutoff: datetime
    """Lookups before this go, for every account not named below."""
    cutoffs: dict[str, datetime]
    """Accounts with a cutoff of their own: their own period, or everything once ended.
    Accounts under legal hold keep everything; the store knows which (it holds the cases)."""


def plan_sweep(now: datetime, default_months: int, accounts: Iterable[AccountTerms]) -> Sweep:
    """The cutoffs of a sweep at `now`."""
    cutoffs: dict[str, datetime] = {}
    for account in accounts:
        if account.ended_at is not None and now >= account.ended_at + AFTER_END:
            # Everything up to now: what it looked up before it ended, all of it.
            cutoffs[account.name] = now
        elif account.months is not None:
            cutoffs[account.name] = months_before(now, account.months)
    return Sweep(months_before(now, default_months), cutoffs)
