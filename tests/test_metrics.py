"""Prometheus metrics: requests, the snapshot and the monitor, counted across processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import Settings
from lookup.ingest.pipeline import ingest
from tests.conftest import make_settings, new_key
from tests.ingest_helpers import filler, write_csv
from tests.test_distributed import _lookup, _start_server

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
    """The metrics page once the monitor has handled `events` events in all (5 s at most)."""
    deadline = time.monotonic() + 5
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
        # A walk: suspended by the fast rule, then refused.
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
        answered = 2 + len(walk) - 1
        after = _page_when(lambda: internal.get("/metrics").text, _value(before, EVENTS) + answered)
        walk_hits = sum(code == 200 for code in walk)
        walk_misses = sum(code == 404 for code in walk)
        assert _requests(after, 200) - _requests(before, 200) == 1 + walk_hits
        assert _requests(after, 404) - _requests(before, 404) == 1 + walk_misses
        assert _requests(after, 401) - _requests(before, 401) == 1
        assert _requests(after, 403) - _requests(before, 403) == walk.count(403)
        findings = "lookup_abuse_findings_total"
        suspend = {"kind": "block_coverage", "action": "suspend"}
        assert _value(after, findings, **suspend) - _value(before, findings, **suspend) == 1
        assert (
            _value(after, "lookup_abuse_events_total") - _value(before, "lookup_abuse_events_total")
            == answered
        )
        assert _value(after, "lookup_snapshot_listings") == 250
        published = _value(after, "lookup_snapshot_published_timestamp_seconds")
        assert 0 < time.time() - published < 3600
        # Operators' figures, not customers' traffic: no number, account or key in them.
        assert "2220" not in after and "crm-co" not in after and "scraper-co" not in after
        assert "Bearer" not in after


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
