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
    block = Block("key", "ip")
    for item in lookups([22202001, 22202101, 22202201, 22202301], every=600):
        block.add(item)
    burst = 3 * 600 + 1200 + 1
    assert RULE.known(block, burst)
    # Three are not enough, nor four of which the last is within the fast rule's time.
    assert not RULE.known(block, burst - 1)
    three = Block("key", "ip")
    for item in lookups([22202001, 22202101, 22202201], every=600):
        three.add(item)
    assert not RULE.known(three, burst + 3600)
