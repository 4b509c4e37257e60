"""Several workers sharing state through the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import httpx
import msgspec
import pytest
import redis
from prometheus_client import REGISTRY

from lookup.abuse.detectors import Finding
from lookup.abuse.events import EventBuffer, LookupEvent
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.store import ComplianceStore
from lookup.abuse.stream import (
    EventPublisher,
    PipeChannel,
    PipeSource,
    RedisSource,
    redis_sender,
    stream_key,
)
from lookup.api.server import _DIRECT, _Restarts, serve_monitor
from lookup.config import Settings
from lookup.ingest.pipeline import ingest
from lookup.keyring import KeyRing
from lookup.keys import KeyStore
from tests.conftest import make_settings, new_key
from tests.ingest_helpers import filler, write_csv
from tests.test_abuse_warm import NOW, _scan, walker_keys
from tests.test_crash_safety import _free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.fail("these tests need Redis on 127.0.0.1:6379 (it runs on the project's machines)")
    yield connection
    connection.close()


@pytest.fixture(autouse=True)
def _forget_what_the_test_left(tmp_path: Path) -> Iterator[None]:
    """Delete what the test's data dirs left in Redis (event streams without expiry, a
    day's counters), by each dir's namespace: a service counting in this database keeps
    its own."""
    yield
    connection = redis.Redis.from_url(REDIS_URL)
    with closing(connection):
        for folder in [tmp_path, *(path for path in tmp_path.rglob("*") if path.is_dir())]:
            stem = stream_key(make_settings(folder)).rpartition(":")[0]
            for pattern in (f"{stem}:*", f"LIMITS:LIMITER/{stem}/*"):
                made = list(connection.scan_iter(pattern))
                if made:
                    connection.delete(*made)


def _answered(i: int) -> LookupEvent:
    """The i-th of a customer's lookups, one a second from 09:00."""
    return LookupEvent(
        ts=datetime(2026, 11, 2, 9) + timedelta(seconds=i),
        account="acme",
        key="k",
        ip="10.0.0.1",
        number=f"+47222001{i:02d}",
        outcome="hit",
    )


def _called(i: int) -> LookupEvent:
    """The i-th of a customer's callers looked up, each from another block (a walk like
    `_answered`'s is a scan to the detectors)."""
    return msgspec.structs.replace(_answered(i), number=f"+47{41_000_000 + 1_000_003 * i}")


def _published(client: redis.Redis, settings: Settings, events: list[LookupEvent]) -> str:
    """A data dir's stream emptied, then these events published to it as a worker does;
    the stream's key."""
    key = stream_key(settings)
    client.delete(key, key + ":consumed")
    buffer = EventBuffer()
    for event in events:
        buffer.emit(event)
    assert EventPublisher(buffer, redis_sender(client, key)).publish() == len(events)
    return key


def test_events_cross_the_stream_once_and_in_order(client: redis.Redis, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", redis_url=REDIS_URL)
    key = _published(client, settings, [_answered(i) for i in range(30)])
    store = ComplianceStore(settings.compliance_path)
    ring = KeyRing(KeyStore(settings.keys_path))
    monitor = AbuseMonitor(EventBuffer(), store, ring)

    def consume(source: RedisSource, count: int = 5000) -> int:
        batch = source.read(0.1, count=count) or []
        monitor.submit(batch, source.mark)
        source.done(len(batch))
        return len(batch)

    def source() -> RedisSource:
        started = RedisSource(client, key)
        started.resume(store.delivered)
        return started

    assert consume(source(), count=10) == 10
    # A consumer that committed a batch but died before saving the cursor in Redis: its
    # successor starts after the batch all the same (the store committed where it ended).
    dying = source()
    batch = dying.read(0.1, count=10) or []
    assert len(batch) == 10
    monitor.submit(batch, dying.mark)
    # A restarted consumer resumes after what was handled.
    again = source()
    assert consume(again) == 10
    assert consume(again) == 0
    logged = store.file.rows("SELECT number FROM lookup_log ORDER BY ts")
    assert [row[0] for row in logged] == [f"+47222001{i:02d}" for i in range(30)]
    store.close()
    client.delete(key, key + ":consumed")
    assert key != stream_key(make_settings(tmp_path / "other", redis_url=REDIS_URL))


def test_a_stopped_consumer_reads_the_stream_to_its_end_first(
    client: redis.Redis, tmp_path: Path
) -> None:
    # `serve --workers` stops its consumer once the workers have stopped: their last
    # events are in the stream, more than one read takes, and all must reach the log.
    settings = make_settings(tmp_path / "var", redis_url=REDIS_URL)
    key = _published(client, settings, [_answered(i % 100) for i in range(12_000)])
    internal = _free_port()
    consumer = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "abuse", "consume"],
        env={
            **os.environ,
            "LOOKUP_DATA_DIR": str(settings.data_path),
            "LOOKUP_REDIS_URL": REDIS_URL,
            "LOOKUP_INTERNAL_PORT": str(internal),
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(f"http://127.0.0.1:{internal}/healthz")
        consumer.send_signal(signal.SIGTERM)
        _, stderr = consumer.communicate(timeout=60)
    finally:
        consumer.kill()
    assert consumer.returncode == 0, stderr
    assert "Traceback" not in stderr
    store = ComplianceStore(settings.compliance_path)
    assert store.file.rows("SELECT count(*) FROM lookup_log") == [(12_000,)]
    store.close()
    client.delete(key, key + ":consumed")


def test_two_workers_batches_reach_the_detectors_in_request_order(
    client: redis.Redis, tmp_path: Path
) -> None:
    # A walk served by two workers, one taking the even numbers, one the odd: the first
    # worker's batch reaches the stream before the second's.
    settings = make_settings(tmp_path / "var", redis_url=REDIS_URL)
    key = stream_key(settings)
    client.delete(key, key + ":consumed")
    walk = [_answered(i) for i in range(8)]
    for worker in (0, 1):
        buffer = EventBuffer()
        for event in walk[worker::2]:
            buffer.emit(event)
        assert EventPublisher(buffer, redis_sender(client, key)).publish() == 4
    store = ComplianceStore(settings.compliance_path)
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(settings.keys_path)))
    findings = monitor.submit(RedisSource(client, key).read(0.1) or [])
    # Stopped at the walk's fourth number by time (its block held), as one worker's traffic
    # would be.
    hold = next(f for f in findings if "hold" in f.evidence)
    assert hold.ts == walk[3].ts
    logged = store.file.rows("SELECT number FROM lookup_log ORDER BY rowid")
    assert [row[0] for row in logged] == [event.number for event in walk]
    store.close()
    client.delete(key, key + ":consumed")


def test_events_are_held_while_the_stream_is_down_and_sent_once_it_is_back(
    client: redis.Redis, tmp_path: Path
) -> None:
    key = stream_key(make_settings(tmp_path / "var", redis_url=REDIS_URL))
    client.delete(key)
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    buffer = EventBuffer()
    publisher = EventPublisher(buffer, redis_sender(down, key))
    for i in range(5):
        buffer.emit(_answered(i))
    assert publisher.publish() == 0  # Redis unreachable: held, not lost
    assert publisher.publish() == 0
    publisher.send = redis_sender(client, key)  # Redis is back
    for i in range(5, 8):
        buffer.emit(_answered(i))
    assert publisher.publish() == 8
    batch = RedisSource(client, key).read(0.1) or []
    assert [event.number for event in batch] == [f"+47222001{i:02d}" for i in range(8)]
    assert buffer.dropped == 0
    client.delete(key, key + ":consumed")


def _scanned_block(tmp_path: Path) -> Settings:
    """A data dir where every other number of a block is listed (walks hit and miss)."""
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", filler(500, start=22200000)[::2])
    settings = make_settings(tmp_path / "var")
    ingest([tmp_path / "in"], settings)
    return settings


def _start_server(
    data_dir: Path, *args: str, **env: str
) -> tuple[subprocess.Popen[bytes], str, str]:
    """A real `lookup serve` on free ports: the process and its public and internal URLs."""
    port, internal = _free_port(), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "serve", "--port", str(port), *args],
        env={
            **os.environ,
            "LOOKUP_DATA_DIR": str(data_dir),
            "LOOKUP_INTERNAL_PORT": str(internal),
            "LOOKUP_EVENT_FLUSH_SECONDS": "0.05",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    public, internal_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}"
    try:
        _wait(f"{public}/readyz")
        _wait(f"{internal_url}/healthz")
    except AssertionError:
        server.terminate()
        raise
    return server, public, internal_url


def _lookup(base: str, token: str, number: int | str) -> int:
    return _answer(base, token, number)[0]


def _answer(base: str, token: str, number: int | str) -> tuple[int, str]:
    """A lookup's status, and its problem type if it is refused."""
    response = httpx.get(
        f"{base}/v1/numbers/{number}", headers={"Authorization": f"Bearer {token}"}
    )
    refused = response.status_code >= 400 and "problem" in response.headers["content-type"]
    return response.status_code, response.json()["type"] if refused else ""


def _logged(answer: tuple[int, str]) -> bool:
    """Whether a lookup goes to the lookup log: answered, or refused in a held block."""
    return answer[0] in (200, 404) or answer[1] == "/problems/block-held"


def _wait(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _cases(internal: str, token: str) -> list[str]:
    response = httpx.get(
        f"{internal}/internal/v1/cases", headers={"Authorization": f"Bearer {token}"}
    )
    return [case["account"] for case in response.json()]


def _timeline(internal: str, token: str, case_id: int = 1) -> list[str]:
    """The numbers of a case's timeline."""
    response = httpx.get(
        f"{internal}/internal/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}
    )
    return [lookup["number"] for lookup in response.json()["timeline"]]


def test_two_workers_share_suspensions_limits_and_the_compliance_api(
    client: redis.Redis, tmp_path: Path
) -> None:
    settings = _scanned_block(tmp_path)
    scraper = new_key(settings, org="scraper-co")
    busy = new_key(settings, org="busy-co")
    late = new_key(settings, org="late-co")
    officer = new_key(settings, roles="compliance", org="desk")
    server, base, internal = _start_server(
        settings.data_path,
        "--workers",
        "2",
        LOOKUP_REDIS_URL=REDIS_URL,
        LOOKUP_PLAN_KEY="20/minute",
        LOOKUP_KEY_REFRESH_SECONDS="0.2",
    )
    try:
        for offset in range(15):
            _lookup(base, scraper, 22200100 + offset)
        # The walk's block held (the account throttled): a case, which compliance decides
        # to suspend on one worker, and every worker refuses the account.
        deadline = time.monotonic() + 5
        while _cases(internal, officer) != ["scraper-co"] and time.monotonic() < deadline:
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {officer}"}
        [case] = httpx.get(f"{internal}/internal/v1/cases", headers=headers).json()
        decided = httpx.post(
            f"{internal}/internal/v1/cases/{case['id']}/decisions",
            json={"decision": "suspend", "reason": "a walk through 22200xxx"},
            headers=headers,
        )
        assert decided.status_code == 201, decided.text
        deadline = time.monotonic() + 5
        codes: set[int] = set()
        while time.monotonic() < deadline:
            codes = {_lookup(base, scraper, 22200000) for _ in range(4)}
            if codes == {403}:
                break
            time.sleep(0.1)
        assert codes == {403}, "every worker refuses the suspended account"
        assert _cases(internal, officer) == ["scraper-co"]
        answered = [_lookup(base, busy, 22200000) for _ in range(25)]
        assert answered.count(200) == 20 and answered.count(429) == 5
        # A dead consumer is restarted: detection, the lookup log and the compliance API
        # come back, and what was answered meanwhile waited in the stream.
        [consumer] = [pid for pid in _children(server.pid) if b"consume" in _cmdline(pid)]
        os.kill(consumer, 9)
        assert _lookup(base, late, 22200001) in (200, 404)
        _wait(f"{internal}/healthz")
        assert _cases(internal, officer) == ["scraper-co"]
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert all(b"consume" not in _cmdline(pid) for pid in _children(server.pid))
    store = ComplianceStore(settings.compliance_path)
    during = store.file.rows("SELECT count(*) FROM lookup_log WHERE number = '+4722200001'")
    store.close()
    assert during == [(1,)], "a lookup answered while the consumer was down was lost"


def test_a_server_stopped_just_after_its_consumer_died_logs_every_lookup(
    client: redis.Redis, tmp_path: Path
) -> None:
    # The consumer is dead (or restarting, not yet handling SIGTERM) when the server stops:
    # the workers' last lookups must reach the log now, not at the next start.
    settings = _scanned_block(tmp_path)
    token = new_key(settings, org="busy-co")
    keys = KeyStore(settings.keys_path)
    keys.set_enforcement("busy-co", "review")  # its walk through the block only flags it
    keys.close()
    server, base, _ = _start_server(
        settings.data_path, "--workers", "2", LOOKUP_REDIS_URL=REDIS_URL
    )
    try:
        answered = [_lookup(base, token, 22200000 + 2 * i) for i in range(10)]
        [consumer] = [pid for pid in _children(server.pid) if b"consume" in _cmdline(pid)]
        os.kill(consumer, 9)
        answered += [_lookup(base, token, 22200100 + 2 * i) for i in range(10)]
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0
    assert answered.count(200) == 20
    store = ComplianceStore(settings.compliance_path)
    logged = store.file.rows("SELECT count(*) FROM lookup_log WHERE account = 'busy-co'")
    store.close()
    assert logged == [(20,)]


def test_the_consumer_health_check_goes_direct_whatever_http_proxy_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Through a proxy (here one that is not there) `serve` waited 45 s to stop.
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_free_port()}")

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        with _DIRECT.open(url, timeout=2) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(child) for child in found.stdout.split()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_one_worker_runs_the_monitor_in_a_child_process(tmp_path: Path) -> None:
    settings = _scanned_block(tmp_path)
    scraper = new_key(settings, org="scraper-co")
    officer = new_key(settings, roles="compliance", org="desk")
    # The monitor gathers lookups for a minute (the most allowed) before writing them, unless
    # they raise a finding: the hold does not wait, and the case shows those before it.
    server, base, internal = _start_server(settings.data_path, LOOKUP_LOG_COMMIT_SECONDS="60")
    answered = 0
    try:
        for offset in range(15):
            answered += _logged(_answer(base, scraper, 22200100 + offset))
        deadline = time.monotonic() + 3
        while (answer := _answer(base, scraper, 22200000))[0] != 403:
            answered += _logged(answer)  # not a 429: the hold throttles the account too
            assert time.monotonic() < deadline, "the scraper was not stopped"
            time.sleep(0.05)
        answered += _logged(answer)
        assert _cases(internal, officer) == ["scraper-co"]
        assert _timeline(internal, officer)[0] == "+4722200100"
    finally:
        server.terminate()
        server.wait(timeout=20)
    # Every answered (or held) lookup reached the lookup log, the last ones on the way out.
    store = ComplianceStore(settings.compliance_path)
    assert store.file.rows("SELECT count(*) FROM lookup_log")[0][0] == answered
    store.close()


def test_a_dead_monitor_is_restarted_and_no_event_is_lost(tmp_path: Path) -> None:
    settings = _scanned_block(tmp_path)
    token = new_key(settings, org="crm-co")
    server, base, internal = _start_server(settings.data_path)
    try:
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
        )
        monitor = [int(pid) for pid in children.stdout.split()]
        assert monitor, "no monitor child"
        # The monitor yields the CPU to the server under load, and leaves the snapshot
        # (and its name index) to the server, which answers lookups.
        assert _niceness(_monitor_pid(server.pid)) == _niceness(server.pid) + 10
        assert b".arrow" in Path(f"/proc/{server.pid}/maps").read_bytes()
        assert b".arrow" not in Path(f"/proc/{_monitor_pid(server.pid)}/maps").read_bytes()
        for pid in monitor:
            os.kill(pid, 9)
        for i in range(20):  # answered while the monitor is down
            assert _lookup(base, token, 22200000 + 2 * i) == 200
        _wait(f"{internal}/healthz")  # back, on the same port
        assert "lookup_monitor_restarts_total 1.0" in httpx.get(f"{internal}/metrics").text
        # The new monitor is as nice as the first, not twice as nice.
        assert _niceness(_monitor_pid(server.pid)) == _niceness(server.pid) + 10
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = ComplianceStore(settings.compliance_path)
    assert store.file.rows("SELECT count(*) FROM lookup_log")[0][0] == 20
    store.close()


def test_a_process_that_keeps_dying_is_restarted_less_often_until_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    restarts = _Restarts("abuse consumer")
    assert restarts.delay == 1.0
    delays = []
    for _ in range(7):
        restarts.died(None, 3)
        delays.append(restarts.delay)
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert "the abuse consumer stopped (exit 3); restarting it (restart 7)" in caplog.text
    restarts.running()
    assert restarts.delay == 1.0 and restarts.count == 7


def _monitor_pid(server: int) -> int:
    """The server's monitor child (not multiprocessing's resource tracker)."""
    children = subprocess.run(
        ["pgrep", "-P", str(server)], capture_output=True, text=True, check=False
    )
    for pid in map(int, children.stdout.split()):
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no monitor child")


def _niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_the_monitor_takes_every_batch_that_queued_up_in_one_read() -> None:
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)
    events = [_answered(i) for i in range(9)]
    for start in range(0, 9, 3):
        channel.send(events[start : start + 3])
    source = PipeSource(theirs)
    assert source.read(1.0) == events  # one read, one lookup-log insert
    assert source.read(0.01) == []
    channel.send(events[:2])
    ours.close()
    assert source.read(1.0) == events[:2]  # what arrived before the close is kept
    assert source.read(1.0) is None


def test_a_restarted_monitor_gets_what_the_dead_one_had_not_committed(tmp_path: Path) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(KeyStore(tmp_path / "keys.sqlite")))
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)
    first = PipeSource(theirs)
    first.resume(store.delivered)
    events = [_answered(i) for i in range(12)]
    channel.send(events[:4])
    batch = first.read(1.0) or []
    monitor.submit(batch, first.mark)
    first.done(len(batch))
    assert channel.unacknowledged == 0  # committed, acknowledged, forgotten
    # Committed but dead before its acknowledgement; and one batch read, never committed.
    channel.send(events[4:8])
    batch = first.read(1.0) or []
    monitor.submit(batch, first.mark)
    channel.send(events[8:])
    assert first.read(1.0) == events[8:]
    theirs.close()  # the monitor dies
    assert channel.unacknowledged == 8
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel.reconnect(ours)
    second = PipeSource(theirs)
    second.resume(store.delivered)
    batch = second.read(1.0) or []
    assert batch == events[8:]  # the committed batch is skipped, the lost one is not
    monitor.submit(batch, second.mark)
    second.done(len(batch))
    assert channel.unacknowledged == 0
    logged = store.file.rows("SELECT count(*), count(DISTINCT number) FROM lookup_log")[0]
    assert logged == (12, 12)  # every event once
    store.close()


def _handle(monitor: AbuseMonitor, source: PipeSource) -> list[Finding]:
    """What the monitor process does with a read (`serve_monitor`)."""
    batch = source.read(1.0) or []
    findings = monitor.submit(batch, source.mark)
    if not monitor.unlogged:
        source.done(len(batch))
    return findings


def test_a_gathering_monitor_writes_its_lookups_with_a_finding_when_due_or_never_lost(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys), commit_seconds=3600)
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)

    def logged() -> tuple[int, int]:
        return store.file.rows("SELECT count(*), count(DISTINCT number) FROM lookup_log")[0]

    source = PipeSource(theirs)
    source.resume(store.delivered)
    ordinary = [_called(i) for i in range(8)]
    channel.send(ordinary[:4])
    _handle(monitor, source)
    # Gathered: not written, and not acknowledged (the server keeps them meanwhile).
    assert (monitor.unlogged, logged(), channel.unacknowledged) == (4, (0, 0), 4)
    assert monitor.write_log(due=True) == 0
    # A scan's finding is written at once, with the lookups gathered before it.
    channel.send(_scan(22202000, NOW, 300))
    _handle(monitor, source)
    assert (monitor.unlogged, logged(), channel.unacknowledged) == (0, (304, 304), 0)
    assert keys.accounts()["walker"].status == "suspended"
    assert store.cases.open_actions()
    # Gathered again, then the monitor dies: its successor gets them from the server.
    channel.send(ordinary[4:])
    _handle(monitor, source)
    assert monitor.unlogged == 4
    theirs.close()
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel.reconnect(ours)
    monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys), commit_seconds=3600)
    source = PipeSource(theirs)
    source.resume(store.delivered)
    _handle(monitor, source)
    assert monitor.unlogged == 4
    monitor.commit_seconds = 0  # due now
    assert monitor.write_log(due=True) == 4
    assert (monitor.unlogged, logged()) == (0, (308, 308))
    store.close()


def test_a_crash_after_a_clearance_does_not_count_the_gathered_lookups_again(
    tmp_path: Path,
) -> None:
    store = ComplianceStore(tmp_path / "compliance.duckdb")
    keys = walker_keys(tmp_path)
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)

    def monitor_on(connection: Connection) -> tuple[AbuseMonitor, PipeSource]:
        monitor = AbuseMonitor(EventBuffer(), store, KeyRing(keys), commit_seconds=3600)
        monitor.warm(NOW + timedelta(minutes=30))
        source = PipeSource(connection)
        source.resume(store.delivered)
        return monitor, source

    def written() -> float:
        return REGISTRY.get_sample_value("lookup_abuse_events_total") or 0.0

    monitor, source = monitor_on(theirs)
    case_id = store.record(
        Finding(
            account="walker",
            kind="miss_ratio",
            action="flag",
            ts=NOW - timedelta(hours=2),
            events_seen=1,
            evidence={},
        )
    )
    before = written()
    # Numbers of one block, gathered; then compliance clears the account.
    channel.send(_scan(22202000, NOW, 3))
    assert _handle(monitor, source) == [] and monitor.unlogged == 3
    store.decisions.decide(case_id, "clear", "desk/k1", "the customer's own numbers")
    monitor.forget("walker")
    assert written() - before == 3  # written before the evidence was reset
    theirs.close()  # the monitor dies; the server restarts it and resends what it holds
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel.reconnect(ours)
    monitor, source = monitor_on(theirs)
    _handle(monitor, source)
    # The next numbers of the block start afresh: the cleared ones are not counted again.
    channel.send(_scan(22202000, NOW + timedelta(minutes=1), 6)[3:])
    assert _handle(monitor, source) == []
    monitor.write_log()
    assert written() - before == 6  # each lookup counted once, when written
    store.close()


class _Outage:
    """A stream source: one batch, then Redis down for two reads (a second each), then the
    end; what the store held by then is kept in `seen`."""

    def __init__(self, seen: dict[str, int]) -> None:
        self.mark: tuple[str, str] | None = None
        self.reads = 0
        self.seen = seen
        self.store: ComplianceStore | None = None

    def resume(self, committed: object) -> None:
        # `serve_monitor` hands over its store's `delivered`: the store to look into.
        self.store = cast("ComplianceStore", committed.__self__)  # type: ignore[attr-defined]

    def announce(self) -> None:
        pass

    def read(self, timeout: float) -> list[LookupEvent] | None:
        self.reads += 1
        if self.reads == 1:
            self.mark = ("stream", "1-0")
            return [_called(i) for i in range(3)]
        if self.reads <= 3:
            raise redis.ConnectionError("Redis is down")
        assert self.store is not None
        self.seen["logged"] = self.store.file.rows("SELECT count(*) FROM lookup_log")[0][0]
        return None

    def done(self, count: int) -> None:
        pass


class _Kept(logging.Handler):
    """Log records kept for a test to read."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_consumer_writes_what_it_gathered_while_redis_is_down(tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    settings = make_settings(tmp_path / "var", internal_port=_free_port(), log_commit_seconds=1)
    handler = _Kept(logging.ERROR)
    records = handler.records
    logger = logging.getLogger("lookup.api.server")  # the app's logging config stops it there
    logger.addHandler(handler)
    try:
        asyncio.run(serve_monitor(settings, _Outage(seen)))
    finally:
        logger.removeHandler(handler)
    # Written when due, during the outage: not left for Redis to come back.
    assert seen["logged"] == 3
    # Retried every second, said once a minute (an hour's outage was 3,600 lines).
    said = [r.getMessage() for r in records if "event stream unavailable" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("event stream unavailable for 0 s: Redis is")


def test_a_gathering_consumer_reads_on_and_its_successor_from_what_it_wrote(
    client: redis.Redis, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "var", redis_url=REDIS_URL)
    events = [_called(i) for i in range(30)]
    key = _published(client, settings, events)
    store = ComplianceStore(settings.compliance_path)
    monitor = AbuseMonitor(
        EventBuffer(), store, KeyRing(KeyStore(settings.keys_path)), commit_seconds=3600
    )

    def source() -> RedisSource:
        started = RedisSource(client, key)
        started.resume(store.delivered)
        return started

    first = source()
    for part in range(2):  # read on, not the same batch again
        batch = first.read(0.1, count=10) or []
        assert batch == events[10 * part : 10 * part + 10]
        monitor.submit(batch, first.mark)
    assert monitor.unlogged == 20
    assert source().read(0.1) == events  # had it died: nothing written, all read again
    assert monitor.write_log() == 20
    first.done(0)
    assert source().read(0.1) == events[20:]
    store.close()
    client.delete(key, key + ":consumed")


def test_concurrent_sends_on_the_pipe_stay_whole_and_numbered() -> None:
    # A shutdown's last flush can run while the loop's flush is still inside a send.
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)
    batch = [_answered(i % 60) for i in range(300)]
    received: list[LookupEvent] = []
    source = PipeSource(theirs)

    def drain() -> None:
        while (events := source.read(2.0)) is not None and len(received) < 40 * 300:
            received.extend(events)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def send_ten() -> None:
        for _ in range(10):
            channel.send(batch)

    senders = [threading.Thread(target=send_ten, daemon=True) for _ in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=30)
        assert not sender.is_alive(), "a send is stuck: the monitor stopped reading"
    reader.join(timeout=30)
    assert len(received) == 40 * 300  # no batch torn, none skipped as a repeat


def test_the_compliance_api_stays_on_loopback_when_the_public_one_is_not(
    tmp_path: Path,
) -> None:
    settings = _scanned_block(tmp_path)
    server, _, internal = _start_server(settings.data_path, "--host", "0.0.0.0")
    try:
        port = int(internal.rsplit(":", 1)[1])
        listening = {
            line.split()[1]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if line.split()[3] == "0A"  # LISTEN
        }
        assert f"0100007F:{port:04X}" in listening  # 127.0.0.1
        assert f"00000000:{port:04X}" not in listening  # not 0.0.0.0
    finally:
        server.terminate()
        server.wait(timeout=15)


def _serve_refused(settings: Settings, port: int, internal: int) -> list[str]:
    """The stderr lines of a `lookup serve` expected to refuse to start (exit 1): one, the
    reason, before any process starts or logs."""
    result = subprocess.run(
        [sys.executable, "-m", "lookup.cli", "serve", "--port", str(port)],
        env={
            **os.environ,
            "LOOKUP_DATA_DIR": str(settings.data_path),
            "LOOKUP_INTERNAL_PORT": str(internal),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    return result.stderr.splitlines()


@contextmanager
def _taken_port() -> Iterator[int]:
    """A loopback port another socket listens on while the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_serve_refuses_to_start_when_its_monitor_cannot(tmp_path: Path) -> None:
    settings = _scanned_block(tmp_path)
    with _taken_port() as port:
        lines = _serve_refused(settings, _free_port(), port)
    assert lines == [
        f"lookup: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "is another service using the port?"
    ]


def test_serve_refuses_in_one_line_when_the_compliance_store_is_anothers(tmp_path: Path) -> None:
    settings = _scanned_block(tmp_path)
    held = ComplianceStore(settings.compliance_path)  # another monitor's, say
    try:
        lines = _serve_refused(settings, _free_port(), _free_port())
    finally:
        held.close()
    # Said in the service's words, naming the holder (DuckDB's names the interpreter).
    assert lines == [
        f"lookup: the compliance store {settings.compliance_path} is in use by process "
        f"{os.getpid()}: another `lookup serve` or `lookup abuse consume` of this data dir "
        "(one monitor owns it)"
    ]


def test_serve_refuses_in_one_line_when_its_public_port_is_taken(tmp_path: Path) -> None:
    settings = _scanned_block(tmp_path)
    with _taken_port() as port:
        lines = _serve_refused(settings, port, _free_port())
    assert lines == [
        f"lookup: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "is another service using the port?"
    ]


def test_an_idle_monitor_does_not_repeat_its_acknowledgement() -> None:
    # The server reads acknowledgements only when it sends: repeated ones would fill the
    # pipe of an idle service until the monitor's loop (and its internal API) blocked.
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours)
    source = PipeSource(theirs)
    channel.send([_answered(0)])
    assert source.read(1.0) == [_answered(0)]
    for _ in range(1000):  # the monitor's loop: a read that times out, then done()
        source.read(0.0)
        source.done(0)
    messages = 0
    while ours.poll(0):
        ours.recv_bytes()
        messages += 1
    assert messages == 1


def test_a_restarted_consumer_never_goes_back_before_the_redis_cursor(
    client: redis.Redis, tmp_path: Path
) -> None:
    key = f"lookup:test-resume:{tmp_path.name}"
    client.delete(key, key + ":consumed")
    ids = [
        cast("bytes", client.xadd(key, {b"e": msgspec.json.encode(_answered(i))})) for i in range(3)
    ]
    client.set(key + ":consumed", ids[1])
    source = RedisSource(client, key)
    source.resume(lambda _: ids[0].decode())  # a store whose mark lags the cursor
    assert source.read(0.1) == [_answered(2)]
    client.delete(key, key + ":consumed")


@pytest.mark.parametrize(
    ("trusted", "status", "host"),
    [
        ("", 403, "127.0.0.1"),
        ("127.0.0.1", 200, "127.0.0.1"),
        # A dual-stack socket sees the proxy as ::ffff:127.0.0.1, which uvicorn never
        # matched with 127.0.0.1: every client looked like the proxy.
        ("127.0.0.1", 200, "::"),
        ("127.0.0.0/8", 200, "::"),
        ("", 403, "::"),
    ],
)
def test_x_forwarded_for_names_the_client_only_from_a_proxy_the_settings_trust(
    tmp_path: Path, trusted: str, status: int, host: str
) -> None:
    # A key allowed only from 10.0.0.0/8, asked from loopback claiming 10.1.2.3: a header
    # anyone can send must not pass the allow-list (uvicorn trusts loopback by default).
    settings = _scanned_block(tmp_path)
    token = new_key(settings, allow=[ipaddress.ip_network("10.0.0.0/8")])
    # Several workers share one socket that uvicorn makes dual-stack (one worker's, made
    # by asyncio, takes IPv6 only).
    dual = ("--workers", "2") if host == "::" else ()
    server, base, _ = _start_server(
        settings.data_path,
        "--host",
        host,
        *dual,
        LOOKUP_FORWARDED_ALLOW_IPS=trusted,
        LOOKUP_REDIS_URL=REDIS_URL if dual else "",
    )
    try:
        response = httpx.get(
            f"{base}/v1/numbers/22200000",
            headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "10.1.2.3"},
        )
        assert response.status_code == status
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_the_compliance_api_serves_while_redis_is_down_at_the_consumers_start(
    tmp_path: Path,
) -> None:
    # An officer must be able to reinstate an account paused by mistake during an outage;
    # the consumer used to exit at start on the stream's cursor, taking the API with it.
    settings = make_settings(tmp_path / "var")
    officer = new_key(settings, roles="compliance", org="desk")
    port = _free_port()
    env = {
        **os.environ,
        "LOOKUP_DATA_DIR": str(settings.data_path),
        "LOOKUP_REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",  # nothing listens
        "LOOKUP_INTERNAL_PORT": str(port),
    }
    consumer = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "abuse", "consume"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, status = time.monotonic() + 20, None
        while status != 200 and time.monotonic() < deadline and consumer.poll() is None:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{port}/internal/v1/cases",
                    headers={"Authorization": f"Bearer {officer}"},
                ).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200, consumer.poll()
    finally:
        consumer.terminate()
        consumer.wait(timeout=15)
