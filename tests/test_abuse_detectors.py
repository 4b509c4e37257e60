"""The detectors as pure state machines, driven with a controlled clock."""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
import pytest

from lookup.abuse.crossaccount import came_before, missed_since
from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import LookupEvent, Outcome
from lookup.abuse.holds import Hold
from lookup.abuse.policy import DEFAULT_POLICY, Policy
from lookup.abuse.state import Lookup

T0 = datetime(2026, 11, 2, 9, 0)


def event(
    n: int,
    seconds: float,
    outcome: Outcome = "miss",
    *,
    account: str = "acme",
    key: str = "k1",
    ip: str = "10.0.0.1",
) -> LookupEvent:
    return LookupEvent(
        ts=T0 + timedelta(seconds=seconds),
        account=account,
        key=key,
        ip=ip,
        number=f"+47{n:08d}",
        outcome=outcome,
    )


def feed(engine: Engine, events: list[LookupEvent]) -> list[Finding]:
    return [finding for e in events for finding in engine.observe(e)]


def alternating(i: int) -> Outcome:
    return "hit" if i % 2 else "miss"


def stops(finding: Finding) -> bool:
    """Whether a finding stops a scan: it suspends the account, or holds the block."""
    return finding.action == "suspend" or "hold" in finding.evidence


def first_suspension(findings: list[Finding]) -> Finding:
    return next(f for f in findings if f.action == "suspend")


def first_stop(findings: list[Finding]) -> Finding:
    """The first finding that stopped the scan (a suspension or a hold of its block)."""
    return next(f for f in findings if stops(f))


def first_stops(findings: list[Finding]) -> dict[str, Finding]:
    """Each stopped account's first finding that stopped it."""
    first: dict[str, Finding] = {}
    for finding in findings:
        if stops(finding):
            first.setdefault(finding.account, finding)
    return first


def test_a_sequential_walk_is_held_within_a_few_lookups_and_suspended_as_it_goes_on() -> None:
    walk = [event(22202000 + i, i, alternating(i)) for i in range(200)]
    findings = feed(Engine(), walk)
    hold = first_stop(findings)
    # A geographic block's 1 % is four to seven listings: a walk at a second a lookup, with
    # nothing else looked up, is stopped at its fourth number: its block is held.
    assert (hold.kind, hold.action) == ("block_coverage", "throttle")
    assert hold.events_seen == 4
    assert hold.ts == walk[3].ts
    evidence = hold.evidence
    assert evidence["rule"]["distinct"] == 4
    # Its fourth number within a minute, nothing else looked up: the rapid tier, not the
    # count (flag at 8) a reviewer would otherwise read it against.
    assert (evidence["rule"]["tier"], evidence["rule"]["hold_at"]) == ("rapid", 4)
    assert evidence["block"] == evidence["hold"] == "+4722202000..999"
    # Going on into the held block (refused, and still seen), it is suspended.
    suspension = first_suspension(findings)
    assert suspension.events_seen <= 30
    assert evidence["lookups"][0]["number"] == "+4722202000"
    assert {"ts", "number", "outcome"} <= set(evidence["lookups"][0])


def test_a_companys_direct_dial_range_over_days_is_not_flagged() -> None:
    # 20 consecutive numbers of one business, called over two weeks, some unlisted.
    calls = [event(22202000 + i % 20, i * 3600 * 16, alternating(i // 7)) for i in range(60)]
    assert feed(Engine(), calls) == []


def test_repeats_and_typos_do_not_advance_the_scan_detectors() -> None:
    engine = Engine()
    repeats = [event(22202000 + i % 3, i, "miss") for i in range(500)]
    typos = [
        LookupEvent(
            ts=T0 + timedelta(seconds=600 + i),
            account="acme",
            key="k1",
            ip="10.0.0.1",
            number="2220ABCD",
            outcome="invalid",
        )
        for i in range(500)
    ]
    assert feed(engine, repeats + typos) == []
    assert engine.events_seen("acme") == 1000


def test_searches_whose_query_reads_like_a_number_are_not_lookups_of_it() -> None:
    # Name searches go through the search endpoint's own limits; only the numbers endpoint
    # answers whether a number is listed, so only its lookups walk a block.
    engine = Engine()
    searches = [
        msgspec.structs.replace(event(22202000 + i, i), endpoint="search") for i in range(50)
    ]
    assert feed(engine, searches) == []
    assert engine.events_seen("acme") == 50
    # The same numbers looked up are a walk, stopped at the fourth.
    assert first_stop(feed(engine, [event(22202000 + i, 60 + i) for i in range(50)]))


def test_a_block_split_over_keys_and_addresses_is_a_distributed_scan() -> None:
    walk = [
        event(41230000 + i * 37 % 1000, i, alternating(i), key=f"k{i % 3}", ip=f"10.0.0.{i % 3}")
        for i in range(300)
    ]
    stop = first_stop(feed(Engine(), walk))
    assert stop.kind == "distributed_scan"
    assert len(stop.evidence["keys"]) == 3


def test_accounts_sharing_an_ip_to_split_a_block_are_each_suspended() -> None:
    walk = [
        event(22202000 + i, i, alternating(i), account=f"shell-{i % 3}", ip="203.0.113.5")
        for i in range(60)
    ]
    findings = feed(Engine(), walk)
    suspended = {f.account for f in findings if f.action == "suspend"}
    assert suspended == {"shell-0", "shell-1", "shell-2"}
    cross = next(f for f in findings if f.kind == "distributed_scan")
    assert cross.evidence["rule"]["ip"] == "203.0.113.5"
    assert cross.evidence["block"] == "+4722202000..999"  # named as every rule names it


def test_accounts_taking_turns_walking_a_geographic_block_are_stopped_at_four() -> None:
    # Three accounts behind one address, each taking the next number in turn: stopped where
    # one account would be (the first account's lookups count once the second one appears),
    # every account that took a step of the walk named.
    walk = [
        event(22202000 + i, i, alternating(i), account=f"shell-{i % 3}", ip="203.0.113.5")
        for i in range(60)
    ]
    first = first_stops(feed(Engine(), walk))
    assert set(first) == {"shell-0", "shell-1", "shell-2"}
    assert all(f.kind == "distributed_scan" for f in first.values())
    assert {f.ts for f in first.values()} == {walk[3].ts}
    assert first["shell-2"].evidence["rule"]["distinct_from_ip"] == 4
    assert first["shell-2"].evidence["rule"]["suspend_at"] == 4


def test_accounts_taking_turns_through_a_shuffled_block_are_stopped_at_six() -> None:
    # The same accounts in no order: an address cannot show one mind's attention, so only
    # the fast tier asking for a miss applies, naming the accounts with two of its numbers.
    order = [417, 93, 871, 550, 12, 666, 301, 958, 240, 777, 135, 502]
    scan = [
        event(22202000 + n, i, alternating(i), account=f"shell-{i % 3}", ip="203.0.113.5")
        for i, n in enumerate(order)
    ]
    first = first_stops(feed(Engine(), scan))
    assert set(first) == {"shell-0", "shell-1", "shell-2"}
    assert {f.ts for f in first.values()} == {scan[5].ts}
    assert first["shell-0"].evidence["rule"]["distinct_from_ip"] == 6


def test_a_customer_sharing_the_address_of_a_fast_scan_is_not_named_for_an_earlier_number() -> None:
    # A SaaS integrator's address: one customer called a number of the block ten minutes
    # before two other accounts took turns through it.
    ip = "192.0.2.10"
    earlier = event(22202777, 0, "hit", account="bakery", ip=ip)
    walk = [
        event(22202000 + i, 600 + i, alternating(i), account=f"shell-{i % 2}", ip=ip)
        for i in range(20)
    ]
    suspended = {f.account for f in feed(Engine(), [earlier, *walk]) if f.action == "suspend"}
    assert suspended == {"shell-0", "shell-1"}


def test_a_customer_calling_into_a_block_another_account_scanned_is_not_named() -> None:
    # A load generator's or integrator's address: one account walks a block and is
    # suspended; minutes later a customer behind the same address looks up two listed
    # numbers of that block (its callers), which only the scanner's misses surround.
    ip = "192.0.2.10"
    walk = [event(22202000 + i, i, alternating(i), account="scraper", ip=ip) for i in range(27)]
    callers = [
        event(n, 120 + 5 * i, "hit", account="crm", ip=ip)
        for i, n in enumerate([22202417, 22202093])
    ]
    findings = feed(Engine(), [*walk, *callers])
    assert "scraper" in first_stops(findings)
    assert [f for f in findings if f.account == "crm"] == []
    # One of the customer's own numbers missing makes it part of the scan after all.
    findings = feed(Engine(), [*walk, *callers, event(22202555, 140, "miss", account="crm", ip=ip)])
    assert "crm" in first_stops(findings)


@pytest.mark.parametrize("later", [270, 7200, 3 * 86400])
@pytest.mark.parametrize("order", ["walked", "shuffled"])
def test_a_customer_whose_callers_were_in_a_block_before_it_was_scanned_is_not_named(
    later: int, order: str
) -> None:
    # A SaaS integrator's address: a customer's three callers (two unlisted) of one block,
    # then, minutes or days later, another account behind the address scans the block.
    # The scanner is stopped by its own rules; the customer took no part in its scan.
    ip = "192.0.2.10"
    callers = [
        event(22202000 + n, 30 * i, alternating(n), account="bakery", ip=ip)
        for i, n in enumerate([916, 933, 970])
    ]
    numbers = list(range(300))
    if order == "shuffled":
        random.Random(5).shuffle(numbers)
    scan = [
        event(22202000 + n, later + 2 * i, alternating(n), account="scraper", ip=ip)
        for i, n in enumerate(numbers)
    ]
    # Its next caller from the block, after the scraper was suspended, is no accomplice's
    # lookup: its misses came before the scan began.
    again = event(22202981, later + 300, "hit", account="bakery", ip=ip)
    merged = sorted([*callers, *scan, again], key=lambda e: e.ts)
    findings = feed(Engine(), merged)
    assert "scraper" in first_stops(findings)
    assert any(f.account == "scraper" and f.action == "suspend" for f in findings)
    assert [f for f in findings if f.account == "bakery"] == []


def test_customers_whose_callers_came_days_apart_before_a_scan_are_none_of_them_named() -> None:
    # Three customers of one integrator in one town, each with callers of its block on
    # another day; a scraper behind the same address scans the block on the fourth.
    ip = "192.0.2.10"
    callers = [
        event(22202000 + n, day * 86400 + 600 * i, alternating(n), account=shop, ip=ip)
        for day, (shop, numbers) in enumerate(
            [("bakery", [916, 933, 970]), ("florist", [850, 861]), ("dentist", [702, 745])]
        )
        for i, n in enumerate(numbers)
    ]
    scan = [
        event(22202000 + n, 3 * 86400 + 2 * i, alternating(n), account="scraper", ip=ip)
        for i, n in enumerate(range(0, 600, 3))
    ]
    findings = feed(Engine(), [*callers, *scan])
    assert any(f.account == "scraper" and f.action == "suspend" for f in findings)
    assert {f.account for f in findings} == {"scraper"}


def _part(account: str, *times: float, outcome: str = "hit") -> list[Lookup]:
    return [
        Lookup(T0, t, 22202000 + i, outcome, "k", "10.0.0.1", account, i)
        for i, t in enumerate(times)
    ]


def test_which_accounts_came_before_a_scan_began() -> None:
    scan = _part("scraper", 1000, 1002, 1004, 1006)
    # Ended 61 s before the account that began last: apart; 59 s: in it.
    assert came_before([*_part("shop", 900, 939), *scan], ["shop", "scraper"], 60) == {"shop"}
    assert came_before([*_part("shop", 900, 941), *scan], ["shop", "scraper"], 60) == set()
    # Twice a slow scan's pace is the bound when longer than the gap.
    slow = _part("scraper", 1000, 1300, 1600)
    assert came_before([*_part("shop", 0, 450), *slow], ["shop", "scraper"], 60) == set()
    assert came_before([*_part("shop", 0, 350), *slow], ["shop", "scraper"], 60) == {"shop"}
    # Each customer against the scan, not against the others: days apart, all apart.
    days = [*_part("a", 0, 10), *_part("b", 86400, 86410), *_part("c", 172800, 172810)]
    assert came_before([*days, *_part("s", 259200, 259202)], ["a", "b", "c", "s"], 60) == {
        "a",
        "b",
        "c",
    }
    # Taking turns, items in any order; one account alone, or one without items, is no scan.
    turns = [*_part("x", 5, 1, 3), *_part("y", 2, 4, 6)]
    assert came_before(turns, ["x", "y"], 60) == set()
    assert came_before(scan, ["scraper", "nobody"], 60) == set()


def test_which_accounts_met_a_miss_since_a_scan_began() -> None:
    scan = _part("scraper", 100, 102, 104, outcome="miss")
    before = _part("shop", 10, 20, outcome="miss")
    after = _part("crm", 110, 120, outcome="miss")
    listed = _part("bakery", 130, outcome="hit")
    items = [*before, *scan, *after, *listed]
    assert missed_since(items, ["scraper"], ["shop", "crm", "bakery"]) == ["crm"]


@pytest.mark.parametrize("pace", [60, 150])
def test_accounts_relaying_a_block_at_its_pace_are_one_scan(pace: int) -> None:
    # Three accounts behind one address, each taking a stretch of a shuffled block in turn
    # at its pace: parts that follow each other are one scan, each next account stopped at
    # its second number, as when they take turns.
    ip = "203.0.113.5"
    order = [417, 93, 871, 550, 12, 666, 301, 958, 240, 777, 135, 502, 64, 333, 829]
    relay = [
        event(22202000 + n, pace * i, alternating(i), account=f"shell-{i // 5}", ip=ip)
        for i, n in enumerate(order)
    ]
    first = first_stops(feed(Engine(), relay))
    assert (first["shell-1"].kind, first["shell-1"].ts) == ("distributed_scan", relay[6].ts)
    assert (first["shell-2"].kind, first["shell-2"].ts) == ("distributed_scan", relay[11].ts)


@pytest.mark.parametrize("pause", [120, 600])
def test_accounts_relaying_a_block_with_pauses_between_their_stretches_are_one_scan(
    pause: int,
) -> None:
    # Three accounts behind one address take stretches of four numbers of a block in turn,
    # pausing between stretches: the first stretch came before the second account's, yet
    # counts in the block, which the second account's second number makes a scan.
    ip = "203.0.113.5"
    order = list(range(0, 1000, 7))
    random.Random(3).shuffle(order)
    relay = [
        event(
            22202000 + n,
            i + pause * (i // 4),
            alternating(n),
            account=f"shell-{(i // 4) % 3}",
            ip=ip,
        )
        for i, n in enumerate(order[:24])
    ]
    first = first_stops(feed(Engine(), relay))
    assert first["shell-0"].ts == relay[3].ts  # its own rules hold the block
    assert (first["shell-1"].kind, first["shell-1"].ts) == ("distributed_scan", relay[5].ts)
    assert (first["shell-2"].kind, first["shell-2"].ts) == ("distributed_scan", relay[10].ts)


def test_a_reinstated_account_is_not_named_again_for_its_lookups_before() -> None:
    ip = "192.0.2.10"
    engine = Engine()
    walk = [event(22202000 + i, i, alternating(i), account="demo", ip=ip) for i in range(12)]
    assert "demo" in first_stops(feed(engine, walk))
    engine.reset("demo")  # compliance reinstated it; it looks nothing up meanwhile
    others = [
        event(22202500 + 3 * i, 60 + 5 * i, alternating(i), account="lt", ip=ip) for i in range(6)
    ]
    assert [f.account for f in feed(engine, others) if f.account == "demo"] == []


def test_clearing_an_account_keeps_the_others_lookups_of_numbers_it_had_first() -> None:
    # A customer behind a shared address looked up three numbers of a block; two accounts
    # behind it then take turns through the block, those three numbers first. Compliance
    # clears the customer midway: the scan's own lookups of the three still count.
    ip = "203.0.113.5"
    order = [417, 93, 871, 550, 12, 666, 301, 958, 240, 777, 135, 502]
    scan = [
        event(22202000 + n, 60 + i, alternating(i), account=f"shell-{i % 2}", ip=ip)
        for i, n in enumerate(order)
    ]
    alone = first_stops(feed(Engine(), scan))
    assert {f.ts for f in alone.values()} == {scan[5].ts}
    customer = [
        event(22202000 + n, i, alternating(i), account="crm", ip=ip)
        for i, n in enumerate(order[:3])
    ]
    engine = Engine()
    assert feed(engine, [*customer, *scan[:3]]) == []
    engine.reset("crm")
    first = first_stops(feed(engine, scan[3:]))
    assert set(first) == {"shell-0", "shell-1"}
    assert {f.ts for f in first.values()} == {scan[5].ts}
    assert first["shell-0"].evidence["rule"]["distinct_from_ip"] == 6


def test_two_customers_behind_one_nat_are_not_one_scanner() -> None:
    # Two customers behind one address, each with its own callers; by chance four listed
    # numbers of one block come within 40 s, two from each.
    ip = "198.51.100.20"
    calls = [
        event(40000000 + i * 7919 * 13, i * 10, "hit", account=f"shop-{i % 2}", ip=ip)
        for i in range(30)
    ]
    crowd = [
        event(n, 300 + 10 * i + 5, "hit", account=f"shop-{i % 2}", ip=ip)
        for i, n in enumerate([22202417, 22202093, 22202871, 22202550])
    ]
    merged = sorted([*calls, *crowd], key=lambda e: e.ts)
    assert [f for f in feed(Engine(), merged) if stops(f)] == []


def test_accounts_sharing_an_ip_are_suspended_once_misses_follow_a_listed_stretch() -> None:
    # The walk starts in a fully listed stretch: nothing while its numbers are listed (short
    # of its suspension criteria the address rule names no one: it would name integrators'
    # customers), suspended when misses come (at a pace the fast rule's first tier, which
    # needs no miss, does not reach).
    walk = [
        event(
            22202000 + i * 3,
            i * 30,
            "hit" if i < 9 else "miss",
            account=f"shell-{i % 3}",
            ip="203.0.113.5",
        )
        for i in range(12)
    ]
    findings = feed(Engine(), walk)
    suspensions = [f for f in findings if f.action == "suspend"]
    assert {f.account for f in suspensions} == {"shell-0", "shell-1", "shell-2"}
    assert all(f.kind == "distributed_scan" for f in suspensions)
    assert {f.ts for f in findings} == {walk[9].ts}  # its first miss


def test_many_small_customers_behind_one_ip_are_left_alone() -> None:
    # 40 customers, each looking up its own scattered callers through one integrator.
    calls = [
        event(
            40000000 + (i * 7919 * 104729) % 5_000_000,
            i * 30,
            "miss" if (i // 40) % 4 == 0 else "hit",
            account=f"customer-{i % 40}",
            ip="192.0.2.10",
        )
        for i in range(4000)
    ]
    assert [f for f in feed(Engine(), calls) if f.action != "flag"] == []


def test_mostly_misses_over_the_whole_plan_trips_the_miss_ratio_test() -> None:
    scattered = [
        event(40000000 + (i * 104729 * 7919) % 59_000_000, i * 20, "hit" if i % 7 == 0 else "miss")
        for i in range(400)
    ]
    findings = feed(Engine(), scattered)
    kinds = [f.kind for f in findings]
    assert "miss_ratio" in kinds
    ratio = next(f for f in findings if f.kind == "miss_ratio")
    assert ratio.evidence["rule"]["log_likelihood_ratio"] >= ratio.evidence["rule"]["upper_bound"]
    assert first_stop(findings)


def test_findings_escalate_once_per_level() -> None:
    walk = [event(22202000 + i, i, alternating(i)) for i in range(999)]
    findings = feed(Engine(), walk)
    levels = [(f.kind, f.action) for f in findings]
    assert len(levels) == len(set(levels))


def test_the_engine_is_deterministic() -> None:
    walk = [event(22202000 + (i * 13) % 1000, i * 0.7, alternating(i)) for i in range(400)]
    assert feed(Engine(), walk) == feed(Engine(), walk)


def test_a_reset_account_starts_afresh_and_old_state_is_pruned() -> None:
    engine = Engine()
    walk = [event(22202000 + i, i, alternating(i)) for i in range(40)]
    assert first_stop(feed(engine, walk))
    engine.reset("acme")
    again = [event(22203000 + i, 100 + i, alternating(i)) for i in range(40)]
    assert first_stop(feed(engine, again))
    # Weeks later the per-IP state of the walk is gone; the account's once its numbers are
    # forgotten (its findings lapsed with the window), but for the block held for it,
    # until compliance releases it.
    feed(engine, [event(90000000, 30 * 86400, "hit", account="other", ip="10.9.9.9")])
    assert "10.0.0.1" not in engine._addresses
    assert "acme" in engine._accounts
    feed(engine, [event(90000001, 40 * 86400, "hit", account="other", ip="10.9.9.9")])
    state = engine._accounts["acme"]
    assert list(state.held) == [Hold(1000, 22203000)]
    assert not (state.known or state.fired or state.blocks or state.recent)
    engine.reset("acme")
    assert "acme" not in engine._accounts
    assert engine.events_seen("acme") == 80  # the count of its events never restarts


def test_a_cleared_account_keeps_the_numbers_it_has() -> None:
    # Compliance cleared a customer whose list is one block's numbers; its next refresh of
    # that list, fast, is still the numbers it has.
    customers = [22202000 + i * 3 for i in range(12)]
    engine = Engine()
    assert feed(engine, [event(n, i * 600, alternating(i)) for i, n in enumerate(customers)])
    engine.reset("acme")
    refresh = [event(n, 86400 + i, alternating(i)) for i, n in enumerate(customers)]
    assert feed(engine, refresh) == []


def test_old_findings_do_not_corroborate_new_ones() -> None:
    engine = Engine()
    # Day 0: a run of a company's range, all hits: a flag at most.
    run = [event(22202000 + i, i * 60, "hit") for i in range(30)]
    early = feed(engine, run)
    assert early and all(f.action == "flag" for f in early)
    # Two months later, thin evidence (a block's flag level) must be judged on its own.
    later = [event(55500000 + i * 3, 60 * 86400 + i * 900, alternating(i)) for i in range(9)]
    again = feed(engine, later)
    assert again and all(f.action == "flag" for f in again)


def test_repeats_never_keep_numbers_forever() -> None:
    engine = Engine()
    for day in range(60):
        for i in range(50):
            number = 40000000 + day * 1000 + i * 7
            base = day * 86400 + i * 60
            feed(engine, [event(number, base, "hit"), event(number, base + 30, "hit")])
    state = engine._accounts["acme"]
    assert len(state.recent) <= 8 * 50
    assert len(state.known) <= 36 * 50


def test_a_number_is_forgotten_on_time_behind_a_repeat_that_moved_past_it() -> None:
    # Another worker's late lookup sits behind a newer one; once the newer is looked up
    # again, the late one is the oldest the account has, forgotten at its own time.
    known = DEFAULT_POLICY.known_seconds
    engine = Engine()
    feed(engine, [event(40000001, 50, "hit"), event(40000002, 10, "hit")])
    feed(engine, [event(40000001, 60, "hit")])
    state = engine._accounts["acme"]
    assert state.seq == 2
    feed(engine, [event(40000002, 10 + known + 1, "hit")])
    assert state.seq == 3  # new again: it moves the scan rules as any new number


def test_a_late_lookup_after_the_account_forgot_everything_is_forgotten_on_time() -> None:
    # The hourly sweep forgets all an account knew (a held block keeps its state alive);
    # a late lookup from another worker then is the oldest it knows, and is forgotten at
    # its own time, not at the time of the numbers swept before it.
    known = DEFAULT_POLICY.known_seconds
    engine = Engine()
    engine.recall_hold("acme", "+4755643000..999", T0)
    feed(engine, [event(40000001, 100, "hit"), event(40000002, 110, "hit")])
    feed(engine, [event(40000001, known + 200, "hit", account="other", ip="10.9.9.9")])
    state = engine._accounts["acme"]
    assert not state.known
    feed(engine, [event(40000003, 50, "hit"), event(40000004, known + 75, "hit")])
    assert state.seq == 4
    feed(engine, [event(40000003, known + 80, "hit")])
    assert state.seq == 5  # looked up more than known_seconds ago: new again


def test_a_late_new_number_is_forgotten_at_its_own_time_not_after_newer_ones() -> None:
    # Another worker's batch brings a number looked up before two the account has: it is
    # forgotten known_seconds after its own lookup, as if it had come in time.
    known = DEFAULT_POLICY.known_seconds
    engine = Engine()
    feed(engine, [event(40000001, 1000, "hit"), event(40000002, 1010, "hit")])
    feed(engine, [event(40000003, 900, "hit")])
    state = engine._accounts["acme"]
    assert list(state.known) == [40000003, 40000001, 40000002]
    feed(engine, [event(40000003, 900 + known + 50, "hit")])
    assert state.seq == 4
    # A late repeat goes in time order too.
    feed(engine, [event(40000004, 900 + known + 60, "hit"), event(40000003, 900 + known + 55)])
    assert list(state.known)[-2:] == [40000003, 40000004]


def test_the_detectors_memory_stays_out_of_the_cycle_collectors_passes() -> None:
    # A monitor keeps hundreds of thousands of lookups within the window: tracked, the
    # collector's passes over them cost as much as the detectors' work.
    engine = Engine()
    walk = [event(22202000 + i, i * 60, alternating(i), ip=f"10.0.0.{i % 3}") for i in range(40)]
    feed(engine, [*walk, event(22202000, 3000, "hit", account="other", ip="10.0.0.1")])
    state = engine._accounts["acme"]
    assert state.recent and state.blocks and engine._addresses._ips["10.0.0.1"].blocks
    blocks = [*state.blocks.values(), *engine._addresses._ips["10.0.0.1"].blocks.values()]
    assert not any(gc.is_tracked(item) for item in state.recent)
    assert not any(gc.is_tracked(block) or gc.is_tracked(block.members) for block in blocks)


def test_a_number_looked_up_weeks_ago_is_a_repeat_and_moves_no_scan_rule() -> None:
    # A customer list of one geographic block's numbers, refreshed every eight days: the
    # first refresh is new numbers at a walk's pace; the later ones are numbers it has.
    customers = [22202000 + i * 3 for i in range(12)]
    engine = Engine()
    first = feed(engine, [event(n, i * 600, alternating(i)) for i, n in enumerate(customers)])
    assert first
    for week in range(1, 4):
        start = week * 8 * 86400
        later = [event(n, start + i, alternating(i)) for i, n in enumerate(customers)]
        assert feed(engine, later) == []
    # Forgotten after five weeks without a lookup: new numbers again.
    again = [event(n, 80 * 86400 + i, alternating(i)) for i, n in enumerate(customers)]
    assert feed(engine, again)


def test_a_scan_scattered_over_a_geographic_block_is_stopped_within_a_handful() -> None:
    scattered = [event(22202000 + (i * 389) % 1000, i * 20, alternating(i)) for i in range(50)]
    stop = first_stop(feed(Engine(), scattered))
    assert stop.kind == "block_coverage" and stop.events_seen == 4
    # Slower than four in a minute, it takes five numbers (nothing else looked up).
    slower = [event(22202000 + (i * 389) % 1000, i * 25, alternating(i)) for i in range(50)]
    stop = first_stop(feed(Engine(), slower))
    assert stop.kind == "block_coverage" and stop.events_seen == 5
    assert stop.evidence["rule"]["tier"] == "fast_undivided"


def test_a_direct_dial_range_within_the_hour_is_not_suspended() -> None:
    # A company's 15 extensions, some unlisted, calling in one busy hour: a tight run.
    calls = [event(22202040 + (i * 7) % 15, i * 240, alternating(i // 2)) for i in range(15)]
    assert [f for f in feed(Engine(), calls) if stops(f)] == []


def test_a_walk_split_over_workers_arrives_interleaved_and_is_still_a_walk() -> None:
    walk = [event(22202000 + i, i, alternating(i)) for i in range(40)]
    # Two workers' batches of four reach the monitor one after the other.
    interleaved = [
        e
        for start in range(0, 40, 8)
        for e in walk[start + 4 : start + 8] + walk[start : start + 4]
    ]
    stop = first_stop(feed(Engine(), interleaved))
    assert stop.events_seen <= 12


def _sampled(count: int, start: float, miss_every: int, seconds: float = 3) -> list[LookupEvent]:
    """New numbers spread over the whole plan, one every `seconds`."""
    return [
        event(
            40000000 + (i * 104729 * 7919) % 59_000_000,
            start + i * seconds,
            "miss" if i % miss_every == 0 else "hit",
        )
        for i in range(count)
    ]


def test_a_bulk_download_over_the_whole_plan_is_suspended_by_velocity() -> None:
    # Numbers sampled at random over every block, half of them unlisted, 1,200 an hour.
    findings = feed(Engine(), _sampled(600, 1800, miss_every=2))
    stop = first_stop(findings)
    assert stop.kind == "distinct_velocity"
    # At exactly half misses the test crosses its bar at 110; chance often brings it sooner.
    assert stop.events_seen <= 115
    rule = stop.evidence["rule"]
    assert rule["misses_z"] >= rule["suspend_z"] and rule["miss_share"] >= 0.45


def test_a_bulk_download_across_a_clock_hour_is_counted_as_one() -> None:
    # Starting 150 s before the hour: clock-hour counts would start again after 50 lookups.
    findings = feed(Engine(), _sampled(600, 3600 - 150, miss_every=2))
    stop = first_stop(findings)
    assert stop.kind == "distinct_velocity" and stop.events_seen <= 115


def test_a_bulk_download_does_not_raise_its_own_velocity_bar() -> None:
    # An hour of history sets the bar at 240. The download starts 800 s before a clock hour,
    # one every 4 s: its first hour peaks at 200, under the bar. Were that hour taken into
    # the baseline at once, the bar would rise to 1,200 and the download go on unseen.
    engine = Engine()
    feed(engine, _sampled(40, 0, miss_every=1000, seconds=60))
    download = _sampled(1500, 2 * 86400 + 3600 - 800, miss_every=2, seconds=4)[40:]
    stop = first_stop(feed(engine, download))
    assert stop.kind == "distinct_velocity"
    assert stop.evidence["rule"]["bound"] == 240


def test_a_new_customers_busy_first_morning_is_not_throttled() -> None:
    # 120 new callers in the first hour, 45 % of them unlisted: more than the usual third,
    # but within what chance gives a customer; no history to compare with yet.
    callers = [
        event(40000000 + i * 7919 * 13, i * 30, "miss" if i * 9 % 20 < 9 else "hit")
        for i in range(120)
    ]
    assert feed(Engine(), callers) == []


def test_a_customer_refreshing_its_list_every_night_is_not_acted_on() -> None:
    # 2,000 customers, a third of them unlisted, re-checked every night at 02:00 for a month;
    # a few hundred new customers a night.
    engine = Engine()
    findings: list[Finding] = []
    for night in range(30):
        base = [40000000 + i * 2003 for i in range(2000 + night * 100)]
        findings += feed(
            engine,
            [
                event(n, night * 86400 + 7200 + i * 0.2, "miss" if i % 3 == 0 else "hit")
                for i, n in enumerate(base)
            ],
        )
    assert [f for f in findings if f.action != "flag"] == []


def test_listed_numbers_of_one_block_suspend_only_when_they_are_all_the_account_wants() -> None:
    # A busy customer's callers from one town, listed numbers scattered over its block,
    # between callers from elsewhere, two from each mobile block: not a scan.
    town = [event(22202000 + (i * 389) % 1000, i * 60, "hit") for i in range(8)]
    elsewhere = [event(40000000 + i // 2 * 102947 + i, i * 60 + 30, "hit") for i in range(8)]
    mixed = sorted([*town, *elsewhere], key=lambda e: e.ts)
    assert [f for f in feed(Engine(), mixed) if stops(f)] == []
    # Each caller from elsewhere alone in its block, as a scan's decoys from all over the
    # plan are: its block is held as a scan's behind decoys would be, at its 5th number
    # when all five were listed (five listings of the block taken) ...
    lone = [event(40000000 + i * 102947, i * 60 + 30, "hit") for i in range(8)]
    behind = first_stop(feed(Engine(), sorted([*town, *lone], key=lambda e: e.ts)))
    assert (behind.action, behind.events_seen) == ("throttle", 9)
    assert behind.evidence["rule"]["tier"] == "listed_behind_decoys"
    assert behind.evidence["hold"] == "+4722202000..999"
    # ... else at its 6th, when one of the first five was not (a customer's callers often are).
    unlisted = [
        event(22202000 + (i * 389) % 1000, i * 60, "miss" if i == 3 else "hit") for i in range(8)
    ]
    behind = first_stop(feed(Engine(), sorted([*unlisted, *lone], key=lambda e: e.ts)))
    assert (behind.action, behind.events_seen) == ("throttle", 11)
    assert behind.evidence["rule"]["tier"] == "fast_behind_decoys"
    # The same numbers and nothing else: a quiet scan of a densely listed block.
    stop = first_stop(feed(Engine(), town))
    assert stop.kind == "block_coverage" and stop.events_seen == 5
    assert stop.evidence["rule"]["misses"] == 0
    # A company's extensions the same way are not: a tight cluster, met in order or not.
    for step in (1, 7):
        calls = [event(22202040 + (i * step) % 15, i * 60, "hit") for i in range(8)]
        assert [f for f in feed(Engine(), calls) if stops(f)] == []


def test_a_fast_scan_whose_first_numbers_are_all_listed_is_stopped_at_four() -> None:
    # A block's first numbers can all be listed, and four are 1 % of a sparse block's
    # listings: at a second a lookup, with nothing else looked up, no miss is needed.
    numbers = [22202417, 22202093, 22202871, 22202550, 22202302]
    hold = first_stop(feed(Engine(), [event(n, i, "hit") for i, n in enumerate(numbers)]))
    assert hold.events_seen == 4
    assert hold.evidence["rule"]["misses"] == 0


def test_a_first_list_refresh_crowding_one_town_block_is_left_alone() -> None:
    # A new local business's first refresh, a tenth of a second apart: four of its first five
    # numbers fall in one town block, but the fifth shows its attention is elsewhere too.
    numbers = [
        *(22202417, 22202093, 40123456, 22202871, 22202550, 91234567),
        *(62625011, 22202302, 62625480, 22917004, 22202688, 62625913),
    ]
    refresh = [event(n, i * 0.1, "miss" if i % 4 == 3 else "hit") for i, n in enumerate(numbers)]
    assert [f for f in feed(Engine(), refresh) if stops(f)] == []


def test_a_local_business_refreshing_customers_from_its_towns_blocks_is_left_alone() -> None:
    # 900 customers: 80 % of them in a town's three geographic blocks, the rest anywhere,
    # a third unlisted; refreshed in the CRM's own order (not by number), weekly.
    rng = random.Random(5)
    town = [22202, 22917, 23411]
    customers = [
        rng.choice(town) * 1000 + rng.randrange(1000)
        if rng.random() < 0.8
        else 40000000 + rng.randrange(59_000_000)
        for _ in range(900)
    ]
    engine = Engine()
    findings: list[Finding] = []
    for week in range(4):
        findings += feed(
            engine,
            [
                event(n, week * 8 * 86400 + i * 0.1, "miss" if rng.random() < 0.3 else "hit")
                for i, n in enumerate(customers)
            ],
        )
    assert [f for f in findings if f.kind in ("block_coverage", "distributed_scan")] == []


def test_a_scan_of_one_block_is_still_caught_among_a_customers_own_lookups() -> None:
    # A local business turns scraper: its callers keep coming while it walks one block.
    engine = Engine()
    callers = [event(40000000 + i * 7919 * 13, i * 600, "hit") for i in range(40)]
    feed(engine, callers)
    walk = [event(22202000 + i, 40 * 600 + i, alternating(i)) for i in range(40)]
    stop = first_stop(feed(engine, walk))
    assert stop.events_seen - 40 <= 16


def _town_week(
    engine: Engine, town: list[int], *, account: str = "acme", ip: str = "10.0.0.1"
) -> int:
    """A week of a local business's callers, a third from each of its town's blocks;
    returns the last lookup's time."""
    callers = [
        event(
            town[i % 3] * 1000 + (i * 389) % 1000,
            i * 1800,
            "miss" if i % 3 == 0 else "hit",
            account=account,
            ip=ip,
        )
        for i in range(60)
    ]
    feed(engine, callers)
    return 60 * 1800


def test_a_first_refresh_whose_numbers_crowd_a_town_block_for_a_moment_is_left_alone() -> None:
    # A new business's first bulk refresh, customers in three town blocks: by chance 14 of
    # 20 numbers in a row fall in one (the rest in a second), a third unlisted; over the
    # whole refresh it is under half. (Two blocks alone, taking turns, are a scan's.)
    # One caller in five rings from elsewhere (a mobile), as a town's do.
    town = [62625, 62631, 62640]
    spread = [town[0], town[1], town[2], town[1]] * 4
    crowded = [town[0] if i % 10 not in (2, 5, 8) else town[1] for i in range(20)]
    refresh = [
        event(block * 1000 + (i * 577) % 1000, i * 0.1, "miss" if i % 3 == 0 else "hit")
        if i % 5 != 4
        else event(41000000 + i * 7919 * 13, i * 0.1, "hit")
        for i, block in enumerate(spread + crowded)
    ]
    assert [f for f in feed(Engine(), refresh) if stops(f)] == []
    # With no caller from elsewhere, its three blocks take turns as a scan's do: all
    # three held together once they have held 15 numbers, a block's fifth.
    walled = [
        event(block * 1000 + (i * 577) % 1000, i * 0.1, "miss" if i % 3 == 0 else "hit")
        for i, block in enumerate(spread + crowded)
    ]
    held = [f for f in feed(Engine(), walled) if stops(f)]
    assert {f.events_seen for f in held[:3]} == {15}
    assert {f.evidence["hold"] for f in held[:3]} == {f"+47{block}000..999" for block in town}


def _decoy_scan(
    block_outcome: Callable[[int], Outcome], decoy_outcome: Outcome
) -> list[LookupEvent]:
    """A shuffled scan of a geographic block, one new number from anywhere before each."""
    rng = random.Random(8)
    block = list(range(55643000, 55644000))
    rng.shuffle(block)
    lookups = []
    for i, number in enumerate(block[:40]):
        decoy = rng.choice([40000000, 90000000, 21000000, 73000000]) + rng.randrange(9_999_999)
        lookups += [
            event(decoy, 2 * i, decoy_outcome),
            event(number, 2 * i + 1, block_outcome(i)),
        ]
    return lookups


def test_a_scan_hiding_among_decoys_from_all_over_the_plan_is_still_a_block_scan() -> None:
    # Half its attention looks elsewhere, but nothing else it looks up comes twice from
    # one block.
    hold = first_stop(feed(Engine(), _decoy_scan(alternating, "miss")))
    assert (hold.kind, hold.evidence["hold"]) == ("block_coverage", "+4755643000..999")
    assert hold.evidence["rule"]["block_size"] == 1000
    # The fast rule's decoy tier: the block's 6th number, its misses among them.
    assert hold.events_seen == 2 * 6
    assert hold.evidence["rule"]["hold_at"] == 6


def test_a_decoy_scan_going_on_in_its_held_block_is_suspended_by_the_count() -> None:
    # Its decoys listed, every six of its block's numbers with misses: the decoy tier would
    # hold the (held) block again at each, and the count's suspension was never reached.
    findings = feed(Engine(), _decoy_scan(alternating, "hit"))
    assert first_stop(findings).events_seen == 2 * 6
    suspension = first_suspension(findings)
    assert suspension.events_seen == 2 * 11
    assert suspension.evidence["rule"]["tier"] == "count"
    assert suspension.evidence["block"] == "+4755643000..999"


def test_five_listed_behind_decoys_hold_only_a_new_geographic_block_spread_wide() -> None:
    # The decoy tier's 5th listing asks what its 6th number does: a mobile block's 1 % is
    # dozens of listings, numbers within 200 of each other are a company's extensions (or a
    # walk, the run rule's), and a town block the account has known for an hour is its
    # callers'. Each case fails with its guard taken out of the tier.
    def held_at_fifth(numbers: list[int], before: tuple[LookupEvent, ...] = ()) -> bool:
        lone = [event(40000000 + i * 102947, 3600 + i * 60 + 30, "hit") for i in range(6)]
        listed = [event(n, 3600 + i * 60, "hit") for i, n in enumerate(numbers)]
        lookups = [*before, *sorted([*listed, *lone], key=lambda e: e.ts)]
        tiers = [f.evidence["rule"].get("tier") for f in feed(Engine(), lookups)]
        return "listed_behind_decoys" in tiers

    assert held_at_fifth([22202000 + (i * 389) % 1000 for i in range(6)])
    assert not held_at_fifth([91234000 + (i * 389) % 1000 for i in range(6)])
    assert not held_at_fifth([22202040 + i * 2 for i in range(6)])
    known = tuple(event(22202000 + 500 + i, i * 60, "hit") for i in range(4))
    assert not held_at_fifth([22202000 + (i * 389) % 1000 for i in range(6)], known)


def test_a_decoy_scan_of_a_dense_block_is_held_before_its_6th_listing() -> None:
    # A dense block can give a scan one miss or none in its first numbers: asked for two,
    # the decoy tier left such scans to the slow rule, at the block's 10th number (1.7 to
    # 2.1 % of a block in 3 of 96 simulated months). Held at its 6th number, a scan whose
    # first six were all listed had six listings, over 1 % of a block of 597.
    cases: list[tuple[Callable[[int], Outcome], int, str]] = [
        (lambda i: "miss" if i in (2, 9) else "hit", 6, "fast_behind_decoys"),
        (lambda i: "hit", 5, "listed_behind_decoys"),
    ]
    for outcome, at, tier in cases:
        lookups = _decoy_scan(outcome, "hit")
        hold = first_stop(feed(Engine(), lookups))
        assert (hold.action, hold.events_seen) == ("throttle", 2 * at)
        assert hold.evidence["rule"]["tier"] == tier
        taken = lookups[: hold.events_seen]
        assert sum(e.outcome == "hit" and e.number.startswith("+4755643") for e in taken) == 5


def _turns(blocks: list[int], *, decoys: bool, lookups: int = 80) -> list[LookupEvent]:
    """A shuffled scan taking turns between geographic blocks, a lookup a second; with
    `decoys`, a new number from anywhere before each of theirs."""
    rng = random.Random(11)
    orders = [rng.sample(range(block * 1000, block * 1000 + 1000), 1000) for block in blocks]
    numbers = []
    for i in range(lookups):
        if decoys:
            numbers.append(rng.choice([40000000, 90000000, 73000000]) + rng.randrange(9_999_999))
        numbers.append(orders[i % len(blocks)][i // len(blocks)])
    return [event(n, i, alternating(i // 3)) for i, n in enumerate(numbers)]


def test_a_scan_taking_turns_between_two_blocks_has_both_held_together() -> None:
    # Each block has half its attention, which no single block's focus would ever call a
    # scan: 76 % of a block was taken before the two-block rules. Its first eight numbers,
    # four a block within seconds, nothing else between them: both blocks are held at
    # once, each on the evidence of the two (one at a time, as each reached the count, a
    # scan had the first's 5th or 6th listing: over 1 % of a sparse block).
    findings = feed(Engine(), _turns([22202, 62625], decoys=False))
    held = [f for f in findings if stops(f)][:2]
    assert [(f.events_seen, f.action) for f in held] == [(8, "throttle"), (8, "throttle")]
    assert {f.evidence["hold"]: f.evidence["taking_turns_with"] for f in held} == {
        "+4762625000..999": ["+4722202000..999"],
        "+4722202000..999": ["+4762625000..999"],
    }
    assert {f.evidence["rule"]["tier"] for f in held} == {"rapid_two_blocks"}
    assert all(f.evidence["rule"]["hold_at"] == 4 for f in held)
    # Held together, they are one hold: going on into them (refused) is what suspends.
    suspension = first_suspension(findings)
    assert (suspension.events_seen, suspension.evidence["rule"]["tier"]) == (20, "count")
    assert "held_before" not in suspension.evidence
    # Decoys from all over the plan before each number: alone in their blocks, they do not
    # divide the attention further for the slow rule, but they hide the pair from the fast
    # one (a town's callers from elsewhere do too); the two blocks need 20 numbers.
    hidden = first_stop(feed(Engine(), _turns([22202, 62625], decoys=True)))
    assert hidden.events_seen == 40


def test_two_blocks_taking_turns_at_a_callers_pace_are_held_together_with_a_miss() -> None:
    # A lookup a minute is no customer's callers crowding two blocks within a minute,
    # but five a block within 20 minutes, a miss among them, are the pair's count: the
    # 10th number holds both blocks.
    slow = [
        msgspec.structs.replace(e, ts=T0 + timedelta(seconds=60 * i))
        for i, e in enumerate(_turns([22202, 62625], decoys=False))
    ]
    held = [f for f in feed(Engine(), slow) if stops(f)][:2]
    assert [(f.events_seen, f.action) for f in held] == [(10, "throttle"), (10, "throttle")]
    assert {f.evidence["rule"]["tier"] for f in held} == {"fast_two_blocks"}
    assert {f.evidence["hold"] for f in held} == {"+4722202000..999", "+4762625000..999"}


def test_blocks_held_together_then_ringing_as_callers_do_are_not_a_scan_going_on() -> None:
    # A customer whose two town blocks were held together in its first seconds: its
    # callers from them keep coming, refused, as they ring. Neither block is one held
    # before the other, so no later lookup of either takes turns with it.
    burst = _turns([22202, 62625], decoys=False, lookups=8)
    rng = random.Random(4)
    callers = [
        event(rng.choice([22202, 62625]) * 1000 + rng.randrange(1000), 3600 + i * 900, "hit")
        for i in range(30)
    ]
    findings = feed(Engine(), burst + callers)
    assert [(f.action, f.evidence.get("hold")) for f in findings] == [
        ("throttle", "+4762625000..999"),
        ("throttle", "+4722202000..999"),
    ]


def test_a_lookup_elsewhere_beside_a_held_block_is_not_held_with_it() -> None:
    # A walk held at its 4th number, one lookup of another block, then the scan goes on
    # into its held block: the two blocks hold all its new numbers, but a number alone in
    # its block takes no turn, and a held block's refused lookups hold no other block.
    walk = [event(22202400 + i, i) for i in range(4)]
    elsewhere = [event(33221500, 5), event(33221900, 6)]
    going_on = [event(22202404 + i, 7 + i, alternating(i)) for i in range(12)]
    for aside in (elsewhere[:1], elsewhere):
        findings = feed(Engine(), walk + aside + going_on)
        assert {f.evidence.get("hold") for f in findings} - {None} == {"+4722202000..999"}
        suspension = first_suspension(findings)
        assert suspension.evidence["block"] == "+4722202000..999"
        assert "held_before" not in suspension.evidence


def test_a_block_with_one_number_in_the_burst_takes_no_turn() -> None:
    # A customer's caller from a block it knew an hour before, then seven callers from
    # its town block within a minute, all listed: the two blocks took all eight, but the
    # one number of the other is no turn taken, and neither block is held.
    known = [event(33221500, 0, "hit"), event(33221900, 3600, "hit")]
    town = [event(22202000 + (i * 389) % 1000, 3610 + i * 5, "hit") for i in range(7)]
    assert [f for f in feed(Engine(), known + town) if stops(f)] == []


def test_blocks_held_together_are_one_kind_and_do_not_corroborate_each_other() -> None:
    # Two blocks taking turns, one lookup of one of them through a second key: that block
    # alone is spread over keys, yet both are held as one distributed_scan, and neither
    # finding corroborates the other into a suspension.
    first = [22200100, 22200400, 22200200, 22200300]
    second = [22201200, 22201800, 22201400, 22201600]
    turns = [
        event(n, i, "hit", key="k2" if i == 1 else "k1")
        for i, n in enumerate(x for pair in zip(first, second, strict=True) for x in pair)
    ]
    findings = feed(Engine(), turns)
    assert [(f.kind, f.action) for f in findings] == [("distributed_scan", "throttle")] * 2
    assert all("corroborated_by" not in f.evidence for f in findings)


def test_only_geographic_blocks_of_the_tiers_own_time_take_turns() -> None:
    # A mobile block's two numbers beside a geographic block's six within a minute: a
    # mobile block's 1 % is dozens of listings, so it takes no turn and is not held.
    town = [22200100, 22200400, 22200200, 22200300, 22200700, 22200900]
    mixed = [41230017, town[0], town[1], 41239120, *town[2:]]
    findings = feed(Engine(), [event(n, i * 5, "hit") for i, n in enumerate(mixed)])
    assert all(f.evidence.get("hold", "").startswith("+4722200") for f in findings)
    # A block's four callers over 18 minutes, then another's four within a minute: the
    # first block's numbers came before the minute the tier asks of both.
    slow = [event(62625100 + 211 * i, i * 360, "hit") for i in range(4)]
    burst = [event(22202100 + 233 * i, 1200 + i * 10, "hit") for i in range(4)]
    assert [f for f in feed(Engine(), slow + burst) if stops(f)] == []


def test_a_block_held_at_the_same_second_before_is_a_hold_before() -> None:
    # A walk held at its 4th number, then another block's four at the same second (replay
    # input of whole seconds): the first block was held on its own evidence, so the
    # second's hold beside it suspends, as it does a second later.
    walk = [event(22202400 + i, 0) for i in range(4)]
    for at in (0, 1):
        other = [event(n, at) for n in (62625100, 62625500, 62625300, 62625800)]
        suspension = first_suspension(feed(Engine(), walk + other))
        assert suspension.evidence["held_before"] == ["+4722202000..999"], at


def test_blocks_held_together_count_as_one_hold_towards_the_limit() -> None:
    # Two blocks held together, then a third block's walk an hour later: a second hold, not
    # a third (hold_limit is two moments within the week), so it is held, not suspended.
    burst = _turns([22202, 62625], decoys=False, lookups=8)
    walk = [event(55643400 + i, 3600 + i) for i in range(4)]
    findings = feed(Engine(), burst + walk)
    assert [(f.action, f.evidence.get("hold")) for f in findings] == [
        ("throttle", "+4762625000..999"),
        ("throttle", "+4722202000..999"),
        ("throttle", "+4755643000..999"),
    ]
    # A fourth block, another hour on, is a third moment: suspended.
    again = [event(73311400 + i, 7200 + i) for i in range(4)]
    suspension = first_suspension(feed(Engine(), burst + walk + again))
    assert suspension.evidence["held_before"] == [
        "+4722202000..999",
        "+4755643000..999",
        "+4762625000..999",
    ]


def test_a_scan_resting_between_blocks_is_held_in_two_and_suspended_at_the_third() -> None:
    # Four numbers of a block within seconds, then half an hour's rest: too far apart to be
    # taking turns, each block is held in its turn (the first hold's throttle is fired
    # again for the second) ...
    walks = [
        event(block * 1000 + 400 + i, rest * 1800 + i)
        for rest, block in enumerate([22202, 33221, 55643, 62625])
        for i in range(4)
    ]
    findings = feed(Engine(), walks)
    assert [(f.events_seen, f.action, f.evidence.get("hold")) for f in findings] == [
        (4, "throttle", "+4722202000..999"),
        (8, "throttle", "+4733221000..999"),
        (12, "suspend", None),
    ]
    # ... but not a third the same week: an account has two held blocks at most.
    assert findings[2].evidence["held_before"] == ["+4722202000..999", "+4733221000..999"]
    assert findings[2].evidence["block"] == "+4755643000..999"


def _held_then_callers() -> tuple[list[LookupEvent], list[LookupEvent]]:
    """Five numbers of a town block in its first minute, then 20 more at a caller's pace."""
    numbers = random.Random(3).sample(range(55643000, 55644000), 25)
    first = [event(n, i * 10, alternating(i)) for i, n in enumerate(numbers[:5])]
    outcomes: list[Outcome] = ["miss", "miss", "hit", "hit", "hit"]
    callers = [event(n, 3600 + i * 900, outcomes[i % 5]) for i, n in enumerate(numbers[5:])]
    return first, callers


def test_a_held_block_suspends_only_while_a_scan_goes_on_in_it() -> None:
    # Five numbers of a town block in the first minute hold it; after that, its numbers
    # come at a caller's pace (refused, and still seen): the count reaches its suspension
    # bound, misses and all, but a customer's callers from the block ring as they ring.
    first, callers = _held_then_callers()
    findings = feed(Engine(), first + callers)
    assert [(f.action, f.evidence.get("hold")) for f in findings] == [
        ("throttle", "+4755643000..999")
    ]
    # A scan going on into it, at a lookup every 20 seconds, is suspended at the count.
    scan = [
        msgspec.structs.replace(e, ts=T0 + timedelta(seconds=3600 + i * 20))
        for i, e in enumerate(callers)
    ]
    suspension = first_suspension(feed(Engine(), first + scan))
    assert (suspension.events_seen, suspension.evidence["rule"]["tier"]) == (10, "count")


def test_a_hold_an_account_on_review_was_not_given_leaves_its_block_to_the_count() -> None:
    # Its lookups in the block are answered: a slow scan of it is one as anywhere else.
    first, callers = _held_then_callers()
    engine = Engine()
    (hold,) = feed(engine, first)
    engine.answered("acme", Hold.parse(hold.evidence["hold"]))
    assert first_suspension(feed(engine, callers)).events_seen == 10


def test_a_restart_recalls_whether_a_hold_was_enforced() -> None:
    first, callers = _held_then_callers()
    for enforced, actions in [(True, []), (False, ["suspend"])]:
        engine = Engine()
        engine.recall(
            "acme", "block_coverage", "throttle", first[-1].ts, None, "+4755643000..999", enforced
        )
        feed(engine, first)
        assert [f.action for f in feed(engine, callers)] == actions, enforced


def test_an_account_back_from_review_keeps_the_blocks_held_before() -> None:
    first, callers = _held_then_callers()
    engine = Engine()
    feed(engine, first)
    engine.rearm("acme")
    # Its rules fire again (a flag for the count), but its callers from the block it
    # still holds are not a scan going on.
    assert [f.action for f in feed(engine, callers)] == ["flag"]


def test_blocks_held_over_a_week_apart_do_not_add_up() -> None:
    week = 8 * 86400
    walks = [
        event(block * 1000 + 400 + i, at + i)
        for at, block in [(0, 22202), (1800, 33221), (week, 55643)]
        for i in range(4)
    ]
    findings = feed(Engine(), walks)
    assert [(f.action, f.evidence.get("hold")) for f in findings] == [
        ("throttle", "+4722202000..999"),
        ("throttle", "+4733221000..999"),
        ("throttle", "+4755643000..999"),
    ]


def test_a_hold_recalled_by_a_restart_counts_as_one_held_before() -> None:
    engine = Engine()
    engine.recall("acme", "block_coverage", "throttle", T0, hold="+4722202000..999")
    (suspension,) = feed(engine, [event(33221400 + i, 60 + i) for i in range(4)])
    assert suspension.action == "suspend"
    assert suspension.evidence["held_before"] == ["+4722202000..999"]


def test_two_blocks_are_a_pair_seen_from_either() -> None:
    # Two numbers of a listed block for each of a sparse one: the busier block never misses.
    rng = random.Random(6)
    listed = rng.sample(range(62625000, 62626000), 400)
    sparse = rng.sample(range(22202000, 22203000), 200)
    scan: list[tuple[int, Outcome]] = []
    for i in range(200):
        scan += [(listed[2 * i], "hit"), (listed[2 * i + 1], "hit"), (sparse[i], alternating(i))]
    findings = feed(Engine(), [event(n, i, outcome) for i, (n, outcome) in enumerate(scan)])
    stop = first_stop(findings)
    assert stop.kind == "block_coverage"
    # Seen at a lookup of the listed block: no miss is asked within a minute, and both
    # are held together.
    assert {f.evidence["hold"] for f in findings if f.events_seen == stop.events_seen} == {
        "+4722202000..999",
        "+4762625000..999",
    }
    # At a caller's pace, a minute a lookup, only the tier asking for a miss holds them,
    # so the pair must be seen from the sparse block, and the listed one is held with it.
    slow = [event(n, 60 * i, outcome) for i, (n, outcome) in enumerate(scan)]
    stop = first_stop(feed(Engine(), slow))
    assert (stop.evidence["rule"]["tier"], stop.evidence["block"]) == (
        "fast_two_blocks",
        "+4722202000..999",
    )
    assert stop.evidence["taking_turns_with"] == ["+4762625000..999"]


def test_a_two_block_towns_first_refresh_is_a_scan_of_two_blocks() -> None:
    # The price of the two-block rule: customers in two town blocks (a fifth anywhere),
    # refreshed for the first time, take turns between them as a scan does.
    rng = random.Random(9)
    town = [62625, 62631]
    customers = [
        rng.choice(town) * 1000 + rng.randrange(1000)
        if rng.random() < 0.8
        else 40000000 + rng.randrange(59_000_000)
        for _ in range(400)
    ]
    refresh = [
        event(n, i * 0.1, "miss" if rng.random() < 0.3 else "hit") for i, n in enumerate(customers)
    ]
    stop = first_stop(feed(Engine(), refresh))
    assert stop.kind == "block_coverage"
    assert stop.events_seen < 40


TOWNS = [22202, 62625, 55643, 73311, 32107, 51234, 69321, 70456, 75111, 77222, 38333, 23444]


@pytest.mark.parametrize(
    ("count", "stopped_at", "held"), [(3, 15, 3), (4, 20, 4), (5, 60, 0), (8, 60, 8), (12, 60, 12)]
)
def test_a_scan_taking_turns_between_several_blocks_is_stopped_before_a_blocks_sixth(
    count: int, stopped_at: int, held: int
) -> None:
    # Each block takes a share of its attention, as a town's blocks do a local
    # business's; but nothing else comes between them, five a block in a row for three
    # or four blocks, 60 for more (12 blocks have 5 numbers each then, the fast rule's
    # count for blocks taking turns; five blocks' 12 each reach the count's suspension
    # first). Every block it took turns with is held with it.
    findings = feed(Engine(), _turns(TOWNS[:count], decoys=False, lookups=300))
    stop = first_stop(findings)
    assert stop.kind == "block_coverage"
    assert stop.events_seen == stopped_at
    holds = {f.evidence.get("hold") for f in findings if f.events_seen == stopped_at} - {None}
    assert len(holds) == held
    if held:
        assert len(stop.evidence["taking_turns_with"]) == held - 1
    else:
        assert stop.action == "suspend"


def test_a_scan_of_three_blocks_padded_to_five_is_judged_as_five() -> None:
    # Two numbers in each of two blocks more, first: five blocks ask for 60 numbers. Not
    # counting blocks with few numbers as turns would stop it at once, but a six-block
    # town's first refresh, its blocks unevenly filled, then looked like three.
    padding = [
        event(n, -10 + i, "hit") for i, n in enumerate([38333001, 38333007, 23444003, 23444009])
    ]
    scan = _turns(TOWNS[:3], decoys=False, lookups=300)
    stop = first_stop(feed(Engine(), [*padding, *scan]))
    assert stop.kind == "block_coverage"
    assert stop.events_seen == 60  # the padding among them


def test_blocks_taking_turns_with_a_lone_number_among_them_are_left_to_other_rules() -> None:
    # A number alone in its block takes no turn: a town's callers from elsewhere, one
    # in 20 here, keep its blocks from looking like a scan's.
    scan = _turns(TOWNS[:4], decoys=False, lookups=300)
    lone = [event(40000000 + i * 100_003, i - 0.5, "hit") for i in range(10, 300, 20)]
    mixed = sorted([*scan, *lone], key=lambda e: e.ts)
    findings = feed(Engine(), mixed)
    assert [f for f in findings if f.kind == "block_coverage" and f.events_seen <= 70] == []


def test_a_scan_of_three_dense_blocks_behind_decoys_is_stopped_at_half_a_block() -> None:
    # A quarter unlisted, under the 35 % customers' callers give: neither velocity nor the
    # miss test sees it, and a listed number from anywhere before each of its blocks' hides
    # its turns as a town's callers from elsewhere do. No customer's list holds half a block.
    rng = random.Random(4)
    blocks = [22202, 62625, 55643]
    orders = [rng.sample(range(block * 1000, block * 1000 + 1000), 1000) for block in blocks]
    scan = []
    for i in range(1800):
        decoy = rng.choice([40000000, 90000000, 73000000]) + rng.randrange(9_999_999)
        scan += [
            event(orders[i % 3][i // 3], 2 * i, "miss" if i % 4 == 0 else "hit"),
            event(decoy, 2 * i + 1, "hit"),
        ]
    findings = feed(Engine(), scan)
    stop = first_stop(findings)
    assert stop.kind == "block_coverage"
    # 500 of the block's numbers, plus 2 for what 3,000 lookups put in a block by chance.
    assert stop.evidence["rule"]["suspend_at"] == 502
    assert stop.events_seen == 2 * (3 * 501 + 1) - 1
    assert [f for f in findings if f.kind != "block_coverage"] == []


def test_a_local_business_whose_town_block_calls_at_once_on_monday_is_left_alone() -> None:
    # Six callers from one of its town's blocks in its first ten minutes, two unlisted, and
    # nobody else calling: as fast and as focused as a scan, but in a block it knows.
    town = [62625, 62631, 62640]
    engine = Engine()
    monday = _town_week(engine, town) + 2 * 86400
    morning = [
        event(town[0] * 1000 + n, monday + i * 120, "miss" if i in (2, 3) else "hit")
        for i, n in enumerate([40, 128, 791, 393, 758, 162])
    ]
    assert [f for f in feed(engine, morning) if stops(f)] == []


def test_a_scan_paced_under_every_rate_limit_is_stopped_at_five_numbers() -> None:
    # One lookup every 90 s, shuffled over a geographic block.
    numbers = list(range(55643000, 55644000, 53))
    random.Random(4).shuffle(numbers)
    scan = [event(n, i * 90, alternating(i)) for i, n in enumerate(numbers)]
    stop = first_stop(feed(Engine(), scan))
    assert stop.kind == "block_coverage" and stop.events_seen == 5
    # Held at its 6th, such a scan took 1.03 % of a sparse block (1 of 96 simulated months).
    assert stop.evidence["rule"]["tier"] == "fast_undivided"


def test_a_miss_days_before_does_not_make_a_burst_of_listed_numbers_a_scan() -> None:
    # The fast rule asks for a miss among the burst's own numbers (two callers from one
    # block elsewhere among them: the account's attention is not only on the block).
    engine = Engine()
    earlier = [event(22202500, 0, "miss")]
    burst = [
        event(n, 3 * 86400 + i * 120, "hit")
        for i, n in enumerate([22202010, 22202900, 22202300, 22202700, 22202100, 22202600])
    ]
    callers = [event(n, 3 * 86400 + t, "hit") for n, t in ((40123457, 130), (40123999, 250))]
    calls = sorted([*earlier, *burst, *callers], key=lambda e: e.ts)
    assert [f for f in feed(engine, calls) if stops(f)] == []


def test_a_second_shop_at_a_local_business_address_does_not_make_its_town_a_scan() -> None:
    # Shop A has called from its office address all week; on Monday shop B starts there too,
    # and six callers from a town block arrive, split between them.
    town = [62625, 62631, 62640]
    ip = "198.51.100.7"
    engine = Engine()
    monday = _town_week(engine, town, account="shop-a", ip=ip) + 2 * 86400
    morning = [
        event(
            town[0] * 1000 + n,
            monday + i * 120,
            "miss" if i in (2, 3) else "hit",
            account="shop-a" if i % 2 == 0 else "shop-b",
            ip=ip,
        )
        for i, n in enumerate([40, 128, 791, 393, 758, 162])
    ]
    assert [f for f in feed(engine, morning) if stops(f)] == []


# A local business's first day and a half (the simulation's seed 12): seconds from its
# first call at 08:36, number, outcome. Its callers, a third to each of its town's three
# blocks, crowd 51453xxx: 13 of the 17 new numbers not alone in their blocks.
_TOWN_DAYS = [
    (0, 77325322, "m"), (1012, 77325630, "h"), (1415, 77325875, "h"), (1435, 32842391, "m"),
    (1491, 32842775, "h"), (1494, 41928056, "h"), (1649, 77325399, "h"), (1678, 51453960, "h"),
    (1718, 51453602, "h"), (1732, 96358862, "m"), (1933, 69638410, "h"), (1976, 99490055, "m"),
    (2062, 77325817, "h"), (2086, 32842775, "h"), (2166, 32842775, "h"), (2245, 32842317, "h"),
    (2448, 51453239, "h"), (3631, 32842825, "h"), (4510, 69413068, "h"), (4567, 90093643, "m"),
    (5785, 69413068, "h"), (6163, 51453362, "m"), (9050, 51453511, "h"), (11057, 32842961, "m"),
    (12781, 51453110, "h"), (13165, 51453893, "h"), (13653, 51453570, "h"),
    (14365, 77325436, "m"), (14786, 51453893, "h"), (15949, 32842626, "h"),
    (17728, 51453850, "m"), (19420, 32842775, "h"), (23992, 51453511, "h"),
    (24344, 51453875, "h"), (28287, 51453639, "h"), (29940, 51453957, "h"),
    (86816, 92435974, "h"), (88150, 32842391, "m"), (88268, 51453078, "h"),
    (88639, 77325875, "h"), (92178, 51453748, "h"),
]  # fmt: skip


def test_a_town_blocks_callers_crowding_one_over_a_day_are_not_flagged() -> None:
    calls = [event(n, t, "hit" if outcome == "h" else "miss") for t, n, outcome in _TOWN_DAYS]
    assert feed(Engine(), calls) == []
    # Read over the last 20 new numbers, as for a block's numbers within hours, it was.
    hasty = Engine(msgspec.structs.replace(DEFAULT_POLICY, block_slow_focus_span=20))
    (flag,) = feed(hasty, calls)
    assert (flag.kind, flag.action) == ("block_coverage", "flag")
    assert flag.evidence["block"].startswith("+4751453")


def test_a_scan_of_a_block_the_account_knows_is_still_suspended() -> None:
    town = [62625, 62631, 62640]
    engine = Engine()
    start = _town_week(engine, town) + 3600
    numbers = list(range(town[0] * 1000, town[0] * 1000 + 1000, 37))
    random.Random(3).shuffle(numbers)
    scan = [event(n, start + i * 5, alternating(i)) for i, n in enumerate(numbers)]
    stop = first_stop(feed(engine, scan))
    assert stop.kind == "block_coverage" and stop.events_seen - 60 <= 12


def test_an_accounts_honest_past_does_not_shield_a_scan_that_follows_it() -> None:
    # A day of callers from all over the plan, one every 12 minutes; two hours later the
    # account walks a geographic block. It is stopped as soon as a new account would be.
    engine = Engine()
    callers = [event(40000000 + i * 7919 * 13, i * 720, "hit") for i in range(40)]
    feed(engine, callers)
    start = 40 * 720 + 7200
    walk = [event(22202000 + i, start + i, alternating(i)) for i in range(40)]
    stop = first_stop(feed(engine, walk))
    assert stop.events_seen - 40 == 4


def test_rearming_an_account_acts_on_its_next_scan_not_on_what_was_judged() -> None:
    # Two accounts took turns through a block from one address while one of them was on
    # review (its findings only flags); rearmed, it is stopped by a new scan, not by the
    # next ordinary lookup at that address, by itself or by the other account.
    engine = Engine()
    turns = [
        event(22202000 + i, i, alternating(i), account=f"shell-{i % 2}", ip="203.0.113.5")
        for i in range(40)
    ]
    assert "shell-0" in first_stops(feed(engine, turns))
    engine.rearm("shell-0")
    later = [
        event(22202100, 600, "hit", account="shell-1", ip="203.0.113.5"),
        event(22202101, 610, "hit", account="shell-0", ip="203.0.113.5"),
        event(91234567, 620, "hit", account="shell-0", ip="203.0.113.5"),
    ]
    assert [f for f in feed(engine, later) if f.account == "shell-0"] == []
    scan = [event(22305000 + i, 700 + i, alternating(i), account="shell-0") for i in range(30)]
    assert first_stop(feed(engine, scan)).account == "shell-0"


@pytest.mark.parametrize(
    "change",
    [{"block_excess": -1.0}, {"plan_numbers": 0}, {"block_flag": (8,)}],
    ids=["negative-excess", "no-plan", "bounds-for-one-size"],
)
def test_a_policy_the_rules_cannot_read_is_refused(change: dict[str, object]) -> None:
    # A negative chance excess would lower every bound of the block rule below what it
    # skips blocks for; bounds for fewer block sizes than counted would be dropped by zip.
    with pytest.raises(ValueError, match="must be"):
        msgspec.structs.replace(DEFAULT_POLICY, **change)


def test_an_erased_number_is_quoted_as_erased_in_later_findings_but_by_accounts_held() -> None:
    # Four accounts walk the same block from their own addresses; the walk's first number
    # is erased on its subject's request after each account's first two lookups.
    engine = Engine()
    accounts = ("acme", "held-co", "late-co", "after-co")

    def walk(account: str, start: float) -> list[LookupEvent]:
        ip = f"10.0.0.{accounts.index(account) + 1}"
        return [
            event(22202000 + i, start + i, alternating(i), account=account, ip=ip)
            for i in range(30)
        ]

    walks = {account: walk(account, 0) for account in accounts[:3]}
    walks["after-co"] = walk("after-co", 100)  # looks it up only after the request
    findings = feed(engine, walks["acme"][:2] + walks["held-co"][:2])
    assert findings == []
    # acme's lookup is hidden; held-co's case holds its own (legal hold).
    assert engine.erase("+4722202000", T0 + timedelta(seconds=10), ["held-co"]) == 1
    # late-co's lookups were made before the request and reach the monitor after it.
    findings += feed(engine, walks["acme"][2:] + walks["held-co"][2:] + walks["late-co"])
    findings += feed(engine, walks["after-co"])
    assert set(first_stops(findings)) == set(accounts)  # detection went on as before

    def evidence_of(account: str) -> str:
        return msgspec.json.encode([f.evidence for f in findings if f.account == account]).decode()

    for account in ("acme", "late-co"):
        assert '"erased"' in evidence_of(account)
        assert '"+4722202000"' not in evidence_of(account)  # but in the block's name
    for account in ("held-co", "after-co"):
        assert '"+4722202000"' in evidence_of(account)
        assert '"erased"' not in evidence_of(account)
    # The run's range names it no more than its lookups do.
    [acme_range] = [
        f.evidence["range"] for f in findings if f.account == "acme" and "range" in f.evidence
    ]
    assert acme_range[0] == "erased"


def test_every_erasure_of_a_number_holds_and_what_was_seen_before_it_is_hidden() -> None:
    engine = Engine()
    walk = [event(22202000 + i, 100 + i, alternating(i)) for i in range(4)]
    late = event(22202000, 5, account="late-co", ip="10.0.0.2")  # made early, arrives late
    feed(engine, walk[:1])
    # Seen before the request, though its server's clock ran ahead of the monitor's.
    assert engine.erase("+4722202000", T0 + timedelta(seconds=10)) == 1
    # Asked again once late-co's case holds it: the first erasure still covers late-co.
    engine.erase("+4722202000", T0 + timedelta(seconds=20), ["late-co"])
    findings = feed(engine, walk[1:]) + feed(
        engine,
        [late, *(event(22202001 + i, 6 + i, account="late-co", ip="10.0.0.2") for i in range(3))],
    )
    assert {f.account for f in findings if stops(f)} == {"acme", "late-co"}
    for finding in findings:
        assert finding.evidence["lookups"][0]["number"] == "erased", finding.account


def test_a_short_number_is_quoted_as_the_lookup_log_writes_it() -> None:
    walk = [
        LookupEvent(
            ts=T0 + timedelta(seconds=i),
            account="acme",
            key="k1",
            ip="10.0.0.1",
            number=f"+47028{i:02d}",
            outcome=alternating(i),
        )
        for i in range(10)
    ]
    stop = first_stop(feed(Engine(), walk))
    assert stop.evidence["lookups"][0]["number"] == "+4702800"
    assert stop.evidence["block"] == "+4702000..999"


def test_a_hold_is_the_allocation_block_whatever_block_its_rule_read() -> None:
    # The fast rule reads a mobile number's thousand; the hold takes its whole ten thousand.
    assert Hold.parse("+4791234000..999") == Hold.of(91234567) == Hold(10_000, 91230000)
    assert Hold.of(91234567).label == "+4791230000..9999"
    assert Hold.parse("+4722202000..999").label == "+4722202000..999"
    assert Hold.of(22202417).covers(22202999) and not Hold.of(22202417).covers(22203000)
    for label in ("22202000..999", "+4722202000", "+47222x2000..999", "+4722202000..9a9"):
        with pytest.raises(ValueError, match="is not a block"):
            Hold.parse(label)


def _a_week_on(events: list[LookupEvent]) -> list[LookupEvent]:
    return [msgspec.structs.replace(e, ts=e.ts + timedelta(days=8)) for e in events]


def test_a_block_held_over_a_week_ago_is_still_held_until_compliance_releases_it() -> None:
    # Held, not reviewed for over a week: its customer's callers from the block still
    # ring at a caller's pace, refused, and are no scan going on (it was suspended on
    # them once the week had pruned the hold); nor is the block held a second time.
    first, callers = _held_then_callers()
    engine = Engine()
    feed(engine, first)
    later = feed(engine, _a_week_on(first[:1] + callers))
    assert [f.action for f in later if f.action != "flag"] == []
    # Released (the account cleared), the block is judged afresh: a new walk of it.
    engine.reset("acme")
    looked_up = {int(e.number[3:]) for e in first + callers}
    fresh = [n for n in range(55643000, 55644000) if n not in looked_up][::7][:5]
    again = feed(engine, [event(n, 16 * 86400 + i * 10) for i, n in enumerate(fresh)])
    assert [(f.action, f.evidence.get("hold")) for f in again] == [("throttle", "+4755643000..999")]


def test_a_restart_recalls_a_hold_older_than_the_window_its_open_case_keeps() -> None:
    first, callers = _held_then_callers()
    engine = Engine()
    engine.recall_hold("acme", "+4755643000..999", first[-1].ts)
    assert [f.action for f in feed(engine, _a_week_on(callers)) if f.action != "flag"] == []
    # It was held over a week ago: not one held within the week, for a hold elsewhere.
    walk = [event(33221400 + i, 8 * 86400 + 40_000 + i) for i in range(4)]
    assert [(f.action, "held_before" in f.evidence) for f in feed(engine, walk)] == [
        ("throttle", False)
    ]


def test_a_held_mobile_block_suspends_only_while_a_scan_goes_on_in_its_ten_thousand() -> None:
    # The fast rule reads a mobile number's thousand and holds its ten thousand; the
    # count there (60 numbers) is then judged at the pace of the whole ten thousand.
    numbers = random.Random(5).sample(range(91230000, 91240000), 200)
    first = [event(91234000 + i * 37, i * 5, alternating(i)) for i in range(6)]
    (hold,) = feed(Engine(), first)
    assert hold.evidence["hold"] == "+4791230000..9999"
    outcomes: list[Outcome] = ["miss", "miss", "hit", "hit", "hit"]

    def going_on(every: float, policy: Policy = DEFAULT_POLICY) -> list[Finding]:
        rest = [event(n, 600 + i * every, outcomes[i % 5]) for i, n in enumerate(numbers)]
        return feed(Engine(policy), first + rest)

    # Four new numbers in 20 minutes, over the count's suspension bound within 6 hours:
    # callers ringing from a big operator's block, not a scan going on (without the
    # pace asked in a held block, the count would suspend them).
    assert [f.action for f in going_on(300)] == ["throttle"]
    unpaced = msgspec.structs.replace(DEFAULT_POLICY, held_block_suspend=0)
    assert first_suspension(going_on(300, unpaced)).events_seen == 27
    suspension = first_suspension(going_on(20))
    assert suspension.evidence["rule"]["tier"] == "count"
    # Its thousand read the count's bound first: in the held ten thousand, at its pace.
    assert Hold.parse(suspension.evidence["block"]) == Hold(10_000, 91230000)
