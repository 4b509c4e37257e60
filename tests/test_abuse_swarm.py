"""The swarm rule: a block split between new accounts, each on an address of its own."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.evaluate import AccountResult, run
from lookup.abuse.events import LookupEvent
from lookup.abuse.holds import Hold, Swarmed, swarm_in, swarmed
from lookup.abuse.policy import DEFAULT_POLICY
from lookup.abuse.simulate import Actor

T0 = datetime(2026, 11, 2, 9, 0)
BLOCK = 22_202_000


def sybils(
    count: int,
    each: int = 3,
    *,
    start: datetime = T0,
    gap: float = 60,
    seed: int = 1,
    name: str = "sybil",
    ip: str | None = None,
) -> Iterator[LookupEvent]:
    """`count` new accounts, each from its own address (or all from `ip`), taking `each`
    numbers of one block in turn, a lookup every `gap` seconds; about a third of the
    block's numbers unlisted."""
    rng = random.Random(seed)
    numbers = rng.sample(range(BLOCK, BLOCK + 1000), count * each)
    for index, number in enumerate(numbers):
        account = index // each
        yield LookupEvent(
            ts=start + timedelta(seconds=gap * index),
            account=f"{name}-{account}",
            key=f"{name}-{account}-k",
            ip=ip or f"10.1.{account // 250}.{account % 250 + 1}",
            number=f"+47{number}",
            outcome="miss" if number % 3 == 0 else "hit",
        )


def observe(engine: Engine, events: Iterator[LookupEvent]) -> list[tuple[int, Finding]]:
    return [(i, f) for i, event in enumerate(events, 1) for f in engine.observe(event)]


def test_new_accounts_splitting_a_block_have_it_held_each() -> None:
    found = observe(Engine(), sybils(40))
    # The sixth account's first number makes six accounts and 16 numbers, a third missed:
    # each of the six has the block held at once; each account after, at its first number.
    first = [f for i, f in found if i == 16]
    assert sorted(f.account for f in first) == [f"sybil-{i}" for i in range(6)]
    assert {(f.kind, f.action, f.evidence["hold"]) for f in first} == {
        ("distributed_scan", "throttle", "+4722202000..999")
    }
    rule = first[0].evidence["rule"]
    assert (rule["pattern"], rule["accounts"], rule["numbers"]) == ("swarm", 6, 16)
    assert first[0].evidence["block"] == "+4722202000..999"
    assert len(first[0].evidence["ips"]) == 6 and len(first[0].evidence["lookups"]) == 16
    later = {f.account: i for i, f in found if i > 16}
    assert later == {f"sybil-{a}": 3 * a + 1 for a in range(6, 40)}


def test_a_swarms_evidence_counts_a_number_two_accounts_took_once() -> None:
    engine = Engine()
    events = list(sybils(6))
    found = observe(engine, iter(events))
    missed = next(e for e in events if e.outcome == "miss")
    # A seventh new account whose one number is one the swarm already met.
    again = msgspec.structs.replace(
        missed, account="late", key="late-k", ip="10.3.0.1", ts=T0 + timedelta(hours=1)
    )
    (finding,) = engine.observe(again)
    rule = finding.evidence["rule"]
    distinct = {e.number: e.outcome for e in events}
    assert rule["numbers"] == len(distinct) == 18
    assert rule["misses"] == sum(outcome == "miss" for outcome in distinct.values())
    assert len(finding.evidence["lookups"]) == 19
    assert found


def test_a_swarm_needs_misses_and_enough_accounts() -> None:
    # All listed numbers: a town's new customers' first callers, not a scan of it.
    listed = (msgspec.structs.replace(event, outcome="hit") for event in sybils(40))
    assert observe(Engine(), listed) == []
    # Five accounts, however many numbers each would take, are under the bar.
    assert observe(Engine(), sybils(5)) == []


def test_a_number_elsewhere_first_does_not_hide_a_new_account() -> None:
    # Each account looks up a number of another block before its share of this one: a
    # decoy. It took the block whole when the rule asked for every number in it.
    engine = Engine()
    events: list[LookupEvent] = []
    for event in sybils(40):
        if int(event.account.split("-")[1]) != len({e.account for e in events}) - 1:
            events.append(
                msgspec.structs.replace(
                    event,
                    ts=event.ts - timedelta(seconds=10),
                    number=f"+4791{len(events):06d}",
                    outcome="hit",
                )
            )
        events.append(event)
    found = observe(engine, iter(events))
    # The sixth account's first number of the block: its decoy and its number are its
    # 17th and 18th lookups of the scan.
    first = min(i for i, _ in found)
    assert first == 16 + 6
    assert sorted(f.account for i, f in found if i == first) == [f"sybil-{i}" for i in range(6)]


def test_accounts_that_went_on_elsewhere_leave_the_swarm() -> None:
    # Accounts past 8 numbers (anywhere) are customers growing, not issued for a block:
    # six such accounts are no swarm.
    engine = Engine()
    events = list(sybils(6))
    for account in range(6):
        at = events[4 * account].ts - timedelta(seconds=30)
        for extra in range(DEFAULT_POLICY.swarm_small - 2):
            events.append(
                LookupEvent(
                    ts=at + timedelta(seconds=extra),
                    account=f"sybil-{account}",
                    key="k",
                    ip="10.9.9.9",
                    number=f"+479{account}{extra:06d}",
                    outcome="hit",
                )
            )
    assert observe(engine, iter(sorted(events, key=lambda e: e.ts))) == []


def test_the_first_numbers_of_new_customers_spread_over_the_plan_are_no_swarm() -> None:
    # A thousand new accounts a day, three numbers each from anywhere in the plan.
    rng = random.Random(3)
    events = [
        LookupEvent(
            ts=T0 + timedelta(seconds=30 * i),
            account=f"new-{i // 3}",
            key="k",
            ip=f"10.2.{i // 750}.{i // 3 % 250 + 1}",
            number=f"+47{rng.choice([2, 3, 5, 6, 7, 4, 9])}{rng.randrange(10**7):07d}",
            outcome="miss" if rng.random() < 0.35 else "hit",
        )
        for i in range(3000)
    ]
    assert observe(Engine(), iter(events)) == []


def test_a_swarm_lasts_a_window_and_compliance_clearing_an_account_takes_it_out() -> None:
    engine = Engine()
    assert observe(engine, sybils(6))
    # Cleared, an account is a customer compliance knows: its next new number in the
    # block is no swarm's.
    engine.reset("sybil-5")
    fourth = LookupEvent(
        ts=T0 + timedelta(hours=1),
        account="sybil-5",
        key="k",
        ip="10.1.0.6",
        number="+4722202999",
        outcome="miss",
    )
    assert engine.observe(fourth) == []
    # Within the day, a new account's first number there has it held; a day after, new
    # accounts need six of their own again.
    assert len(observe(engine, sybils(1, start=T0 + timedelta(hours=2), name="new"))) == 1
    later = T0 + timedelta(seconds=DEFAULT_POLICY.swarm_seconds + 3600)
    assert observe(engine, sybils(5, start=later, seed=2, name="later")) == []
    assert observe(engine, sybils(6, start=later, seed=2, name="again"))


def test_customers_with_numbers_remembered_over_a_restart_are_no_new_accounts() -> None:
    # Six shops with a month's callers (as a restarted monitor remembers them from the
    # lookup log), each with two new callers today from one town block, one unlisted.
    engine = Engine()
    for shop in range(6):
        for number in range(30):
            engine.remember(
                f"shop-{shop}", f"+4791{shop:02d}{number:04d}", T0 - timedelta(days=10), "hit"
            )
    assert observe(engine, sybils(6, each=2, name="shop")) == []


def test_one_addresss_accounts_are_the_address_rules_not_a_swarm() -> None:
    # A SaaS integrator's new customers behind its address, each trying its two test
    # numbers (one unlisted), then their first callers from its town's block.
    tests = ("+4721279000", "+4721279003")
    trials = [
        LookupEvent(
            ts=T0 + timedelta(seconds=10 * i),
            account=f"saas-{i // 2}",
            key="k",
            ip="192.0.2.10",
            number=tests[i % 2],
            outcome="miss" if i % 2 else "hit",
        )
        for i in range(12)
    ]
    assert observe(Engine(), iter(trials)) == []
    # Accounts splitting a block from one address: the address rule's (it suspends them).
    found = observe(Engine(), sybils(8, each=2, ip="192.0.2.10"))
    assert found
    assert {f.evidence["rule"].get("pattern") for _, f in found} == {None}


def test_an_erased_number_is_quoted_as_erased_in_a_swarms_evidence() -> None:
    engine = Engine()
    events = list(sybils(6))
    engine.erase(events[0].number, T0 + timedelta(hours=1))
    found = observe(engine, iter(events))
    quoted = [item["number"] for item in found[0][1].evidence["lookups"]]
    assert quoted[0] == "erased" and events[0].number not in str(found[0][1].evidence)


def test_a_swarm_names_whom_the_api_refuses_its_block_and_until_when() -> None:
    found = observe(Engine(), sybils(40))
    swarms = {swarm_in(f.evidence) for _, f in found}
    # Every finding of the swarm names the same refusal: from the lookup that found it,
    # accounts opened in the week before, for the swarm's day.
    swarmed_at = T0 + timedelta(minutes=15)  # the 16th lookup, a minute apart
    assert swarms == {
        Swarmed(
            Hold.of(BLOCK),
            swarmed_at - timedelta(seconds=DEFAULT_POLICY.swarm_young_seconds),
            swarmed_at + timedelta(seconds=DEFAULT_POLICY.swarm_seconds),
        )
    }
    (swarm,) = swarms
    assert swarm is not None
    by_block = {swarm.hold: swarm}
    newcomer = swarmed_at + timedelta(hours=1)
    assert swarmed(by_block, BLOCK + 517, newcomer, newcomer) == swarm
    assert swarmed(by_block, BLOCK + 517, None, newcomer) == swarm  # unknown: taken for new
    # An account opened before the week, a number of another block, a lookup after the
    # day: answered.
    customer = swarmed_at - timedelta(days=8)
    assert swarmed(by_block, BLOCK + 517, customer, newcomer) is None
    assert swarmed(by_block, BLOCK + 1_517, newcomer, newcomer) is None
    assert swarmed(by_block, BLOCK + 517, newcomer, swarm.until) is None


def _opening(event: LookupEvent, at: datetime) -> LookupEvent:
    """The account's first lookup, at `at`: a number of another block."""
    return msgspec.structs.replace(event, ts=at, number=f"+47{BLOCK + 20_000 + 7}")


def test_the_harness_refuses_a_swarmed_block_to_accounts_opened_for_it() -> None:
    def split(opened: datetime | None) -> dict[str, AccountResult]:
        actors: list[Actor] = []
        for event in sybils(40):
            if not actors or actors[-1].account != event.account:
                actors.append(Actor("sybil", event.account, scraper=True, scrape_from=T0))
                if opened is not None:
                    actors[-1].events.append(_opening(event, opened))
            actors[-1].events.append(event)
        return run(actors)[0]

    # Opened just before their first lookups: after the 16th lookup found the swarm, each
    # later account gets nothing of the block.
    fresh = split(None)
    taken = {number for result in fresh.values() for number in result.extracted}
    first = {e.number for e in itertools.islice(sybils(40), 16) if e.outcome == "hit"}
    assert taken == first
    assert all(not fresh[f"sybil-{a}"].extracted for a in range(6, 40))
    # Accounts opened by a lookup more than a week before: each later one gets its first
    # number.
    aged = split(T0 - timedelta(days=8))
    assert all(len(aged[f"sybil-{a}"].extracted) <= 1 for a in range(6, 40))
    assert len({n for r in aged.values() for n in r.extracted}) > len(taken) + 15


def test_the_harness_counts_a_new_customer_refused_a_swarmed_block() -> None:
    # A customer whose first lookup is the hour after the swarm, of a caller who lives in
    # the block, and one first used a month before, whose caller does too: the new one is
    # refused, as the API would, and counted; the older one is answered.
    actors: list[Actor] = []
    for event in sybils(8):
        if not actors or actors[-1].account != event.account:
            actors.append(Actor("sybil", event.account, scraper=True, scrape_from=T0))
        actors[-1].events.append(event)
    caller = next(e for e in sybils(8, seed=9) if e.outcome == "hit")
    for name, opened in (("new-shop", None), ("old-shop", T0 - timedelta(days=30))):
        shop = Actor("local_business", name, scraper=False)
        call = msgspec.structs.replace(
            caller, account=name, key=f"{name}-k", ip="192.0.2.1", ts=T0 + timedelta(hours=1)
        )
        shop.events.extend([_opening(call, opened)] if opened is not None else [])
        shop.events.append(call)
        actors.append(shop)
    results, _ = run(actors)
    assert (results["new-shop"].swarm_refused, results["old-shop"].swarm_refused) == (1, 0)
