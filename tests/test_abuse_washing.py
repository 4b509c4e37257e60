"""The list-washing rule: a bought list washed day after day is flagged, customers are not."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from lookup.abuse import decisions as decisions_module
from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import EPOCH, LookupEvent
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.policy import DEFAULT_POLICY
from lookup.abuse.store import ComplianceStore
from lookup.abuse.washing import Clearance, Day, Washing
from tests.test_abuse_warm import monitor

MONDAY = datetime(2026, 11, 2, 8, 0)


def _scattered(index: int) -> int:
    """The `index`th of distinct numbers spread over the whole plan."""
    return 40000000 + (index * 104729 * 7919) % 59_000_000


def _working_day(
    day: int, numbers: list[int], *, misses_every: int = 7, account: str = "acme"
) -> list[LookupEvent]:
    """Lookups of `numbers` spread evenly over a day's eight working hours."""
    step = 8 * 3600 / len(numbers)
    return [
        LookupEvent(
            ts=MONDAY + timedelta(days=day, seconds=i * step),
            account=account,
            key="k1",
            ip="10.0.0.1",
            number=f"+47{number:08d}",
            outcome="miss" if i % misses_every == 0 else "hit",
        )
        for i, number in enumerate(numbers)
    ]


def _feed(engine: Engine, events: list[LookupEvent]) -> list[Finding]:
    return [finding for e in events for finding in engine.observe(e)]


def test_a_bought_list_washed_day_after_day_is_flagged_once_its_third_day_is_over() -> None:
    engine = Engine()
    days = [_working_day(day, [_scattered(day * 400 + i) for i in range(400)]) for day in range(5)]
    assert _feed(engine, days[0] + days[1] + days[2]) == []
    findings = _feed(engine, days[3][:1])
    assert len(findings) == 1
    flag = findings[0]
    assert (flag.kind, flag.action) == ("distinct_velocity", "flag")
    # On the first lookup of the day after the third.
    assert flag.events_seen == 3 * 400 + 1
    assert flag.ts == days[3][0].ts
    evidence = flag.evidence
    assert evidence["rule"]["pattern"] == "list_washing"
    assert evidence["rule"]["days_needed"] == 3
    assert evidence["days"] == [
        {"day": f"2026-11-0{2 + day}", "lookups": 400, "new": 400, "new_hits": 342}
        for day in range(3)
    ]
    assert evidence["lookups"][-1]["number"] == days[2][-1].number
    # A flag for compliance to judge: the same week adds no second one, and no suspension.
    assert _feed(engine, days[3][1:] + days[4]) == []


def test_a_day_is_judged_on_all_its_lookups_not_its_first_hours() -> None:
    # A shop importing 250 sign-ups at 02:00 every night, its 1,500 customers calling on
    # working days: each working day is all new until 08:00, a sixth new by its end. Only the
    # weekends' days are mostly new: two in any week.
    engine = Engine()
    base = [_scattered(i) for i in range(1500)]
    for number in base:
        engine.remember("acme", f"+47{number:08d}", MONDAY - timedelta(days=10))
    findings = []
    for day in range(21):
        imported = [_scattered(1500 + day * 250 + i) for i in range(250)]
        findings += _feed(engine, _at_night(day, imported))
        if (MONDAY + timedelta(days=day)).weekday() < 5:
            findings += _feed(engine, _working_day(day, base))
    assert findings == []


def _at_night(day: int, numbers: list[int]) -> list[LookupEvent]:
    """Lookups of `numbers` from 02:00, one a second."""
    return [
        msgspec.structs.replace(e, ts=MONDAY + timedelta(days=day, hours=-6, seconds=i))
        for i, e in enumerate(_working_day(day, numbers))
    ]


def test_a_customer_whose_days_are_mostly_repeats_after_its_first_is_not_flagged() -> None:
    # A first refresh of 3,000 customers, then 600 calls a day from them with 150 new ones:
    # as many new numbers a day as a washer's, but a fifth of the lookups.
    engine = Engine()
    base = [_scattered(i) for i in range(3000)]
    findings = _feed(engine, _working_day(0, base))
    for day in range(1, 10):
        calls = [base[(day * 7919 + i * 31) % 3000] for i in range(450)]
        new = [_scattered(3000 + day * 150 + i) for i in range(150)]
        findings += _feed(engine, _working_day(day, calls + new))
    assert findings == []


def test_new_customers_signing_up_on_one_day_a_week_are_not_flagged() -> None:
    # A campaign's import of 1,000 new customers each Monday: one qualifying day a week.
    engine = Engine()
    findings = []
    for week in range(4):
        numbers = [_scattered(week * 1000 + i) for i in range(1000)]
        findings += _feed(engine, _working_day(week * 7, numbers))
    assert findings == []


def test_a_washing_flag_does_not_make_another_rules_flag_a_suspension() -> None:
    # Washing evidence is thin on its own (a customer with a huge base looks the same): it
    # must not count as a second rule agreeing, which suspends.
    engine = Engine()
    for day in range(3):
        _feed(engine, _working_day(day, [_scattered(day * 400 + i) for i in range(400)]))
    misses = _working_day(3, [_scattered(5000 + i) for i in range(40)], misses_every=1)
    washing, *findings = _feed(engine, misses)
    assert (washing.kind, washing.action) == ("distinct_velocity", "flag")
    assert [(f.kind, f.action) for f in findings] == [("miss_ratio", "flag")]
    assert "corroborated_by" not in findings[0].evidence


def _at(day: int, hour: float = 9) -> float:
    return (MONDAY + timedelta(days=day, hours=hour) - EPOCH).total_seconds()


def test_a_late_lookup_counts_into_its_own_day_and_old_days_are_let_go() -> None:
    washing, days = Washing(DEFAULT_POLICY), deque[Day]()
    assert washing.count(days, _at(0), new=True, hit=True)  # the first day begins
    assert washing.count(days, _at(2), new=False, hit=True)
    # From another worker, late: into its own days, the one before inserted in order.
    assert not washing.count(days, _at(0, 10), new=True, hit=False)
    assert not washing.count(days, _at(1, 15.9), new=True, hit=True)  # 23:54
    assert [(d.day - days[0].day, d.lookups, d.new, d.new_hits) for d in days] == [
        (0, 2, 2, 1),
        (1, 1, 1, 1),
        (2, 1, 0, 0),
    ]
    assert washing.count(days, _at(8), new=True, hit=True)
    # The newest day and the seven before it are kept; a lookup dated earlier is not counted.
    assert [d.day - days[0].day for d in days] == [0, 1, 7]
    assert not washing.count(days, _at(0, 11), new=True, hit=True)
    assert sum(d.lookups for d in days) == 3


def test_a_late_lookup_from_before_the_first_kept_day_gets_a_day_of_its_own() -> None:
    washing, days = Washing(DEFAULT_POLICY), deque[Day]()
    assert washing.count(days, _at(3), new=True, hit=True)
    assert not washing.count(days, _at(2, 14), new=False, hit=True)
    assert [(d.day - days[0].day, d.lookups) for d in days] == [(0, 1), (1, 1)]


def test_a_restarted_monitor_remembers_the_days_a_list_was_washed(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    days = [_working_day(day, [_scattered(day * 400 + i) for i in range(400)]) for day in range(3)]
    assert monitor(store, tmp_path).submit(days[0] + days[1]) == []
    restarted = monitor(store, tmp_path)
    assert restarted.warm(days[2][0].ts) == 800
    assert restarted.submit(days[2]) == []
    findings = restarted.submit([msgspec.structs.replace(days[2][0], ts=MONDAY + timedelta(3))])
    assert [(f.kind, f.action) for f in findings] == [("distinct_velocity", "flag")]
    assert [day["new"] for day in findings[0].evidence["days"]] == [400, 400, 400]
    store.close()


def test_a_restart_in_the_middle_of_a_washing_flags_evidence_does_not_flag_it_again(
    tmp_path: Path,
) -> None:
    # Washing on days 0-2 (flagged on day 3), then again from day 7 at 13:00. A monitor
    # restarted then replays from day 0 at 13:00: day 0 no longer qualifies, and without the
    # recorded flag the rule would fire again on day 8, within the week of the first.
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    days = [_working_day(day, [_scattered(day * 400 + i) for i in range(400)]) for day in range(4)]
    later = [
        msgspec.structs.replace(e, ts=e.ts + timedelta(days=4, hours=5))
        for e in _working_day(3, [_scattered(5000 + i) for i in range(400)])
    ]
    live = monitor(store, tmp_path)
    assert [f.kind for f in live.submit(days[0] + days[1] + days[2] + days[3][:1])] == [
        "distinct_velocity"
    ]
    restarted = monitor(store, tmp_path)
    restarted.warm(later[0].ts)
    day8 = msgspec.structs.replace(later[0], ts=MONDAY + timedelta(days=8), number="+4799999999")
    assert restarted.submit([*later, day8]) == []
    assert [case["finding_count"] for case in store.cases.summaries()] == [1]
    store.close()


def _washing_days(first: int, count: int, per_day: int = 400) -> list[list[LookupEvent]]:
    """Working days from `first` on, each of `per_day` numbers new to the account."""
    return [
        _working_day(day, [_scattered(day * 10_000 + i) for i in range(per_day)])
        for day in range(first, first + count)
    ]


def _seconds(day: int) -> float:
    return (MONDAY + timedelta(days=day) - EPOCH).total_seconds()


def test_a_customer_compliance_cleared_is_flagged_again_only_when_it_washes_twice_as_much() -> None:
    # A customer with a huge base: 400 new callers a day, every day. Compliance asked and
    # cleared it; the same weeks go on unflagged, and only days past twice the busiest one
    # it cleared count again.
    engine = Engine()
    [flag] = _feed(engine, [e for day in _washing_days(0, 4) for e in day][: 3 * 400 + 1])
    assert flag.evidence["rule"]["daily_new_at_least"] == 200
    assert flag.evidence["rule"]["cleared_busiest_day_new"] == 0
    clearance = Washing(DEFAULT_POLICY).clearance([flag.evidence], _seconds(3))
    assert clearance == Clearance(400, _seconds(33))
    engine.reset("acme", washing_cleared=clearance)
    assert _feed(engine, [e for day in _washing_days(4, 10) for e in day]) == []
    busier = _washing_days(14, 4, per_day=801)
    assert _feed(engine, [e for day in busier[:3] for e in day]) == []
    [again] = _feed(engine, busier[3][:1])
    assert again.evidence["rule"]["daily_new_at_least"] == 801
    assert again.evidence["rule"]["cleared_busiest_day_new"] == 400
    assert [day["new"] for day in again.evidence["days"]][-3:] == [801, 801, 801]


def test_a_clearance_lapses_after_a_month() -> None:
    # A first refresh of 40,000 numbers a day, cleared, must not keep the rule off for
    # good: a list washed at 400 a day is flagged on the first day after the clearance
    # lapsed (day 30, 08:00), the days before judged at the usual bar.
    engine = Engine()
    engine.reset("acme", washing_cleared=Clearance(40_000, _seconds(30)))
    days = _washing_days(27, 7)
    findings = _feed(engine, [e for day in days for e in day])
    assert [f.ts for f in findings] == [days[4][0].ts]
    assert findings[0].evidence["rule"]["cleared_busiest_day_new"] == 0


def test_a_clearance_counts_only_the_days_that_counted_towards_the_flag() -> None:
    # A busy day of mostly repeats in the flagged week (3,000 new of 5,000) did not count:
    # it must not raise the bar to 6,001.
    evidence: dict[str, Any] = {
        "rule": {"daily_new_at_least": 200, "new_share_at_least": 0.8},
        "days": [
            {"day": "2026-11-02", "lookups": 5000, "new": 3000, "new_hits": 2500},
            *(
                {"day": f"2026-11-0{d}", "lookups": 300, "new": 300, "new_hits": 250}
                for d in (3, 4, 5)
            ),
        ],
    }
    washing = Washing(DEFAULT_POLICY)
    assert washing.clearance([evidence], 0.0) == Clearance(300, 30 * 86400.0)
    assert washing.bar(0, Clearance(300, 86400.0)) == 601
    assert washing.bar(1, Clearance(300, 86400.0)) == 200  # lapsed
    # A clearance whose flags counted no day allows nothing.
    assert washing.clearance([{**evidence, "days": evidence["days"][:1]}], 0.0) is None


def _cleared_week(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decisions: list[str]
) -> tuple[ComplianceStore, AbuseMonitor, list[list[LookupEvent]]]:
    """300 new numbers a day: flagged on day 3, then compliance's `decisions` on its case
    that morning, and the monitor told."""
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    days = _washing_days(0, 12, per_day=300)
    live = monitor(store, tmp_path)
    assert len(live.submit(days[0] + days[1] + days[2] + days[3][:1])) == 1
    [case] = store.cases.summaries()
    monkeypatch.setattr(decisions_module, "utc_now", lambda: days[3][0].ts)
    for decision in decisions:
        store.decisions.decide(case["id"], decision, "officer/k1", "asked the customer")
    live.forget("acme")
    return store, live, days


def test_a_clearance_raises_the_washing_bar_of_the_live_monitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, live, days = _cleared_week(tmp_path, monkeypatch, ["clear"])
    # Four days since that count at the usual bar, not at twice the cleared 300.
    assert live.submit(days[3][1:] + days[4] + days[5] + days[6] + days[7][:1]) == []
    assert [c["status"] for c in store.cases.summaries()] == ["closed"]
    store.close()


def test_a_restarted_monitor_reads_the_clearance_back_before_its_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, live, days = _cleared_week(tmp_path, monkeypatch, ["clear"])
    assert live.submit(days[3][1:] + days[4] + days[5][:1]) == []
    # The replay holds two days since the clearance; the third is judged after it.
    restarted = monitor(store, tmp_path)
    restarted.warm(days[5][1].ts)
    assert restarted.submit(days[5][1:] + days[6] + days[7][:1]) == []
    store.close()


@pytest.mark.parametrize("decisions", [["warn", "clear"], ["suspend", "reinstate"]])
def test_a_warning_or_a_suspension_on_the_case_raises_no_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decisions: list[str]
) -> None:
    # Compliance found fault, then let the account go on: washing on is flagged again.
    store, live, days = _cleared_week(tmp_path, monkeypatch, decisions)
    findings = live.submit(days[3][1:] + days[4] + days[5] + days[6][:1])
    assert [(f.kind, f.evidence["rule"]["daily_new_at_least"]) for f in findings] == [
        ("distinct_velocity", 200)
    ]
    store.close()


def test_a_clearance_outlives_the_hourly_pruning_of_idle_accounts() -> None:
    # Cleared, then idle: the account has nothing else in the engine when it is pruned.
    engine = Engine()
    engine.reset("acme", washing_cleared=Clearance(400, _seconds(60)))
    other = _working_day(0, [22202400], account="other-co")
    assert _feed(engine, [msgspec.structs.replace(other[0], ts=MONDAY - timedelta(hours=2))]) == []
    assert _feed(engine, [e for day in _washing_days(0, 5) for e in day]) == []
