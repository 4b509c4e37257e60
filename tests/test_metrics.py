"""Prometheus metrics: requests, the snapshot and the monitor, counted across processes."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from lookup import cli
from lookup.abuse import stream
from lookup.abuse.events import LookupEvent
from lookup.abuse.stream import PipeChannel, TransportError
from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import Settings
from lookup.ingest.pipeline import ingest
from tests.conftest import make_settings, new_key
from tests.ingest_helpers import filler, write_csv
from tests.test_crash_safety import _free_port
from tests.test_distributed import _answered, _lookup, _start_server

NUMBERS_ROUTE = "/v1/numbers/{number}"
EVENTS = "lookup_abuse_events_total"


def _value(text: str, sample: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def _requests(text: str, status: int, app: str = "public") -> float:
    return _value(
        text,
        "lookup_requests_total",
        app_name=app,
        method="GET",
        path=NUMBERS_ROUTE,
        status_code=str(status),
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # Every other number of a block is listed: 250 listings.
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", filler(500, start=22200000)[::2])
    ingest([tmp_path / "in"], make_settings(tmp_path / "var"))
    return tmp_path / "var"


@contextmanager
def _apps(settings: Settings) -> Iterator[tuple[TestClient[Any], TestClient[Any]]]:
    services = Services(settings)
    with (
        TestClient(app=create_app(settings, services)) as public,
        TestClient(app=create_internal_app(services)) as internal,
    ):
        yield public, internal


def _page_when(fetch: Callable[[], str], events: float) -> str:
    """The metrics page once the monitor has handled `events` events in all (30 s at most:
    a loaded machine's monitor took over 5)."""
    deadline = time.monotonic() + 30
    while True:
        page = fetch()
        if _value(page, EVENTS) >= events or time.monotonic() > deadline:
            return page
        time.sleep(0.02)


def test_metrics_count_requests_by_route_and_status_and_the_monitors_work(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, event_flush_seconds=0.02)
    customer = new_key(settings, org="crm-co")
    scraper = new_key(settings, org="scraper-co")
    with _apps(settings) as (public, internal):
        before = internal.get("/metrics").text
        headers = {"Authorization": f"Bearer {customer}"}
        assert public.get("/v1/numbers/22200000", headers=headers).status_code == 200
        assert public.get("/v1/numbers/40000001", headers=headers).status_code == 404
        public.get("/v1/numbers/22200000", headers={"Authorization": "Bearer nonsense"})
        # What the router answers itself: counted, but never by the path asked for.
        assert public.get("/v1/listings/22200000", headers=headers).status_code == 404
        assert public.delete("/v1/numbers/22200000", headers=headers).status_code == 405
        # A walk: its block held by the fast rule, then refused (and still told to the
        # detectors, as every held lookup is).
        walk: list[int] = []
        deadline = time.monotonic() + 5
        while 403 not in walk and time.monotonic() < deadline:
            walk.append(
                public.get(
                    f"/v1/numbers/{22200300 + len(walk)}",
                    headers={"Authorization": f"Bearer {scraper}"},
                ).status_code
            )
        assert walk[-1] == 403
        answered = 2 + len(walk)
        after = _page_when(lambda: internal.get("/metrics").text, _value(before, EVENTS) + answered)
        walk_hits = sum(code == 200 for code in walk)
        walk_misses = sum(code == 404 for code in walk)
        assert _requests(after, 200) - _requests(before, 200) == 1 + walk_hits
        assert _requests(after, 404) - _requests(before, 404) == 1 + walk_misses
        assert _requests(after, 401) - _requests(before, 401) == 1
        assert _requests(after, 403) - _requests(before, 403) == walk.count(403)
        for method, status in (("GET", 404), ("DELETE", 405)):
            unrouted = {"app_name": "public", "method": method, "path": "<unrouted>"}
            unrouted["status_code"] = str(status)
            assert (
                _value(after, "lookup_requests_total", **unrouted)
                - _value(before, "lookup_requests_total", **unrouted)
                == 1
            ), status
        findings = "lookup_abuse_findings_total"
        hold = {"kind": "block_coverage", "action": "throttle"}
        assert _value(after, findings, **hold) - _value(before, findings, **hold) == 1
        assert (
            _value(after, "lookup_abuse_events_total") - _value(before, "lookup_abuse_events_total")
            == answered
        )
        assert _value(after, "lookup_snapshot_listings") == 250
        published = _value(after, "lookup_snapshot_published_timestamp_seconds")
        assert 0 < time.time() - published < 3600
        # Operators' figures, not customers' traffic: no number, account or key in them.
        # Read in the series' names and labels, not in the samples' values, where a
        # duration's digits can spell "2220" by chance (0.017006222005...).
        series = "\n".join(
            line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in after.splitlines()
        )
        assert "2220" not in series and "crm-co" not in series and "scraper-co" not in series
        assert "Bearer" not in series


def test_metrics_can_be_turned_off(data_dir: Path) -> None:
    settings = make_settings(data_dir, metrics=False)
    with _apps(settings) as (_, internal):
        assert internal.get("/metrics").status_code == 404


def test_a_served_metrics_page_adds_up_every_process_and_starts_from_zero(
    data_dir: Path,
) -> None:
    token = new_key(make_settings(data_dir), org="crm-co")
    for run, lookups in enumerate((3, 1)):
        server, base, internal = _start_server(data_dir)
        try:
            for i in range(lookups):
                assert _lookup(base, token, 22200000 + 2 * i) == 200
            # Requests are counted in the server process, events in the monitor's: one page.
            page = f"{internal}/metrics"
            text = _page_when(lambda: httpx.get(page).text, lookups)  # noqa: B023 (called here)
            assert _value(text, EVENTS) == lookups, f"run {run}"
            # The second run's page starts from zero: the first run's files were removed.
            assert _requests(text, 200) == lookups
            assert _value(text, "lookup_snapshot_listings") == 250
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_events_given_up_on_anywhere_on_their_way_are_counted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = _value(generate_latest().decode(), "lookup_events_dropped_total")

    def down(events: list[LookupEvent]) -> None:
        raise TransportError("monitor process unreachable")

    # Held while the monitor is down, past the bound.
    monkeypatch.setattr(stream, "_MAX_PENDING", 5)
    services = Services(settings, down)
    for i in range(8):
        services.events.emit(_answered(i))
    assert services.publisher is not None and services.publisher.publish() == 0
    # Sent but never acknowledged, past the bound.
    ours, theirs = multiprocessing.Pipe(duplex=True)
    channel = PipeChannel(ours, on_drop=services.events.drop)
    for i in range(4):
        channel.send([_answered(i), _answered(i + 1)])
    theirs.close()
    assert services.events.dropped == 3 + 4  # 8 held of 5; 8 sent of 5, in batches of 2
    assert _value(generate_latest().decode(), "lookup_events_dropped_total") - dropped == 7


def test_a_second_serve_on_the_same_data_dir_leaves_the_first_ones_metrics(
    data_dir: Path,
) -> None:
    token = new_key(make_settings(data_dir), org="crm-co")
    server, base, internal = _start_server(data_dir)
    try:
        assert _lookup(base, token, 22200000) == 200
        assert _value(_page_when(lambda: httpx.get(f"{internal}/metrics").text, 1), EVENTS) == 1
        # It cannot start (the compliance store is the first one's), and must not have
        # emptied the first one's metrics on its way.
        second = subprocess.run(
            [sys.executable, "-m", "lookup.cli", "serve", "--port", str(_free_port())],
            env={
                **os.environ,
                "LOOKUP_DATA_DIR": str(data_dir),
                "LOOKUP_INTERNAL_PORT": str(_free_port()),
            },
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert _lookup(base, token, 22200002) == 200
        page = _page_when(lambda: httpx.get(f"{internal}/metrics").text, 2)
        assert _value(page, EVENTS) == 2 and _requests(page, 200) == 2
        assert _value(page, "lookup_snapshot_listings") == 250
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_serve_removes_dead_runs_metrics_but_never_a_running_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored after the test
    folder = tmp_path / "metrics"
    running, dead, old, odd = (folder / name for name in ("run-a", "run-b", "1234", "²"))
    for run in (running, dead, old, odd):
        run.mkdir(parents=True)
        (run / "counter_1.db").write_bytes(b"")
    for run in (running, dead):
        run.with_suffix(".lock").touch()
    # Another serve's, pid namespace or not: its lock is held.
    held = os.open(running.with_suffix(".lock"), os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        cli._count_metrics_in(folder)
        mine = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert sorted(path.name for path in folder.iterdir()) == sorted(
            ["run-a", "run-a.lock", mine.name, f"{mine.name}.lock"]
        )
        assert (running / "counter_1.db").exists()
        # This run's own folder is locked in turn, for the next serve to leave alone.
        assert not cli._unlocked(mine.with_suffix(".lock"))
    finally:
        os.close(held)
        if cli._metrics_lock is not None:
            os.close(cli._metrics_lock)
            cli._metrics_lock = None


def _serve_snapshot_of(listings: int, folder: Path) -> None:
    """A process that answers from a snapshot of `listings` listings, then ends unmarked."""
    code = (
        "from lookup.metrics import SNAPSHOT_LISTINGS, SNAPSHOT_PUBLISHED\n"
        f"SNAPSHOT_LISTINGS.set({listings}); SNAPSHOT_PUBLISHED.set({listings})\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_the_snapshot_gauges_show_the_newest_snapshot_not_a_replaced_workers(
    tmp_path: Path,
) -> None:
    # A worker uvicorn replaced leaves its file unmarked; the next snapshot holds fewer
    # listings than the one it served (a rollback is older, too).
    _serve_snapshot_of(500, tmp_path)
    _serve_snapshot_of(250, tmp_path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(tmp_path))  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode()
    assert _value(text, "lookup_snapshot_listings") == 250
    assert _value(text, "lookup_snapshot_published_timestamp_seconds") == 250
