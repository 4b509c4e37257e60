"""The lookup log's retention: 18 months by default, 3-120 per account, gone after an
account ends, never while a case is open on it (legal hold)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lookup.abuse.detectors import Finding
from lookup.abuse.events import EventBuffer, LookupEvent, utc_now
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.retention import (
    AFTER_END,
    AccountTerms,
    RetentionError,
    check_months,
    months_before,
    plan_sweep,
)
from lookup.abuse.store import ComplianceStore
from lookup.errors import InvalidKey
from lookup.keyring import KeyRing
from lookup.keys import KeyStore
from tests.test_cli import lookup


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 3, 31, 12, 5), 1, datetime(2026, 2, 28, 12, 5)),
        (datetime(2024, 3, 31), 1, datetime(2024, 2, 29)),
        (datetime(2026, 1, 15), 1, datetime(2025, 12, 15)),
        (datetime(2026, 12, 1), 18, datetime(2025, 6, 1)),
        (datetime(2026, 12, 1), 120, datetime(2016, 12, 1)),
    ],
)
def test_months_are_calendar_months(moment: datetime, months: int, expected: datetime) -> None:
    assert months_before(moment, months) == expected


def test_only_the_terms_bounds_are_accepted() -> None:
    assert check_months(3) == 3 and check_months(120) == 120
    for months in (0, 2, 121, -18):
        with pytest.raises(RetentionError, match="3 to 120"):
            check_months(months)


def test_a_sweep_gives_each_account_its_cutoff() -> None:
    now = datetime(2026, 12, 1, 3, 0)
    sweep = plan_sweep(
        now,
        18,
        [
            AccountTerms("plain"),
            AccountTerms("short", months=3),
            AccountTerms("gone", ended_at=now - AFTER_END),
            AccountTerms("just-gone", months=24, ended_at=now - AFTER_END + timedelta(hours=1)),
        ],
    )
    assert sweep.default_cutoff == datetime(2025, 6, 1, 3, 0)
    assert sweep.cutoffs == {
        "short": datetime(2026, 9, 1, 3, 0),
        "gone": now,  # everything it ever looked up
        "just-gone": datetime(2024, 12, 1, 3, 0),  # its own terms until AFTER_END has passed
    }


def _event(account: str, ts: datetime) -> LookupEvent:
    return LookupEvent(
        ts=ts, account=account, key="k", ip="10.0.0.1", number="+4722202400", outcome="hit"
    )


def _kept(store: ComplianceStore) -> dict[str, int]:
    rows = store.file.rows("SELECT account, count(*) FROM lookup_log GROUP BY account")
    return dict(rows)


def test_the_monitor_sweeps_the_lookup_log_by_each_accounts_terms(tmp_path: Path) -> None:
    now = utc_now()
    keys = KeyStore(tmp_path / "keys.sqlite")
    for name in ("plain", "short", "gone", "gone-held", "held", "recent-end"):
        keys.create(name, frozenset({"lookup"}))
    keys.set_retention("short", 3)
    for name in ("gone", "gone-held", "recent-end"):
        assert keys.end(name)[0] == 1
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    months = {m: months_before(now, m) for m in (2, 4, 17, 19, 30)}
    store.commit(
        [
            _event("plain", months[19]),
            _event("plain", months[17]),
            _event("short", months[4]),
            _event("short", months[2]),
            _event("gone", months[2]),
            _event("gone-held", months[2]),
            _event("held", months[30]),
            _event("recent-end", months[2]),
        ],
        [],
    )
    # Open cases put two accounts under legal hold.
    for account in ("held", "gone-held"):
        store.record(
            Finding(
                account=account,
                kind="sequential_run",
                action="flag",
                ts=months[2],
                events_seen=1,
                evidence={},
            )
        )
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    # Today the ended accounts are within AFTER_END: their lookups stay.
    assert monitor.sweep(now, 18).lookups == 2
    assert _kept(store) == {
        "plain": 1,
        "short": 1,
        "gone": 1,
        "gone-held": 1,
        "held": 1,
        "recent-end": 1,
    }
    # Once AFTER_END has passed, an ended account's log goes whole, unless it is held (and
    # two months on, the others' newer lookups are past their terms too).
    later = now + AFTER_END + timedelta(minutes=1)
    assert monitor.sweep(later, 18).lookups == 4
    assert _kept(store) == {"gone-held": 1, "held": 1}
    # A closed case lifts the hold.
    [held] = [c for c in store.cases.summaries(status="open") if c["account"] == "held"]
    store.decisions.decide(held["id"], "clear", "officer", "a customer's own list")
    assert monitor.sweep(later, 18).lookups == 1
    assert _kept(store) == {"gone-held": 1}
    store.close()
    keys.close()


def test_a_sweep_expires_the_numbers_findings_quote_with_their_lookups(tmp_path: Path) -> None:
    now = utc_now()
    keys = KeyStore(tmp_path / "keys.sqlite")
    for name in ("old", "recent", "held", "gone"):
        keys.create(name, frozenset({"lookup"}))
    keys.end("gone")
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    evidence = {
        "rule": {"distinct_numbers": 6},
        "hold": "+4722202000..999",
        "range": ["+4722202400", "+4722202410"],
        "lookups": [{"ts": "2026-01-01T09:00:00", "number": "+4722202400", "outcome": "hit"}],
    }
    ages = {"old": 19, "recent": 2, "held": 30, "gone": 2}
    cases = {
        account: store.record(
            Finding(
                account=account,
                kind="block_coverage",
                action="throttle",
                ts=months_before(now, months),
                events_seen=6,
                evidence=evidence,
            )
        )
        for account, months in ages.items()
    }
    for account in ("old", "recent", "gone"):  # closed: no legal hold
        store.decisions.decide(cases[account], "clear", "officer", "reviewed")
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys))

    def quoted() -> dict[str, object]:
        return {
            account: store.cases.findings(case)[0]["evidence"] for account, case in cases.items()
        }

    assert monitor.sweep(now, 18).findings == 1
    expired = {
        **evidence,
        "range": ["expired", "expired"],
        "lookups": [{"ts": "2026-01-01T09:00:00", "number": "expired", "outcome": "hit"}],
    }
    # Past the default 18 months, and closed: what the rule found and held stays.
    assert quoted() == {"old": expired, "recent": evidence, "held": evidence, "gone": evidence}
    # An ended account's, once its log goes; an open case's, never (legal hold).
    assert monitor.sweep(now + AFTER_END + timedelta(minutes=1), 18).findings == 1
    assert quoted() == {"old": expired, "recent": evidence, "held": evidence, "gone": expired}
    assert store.cases.open_holds()[0][4] == "+4722202000..999"
    store.close()
    keys.close()


def test_retention_and_end_from_the_command_line(tmp_path: Path) -> None:
    assert (
        lookup("keys", "create", "--org", "acme", "--roles", "lookup", data_dir=tmp_path).returncode
        == 0
    )
    ok = lookup("keys", "retention", "--org", "acme", "--months", "24", data_dir=tmp_path)
    assert ok.returncode == 0 and "24 months" in ok.stdout
    # Read as LOOKUP_LOG_RETENTION_MONTHS is: int() took 1_2 and Arabic-Indic digits as 12.
    for months in ("2", "121", "lots", "1_2", "+6", " 12 ", "\u0661\u0662", "12.0"):
        bad = lookup("keys", "retention", "--org", "acme", "--months", months, data_dir=tmp_path)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, (months, bad.stderr)
        assert bad.stderr.startswith("lookup: --months"), bad.stderr
    default = lookup("keys", "retention", "--org", "acme", "--months", "default", data_dir=tmp_path)
    assert default.stdout == (
        "acme: lookups kept the service's default (LOOKUP_LOG_RETENTION_MONTHS: 18 months here)\n"
    )
    ok = lookup("keys", "retention", "--org", "acme", "--months", "24", data_dir=tmp_path)
    # Named as stored, not as typed.
    ended = lookup("keys", "end", "--org", " acme ", data_dir=tmp_path)
    assert ended.returncode == 0 and ended.stdout.startswith("acme: ended ")
    assert "1 key(s) revoked" in ended.stdout
    # An ended account's log goes AFTER_END after its end, whatever a retention would say.
    late = lookup("keys", "retention", "--org", "acme", "--months", "120", data_dir=tmp_path)
    assert late.returncode == 1 and "account 'acme' ended on" in late.stderr
    assert "can no longer be changed" in late.stderr and late.stderr.count("\n") == 1
    keys = KeyStore(tmp_path / "keys.sqlite3")
    assert keys.active() == {}
    [account] = keys.accounts().values()
    assert account.retention_months == 24 and account.ended_at is not None
    keys.close()
    # Ending it again moves nothing: the same day, the same deletion date.
    again = lookup("keys", "end", "--org", "acme", data_dir=tmp_path)
    assert again.returncode == 0 and "0 key(s) revoked" in again.stdout
    assert again.stdout.split(",")[0] == ended.stdout.split(",")[0]
    assert again.stdout.split("deleted from ")[1] == ended.stdout.split("deleted from ")[1]
    # A key would start an ended account's log again, unseen: a returning customer is new.
    revived = lookup("keys", "create", "--org", "acme", "--roles", "lookup", data_dir=tmp_path)
    assert revived.returncode == 1 and "account 'acme' ended on" in revived.stderr
    # In the words and zone `keys end` used (it showed the stored time, no zone).
    assert f"ended on {account.ended_at:%Y-%m-%d %H:%M} UTC;" in revived.stderr
    assert revived.stderr.count("\n") == 1
    nobody = lookup("keys", "end", "--org", "nobody", data_dir=tmp_path)
    assert nobody.returncode == 1 and "nobody" in nobody.stderr
    bad_default = lookup("serve", data_dir=tmp_path, LOOKUP_LOG_RETENTION_MONTHS="2")
    assert bad_default.returncode == 2 and "LOOKUP_LOG_RETENTION_MONTHS" in bad_default.stderr


def test_no_key_of_an_ended_account_is_accepted(tmp_path: Path) -> None:
    # A store written before ending refused new keys may hold one made after the end.
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, token = keys.create("acme", frozenset({"lookup"}))
    keys.end("acme")
    keys._con.execute("UPDATE keys SET revoked_at = NULL")
    keys._con.commit()
    ring = KeyRing(keys)
    with pytest.raises(InvalidKey):
        ring.authenticate(f"Bearer {token}", "10.0.0.1")
    keys.close()
