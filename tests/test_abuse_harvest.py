"""The search-harvest test: name searches taking listings in bulk."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import EventBuffer, LookupEvent, utc_now
from lookup.abuse.harvest import DAY, HOUR, WEEK, WINDOWS
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.plans import PlanError, allowance, plan_scales
from lookup.abuse.policy import DEFAULT_POLICY
from lookup.abuse.simulate import Directory, Traffic, search_desk
from lookup.abuse.store import ComplianceStore
from lookup.keyring import KeyRing
from lookup.keys import KeyStore

MONDAY = datetime(2026, 11, 2, 8, 0)


def search(
    ts: datetime, listings: int = 50, *, full: bool = True, account: str = "names-co"
) -> LookupEvent:
    """A name search that returned `listings` (a full page: more matched)."""
    return LookupEvent(
        ts=ts,
        account=account,
        key=f"{account}-k",
        ip="198.51.100.7",
        number="Hansen",
        outcome="hit" if listings else "miss",
        endpoint="search",
        listings=listings,
        full_page=full,
    )


def pages(start: datetime, count: int, every: timedelta, **kw: object) -> Iterator[LookupEvent]:
    """`count` full pages of 50, one each `every`."""
    return (search(start + every * i, **kw) for i in range(count))  # type: ignore[arg-type]


def observe(engine: Engine, events: Iterable[LookupEvent]) -> list[tuple[int, Finding]]:
    """Findings with the position (from 1) of the event that raised each."""
    return [
        (position, finding)
        for position, event in enumerate(events, 1)
        for finding in engine.observe(event)
    ]


def test_a_download_by_full_pages_is_suspended_at_its_2000th_listing() -> None:
    # A page of 50 every 90 s: the search plan's 2,000 an hour.
    found = observe(Engine(), pages(MONDAY, 200, timedelta(seconds=90)))
    ((position, finding),) = found
    assert position == 40
    assert (finding.kind, finding.action) == ("distinct_velocity", "suspend")
    rule = finding.evidence["rule"]
    assert rule["pattern"] == "search_harvest"
    assert rule["tier"] == "full_pages"
    assert (rule["listings_in_window"], rule["from_full_pages"], rule["bound"]) == (
        2000,
        2000,
        2000,
    )
    assert rule["searches_in_window"] == 40
    # The searches behind it, with their times, keys and addresses; not their queries
    # (in the lookup log, where an erasure reaches them).
    quoted = finding.evidence["searches"]
    assert len(quoted) == 40
    assert quoted[-1] == {
        "ts": (MONDAY + timedelta(seconds=90 * 39)).isoformat(),
        "key": "names-co-k",
        "ip": "198.51.100.7",
        "listings": 50,
        "full_page": True,
    }
    assert "Hansen" not in str(finding.evidence)


def test_a_slow_download_in_business_hours_is_suspended_on_its_first_day() -> None:
    # A page every six minutes, 08-17: under every hourly bar, and paused for lunch.
    day = [MONDAY + timedelta(minutes=6 * i) for i in range(90) if not 40 <= i < 50]
    ((position, finding),) = observe(Engine(), (search(ts) for ts in day))
    assert position == 40
    assert finding.evidence["rule"]["window_seconds"] == 86400


def test_an_hour_of_the_whole_plan_throttles_when_pages_are_mixed() -> None:
    # Every other search a short answer: 80 % of the listings from full pages, short of
    # the full-pages tier; 2,000 within the hour throttles.
    events = [
        search(MONDAY + timedelta(seconds=45 * i), 50 if i % 2 == 0 else 12, full=i % 2 == 0)
        for i in range(70)
    ]
    found = observe(Engine(), events)
    assert [(f.action, f.evidence["rule"]["tier"]) for _, f in found] == [("throttle", "hour")]
    rule = found[0][1].evidence["rule"]
    assert rule["listings_in_window"] >= 2000 and rule["from_full_pages"] >= 0.75 * 2000


def test_a_week_over_its_floor_suspends_a_download_paced_under_the_day() -> None:
    # 3,132 listings a day (86 % from full pages of 50, the rest short answers of 24),
    # 08-15, under the day's floors: the week's is passed on the fifth day.
    events = []
    for day in range(7):
        start = MONDAY + timedelta(days=day)
        for i in range(72):
            full = i % 4 != 3
            events.append(search(start + timedelta(minutes=6 * i), 50 if full else 24, full=full))
    ((position, finding),) = observe(Engine(), events)
    assert finding.action == "suspend"
    assert finding.evidence["rule"]["tier"] == "week"
    assert finding.evidence["rule"]["listings_in_window"] >= 15000
    assert (position - 1) // 72 == 4  # on the fifth day


def test_support_desks_searching_for_people_are_never_flagged() -> None:
    # A desk of 15 agents (about 525 searches and 5,000 listings a working day, a quarter
    # of the searches a full page of 20) and one of 3, over simulated months.
    for seed in range(4):
        engine = Engine()
        traffic = Traffic(Directory(seed, mobile_blocks=10, fixed_blocks=10), random.Random(seed))
        for agents in (3, 15):
            search_desk(traffic, f"desk-{seed}-{agents}", agents=agents, full=0.25)
        events = sorted((e for a in traffic.actors for e in a.events), key=lambda e: e.ts)
        assert sum(e.listings or 0 for e in events) > 100_000
        assert observe(engine, events) == []


def mixed_hour(start: datetime, account: str = "names-co") -> Iterator[LookupEvent]:
    """An hour of broad searches: 35 full pages of 50 and 35 short answers of 10, one
    every 50 s (2,100 listings, 83 % from full pages: the hour's bar, not the full-pages
    tier's)."""
    for i in range(70):
        full = i % 2 == 0
        moment = start + timedelta(seconds=50 * i)
        yield search(moment, 50 if full else 10, full=full, account=account)


def test_its_own_measure_lets_a_customer_go_on_as_before() -> None:
    # A broad-search integration on `review` (its findings not enforced) takes such an hour
    # each morning; once its first morning is a day behind it, each is within its measure.
    engine = Engine()
    flagged = []
    for day in range(5):
        found = observe(engine, mixed_hour(MONDAY + timedelta(days=day)))
        flagged.append([(f.action, f.evidence["rule"]["tier"]) for _, f in found])
        engine.rearm("names-co")
    assert flagged[:2] == [[("throttle", "hour")]] * 2
    assert flagged[2:] == [[], [], []]


def test_a_download_by_full_pages_is_suspended_again_whatever_it_took_before() -> None:
    # Cleared (or reinstated), its evidence starts afresh: a download that goes on is
    # suspended again at its next 2,000th listing, its past no measure of full pages.
    engine = Engine()
    assert observe(engine, pages(MONDAY, 40, timedelta(minutes=5)))
    engine.reset("names-co")
    again = observe(engine, pages(MONDAY + timedelta(days=1), 60, timedelta(minutes=5)))
    assert [(p, f.action, f.evidence["rule"]["bound"]) for p, f in again] == [(40, "suspend", 2000)]


def test_search_findings_and_lookup_findings_do_not_corroborate_each_other() -> None:
    # A miss-ratio flag on the account's lookups (its CRM's callers often unlisted) does not
    # make its support desk's busy hour a suspension, nor the reverse.
    engine = Engine()
    engine.recall("names-co", "miss_ratio", "flag", MONDAY)
    found = observe(engine, mixed_hour(MONDAY + timedelta(hours=1)))
    assert [(f.action, "corroborated_by" in f.evidence) for _, f in found] == [("throttle", False)]
    engine.recall("names-co", "sequential_run", "flag", MONDAY + timedelta(hours=3))
    # Lookups never count as searches, whatever their event says.
    lookup = LookupEvent(
        ts=MONDAY + timedelta(hours=3),
        account="names-co",
        key="names-co-k",
        ip="198.51.100.7",
        number="+4722200000",
        outcome="hit",
        listings=50,
        full_page=True,
    )
    assert engine.observe(lookup) == []
    assert engine.events_seen("names-co") == 71


def test_a_measure_lasts_while_the_account_searches_and_goes_after_the_known_days() -> None:
    idle = timedelta(seconds=DEFAULT_POLICY.known_seconds)
    # Back after a fortnight, its measure holds; after the 35 days, it is a new account.
    for away, found in ((timedelta(days=14), False), (idle + timedelta(days=1), True)):
        engine = Engine()
        assert observe(engine, mixed_hour(MONDAY))
        engine.reset("names-co")
        # Another account's search on the way: the hourly sweep forgets idle accounts.
        engine.observe(search(MONDAY + away - timedelta(hours=2), account="other"))
        assert bool(observe(engine, mixed_hour(MONDAY + away))) is found


def test_searches_that_find_nothing_keep_the_memory_bounded() -> None:
    # A search that finds nothing costs nothing of the plan: they are kept per minute.
    engine = Engine()
    for i in range(20_000):
        engine.observe(search(MONDAY + timedelta(seconds=i * 0.5), 0, full=False))
    engine.observe(search(MONDAY + timedelta(hours=3), 0, full=False))
    state = engine._accounts["names-co"]  # the memory under test
    assert state.searches is not None
    assert len(state.searches.week.minutes) <= 3 * 60 + 2
    assert state.searches.week.searches == 20_001


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ComplianceStore]:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    yield store
    store.close()


@pytest.fixture
def monitor(store: ComplianceStore, tmp_path: Path) -> Iterator[Callable[[], AbuseMonitor]]:
    """Starts a monitor on the store (again: a restart), names-co's account in its keys."""
    keys = KeyStore(tmp_path / "keys.sqlite")
    keys.create("names-co", frozenset({"search"}))
    yield lambda: AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(tmp_path / "keys.sqlite")))
    keys.close()


def test_a_restarted_monitor_goes_on_counting_a_download_by_name(
    store: ComplianceStore, monitor: Callable[[], AbuseMonitor]
) -> None:
    events = list(pages(MONDAY, 40, timedelta(seconds=90)))
    assert monitor().submit(events[:39]) == []
    # What each search returned is logged with it.
    rows = store.log.timeline("names-co", [MONDAY], until=None)
    assert {(row["endpoint"], row["listings"], row["full_page"]) for row in rows} == {
        ("search", 50, True)
    }
    restarted = monitor()
    assert restarted.warm(MONDAY + timedelta(hours=1)) == 39
    (finding,) = restarted.submit(events[39:])
    assert (finding.action, finding.evidence["rule"]["listings_in_window"]) == ("suspend", 2000)


def test_a_restart_keeps_a_cleared_accounts_measure_and_not_its_evidence(
    store: ComplianceStore, monitor: Callable[[], AbuseMonitor]
) -> None:
    # Two days ago its busy hour was throttled, and compliance has cleared it since.
    morning = utc_now() - timedelta(days=2)
    (finding,) = monitor().submit(list(mixed_hour(morning)))
    store.decisions.decide(store.record(finding), "clear", "officer/k1", "its own desk")
    restarted = monitor()
    restarted.warm(utc_now())
    # That hour is its measure (a live monitor kept it through the clearance), and its
    # evidence is gone: the same hour now is no finding, nor the next search.
    assert restarted.submit(list(mixed_hour(utc_now()))) == []


def test_a_plan_says_how_many_times_the_default_it_allows_in_each_window() -> None:
    default = ("2000/hour;10000/day",)
    assert allowance(default[0], HOUR) == 2000 and allowance(default[0], WEEK) == 70_000
    assert allowance("100/minute", HOUR) == 6000

    def scales(plan: str, defaults: tuple[str, ...] = default) -> object:
        return plan_scales(plan, defaults, WINDOWS, DEFAULT_POLICY.search_plan_scale_most)

    assert scales("5000/hour;30000/day") == ((HOUR, 2.5), (DAY, 3.0), (WEEK, 3.0))
    # No more anywhere (less counts as the default): the default's floors.
    assert scales("1000/hour;5000/day") is None
    assert scales(default[0]) is None
    # An hour of 1,000 is a day of 24,000: more than the default in a day.
    assert scales("1000/hour") == ((HOUR, 1.0), (DAY, 2.4), (WEEK, 2.4))
    with pytest.raises(PlanError):
        scales("lots/forever")
    # A strict LOOKUP_PLAN_SEARCH does not raise the floors past the plan they were set
    # for: each window takes the more generous default.
    assert scales(default[0], ("500/hour;2500/day", default[0])) is None
    # A plan of no limit in effect moves them ten times at most.
    assert scales("999999999999999/second") == ((HOUR, 10.0), (DAY, 10.0), (WEEK, 10.0))


def test_an_accounts_own_search_plan_moves_its_floors_as_much() -> None:
    # A desk given 2.5 times the default's hour (and 3 times its day) reads 2,600 listings
    # in an hour, full pages all: its own plan's bar is 5,000, the default's 2,000.
    scales = plan_scales("5000/hour;30000/day", ("2000/hour;10000/day",), WINDOWS, 10.0)
    busy = list(pages(MONDAY, 52, timedelta(seconds=60)))
    assert observe(Engine(search_scales=lambda account: scales), busy) == []
    ((_, finding),) = observe(Engine(), busy)
    assert finding.evidence["rule"]["plan_scale"] == 1.0
    # Its own plan's day of full pages (6,000, three times the default's 2,000) is stopped.
    day = observe(
        Engine(search_scales=lambda account: scales), pages(MONDAY, 200, timedelta(seconds=90))
    )
    ((position, finding),) = day
    assert position == 120 and finding.evidence["rule"]["tier"] == "full_pages"
    assert (finding.evidence["rule"]["bound"], finding.evidence["rule"]["plan_scale"]) == (
        6000,
        3.0,
    )


def test_the_monitor_reads_an_accounts_search_plan_from_the_key_store(
    store: ComplianceStore, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    keys.create("names-co", frozenset({"search"}))
    keys.create("desk-co", frozenset({"search"}))
    keys.create("broken-co", frozenset({"search"}))
    keys.set_plan("desk-co", "5000/hour;30000/day", search=True)
    with contextlib.closing(sqlite3.connect(tmp_path / "keys.sqlite")) as raw, raw:
        # Stored before plans were checked: the default stands in, in the limits too.
        raw.execute("UPDATE accounts SET search_plan = 'lots/forever' WHERE name = 'broken-co'")

    def hour(plan: str, start: datetime) -> list[str]:
        monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys), search_plan=plan)
        events = sorted(
            (
                event
                for account in ("names-co", "desk-co", "broken-co")
                for event in pages(start, 45, timedelta(seconds=60), account=account)
            ),
            key=lambda event: event.ts,
        )
        return sorted({f.account for f in monitor.submit(events)})

    now = utc_now()
    assert hour("2000/hour;10000/day", now - timedelta(hours=9)) == ["broken-co", "names-co"]
    # A generous LOOKUP_PLAN_SEARCH moves no floor: it is everyone's limit, not a desk's;
    # a strict one does not make the desk's own plan move them further.
    assert hour("100000/hour", now - timedelta(hours=6)) == ["broken-co", "desk-co", "names-co"]
    assert hour("500/hour;2500/day", now - timedelta(hours=3)) == ["broken-co", "names-co"]
    keys.close()
