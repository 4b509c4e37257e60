"""Block holds: which block a number is in, and which of a case's lookups a hold refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from lookup.abuse.holds import Hold, held, mark_held

T0 = datetime(2026, 11, 2, 9, 0)


def test_a_hold_is_the_allocation_block_mobile_ten_thousand_else_one_thousand() -> None:
    assert Hold.of(91234567) == Hold(10_000, 91230000)
    assert Hold.of(22202451).label == "+4722202000..999"
    assert Hold.parse("+4722202000..999") == Hold.of(22202999)
    assert held({Hold.of(22202000)}, 22202999) == Hold(1000, 22202000)
    assert held({Hold.of(22202000)}, 22203000) is None


@pytest.mark.parametrize("label", ["22202000..999", "+4722202000", "+47ab..999", "+472220..x"])
def test_a_label_that_names_no_block_is_refused(label: str) -> None:
    with pytest.raises(ValueError, match="is not a block like"):
        Hold.parse(label)


def _finding(minutes: float, *, enforced: bool = True) -> dict[str, Any]:
    return {
        "ts": T0 + timedelta(minutes=minutes),
        "evidence": {"hold": "+4722202000..999"},
        "enforced": enforced,
    }


def _timeline(
    *minutes: float,
    number: str = "+4722202450",
    endpoint: str = "numbers",
    held: bool | None = None,
) -> list[dict[str, Any]]:
    """Lookups as the log gives them (`held` null: logged before it said which were)."""
    return [
        {"ts": T0 + timedelta(minutes=m), "number": number, "endpoint": endpoint, "held": held}
        for m in minutes
    ]


def test_lookups_in_the_block_after_the_hold_and_before_its_release_are_held() -> None:
    timeline = _timeline(0, 5, 10, 20)
    mark_held(timeline, [_finding(1)], released=T0 + timedelta(minutes=15))
    assert [item["held"] for item in timeline] == [False, True, True, False]


def test_a_hold_found_while_the_account_was_on_review_refused_nothing() -> None:
    timeline = _timeline(5)
    mark_held(timeline, [_finding(1, enforced=False)])
    assert timeline[0]["held"] is False
    # Enforced later (the account back on automatic enforcement), it holds from then.
    timeline = _timeline(5)
    mark_held(timeline, [_finding(1, enforced=False), _finding(3)])
    assert timeline[0]["held"] is True


def test_searches_and_lookups_elsewhere_are_never_held() -> None:
    timeline = [
        *_timeline(5, number="+4722203000"),
        *_timeline(5, endpoint="search"),
        *_timeline(5, number="Hansen", endpoint="search"),
    ]
    mark_held(timeline, [_finding(1)])
    assert [item["held"] for item in timeline] == [False, False, False]


def test_what_the_log_says_of_a_lookup_is_kept_an_erased_one_too() -> None:
    # Logged since the log records it, a lookup says itself whether it was refused: one
    # answered before the server saw the hold is no held one, and an erased number (whose
    # block went with it) stays held (it became not held once erased).
    timeline = [*_timeline(2, held=False), *_timeline(3, number="erased", held=True)]
    mark_held(timeline, [_finding(1)])
    assert [item["held"] for item in timeline] == [False, True]
