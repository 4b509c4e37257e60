"""An account opens at its first lookup: the monitor records it in the key store, where a
swarmed block's refusal of new accounts reads it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from types import SimpleNamespace
from typing import Any

import pytest

from lookup.abuse import monitor as monitor_module
from lookup.abuse.events import EventBuffer, LookupEvent
from lookup.abuse.monitor import OPENING_RETRY_SECONDS, AbuseMonitor
from lookup.abuse.store import ComplianceStore
from lookup.api.server import serve_monitor
from lookup.keyring import KeyRing
from lookup.keys import KeyStore
from tests.conftest import make_settings

NOW = datetime(2026, 11, 2, 9, 0)


def lookup(account: str, at: datetime, number: str = "+4722202001") -> LookupEvent:
    return LookupEvent(ts=at, account=account, key="k", ip="10.0.0.1", number=number, outcome="hit")


def key_store(path: Path, *accounts: str) -> KeyStore:
    keys = KeyStore(path)
    for account in accounts:
        keys.create(account, frozenset({"lookup"}))
    return keys


def opened(path: Path) -> dict[str, datetime | None]:
    """Each account's opening as another process (a server) reads it."""
    with contextlib.closing(KeyStore(path)) as keys:
        return {name: account.opened for name, account in keys.accounts().items()}


def test_an_account_whose_key_was_made_but_never_used_is_not_opened(tmp_path: Path) -> None:
    key_store(tmp_path / "keys.sqlite", "dormant-co").close()
    assert opened(tmp_path / "keys.sqlite") == {"dormant-co": None}


def test_the_earliest_first_lookup_stands(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    with contextlib.closing(key_store(path, "a-co")) as keys:
        keys.opened({"a-co": NOW})
        keys.opened({"a-co": NOW + timedelta(hours=1)})  # a restarted monitor's next
        assert opened(path) == {"a-co": NOW}
        # One with a zone is kept as naive UTC, as lookups compare it.
        keys.opened({"a-co": datetime(2026, 11, 2, 9, 30, tzinfo=UTC) - timedelta(hours=1)})
        assert opened(path) == {"a-co": NOW - timedelta(minutes=30)}
        keys.opened({"ghost-co": NOW})  # an account the store lacks: nothing to record
        assert opened(path) == {"a-co": NOW - timedelta(minutes=30)}


def test_first_lookups_are_recorded_in_one_transaction(tmp_path: Path) -> None:
    # One commit (one sync to disk) for a batch's accounts, or a monitor's start with many:
    # one an account took 6 s for 2,000.
    with contextlib.closing(key_store(tmp_path / "keys.sqlite", "a-co", "b-co")) as keys:
        statements: list[str] = []
        keys._con.set_trace_callback(statements.append)
        keys.opened({"a-co": NOW, "b-co": NOW})
    assert [s.split()[0] for s in statements] == ["BEGIN", "UPDATE", "UPDATE", "COMMIT"]


def test_a_key_store_from_before_first_lookups_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    key_store(path, "old-co").close()
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("ALTER TABLE accounts DROP COLUMN first_lookup_at")
    with contextlib.closing(KeyStore(path)) as keys:
        assert keys.accounts()["old-co"].opened is None
        keys.opened({"old-co": NOW})
    assert opened(path) == {"old-co": NOW}


def test_the_monitor_records_each_accounts_first_lookup_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    keys = key_store(path, "a-co", "b-co", "dormant-co")
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    minute = timedelta(minutes=1)
    monitor.submit([lookup("a-co", NOW), lookup("a-co", NOW + minute), lookup("b-co", NOW)])
    monitor.submit([lookup("b-co", NOW + minute)])
    assert opened(path) == {"a-co": NOW, "b-co": NOW, "dormant-co": None}
    # At once in the monitor's own process; other processes read it from the key store.
    assert monitor.key_ring.account("a-co").opened == NOW
    # Known now: later lookups write nothing to the key store (each write reloads every
    # server's accounts).
    version = keys.version()
    monitor.submit([lookup("a-co", NOW + 2 * minute), lookup("b-co", NOW + 2 * minute)])
    assert keys.version() == version
    # So does a monitor started later, which finds it in the key store.
    restarted = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    restarted.submit([lookup("a-co", NOW + 3 * minute)])
    assert keys.version() == version
    store.close()
    keys.close()


def test_a_first_lookup_another_worker_sent_late_is_the_first(tmp_path: Path) -> None:
    # Two workers' batches reach the monitor in turn, the later-made one first.
    path = tmp_path / "keys.sqlite"
    keys = key_store(path, "a-co")
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys))
    monitor.submit([lookup("a-co", NOW + timedelta(seconds=5))])
    monitor.submit([lookup("a-co", NOW)])
    assert opened(path) == {"a-co": NOW}
    store.close()
    keys.close()


def test_a_first_lookup_the_key_store_could_not_take_is_given_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    path = tmp_path / "keys.sqlite"
    keys = key_store(path, "a-co")
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    key_ring = KeyRing(keys)
    monitor = AbuseMonitor(EventBuffer(), store, key_ring)
    record, tries, clock = key_ring.opened, [], [1000.0]
    # The monitor's clock, not the process's.
    monkeypatch.setattr(
        monitor_module,
        "time",
        SimpleNamespace(monotonic=lambda: clock[0], perf_counter=perf_counter),
    )

    def locked(firsts: Any) -> None:
        tries.append(dict(firsts))
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(key_ring, "opened", locked)
    with caplog.at_level(logging.ERROR):
        monitor.submit([lookup("a-co", NOW)])
    assert "cannot record 1 accounts' first lookups (again in 60 s): database is locked" in (
        caplog.text
    )
    assert store.file.rows("SELECT count(*) FROM lookup_log")[0][0] == 1  # logged all the same
    # Each try may wait out the store's busy timeout: the next batches do not try again
    # within the minute.
    monitor.submit([lookup("a-co", NOW + timedelta(minutes=1))])
    assert tries == [{"a-co": NOW}]
    monkeypatch.setattr(key_ring, "opened", record)
    clock[0] += OPENING_RETRY_SECONDS  # the minute is over
    monitor.submit([lookup("a-co", NOW + timedelta(hours=1))])
    assert opened(path) == {"a-co": NOW}  # the first, not the one that got through
    store.close()
    keys.close()


def test_a_batch_the_lookup_log_could_not_take_still_opens_its_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.sqlite"
    keys = key_store(path, "a-co")
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys))

    def full(*args: Any, **kwargs: Any) -> list[int]:
        assert opened(path) == {"a-co": NOW}  # recorded before the log's write
        raise OSError("No space left on device")

    monkeypatch.setattr(store, "commit", full)
    with pytest.raises(OSError, match="No space left"):
        monitor.submit([lookup("a-co", NOW)])
    assert opened(path) == {"a-co": NOW}
    store.close()
    keys.close()


def test_a_restarted_monitor_gives_the_key_store_the_logged_first_lookups(
    tmp_path: Path,
) -> None:
    # Lookups logged before the key store kept first lookups: a month-old customer's, and
    # the lookup log's older than the detectors' window.
    path = tmp_path / "keys.sqlite"
    key_store(path, "customer-co", "dormant-co").close()
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    month_ago = NOW - timedelta(days=30)
    store.commit([lookup("customer-co", month_ago + timedelta(days=d)) for d in range(3)], [])
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(path)))
    assert monitor.record_openings() == 1
    assert opened(path) == {"customer-co": month_ago, "dormant-co": None}
    # Nothing more to give at the next start.
    assert AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(path))).record_openings() == 0
    store.close()


class _Ended:
    """An event source whose server has stopped: the monitor process only starts."""

    mark = None

    def __init__(self, keys: Path) -> None:
        self.keys = keys
        self.announced: dict[str, datetime | None] | None = None
        """The accounts' openings when the monitor said it was up (`lookup serve` then
        answers lookups)."""

    def resume(self, committed: object) -> None:
        pass

    def announce(self) -> None:
        self.announced = opened(self.keys)

    def read(self, timeout: float) -> None:
        return None

    def done(self, count: int) -> None:
        pass


def test_the_monitor_process_records_logged_first_lookups_as_it_starts(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(tmp_path / "var", internal_port=port)
    key_store(settings.keys_path, "customer-co").close()
    with contextlib.closing(ComplianceStore(settings.compliance_path)) as store:
        store.commit([lookup("customer-co", NOW)], [])
    source = _Ended(settings.keys_path)
    asyncio.run(serve_monitor(settings, source))  # type: ignore[arg-type]
    assert source.announced == {"customer-co": NOW}
