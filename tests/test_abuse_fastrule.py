"""The fast rule's look-alike tests, directly on blocks."""

from __future__ import annotations

from datetime import datetime, timedelta

from lookup.abuse.fastrule import FastRule
from lookup.abuse.policy import DEFAULT_POLICY
from lookup.abuse.state import Block, Lookup

T0 = datetime(2026, 11, 2, 9, 0)
RULE = FastRule(DEFAULT_POLICY)


def lookups(numbers: list[int], start: float = 0, every: float = 60) -> list[Lookup]:
    return [
        Lookup(
            T0 + timedelta(seconds=start + i * every),
            start + i * every,
            n,
            "hit",
            "k",
            "ip",
            "acme",
            i,
        )
        for i, n in enumerate(numbers)
    ]


def test_a_tight_cluster_met_in_no_order_is_a_company_range_and_a_walk_is_not() -> None:
    assert RULE.company_range(lookups([22202047, 22202041, 22202052, 22202044]))
    assert not RULE.company_range(lookups([22202041, 22202044, 22202047, 22202052]))
    assert not RULE.company_range(lookups([22202052, 22202047, 22202044, 22202041]))
    # Wider than a direct-dial range: a shuffled scan, whatever the order.
    assert not RULE.company_range(lookups([22202047, 22202541, 22202952, 22202144]))


def test_a_block_is_known_once_more_than_three_of_its_numbers_came_well_before() -> None:
    block = Block(("key", "ip"))
    for item in lookups([22202001, 22202101, 22202201, 22202301], every=600):
        block.add(item)
    burst = 3 * 600 + 1200 + 1
    assert RULE.known(block, burst)
    # Three are not enough, nor four of which the last is within the fast rule's time.
    assert not RULE.known(block, burst - 1)
    three = Block(("key", "ip"))
    for item in lookups([22202001, 22202101, 22202201], every=600):
        three.add(item)
    assert not RULE.known(three, burst + 3600)


def block_of(items: list[Lookup]) -> Block:
    block = Block(("account", "missed_by"))
    for item in items:
        block.add(item)
    return block


def test_four_numbers_a_step_apart_within_a_minute_are_a_walk_in_either_direction() -> None:
    rising = block_of(lookups([22202000, 22202003, 22202004, 22202016], every=15))
    assert [item.number for item in RULE.walk(rising, 1) or []] == [
        22202000,
        22202003,
        22202004,
        22202016,
    ]
    assert RULE.walk(block_of(lookups([22202016, 22202004, 22202003, 22202000], every=15)), 1)


def test_out_of_order_wide_steps_or_slow_numbers_are_no_walk() -> None:
    # A company's extensions calling in: tight, but in no order.
    assert (
        RULE.walk(block_of(lookups([22202004, 22202000, 22202016, 22202003], every=15)), 1) is None
    )
    # A step wider than a run's stride.
    assert (
        RULE.walk(block_of(lookups([22202000, 22202003, 22202004, 22202021], every=15)), 1) is None
    )
    # In order, but over more than the rapid tier's minute.
    assert (
        RULE.walk(block_of(lookups([22202000, 22202001, 22202002, 22202003], every=21)), 1) is None
    )
    # Too few numbers.
    assert RULE.walk(block_of(lookups([22202000, 22202001, 22202002], every=1)), 1) is None
