"""The search-harvest test of `distinct_velocity`: name searches taking listings in bulk.

Pure. A name search hands back up to 50 listings, and the search plan bounds how
many an account gets a day; a bulk download by name takes what the plan allows, by
broad questions ("Hansen" in each town), each answer a full page: more matched than
it returned. Support staff look for one person and mostly get a few answers. So the
test counts the listings searches returned, over an hour, a day and a week, and fires
when full pages brought most of them and they pass a bar that is the account's own:
a multiple of its busiest such window at least a day before, never under a floor.
An hour over its bar throttles (the search plan is cut with the account's limits); a
day or a week over its bar suspends, and so does a day's lower floor when nearly every
listing came in a full page.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Final, NamedTuple

from lookup.abuse.policy import Kind, Policy, Verdict

SEARCH_HARVEST: Final = "search_harvest"
"""The test's `rule.pattern` in evidence."""
HOUR: Final = 3600.0
DAY: Final = 86400.0
WEEK: Final = 7 * DAY
PAGES: Final = "full_pages"
"""The tier that asks for nearly every listing from full pages, over a lower floor."""
EVIDENCE_SEARCHES: Final = 50
"""Searches quoted in a finding's evidence, at most."""


class Search(NamedTuple):
    """One answered name search, as the test keeps it (not its query: that is in the
    lookup log, where a data subject's erasure reaches it)."""

    ts: datetime
    t: float
    key: str
    ip: str
    listings: int
    full_page: bool


@dataclass(slots=True)
class Tally:
    """Listings searches returned within a sliding window, and the account's busiest
    windows that ended long enough ago to be its measure."""

    seconds: float
    searches: deque[Search] = field(default_factory=deque)
    listings: int = 0
    full: int = 0
    """Of `listings`, those that came in full pages."""
    bucket: int = -1
    """The clock window (hour, day) of the last search, ..."""
    peak: int = 0
    """... and the most listings the sliding window held during it."""
    past: deque[tuple[int, int]] = field(default_factory=deque)
    """Ended clock windows (bucket, peak) not yet old enough for the baseline."""
    baseline: int = 0
    """The busiest of those older than the lag."""

    def add(self, search: Search, lag_seconds: float) -> None:
        """Slide the window over one more search."""
        self.searches.append(search)
        self.listings += search.listings
        self.full += search.listings if search.full_page else 0
        self.expire(search.t)
        bucket = int(search.t // self.seconds)
        if bucket != self.bucket:
            if self.peak:
                self.past.append((self.bucket, self.peak))
            self.bucket, self.peak = bucket, 0
        # A window counts once it ended `lag_seconds` before, and at least its own length
        # (a week, a week before): a download's own hours, days and weeks do not raise its
        # bar while it goes on.
        lag = max(lag_seconds, self.seconds)
        while self.past and (self.past[0][0] + 1) * self.seconds <= search.t - lag:
            self.baseline = max(self.baseline, self.past.popleft()[1])
        self.peak = max(self.peak, self.listings)

    def expire(self, now: float) -> None:
        """Drop the searches that fell out of the window."""
        while self.searches and self.searches[0].t <= now - self.seconds:
            old = self.searches.popleft()
            self.listings -= old.listings
            self.full -= old.listings if old.full_page else 0

    def restart(self, *, measure: bool) -> None:
        """Empty the window, its history kept (its busiest so far counts as before);
        `measure`: what it took (compliance cleared it) is the account's own measure now."""
        if measure:
            self.baseline = max(self.baseline, self.peak, *(peak for _, peak in self.past))
            self.past.clear()
            self.peak = 0
        self.searches.clear()
        self.listings = self.full = 0


@dataclass(slots=True)
class Searches:
    """An account's name searches as the test keeps them."""

    hour: Tally = field(default_factory=lambda: Tally(HOUR))
    day: Tally = field(default_factory=lambda: Tally(DAY))
    week: Tally = field(default_factory=lambda: Tally(WEEK))
    last: float = 0.0
    """When its last search was (its state is forgotten `known_seconds` after)."""

    def restart(self, *, measure: bool) -> None:
        """Start every window afresh (see `Tally.restart`)."""
        for tally in self.tallies():
            tally.restart(measure=measure)

    def tallies(self) -> tuple[Tally, Tally, Tally]:
        """Its windows, the longest first."""
        return self.week, self.day, self.hour


class SearchHarvest:
    """The search-harvest test over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(self, searches: Searches, search: Search) -> list[Verdict]:
        """Count one search's listings; a verdict when a window passes its bar (the week's
        and the day's, which suspend, before the hour's)."""
        policy = self.policy
        searches.last = search.t
        for tally in searches.tallies():
            tally.add(search, policy.search_baseline_lag_seconds)
        factor = policy.search_factor
        for tier, tally, floor, share, strong in self._tiers(searches):
            bound = max(floor, round(factor * tally.baseline))
            if tally.listings >= bound and tally.full >= share * tally.listings:
                evidence = self._evidence(tier, tally, bound, share)
                return [Verdict(Kind.DISTINCT_VELOCITY, strong, evidence)]
        return []

    def _tiers(self, searches: Searches) -> tuple[tuple[str, Tally, int, float, bool], ...]:
        """Each bar as (tier, window, floor, full-page share, whether it suspends), those
        that suspend first."""
        policy, share = self.policy, self.policy.search_full_share
        return (
            (PAGES, searches.day, policy.search_pages_floor, policy.search_pages_share, True),
            ("week", searches.week, policy.search_week_floor, share, True),
            ("day", searches.day, policy.search_day_floor, share, True),
            ("hour", searches.hour, policy.search_hour_floor, share, False),
        )

    def _evidence(
        self, tier: str, tally: Tally, bound: int, share: float
    ) -> Callable[[], dict[str, Any]]:
        """The finding's figures and the searches behind it (built only for a finding,
        before the window moves again)."""

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "pattern": SEARCH_HARVEST,
                    "tier": tier,
                    "window_seconds": round(tally.seconds),
                    "searches_in_window": len(tally.searches),
                    "listings_in_window": tally.listings,
                    "from_full_pages": tally.full,
                    "full_share_at_least": share,
                    "account_busiest_past_window": tally.baseline,
                    "bound": bound,
                },
                "searches": [
                    {
                        "ts": item.ts.isoformat(),
                        "key": item.key,
                        "ip": item.ip,
                        "listings": item.listings,
                        "full_page": item.full_page,
                    }
                    for item in islice(reversed(tally.searches), EVIDENCE_SEARCHES)
                ][::-1],
            }

        return evidence
