"""The decisions' hash chain, directly: what it detects and the format stores already hold."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from lookup.abuse.audit import GENESIS, Decision, check, intact, seal

T0 = datetime(2026, 11, 2, 9, 30, 0, 123456)


def _chain(count: int) -> list[Decision]:
    chain: list[Decision] = []
    for i in range(count):
        prev = chain[-1].hash if chain else GENESIS
        decision = ("suspend", "warn", "reinstate")[i % 3]
        chain.append(
            seal(prev, i + 1, 7, "acme", decision, "officer-1", f"why {i}", T0 + timedelta(i))
        )
    return chain


def _head(chain: list[Decision]) -> tuple[int, str]:
    return len(chain), chain[-1].hash


def test_the_hash_format_is_the_one_stores_already_hold() -> None:
    # Computed by the store before the chain had a module of its own: a change of format
    # would make every existing audit trail fail verification.
    sealed = seal(GENESIS, 1, 7, "acme", "suspend", "officer-1", "walked 22202xxx", T0)
    assert sealed.hash == "6191affc925470211bceee44987c70f193752a0f62f88c897af26eebf407bc31"
    assert sealed.prev_hash == GENESIS


def test_an_untouched_chain_is_intact_and_so_is_an_empty_one() -> None:
    chain = _chain(4)
    assert [d.prev_hash for d in chain[1:]] == [d.hash for d in chain[:-1]]
    assert intact(chain, _head(chain))
    assert intact([], (0, GENESIS))


@pytest.mark.parametrize("field", ["decision", "actor", "reason", "account", "ts", "case_id"])
def test_an_edited_decision_breaks_the_chain(field: str) -> None:
    chain = _chain(4)
    value = getattr(chain[1], field)
    changed = value + timedelta(seconds=1) if isinstance(value, datetime) else value * 2
    chain[1] = msgspec.structs.replace(chain[1], **{field: changed})
    assert not intact(chain, _head(_chain(4)))


def test_a_removed_inserted_or_reordered_decision_is_detected() -> None:
    chain = _chain(4)
    head = _head(chain)
    assert not intact(chain[:1] + chain[2:], head)
    assert not intact([chain[0], chain[2], chain[1], chain[3]], head)
    forged = seal(chain[1].hash, 9, 7, "acme", "reinstate", "intruder", "x", T0)
    assert not intact([*chain[:2], forged, *chain[2:]], head)
    # The newest rows gone leave an unbroken chain: only the head shows it.
    assert intact(chain[:3], _head(chain[:3]))
    assert not intact(chain[:3], head)
    assert not intact(chain, None)


def test_a_head_recorded_earlier_is_passed_through_or_named_as_broken() -> None:
    chain = _chain(4)
    early = _head(chain[:2])
    assert check(chain, _head(chain), early).intact
    assert check(chain, _head(chain), (0, GENESIS)).intact  # recorded before any decision
    assert check(chain, _head(chain), _head(chain)).intact
    # Resealed from decision 2 on (its reason changed), head and all: only the record shows.
    forged = chain[:1]
    for d in chain[1:]:
        reason = "nothing to see" if d.id == chain[1].id else d.reason
        forged.append(
            seal(forged[-1].hash, d.id, d.case_id, d.account, d.decision, d.actor, reason, d.ts)
        )
    assert check(forged, _head(forged)).intact
    caught = check(forged, _head(forged), early)
    assert (caught.intact, caught.broken_at) == (False, chain[1].id)
    # A record from further on than the trail goes (cut, and the head cut with it).
    cut = check(chain[:3], _head(chain[:3]), _head(chain))
    assert (cut.intact, cut.broken_at) == (False, None)
