"""Rate-limit plans: strings in the `limits` notation, read and checked. Pure.

A plan is one or more limits separated by `;`, each like `20/second` or
`1000/5 minutes` (`"20/second;600/minute;20000/day"`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from limits import RateLimitItem, parse_many

from lookup.errors import LookupServiceError

_ZERO_WINDOW: Final = re.compile(r"(?:/|\bper\b)\s*0+\s*[a-z]", re.IGNORECASE)
"""A window of no seconds (`2/0 seconds`), which `limits` reads as one."""
_NEGATIVE: Final = re.compile(r"(?:^|[;,|])\s*-\s*\d")
"""A limit whose amount has a minus sign (`-1/second`)."""
MAX_WINDOW: Final = 366 * 86400
"""The longest window a plan may have: a year (`limits` reads any number of seconds)."""
MAX_AMOUNT: Final = 999_999_999_999_999
"""The most requests a limit may allow: the largest integer a structured header field holds
(`RateLimit-Policy` names each limit's quota; a parser refuses a header with more digits)."""


DEFAULT_SEARCH_PLAN: Final = "2000/hour;10000/day"
"""`LOOKUP_PLAN_SEARCH`'s default (the search-harvest floors were set for it)."""


class PlanError(LookupServiceError):
    """A plan string that cannot be used as given."""


@lru_cache(maxsize=256)
def parse_plan(plan: str, divide_by: int = 1, unit: str = "request") -> tuple[RateLimitItem, ...]:
    """The limits of a plan string, each divided by `divide_by` (cached: plans repeat
    across requests); `unit`: what it counts, as its errors name it (a search plan counts
    listings)."""
    if any(not char.isprintable() for char in plan):
        raise PlanError(f"plan {plan!r} has a control character")
    if _NEGATIVE.search(plan):
        # `limits` cannot read a sign at all: said as what is wrong with it.
        raise PlanError(f"plan {plan!r} must allow at least 1 {unit} in each limit")
    try:
        items = parse_many(plan)
    except ValueError:
        raise PlanError(
            f"cannot read plan {plan!r}: limits are separated by ';', each like "
            "'20/second' or '1000/5 minutes'"
        ) from None
    if not items or any(item.amount < 1 for item in items):
        # 0/second would refuse every request with a Retry-After that never comes true.
        raise PlanError(f"plan {plan!r} must allow at least 1 {unit} in each limit")
    if any(item.amount > MAX_AMOUNT for item in items):
        raise PlanError(
            f"plan {plan!r}: each limit allows at most {MAX_AMOUNT:,} {unit}s "
            "(the most a RateLimit-Policy header can name)"
        )
    if _ZERO_WINDOW.search(plan) or any(not 1 <= item.get_expiry() <= MAX_WINDOW for item in items):
        # `limits` reads "2/0 seconds" as 2/second, and a window of 10^20 s overflows Redis.
        raise PlanError(f"plan {plan!r}: each limit's window must be 1 second to 366 days")
    windows = [item.get_expiry() for item in items]
    twice = next((window for window in windows if windows.count(window) > 1), None)
    if twice is not None:
        # Two limits of one window share its counter: each request would count twice.
        raise PlanError(
            f"plan {plan!r} gives the window of {twice} second(s) two limits: "
            "give each window one limit"
        )
    if divide_by == 1:
        return tuple(items)
    return tuple(
        type(item)(max(1, item.amount // divide_by), item.multiples, item.namespace)
        for item in items
    )


def allowance(plan: str, seconds: float) -> int:
    """What a plan lets through within `seconds` at its sustained rate (each limit's amount
    once per whole window of it that fits, at least once; fixed windows let a burst across
    two of them take up to twice that): a measure for comparing two plans."""
    return min(item.amount * max(1, int(seconds // item.get_expiry())) for item in parse_plan(plan))


@lru_cache(maxsize=256)
def plan_scales(
    plan: str, defaults: tuple[str, ...], windows: tuple[float, ...], most: float
) -> tuple[tuple[float, float], ...] | None:
    """How many times the default plans (the more generous of them in each window) a plan
    allows within each window, as (seconds, factor) pairs, each from 1 to `most`; None
    when it allows no more in any. Raises PlanError for a plan that cannot be used."""
    scales = tuple(
        (
            seconds,
            min(
                most,
                max(
                    1.0,
                    allowance(plan, seconds) / max(allowance(d, seconds) for d in defaults),
                ),
            ),
        )
        for seconds in windows
    )
    return scales if any(factor > 1 for _, factor in scales) else None
