"""The search-harvest test of `distinct_velocity`: name searches taking listings in bulk.

Pure. A name search hands back up to 50 listings, and the search plan bounds how
many an account gets a day; a bulk download by name takes what the plan allows, by
broad questions ("Hansen" in each town), each answer a full page: more matched than
it returned. Support staff look for one person and mostly get a few answers. So the
test counts the listings searches returned, over an hour, a day and a week, and fires
when full pages brought most of them and they pass a bar that is the account's own:
a multiple of its busiest such window at least a day before, never under a floor.
An hour over its bar throttles (the search plan is cut with the account's limits); a
day or a week over its bar suspends, and so does a day's lower floor, whatever the
account's measure, when nearly every listing came in a full page. The test stands
apart from the lookup rules: a finding of one does not corroborate the other's (a
support desk and a CRM with unusual callers are one customer).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from lookup.abuse.policy import Kind, Policy, Verdict

SEARCH_HARVEST: Final = "search_harvest"
"""The test's `rule.pattern` in evidence."""
Scales = tuple[tuple[float, float], ...]
"""(window seconds, factor) pairs: an account's search plan over the default's."""
HOUR: Final = 3600.0
DAY: Final = 86400.0
WEEK: Final = 7 * DAY
WINDOWS: Final = (HOUR, DAY, WEEK)
PAGES: Final = "full_pages"
"""The tier that asks for nearly every listing from full pages, over a lower floor."""
EVIDENCE_SEARCHES: Final = 50
"""Searches quoted in a finding's evidence, at most."""


class Search(NamedTuple):
    """One answered name search, as the test quotes it (not its query: that is in the
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
    windows that ended long enough ago to be its measure.

    Kept per minute of searches, so an account's memory is bounded by the window's
    minutes whatever it sends (a search that finds nothing costs it nothing of its plan).
    """

    seconds: float
    minutes: deque[list[int]] = field(default_factory=deque)
    """[minute, listings, of them in full pages, searches], oldest first."""
    listings: int = 0
    full: int = 0
    """Of `listings`, those that came in full pages."""
    searches: int = 0
    bucket: int = -1
    """The clock window (hour, day, week) of the last search, ..."""
    peak: int = 0
    """... and the most listings the sliding window held during it."""
    past: deque[tuple[int, int]] = field(default_factory=deque)
    """Ended clock windows (bucket, peak) not yet old enough for the baseline."""
    baseline: int = 0
    """The busiest of those older than the lag."""

    def add(self, search: Search, lag_seconds: float) -> None:
        """Slide the window over one more search."""
        minute = int(search.t // 60)
        full = search.listings if search.full_page else 0
        if self.minutes and self.minutes[-1][0] == minute:
            self.minutes[-1][1] += search.listings
            self.minutes[-1][2] += full
            self.minutes[-1][3] += 1
        else:
            self.minutes.append([minute, search.listings, full, 1])
        self.listings += search.listings
        self.full += full
        self.searches += 1
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
        """Drop the minutes that fell out of the window."""
        while self.minutes and (self.minutes[0][0] + 1) * 60 <= now - self.seconds:
            _, listings, full, searches = self.minutes.popleft()
            self.listings -= listings
            self.full -= full
            self.searches -= searches

    def restart(self) -> None:
        """Empty the window: what it held is no evidence any more, but its busiest so far
        counts towards the account's measure as before."""
        self.minutes.clear()
        self.listings = self.full = self.searches = 0


@dataclass(slots=True)
class Searches:
    """An account's name searches as the test keeps them."""

    hour: Tally = field(default_factory=lambda: Tally(HOUR))
    day: Tally = field(default_factory=lambda: Tally(DAY))
    week: Tally = field(default_factory=lambda: Tally(WEEK))
    trail: deque[Search] = field(default_factory=lambda: deque(maxlen=EVIDENCE_SEARCHES))
    """Its last searches, as a finding quotes them."""
    last: float = 0.0
    """When its last search was (its state is forgotten `known_seconds` after)."""

    def add(self, search: Search, lag_seconds: float) -> None:
        """Count one search in every window."""
        self.last = search.t
        self.trail.append(search)
        for tally in self.tallies():
            tally.add(search, lag_seconds)

    def restart(self) -> None:
        """Start every window afresh (compliance cleared the account, or it came back from
        `review`), its measure kept."""
        self.trail.clear()
        for tally in self.tallies():
            tally.restart()

    def tallies(self) -> tuple[Tally, Tally, Tally]:
        """Its windows, the longest first."""
        return self.week, self.day, self.hour


class SearchHarvest:
    """The search-harvest test over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(
        self, searches: Searches, search: Search, scales: Scales | None = None
    ) -> list[Verdict]:
        """Count one search's listings; a verdict when a window passes its bar (those that
        suspend before the hour's). `scales`: how many times the default search plan the
        account's own allows, by window (`plans.plan_scales`): its floors move as much."""
        policy = self.policy
        searches.add(search, policy.search_baseline_lag_seconds)
        for tier, tally, default_floor, share, strong in self._tiers(searches):
            scale = next((f for seconds, f in scales or () if seconds == tally.seconds), 1.0)
            floor = round(default_floor * scale)
            # The full-pages tier asks nearly every listing in full pages, and no measure:
            # a measure counts listings whatever their pages, so a download diluted for
            # weeks would raise it.
            measure = 0 if tier == PAGES else round(policy.search_factor * tally.baseline)
            bound = max(floor, measure)
            if tally.listings >= bound and tally.full >= share * tally.listings:
                evidence = self._evidence(tier, tally, bound, share, searches.trail, scale)
                return [Verdict(Kind.DISTINCT_VELOCITY, strong, evidence, alone=SEARCH_HARVEST)]
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
        self,
        tier: str,
        tally: Tally,
        bound: int,
        share: float,
        trail: deque[Search],
        scale: float,
    ) -> Callable[[], dict[str, Any]]:
        """The finding's figures and the searches behind it (built only for a finding,
        before the window moves again)."""

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "pattern": SEARCH_HARVEST,
                    "tier": tier,
                    "window_seconds": round(tally.seconds),
                    "searches_in_window": tally.searches,
                    "listings_in_window": tally.listings,
                    "from_full_pages": tally.full,
                    "full_share_at_least": share,
                    "account_busiest_past_window": 0 if tier == PAGES else tally.baseline,
                    "bound": bound,
                    # The account's own search plan over the default's, in the window.
                    "plan_scale": round(scale, 3),
                },
                "searches": [
                    {
                        "ts": item.ts.isoformat(),
                        "key": item.key,
                        "ip": item.ip,
                        "listings": item.listings,
                        "full_page": item.full_page,
                    }
                    for item in trail
                ],
            }

        return evidence
