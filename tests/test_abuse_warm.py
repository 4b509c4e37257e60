"""A restarted monitor rebuilds the detectors' memory from the lookup log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

import msgspec
import pytest

from lookup.abuse import decisions
from lookup.abuse.audit import status_reason
from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import EPOCH, EventBuffer, LookupEvent
from lookup.abuse.holds import Hold
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.store import ComplianceStore
from lookup.abuse.washing import Clearance
from lookup.keyring import KeyRing
from lookup.keys import Account, KeyStore

NOW = datetime(2026, 11, 2, 9, 0)


def walk(i: int, *, days_ago: float = 0) -> LookupEvent:
    """The i-th number of a walk through a geographic block, one a second."""
    return LookupEvent(
        ts=NOW - timedelta(days=days_ago) + timedelta(seconds=i),
        account="walker",
        key="k",
        ip="10.0.0.1",
        number=f"+4722202{i:03d}",
        outcome="hit",
    )


def walker_keys(tmp_path: Path) -> KeyStore:
    """A key store where the walker's account exists (and starts active)."""
    keys = KeyStore(tmp_path / "keys.sqlite")
    keys.create("walker", frozenset({"lookup"}))
    return keys


def monitor(store: ComplianceStore, tmp_path: Path) -> AbuseMonitor:
    return AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(tmp_path / "keys.sqlite")))


def test_a_restarted_monitor_goes_on_with_a_scan_begun_before_it(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    # The monitor before the restart logged the walk's first three numbers.
    first = monitor(store, tmp_path)
    assert first.submit([walk(i) for i in range(3)]) == []
    restarted = monitor(store, tmp_path)
    assert restarted.warm(NOW + timedelta(seconds=3)) == 3
    # The fourth number within the minute is the fast rule's, as without the restart: it
    # holds the block.
    findings = restarted.submit([walk(3)])
    assert [(f.kind, f.action, f.evidence["hold"]) for f in findings] == [
        ("block_coverage", "throttle", "+4722202000..999")
    ]
    # Without the warm-up the fourth number would have been the first it saw.
    assert monitor(store, tmp_path).submit([walk(3)]) == []
    store.close()


def test_the_warm_up_reads_only_the_detectors_window(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    store.commit([walk(i, days_ago=8) for i in range(3)] + [walk(10 + i) for i in range(2)], [])
    assert monitor(store, tmp_path).warm(NOW + timedelta(seconds=20)) == 2
    store.close()


def test_the_warm_up_skips_what_compliance_cleared(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    first = monitor(store, tmp_path)
    findings = first.submit([walk(i) for i in range(4)])
    assert findings
    case_id = store.record(findings[0])
    store.decisions.decide(case_id, "clear", "officer/k1", "a customer's own numbers")
    other = LookupEvent(
        ts=NOW, account="bakery", key="b", ip="10.0.0.2", number="+4740000001", outcome="hit"
    )
    first.submit([other])
    restarted = monitor(store, tmp_path)
    assert restarted.warm(NOW + timedelta(seconds=10)) == 5
    # The cleared account's old lookups are not evidence again; the others' are replayed.
    assert restarted.engine.events_seen("walker") == 0
    assert restarted.engine.events_seen("bakery") == 1
    store.close()


def test_a_restart_keeps_the_numbers_a_customer_has_from_weeks_before(tmp_path: Path) -> None:
    # A customer's list of one block's numbers, looked up 20 days ago; refreshed fast now.
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    store.commit([walk(i * 3, days_ago=20) for i in range(12)], [])
    refresh = [walk(i * 3) for i in range(12)]
    restarted = monitor(store, tmp_path)
    assert restarted.warm(NOW) == 0  # nothing within the window to replay
    assert restarted.submit(refresh) == []
    # Forgotten, the same refresh would look like a walk through the block.
    assert monitor(store, tmp_path).submit([walk(i * 3, days_ago=-1) for i in range(12)])
    store.close()


def slow(i: int, *, days_ago: float) -> LookupEvent:
    """The i-th number of a slow scan of the walk's block, one an hour, half misses."""
    return msgspec.structs.replace(
        walk(i * 37 % 1000, days_ago=days_ago),
        ts=NOW - timedelta(days=days_ago) + timedelta(hours=i),
        outcome="miss" if i % 2 else "hit",
    )


def test_a_restart_goes_on_counting_a_slow_scan_begun_weeks_before(tmp_path: Path) -> None:
    # Ten numbers of the block logged twelve days ago, before the window a restart replays.
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    walker_keys(tmp_path)
    store.commit([slow(i, days_ago=12) for i in range(10)], [])
    restarted = monitor(store, tmp_path)
    assert restarted.warm(NOW) == 0
    findings = restarted.submit([slow(i, days_ago=0) for i in range(10, 17)])
    assert [(f.evidence["rule"]["tier"], f.evidence["hold"]) for f in findings] == [
        ("known", "+4722202000..999")
    ]
    assert findings[0].evidence["rule"]["distinct"] == 17
    # Without the numbers it had, seven are far from enough.
    fresh = ComplianceStore(tmp_path / "fresh.duckdb")
    unwarmed = AbuseMonitor(EventBuffer(), fresh, KeyRing(KeyStore(tmp_path / "keys.sqlite")))
    assert unwarmed.submit([slow(i, days_ago=0) for i in range(10, 17)]) == []
    store.close()
    fresh.close()


def test_a_restart_counts_a_cleared_accounts_numbers_again_only_if_new_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    walker_keys(tmp_path)
    live = monitor(store, tmp_path)
    # Held 36 days ago, cleared 33 days ago, its customers looked up again 32 days ago:
    # the numbers it had when cleared, looked up within the known days since, are repeats.
    [*_, held] = live.submit([slow(i, days_ago=36) for i in range(17)])
    assert held.evidence["rule"]["tier"] == "known"
    with monkeypatch.context() as clock:
        clock.setattr(decisions, "utc_now", lambda: NOW - timedelta(days=33))
        store.decisions.decide(store.record(held), "clear", "officer/k1", "a village shop")
    live.forget("walker")
    assert live.submit([slow(i, days_ago=32) for i in range(17)]) == []
    restarted = monitor(store, tmp_path)
    restarted.warm(NOW)
    for each in (live, restarted):
        assert each.engine._accounts["walker"].ledger.count(22202000) == 0
        # Sixteen new numbers hold nothing (the count rule's flags aside); the 17th does.
        flags = each.submit([slow(i, days_ago=0) for i in range(17, 33)])
        assert {(f.action, "hold" in f.evidence) for f in flags} <= {("flag", False)}
        [again] = each.submit([slow(33, days_ago=0)])
        assert (again.evidence["rule"]["tier"], again.evidence["rule"]["distinct"]) == (
            "known",
            17,
        )
    store.close()


def test_a_restart_keeps_the_count_of_an_account_with_a_list_washing_clearance(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    walker_keys(tmp_path)
    store.commit([slow(i, days_ago=12) for i in range(10)], [])
    restarted = monitor(store, tmp_path)
    # Its list-washing flags were cleared 20 days ago: the rule's bar is raised, and the
    # numbers it looked up since are evidence as any others.
    clearance = Clearance(30, (NOW - timedelta(days=20) - EPOCH).total_seconds())
    restarted._clearances = lambda now, account=None: {"walker": clearance}  # type: ignore[method-assign]
    restarted.warm(NOW)
    assert restarted.engine._accounts["walker"].washing_cleared == clearance
    [held] = restarted.submit([slow(i, days_ago=0) for i in range(10, 17)])
    assert held.evidence["rule"]["distinct"] == 17
    store.close()


def _live_and_restarted(
    tmp_path: Path, *batches: list[LookupEvent]
) -> tuple[ComplianceStore, AbuseMonitor, AbuseMonitor, list[list[Finding]]]:
    """A monitor that saw the batches, one restarted after them and warmed up from the
    lookup log, and each batch's findings."""
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    walker_keys(tmp_path)
    live = monitor(store, tmp_path)
    findings = [live.submit(batch) for batch in batches]
    restarted = monitor(store, tmp_path)
    restarted.warm(NOW)
    return store, live, restarted, findings


def test_after_a_restart_numbers_looked_up_before_the_window_and_in_it_are_repeats(
    tmp_path: Path,
) -> None:
    store, live, restarted, _ = _live_and_restarted(
        tmp_path,
        [walk(i * 3, days_ago=12) for i in range(12)],
        [walk(i * 3, days_ago=1) for i in range(12)],
    )
    for each in (live, restarted):
        state = each.engine._accounts["walker"]
        assert (len(state.recent), state.ledger.count(22202000)) == (0, 12)
    store.close()


def test_after_a_restart_a_refresh_of_numbers_first_looked_up_before_the_known_days_is_repeats(
    tmp_path: Path,
) -> None:
    # A customer's callers of one block 38 days ago, refreshed 5 days ago: to the live
    # monitor the refresh was repeats (within 35 days of the first lookups).
    callers = [walk(i * 37 % 1000, days_ago=38) for i in range(12)]
    store, live, restarted, findings = _live_and_restarted(
        tmp_path,
        [
            msgspec.structs.replace(e, ts=e.ts + timedelta(hours=2 * i))
            for i, e in enumerate(callers)
        ],
        [walk(i * 37 % 1000, days_ago=5) for i in range(12)],
    )
    assert findings == [[], []]
    for each in (live, restarted):
        state = each.engine._accounts["walker"]
        assert (len(state.recent), dict(state.fired), state.held) == (0, {}, {})
    store.close()


WALKED = Hold.of(22202000)
"""The block the walk goes through."""


def _died_before_acting(store: ComplianceStore) -> list[Finding]:
    """What a monitor leaves that died after recording the walk's batch, before acting: the
    block held at its fourth number, the account suspended at its 24th."""
    engine = Engine()
    batch = [walk(i) for i in range(24)]
    findings = [finding for event in batch for finding in engine.observe(event)]
    assert [(f.action, f.evidence.get("hold")) for f in findings] == [
        ("throttle", WALKED.label),
        ("suspend", None),
        ("suspend", None),
    ]
    store.commit(batch, findings)
    return findings


def test_a_restart_pauses_an_account_whose_suspension_a_crash_interrupted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    _died_before_acting(store)
    assert keys.accounts()["walker"].status == "active"
    restarted = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    restarted.warm(NOW + timedelta(seconds=10))
    account = keys.accounts()["walker"]
    assert (account.status, account.reason) == ("suspended", "case 1: sequential_run (suspend)")
    assert account.holds == {WALKED}
    assert "suspended walker pending review" in caplog.text
    assert f"held {WALKED.label} for walker pending review" in caplog.text
    # Once carried out, an open case asks for nothing more, nor is it said again as a new
    # flag; no second case was opened.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert restarted.resume() == 0
    assert "walker" not in caplog.text
    assert [case["id"] for case in store.cases.summaries()] == [1]
    store.close()


def test_a_restart_leaves_cleared_cases_and_review_accounts_alone(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    _died_before_acting(store)
    keys.set_enforcement("walker", "review")
    AbuseMonitor(EventBuffer(), store, KeyRing(keys)).warm(NOW + timedelta(seconds=30))
    opened = keys.accounts()["walker"].opened
    assert keys.accounts()["walker"] == Account("walker", enforcement="review", opened=opened)
    store.decisions.decide(1, "clear", "officer/k1", "the customer's own extensions")
    keys.set_enforcement("walker", "auto")
    AbuseMonitor(EventBuffer(), store, KeyRing(keys)).warm(NOW + timedelta(seconds=30))
    assert keys.accounts()["walker"] == Account("walker", opened=opened)
    store.close()


def test_a_restart_carries_out_a_decision_a_crash_kept_from_the_key_store(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    _died_before_acting(store)
    monitor(store, tmp_path).warm(NOW + timedelta(seconds=30))
    assert keys.accounts()["walker"].status == "suspended"
    # Recorded, then the server died before telling the key store.
    store.decisions.decide(1, "reinstate", "officer/k1", "the customer's own extensions")
    assert keys.accounts()["walker"].status == "suspended"
    restarted = monitor(store, tmp_path)
    restarted.warm(NOW + timedelta(seconds=30))
    account = keys.accounts()["walker"]
    assert (account.status, account.reason) == ("active", "case 1: reinstate by officer/k1")
    assert account.holds == frozenset()  # reinstated, its block is released too
    assert restarted.resume() == 0  # carried out once
    store.close()


def _closed_then_scanned_again(watching: AbuseMonitor, store: ComplianceStore, how: str) -> None:
    """Case 1 closed by compliance (`clear` or `reinstate`), carried out; then a new scan a
    day later, which opens case 2."""
    _closed(watching, store, how)
    assert watching.submit([walk(i, days_ago=-1) for i in range(500, 524)])


def _closed(watching: AbuseMonitor, store: ComplianceStore, how: str) -> None:
    """Case 1 closed by compliance and carried out, as the compliance API does it."""
    decision = store.decisions.decide(1, how, "officer/k1", "the customer's own extensions")
    watching.forget("walker")
    watching.key_ring.set_status("walker", "active", status_reason(decision))
    store.decisions.carried_out(decision.id)


def test_a_restart_suspends_as_compliance_decided_but_not_on_an_older_cases_word(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    keys.set_enforcement("walker", "review")  # the findings only flag: the officer acts
    watching = monitor(store, tmp_path)
    assert watching.submit([walk(i) for i in range(4)])
    store.decisions.decide(1, "suspend", "officer/k1", "a walk through 22202xxx")
    monitor(store, tmp_path).warm(NOW + timedelta(seconds=10))
    assert keys.accounts()["walker"].status == "suspended"
    # Then a new scan opens case 2, which the officer suspends: case 1's reinstatement is
    # not the account's last word.
    _closed_then_scanned_again(watching, store, "reinstate")
    store.decisions.decide(2, "suspend", "officer/k2", "again")
    monitor(store, tmp_path).warm(NOW + timedelta(days=1, seconds=10))
    account = keys.accounts()["walker"]
    assert (account.status, account.reason) == ("suspended", "case 2: suspend by officer/k2")
    store.close()


def test_a_restart_does_not_lift_a_suspension_on_an_older_cases_clearance(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    watching = monitor(store, tmp_path)
    assert watching.submit([walk(i) for i in range(4)])
    _closed_then_scanned_again(watching, store, "clear")  # case 2, suspended by the monitor
    assert keys.accounts()["walker"].status == "suspended"
    monitor(store, tmp_path).warm(NOW + timedelta(days=1, seconds=10))
    assert keys.accounts()["walker"].status == "suspended"
    store.close()


def test_a_restart_keeps_a_suspension_the_monitor_imposed_without_a_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    watching = monitor(store, tmp_path)
    assert watching.submit([walk(i) for i in range(4)])
    _closed(watching, store, "clear")
    # A day later a new scan, whose batch the store cannot take: suspended without a case.
    with monkeypatch.context() as patch:
        patch.setattr(store, "commit", _disk_full)
        with pytest.raises(OSError, match="disk full"):
            watching.submit([walk(i, days_ago=-1) for i in range(500, 524)])
    account = keys.accounts()["walker"]
    assert account.status == "suspended" and "could not be recorded" in (account.reason or "")
    # The restart must not take case 1's clearance, carried out long ago, for a new word.
    monitor(store, tmp_path).warm(NOW + timedelta(days=1, seconds=10))
    assert keys.accounts()["walker"].status == "suspended"
    store.close()


def _disk_full(*args: object, **kwargs: object) -> NoReturn:
    raise OSError("disk full")


def test_lookups_a_failing_store_cannot_take_wait_for_it_up_to_a_bound_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    dropped: list[int] = []
    watching = AbuseMonitor(
        EventBuffer(on_drop=dropped.append), store, KeyRing(walker_keys(tmp_path))
    )
    monkeypatch.setattr("lookup.abuse.monitor.UNWRITTEN_MAX", 5)
    ordinary = [
        msgspec.structs.replace(
            walk(0), number=f"+47{41_000_000 + 1_000_003 * i}", ts=NOW + timedelta(minutes=i)
        )
        for i in range(8)
    ]
    with monkeypatch.context() as patch:
        patch.setattr(store, "commit", _disk_full)
        for part in (ordinary[:3], ordinary[3:6]):
            with pytest.raises(OSError, match="disk full"):
                watching.submit(part)
    # Kept for the next write, but no more than the bound: the oldest given up, counted.
    assert (watching.unlogged, dropped) == (5, [1])
    watching.submit(ordinary[6:])
    logged = store.file.rows("SELECT number FROM lookup_log ORDER BY ts")
    assert [number for (number,) in logged] == [e.number for e in ordinary[1:]]
    store.close()


def test_a_restart_does_not_act_on_what_was_found_under_review(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    keys.set_enforcement("walker", "review")
    watching = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    assert [f.action for f in watching.submit([walk(i) for i in range(4)])] == ["throttle"]
    store.decisions.decide(1, "warn", "officer/k1", "told them the terms")  # the case stays open
    keys.set_enforcement("walker", "auto")
    AbuseMonitor(EventBuffer(), store, KeyRing(keys)).warm(NOW + timedelta(seconds=10))
    # Neither throttled nor its block held.
    walker = keys.accounts()["walker"]
    assert walker == Account("walker", opened=walker.opened)
    store.close()


def _scan(block: int, start: datetime, count: int) -> list[LookupEvent]:
    """A walk through a geographic block, a number every 2 s, two in three missing."""
    return [
        LookupEvent(
            ts=start + timedelta(seconds=2 * i),
            account="walker",
            key="k",
            ip="10.0.0.1",
            number=f"+47{block + i}",
            outcome="hit" if i % 3 == 0 else "miss",
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("restarted", [False, True], ids=["live", "restarted"])
def test_an_account_taken_off_review_is_stopped_by_its_next_scan(
    tmp_path: Path, restarted: bool
) -> None:
    # Every rule fired while findings only flagged it; a rule does not fire twice in its
    # window, so without a fresh start nothing would stop the next scan.
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    keys.set_enforcement("walker", "review")
    watching = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    flagged = watching.submit(_scan(22202000, NOW, 300))
    assert {f.kind for f in flagged} == {
        "block_coverage",
        "distinct_velocity",
        "miss_ratio",
        "sequential_run",
    }
    assert keys.accounts()["walker"].status == "active"
    keys.set_enforcement("walker", "auto")
    watching.key_ring.refresh()  # as servers do every LOOKUP_KEY_REFRESH_SECONDS
    later = NOW + timedelta(minutes=12)
    if restarted:
        watching = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
        watching.warm(later)
    # What it did while on review is not acted on now: an ordinary lookup is only that.
    ordinary = LookupEvent(
        ts=later - timedelta(seconds=5),
        account="walker",
        key="k",
        ip="10.0.0.1",
        number="+4791234567",
        outcome="hit",
    )
    assert watching.submit([ordinary]) == []
    assert keys.accounts()["walker"].status == "active"
    found = watching.submit(_scan(22203000, later, 30))
    assert "suspend" in {f.action for f in found}
    assert keys.accounts()["walker"].status == "suspended"
    # On the case already open: the account has one case at a time.
    assert [c["id"] for c in store.cases.summaries("open")] == [1]
    store.close()


def test_a_batch_is_logged_with_its_findings_or_not_at_all(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    findings = _died_before_acting(store)
    unstorable = msgspec.structs.replace(findings[0], evidence={"lookups": object()})
    with pytest.raises(TypeError):
        store.commit([walk(i) for i in range(30, 34)], [findings[0], unstorable])
    # The failed batch left no lookup and no finding; the one before it stands whole.
    assert store.log.replay(NOW - timedelta(days=1), lambda event: None) == 24
    assert [case["finding_count"] for case in store.cases.summaries()] == [3]
    store.close()


class _FaultyEngine(Engine):
    """Fails on one account's lookups, as a detector's bug might."""

    def observe(self, event: LookupEvent) -> list[Finding]:
        if event.account == "bakery":
            raise ZeroDivisionError("a detector's fault")
        return super().observe(event)


def test_a_detector_fault_costs_only_its_own_lookups_findings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    faulty = AbuseMonitor(EventBuffer(), store, KeyRing(keys), engine=_FaultyEngine())
    bakery = msgspec.structs.replace(walk(900), account="bakery")
    findings = faulty.submit([walk(0), walk(1), bakery, walk(2), walk(3)])
    # The walk's hold in the same batch stands; every lookup is logged.
    assert [(f.account, f.action) for f in findings] == [("walker", "throttle")]
    assert keys.accounts()["walker"].holds == {WALKED}
    assert store.log.replay(NOW - timedelta(days=1), lambda event: None) == 5
    assert "the detectors failed on a lookup by bakery" in caplog.text
    # A restart replays the lookup that failed, and goes on.
    assert (
        AbuseMonitor(EventBuffer(), store, KeyRing(keys), engine=_FaultyEngine()).warm(
            NOW + timedelta(seconds=10)
        )
        == 5
    )
    store.close()


class _FullDisk(ComplianceStore):
    def commit(
        self,
        events: Sequence[LookupEvent],
        findings: Sequence[Finding],
        enforced: Sequence[bool] | None = None,
        mark: tuple[str, str] | None = None,
    ) -> list[int]:
        raise OSError("No space left on device")


def test_a_batch_the_store_cannot_take_is_still_acted_on(tmp_path: Path) -> None:
    store = _FullDisk(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        AbuseMonitor(EventBuffer(), store, KeyRing(keys)).submit([walk(i) for i in range(4)])
    account = keys.accounts()["walker"]
    assert (account.status, account.holds) == ("throttled", frozenset({WALKED}))
    assert account.reason == "block_coverage (throttle); its case could not be recorded"
    store.close()


def test_the_store_answers_another_thread_while_the_warm_up_replays(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    store.commit([walk(i) for i in range(3)], [])
    answered: list[int] = []

    def ask_meanwhile(event: LookupEvent) -> None:
        asker = threading.Thread(target=lambda: answered.append(len(store.cases.summaries())))
        asker.start()
        asker.join(5)  # a replay holding the store would keep it waiting

    replay = threading.Thread(
        target=store.log.replay, args=(NOW - timedelta(days=1), ask_meanwhile), daemon=True
    )
    replay.start()
    replay.join(30)
    assert not replay.is_alive()
    assert answered == [0, 0, 0]
    store.close()


def test_a_restarted_monitor_quotes_a_number_erased_before_it_as_erased(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    walker_keys(tmp_path)
    store.erase("+4722202000", "desk/k1", "request 2026-122")
    restarted = monitor(store, tmp_path)
    restarted.warm(NOW + timedelta(seconds=4))
    # The walk was made before the erasure; its server sends it again to the new monitor.
    [suspension] = restarted.submit([walk(i) for i in range(4)])
    assert suspension.evidence["lookups"][0]["number"] == "erased"
    assert store.file.rows("SELECT number FROM lookup_log ORDER BY ts LIMIT 1") == [("erased",)]
    store.close()


def test_a_restart_keeps_a_block_held_longer_ago_than_the_window_while_its_case_is_open(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    held = AbuseMonitor(EventBuffer(), store, KeyRing(keys)).submit(
        [walk(i, days_ago=10) for i in range(4)]
    )
    assert [f.evidence.get("hold") for f in held] == ["+4722202000..999"]
    restarted = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    restarted.warm(NOW)
    # Ten days on, the case still open, the customer's callers from the block ring as
    # they ring (refused, and seen): no scan going on, and no second hold of the block.
    outcomes = ["miss", "miss", "hit", "hit", "hit"]
    callers = [
        msgspec.structs.replace(
            walk(0),
            ts=NOW + timedelta(minutes=15 * i),
            number=f"+4722202{100 + 17 * i:03d}",
            outcome=outcomes[i % 5],
        )
        for i in range(20)
    ]
    assert [f.action for f in restarted.submit(callers) if f.action != "flag"] == []
    assert keys.accounts()["walker"].status == "throttled"
    store.close()
