"""The numbers an account has, per block, over weeks: scans too slow for the window."""

from __future__ import annotations

import random

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import LookupEvent
from lookup.abuse.ledger import Ledger
from lookup.abuse.policy import DEFAULT_POLICY
from tests.test_abuse_detectors import alternating, event, feed, first_stop, stops

HOUR = 3600.0
DAY = 86400.0


def test_the_ledger_counts_numbers_per_block_and_their_last_answer() -> None:
    ledger = Ledger()
    ledger.enter(22202001, True, 10.0, new=True)
    ledger.enter(22202002, False, 20.0, new=True)
    ledger.enter(22203001, True, 30.0, new=True)
    assert ledger.tally(22202999) == (2, 1)
    # Answered again, now listed: a miss no more. Again as listed: nothing changes.
    ledger.enter(22202001, False, 40.0, new=False)
    ledger.enter(22202001, False, 50.0, new=False)
    assert ledger.tally(22202000) == (2, 0)
    # A repeat of a number known from before the ledger started is not evidence.
    ledger.enter(22202003, True, 60.0, new=False)
    assert ledger.tally(22202000) == (2, 0)
    # Mobile numbers are counted in their 10,000-number blocks.
    ledger.enter(91234567, True, 70.0, new=True)
    ledger.enter(91239999, True, 80.0, new=True)
    assert ledger.tally(91230000) == (2, 2)
    assert len(ledger) == 5
    assert ledger.busy(2) == 4  # two blocks of two each
    assert ledger.busy(1) == 5
    # Since 45 s: the first block (looked up again at 50) and the mobile one (70, 80), not
    # the lone one (30); since 60 s the mobile block only.
    assert ledger.busy(1, since=45.0) == 4
    assert ledger.busy(1, since=60.0) == 2
    # A late lookup from another worker does not make a block's latest older.
    ledger.enter(22203002, False, 5.0, new=True)
    assert ledger.busy(2, since=25.0) == 6
    ledger.leave(22203002)
    ledger.leave(22202002)
    ledger.leave(22202003)  # never counted: ignored
    assert ledger.tally(22202000) == (1, 0)
    assert ledger.busy(2) == 2
    ledger.leave(22202001)
    assert ledger.tally(22202000) == (0, 0)
    assert len(ledger) == 3


def _first_of(number: int) -> int:
    return number - number % (10_000 if number >= 90_000_000 else 1_000)


def test_the_ledgers_running_counts_match_a_recount_after_any_sequence() -> None:
    # New numbers, repeats (of counted numbers and others), late lookups and numbers
    # forgotten, in any order: the running counts are what a recount gives.
    rng = random.Random(11)
    ledger, had, latest = Ledger(), dict[int, bool](), dict[int, float]()
    numbers = [22202000 + rng.randrange(3_000) for _ in range(60)] + [91230000, 91239999]
    for step in range(5_000):
        number, t = rng.choice(numbers), float(step + rng.randrange(-50, 50))
        block = _first_of(number)
        if rng.random() < 0.3:
            ledger.leave(number)
            had.pop(number, None)
            if block not in {_first_of(n) for n in had}:
                latest.pop(block, None)
            continue
        miss, new = rng.random() < 0.4, rng.random() < 0.5
        ledger.enter(number, miss, t, new=new)
        if number in had or new:
            had[number] = miss
            latest[block] = max(t, latest.get(block, t))
        counts: dict[int, int] = {}
        for each in had:
            counts[_first_of(each)] = counts.get(_first_of(each), 0) + 1
        assert len(ledger) == len(had)
        misses = sum(m for n, m in had.items() if _first_of(n) == block)
        assert ledger.tally(number) == (counts.get(block, 0), misses)
        for least in (1, 3, 4, 6):
            since = t - rng.randrange(200)
            assert ledger.busy(least) == sum(c for c in counts.values() if c >= least)
            assert ledger.busy(least, since) == sum(
                c for b, c in counts.items() if c >= least and latest[b] >= since
            )


def paced(first: int, count: int, *, start: float = 0, every: float = 45 * 60) -> list[LookupEvent]:
    """A block's numbers, one every `every` seconds, in a shuffled order, half misses."""
    numbers = list(range(first, first + 1_000))
    random.Random(first).shuffle(numbers)
    return [event(n, start + i * every, alternating(i)) for i, n in enumerate(numbers[:count])]


def test_a_block_scanned_a_number_every_45_minutes_is_held_at_its_seventeenth() -> None:
    engine = Engine()
    findings = feed(engine, paced(22202000, 40))
    stop = first_stop(findings)
    assert stop.events_seen == DEFAULT_POLICY.block_known_hold + 1  # the chance excess: 1
    assert (stop.kind, stop.action) == ("block_coverage", "throttle")
    assert stop.evidence["hold"] == "+4722202000..999"
    rule = stop.evidence["rule"]
    assert (rule["tier"], rule["distinct"], rule["misses"], rule["known_days"]) == (
        "known",
        17,
        9,
        35,
    )
    assert len(stop.evidence["lookups"]) == 17


def test_a_scan_of_a_number_every_200_minutes_is_held_as_soon() -> None:
    stop = first_stop(feed(Engine(), paced(22202000, 40, every=200 * 60)))
    assert (stop.events_seen, stop.evidence["rule"]["tier"]) == (17, "known")


def test_a_scan_behind_a_repeat_and_a_decoy_pair_before_each_number_is_held() -> None:
    rng = random.Random(5)
    events, t, found = [], 0.0, [22202000]
    targets = rng.sample(range(22202001, 22203000), 60)
    for i, number in enumerate(targets):
        decoy = rng.randrange(3000, 7000) * 1_000
        for each in (rng.choice(found), decoy + rng.randrange(1_000), decoy + rng.randrange(1_000)):
            events.append(event(each, t, "hit"))
            t += 309
        events.append(event(number, t, alternating(i)))
        found.append(number)
        t += 309
    stop = first_stop(feed(Engine(), events))
    assert stop.evidence["hold"] == "+4722202000..999"
    assert stop.evidence["rule"]["tier"] == "known"
    assert stop.evidence["rule"]["distinct"] == 17


def town_callers(days: int, *, blocks: int = 3, seed: int = 1) -> list[LookupEvent]:
    """A local business's new callers over weeks: most from its town's blocks, the rest
    from anywhere, a third unlisted, in business hours."""
    rng = random.Random(seed)
    town = [rng.randrange(2000, 7000) * 1_000 for _ in range(blocks)]
    seen: set[int] = set()
    events = []
    for day in range(days):
        for _ in range(12):
            if rng.random() < 0.8:
                number = rng.choice(town) + rng.randrange(1_000)
            else:
                number = rng.randrange(40_000_000, 99_999_999)
            if number in seen:
                continue
            seen.add(number)
            moment = day * DAY + 8 * HOUR + rng.random() * 9 * HOUR
            events.append(event(number, moment, "miss" if rng.random() < 0.33 else "hit"))
    return sorted(events, key=lambda e: e.ts)


def test_a_three_block_towns_callers_over_four_weeks_are_never_held() -> None:
    for seed in range(1, 6):
        findings = feed(Engine(), town_callers(28, seed=seed))
        assert not [f for f in findings if stops(f)], seed


def test_numbers_not_looked_up_for_the_known_days_leave_the_count() -> None:
    known = DEFAULT_POLICY.known_seconds
    engine = Engine()
    scan = paced(22202000, 30)
    assert not [f for f in feed(engine, scan[:10]) if stops(f)]
    # Past the known days the first ten are gone: ten more make ten, not twenty.
    later = [
        event(int(e.number[3:]), known + DAY + i * 45 * 60, e.outcome)
        for i, e in enumerate(scan[10:])
    ]
    findings = feed(engine, later)
    assert first_stop(findings).events_seen == 10 + 17
    assert engine._accounts["acme"].ledger.tally(22202000)[0] == 20  # the later ones only


def test_clearing_an_account_starts_its_count_afresh_and_its_old_numbers_stay_repeats() -> None:
    engine = Engine()
    scan = paced(22202000, 40)
    assert first_stop(feed(engine, scan[:17])).events_seen == 17
    engine.reset("acme")
    # Its old numbers again are repeats; only new ones count, from nothing.
    again = [event(int(e.number[3:]), 20 * HOUR + i * 60, e.outcome) for i, e in enumerate(scan)]
    findings: list[Finding] = feed(engine, again[:17])
    findings += feed(engine, paced(22202000, 40, start=DAY)[17:33])
    assert not [f for f in findings if stops(f)]
    assert engine._accounts["acme"].ledger.tally(22202000)[0] == 16
    assert first_stop(feed(engine, paced(22202000, 40, start=DAY)[33:])).events_seen == 17 + 34


def test_a_walk_through_a_block_every_200_minutes_is_held_past_a_companys_range() -> None:
    walk = [event(22202000 + i, i * 200 * 60, alternating(i)) for i in range(60)]
    stop = first_stop(feed(Engine(), walk))
    # A company's extensions, calling over weeks, are as tight: up to the run rule's flag.
    assert stop.events_seen == DEFAULT_POLICY.run_flag
    assert (stop.evidence["rule"]["tier"], stop.evidence["hold"]) == ("known", "+4722202000..999")


def test_a_companys_extensions_calling_over_weeks_in_any_order_are_not_held() -> None:
    rng = random.Random(3)
    extensions = [22202400 + offset for offset in range(20)]
    calls = [
        event(rng.choice(extensions), day * DAY + rng.random() * 9 * HOUR, alternating(day))
        for day in range(30)
        for _ in range(3)
    ]
    calls.sort(key=lambda e: e.ts)
    assert not [f for f in feed(Engine(), calls) if stops(f)]


def test_a_scan_moving_on_to_a_new_block_every_20_numbers_is_held_in_each() -> None:
    # The blocks it left hold as many numbers as the one it is in, but it has left them;
    # a first number of the next block taken while still in the one before changes nothing.
    walks = [
        [first + n for n in random.Random(first).sample(range(1_000), 20)]
        for first in [22202000, 33221000, 55643000]
    ]
    walks[0].insert(10, walks[1].pop(0))
    numbers = [n for walk in walks for n in walk]
    hops = [event(n, i * 200 * 60, alternating(i)) for i, n in enumerate(numbers)]
    stops_ = [f for f in feed(Engine(), hops) if stops(f)]
    assert [(f.events_seen, f.action, f.evidence["rule"]["tier"]) for f in stops_] == [
        (18, "throttle", "known"),
        (37, "throttle", "known"),
        (57, "suspend", "known"),  # a third block held within the week
    ]
    assert stops_[1].evidence["rule"]["in_busy_blocks"] == 17


def test_a_two_block_towns_first_callers_crowding_one_block_are_not_held() -> None:
    # Seventeen callers from one town block and five from the other over two weeks:
    # three in four from one block by chance, as two-block towns' first callers can be.
    rng = random.Random(8)
    busier = rng.sample(range(22202000, 22203000), 17)
    other = rng.sample(range(33221000, 33222000), 5)
    numbers = []
    for i, number in enumerate(busier):
        numbers.append(number)
        if i in (2, 6, 9, 12, 15):  # the other block's callers, among them all along
            numbers.append(other.pop(0))
    calls = [event(n, i * 14 * HOUR, alternating(i)) for i, n in enumerate(numbers)]
    assert not [f for f in feed(Engine(), calls) if stops(f)]
    # Alone in its block, the same seventeen are a slow scan's.
    alone = [e for e in calls if e.number.startswith("+4722202")]
    assert first_stop(feed(Engine(), alone)).evidence["rule"]["tier"] == "known"


def test_three_blocks_taken_in_turns_at_unequal_paces_with_nothing_else_are_flagged() -> None:
    # Three numbers of one block for each one of two others, one every 45 minutes: the
    # other two are busy enough to share the first's attention, as a town's blocks are.
    rng = random.Random(4)
    blocks = (22202000, 33221000, 55643000)
    walks = [rng.sample(range(first, first + 1_000), 300) for first in blocks]
    numbers = [walks[(0, 0, 0, 1, 2)[i % 5]].pop() for i in range(300)]
    scan = [event(n, i * 45 * 60, alternating(i)) for i, n in enumerate(numbers)]
    findings = feed(Engine(), scan)
    assert not [f for f in findings if stops(f)]
    turns = [f for f in findings if f.evidence["rule"]["tier"] == "known_turns"]
    assert turns and turns[0].action == "flag"
    assert turns[0].events_seen == DEFAULT_POLICY.block_known_turns_span
    assert turns[0].evidence["rule"]["numbers"] == 100


def test_a_towns_callers_one_in_five_from_elsewhere_are_never_flagged_as_turns() -> None:
    for seed in range(1, 6):
        findings = feed(Engine(), town_callers(28, seed=seed))
        tiers = [f.evidence.get("rule", {}).get("tier", "") for f in findings]
        assert not [tier for tier in tiers if tier.startswith("known")], seed


def test_a_town_whose_callers_are_all_local_and_often_unlisted_is_flagged_never_suspended() -> None:
    # Every caller from its three blocks, half of them unlisted: the miss test flags it too,
    # but known_turns stands apart, neither corroborating nor corroborated.
    rng = random.Random(2)
    town = [first * 1_000 for first in (22202, 33221, 55643)]
    numbers = list(dict.fromkeys(rng.choice(town) + rng.randrange(1_000) for _ in range(330)))
    calls = [
        event(
            n, i // 12 * DAY + 8 * HOUR + i % 12 * 45 * 60, "miss" if rng.random() < 0.5 else "hit"
        )
        for i, n in enumerate(numbers)
    ]
    findings = feed(Engine(), calls)
    assert not [f for f in findings if f.action != "flag"]
    tiers = {f.evidence.get("rule", {}).get("tier") for f in findings}
    assert "known_turns" in tiers
    assert {f.kind for f in findings} >= {"miss_ratio", "block_coverage"}
    turns = next(f for f in findings if f.evidence["rule"].get("tier") == "known_turns")
    assert "corroborated_by" not in turns.evidence
    assert turns.evidence["rule"]["pattern"] == "known_turns"


def test_a_restart_reads_a_known_turns_flag_back_into_its_own_slot() -> None:
    engine = Engine()
    engine.recall("acme", "block_coverage", "flag", event(1, 0).ts, pattern="known_turns")
    assert set(engine._accounts["acme"].fired) == {"known_turns"}
