"""Abuse detection behind the live API: events, suspension, rate limits, compliance review."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from lookup.abuse.detectors import Finding
from lookup.abuse.events import LookupEvent, utc_now
from lookup.abuse.monitor import AbuseMonitor
from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import Settings
from lookup.ingest.pipeline import ingest
from lookup.keys import KeyStore, parse_networks
from tests.conftest import make_settings, new_key, problem_of
from tests.ingest_helpers import filler, write_csv


class Clients:
    def __init__(self, public: TestClient[Any], internal: TestClient[Any], services: Services):
        self.public = public
        self.internal = internal
        self.services = services
        self.answered: Counter[str] = Counter()
        """Lookups of each key that reached the handler (a suspended account's do not: it
        is refused before, as a missing key is, and no lookup is logged)."""

    def lookup(self, token: str, number: str) -> Any:
        response = self.public.get(
            f"/v1/numbers/{number}", headers={"Authorization": f"Bearer {token}"}
        )
        if "account-suspended" not in response.text:
            self.answered[token] += 1
        return response


def _start(settings: Settings) -> Iterator[Clients]:
    services = Services(settings)
    with (
        TestClient(app=create_app(settings, services)) as public,
        TestClient(app=create_internal_app(services)) as internal,
    ):
        yield Clients(public, internal, services)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # Every other number of a block is listed, so a walk through it hits and misses.
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", filler(500, start=22200000)[::2])
    ingest([tmp_path / "in"], make_settings(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture
def clients(data_dir: Path) -> Iterator[Clients]:
    settings = make_settings(data_dir, event_flush_seconds=0.02)
    yield from _start(settings)


def _until(probe: Any, seconds: float = 3.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.02)
    return None


def test_every_answer_is_logged_with_account_key_and_outcome(
    clients: Clients, data_dir: Path
) -> None:
    token = new_key(make_settings(data_dir), org="crm-co")
    clients.services.key_ring.refresh()
    before = datetime.now(UTC).replace(tzinfo=None)
    assert clients.lookup(token, "22200000").status_code == 200
    assert clients.lookup(token, "22200001").status_code == 404
    assert clients.lookup(token, "2220ABCD").status_code == 422
    assert clients.lookup(token, "").status_code == 422  # `/v1/numbers/`: the number left out

    def logged() -> list[tuple[Any, ...]]:
        rows = clients.services.store.file.rows(
            "SELECT account, key, number, outcome, endpoint, ts FROM lookup_log ORDER BY ts"
        )
        return rows if len(rows) == 4 else []

    rows = _until(logged)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert rows is not None
    # Logged in UTC, at the time of the request (the timeline compliance reads).
    assert all(before <= r[5] <= after for r in rows)
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("crm-co", "+4722200000", "hit", "numbers"),
        ("crm-co", "+4722200001", "miss", "numbers"),
        ("crm-co", "2220ABCD", "invalid", "numbers"),
        ("crm-co", "", "invalid", "numbers"),
    ]
    assert rows[0][1] == token.split("_")[1]


def test_a_refused_number_is_logged_without_its_text_direction_controls(
    clients: Clients, data_dir: Path
) -> None:
    # An override in a refused number showed a compliance officer reading a timeline other
    # digits than were sent; the digits stay, for a subject's report to find them.
    token = new_key(make_settings(data_dir), org="crm-co")
    clients.services.key_ring.refresh()
    # A right-to-left mark alone shows \u200f2220\u200f0001x as 00012220x.
    for written in ("2220\u202e0000x", "\u20662220/0001\u2069", "\u200f2220\u200f0001x"):
        refused = clients.lookup(token, quote(written))
        assert "\\u20" in problem_of(refused, 422, "invalid-number")["detail"]

    def logged() -> list[tuple[Any, ...]]:
        rows = clients.services.store.file.rows("SELECT number FROM lookup_log ORDER BY ts")
        return rows if len(rows) == 3 else []

    assert _until(logged) == [
        ("2220\ufffd0000x",),
        ("\ufffd2220/0001\ufffd",),
        ("\ufffd2220\ufffd0001x",),
    ]


def test_a_scraper_is_held_then_paused_within_a_second_and_compliance_reviews_it(
    clients: Clients, data_dir: Path
) -> None:
    settings = make_settings(data_dir)
    scraper = new_key(settings, org="scraper-co")
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    honest = new_key(settings, org="honest-co")
    clients.services.key_ring.refresh()
    statuses = [clients.lookup(scraper, str(22200100 + offset)).status_code for offset in range(4)]
    assert statuses == [200, 404, 200, 404]

    # Its fourth number within seconds, nothing else looked up: the block is held.
    def held() -> bool:
        return bool(clients.lookup(scraper, "22200000").status_code == 403)

    started = time.monotonic()
    assert _until(held, 1.0), "the block was not held within a second"
    assert time.monotonic() - started < 1.0
    refused = clients.lookup(scraper, "22200000")
    refusal = problem_of(refused, 403, "block-held")
    assert refusal["block"] == "+4722200000..999"
    # Counted before the handler refused it: it says what the limits have left.
    assert {"ratelimit", "ratelimit-policy"} <= set(refused.headers)
    assert "+4722200000 " not in refusal["detail"]  # the block, never the number
    # Lookups elsewhere are answered; the honest account's in the block too.
    problem_of(clients.lookup(scraper, "22201000"), 404, "number-not-found")
    assert clients.lookup(honest, "22200000").status_code == 200
    # The scan goes on into its held block: refused, still seen, and it is suspended.
    for offset in range(4, 40):
        response = clients.lookup(scraper, str(22200100 + offset))
        assert response.status_code == 403, response.text
        if response.json()["type"] == "/problems/account-suspended":
            break

    def paused() -> bool:
        refusal = clients.lookup(scraper, "22201000").json()
        return bool(refusal.get("type") == "/problems/account-suspended")

    started = time.monotonic()
    assert _until(paused, 1.0), "the scraper was not paused within a second"
    assert time.monotonic() - started < 1.0
    problem_of(clients.lookup(scraper, "22200000"), 403, "account-suspended")
    problem_of(clients.lookup(scraper, "22201000"), 403, "account-suspended")
    assert clients.lookup(honest, "22200000").status_code == 200

    officer_headers = {"Authorization": f"Bearer {officer}"}
    problem_of(
        clients.internal.get("/internal/v1/cases", headers={"Authorization": f"Bearer {honest}"}),
        403,
        "missing-role",
    )
    cases = clients.internal.get("/internal/v1/cases", headers=officer_headers).json()
    (case,) = [c for c in cases if c["account"] == "scraper-co"]
    assert case["status"] == "open" and case["account_status"] == "suspended"
    assert any(f.endswith(":suspend") for f in case["findings"])

    detail = clients.internal.get(f"/internal/v1/cases/{case['id']}", headers=officer_headers)
    body = detail.json()
    hold, suspension = (
        next(f for f in body["findings"] if f["action"] == action)
        for action in ("throttle", "suspend")
    )
    # The walk, fast and nothing else, is held at its fourth number; more may be answered
    # before the monitor's batch lands, and every one of them is in the timeline.
    assert (hold["evidence"]["rule"]["hold_at"], hold["evidence"]["hold"]) == (
        4,
        "+4722200000..999",
    )
    assert body["held_blocks"] == ["+4722200000..999"]
    assert suspension["evidence"]["lookups"][0]["number"].startswith("+4722200")
    assert suspension["evidence"]["rule"]
    # The walk's first four numbers come first, and every lookup a finding quotes is there:
    # each was logged with its finding, at once.
    timeline = [(datetime.fromisoformat(i["ts"]), i["number"]) for i in body["timeline"]]
    assert [number for _, number in timeline[:4]] == [f"+472220010{i}" for i in range(4)]
    assert all(ts.utcoffset() == timedelta(0) for ts, _ in timeline)
    for finding in body["findings"]:
        # Evidence quotes its times in UTC without the offset, as the replay writes them.
        quoted = [
            (datetime.fromisoformat(item["ts"]).replace(tzinfo=UTC), item["number"])
            for item in finding["evidence"]["lookups"]
        ]
        assert set(quoted) <= set(timeline), finding["kind"]
    assert len(timeline) <= clients.answered[scraper]
    # The refused lookups are logged with what they would have found (told to the
    # detectors as any lookup is): +4722200000 is listed, the walk finds both.
    refused = [item for item in body["timeline"] if item["held"]]
    assert {item["outcome"] for item in refused} == {"hit", "miss"}
    assert {item["outcome"] for item in refused if item["number"] == "+4722200000"} == {"hit"}
    assert body["blocks"][0]["block"].startswith("+4722200")

    bad = clients.internal.post(
        f"/internal/v1/cases/{case['id']}/decisions",
        json={"decision": "reinstate", "reason": " "},
        headers=officer_headers,
    )
    problem_of(bad, 422, "invalid-parameter")
    # The audit trail's hash joins fields with a control character: none may be inside one.
    shifted = clients.internal.post(
        f"/internal/v1/cases/{case['id']}/decisions",
        json={"decision": "warn", "reason": "told them\x1fofficer/k9"},
        headers=officer_headers,
    )
    assert "U+001F" in problem_of(shifted, 422, "invalid-parameter")["detail"]
    unknown = clients.internal.post(
        f"/internal/v1/cases/{case['id']}/decisions",
        json={"decision": "forgive", "reason": "x"},
        headers=officer_headers,
    )
    assert unknown.status_code in (400, 422) and "problem+json" in unknown.headers["content-type"]

    decided = clients.internal.post(
        f"/internal/v1/cases/{case['id']}/decisions",
        json={"decision": "reinstate", "reason": "customer's direct-dial range; confirmed"},
        headers=officer_headers,
    )
    assert decided.status_code == 201, decided.text
    assert decided.json()["actor"].startswith("compliance-desk/")
    assert _until(lambda: clients.lookup(scraper, "22200000").status_code == 200, 1.0)

    again = clients.internal.post(
        f"/internal/v1/cases/{case['id']}/decisions",
        json={"decision": "clear", "reason": "closed already"},
        headers=officer_headers,
    )
    problem_of(again, 409, "case-closed")
    trail = clients.internal.get(
        "/internal/v1/accounts/scraper-co/decisions", headers=officer_headers
    ).json()
    assert [d["decision"] for d in trail] == ["reinstate"]
    verified = clients.internal.get("/internal/v1/audit/verify", headers=officer_headers).json()
    assert verified["intact"] is True and verified["decisions"] == 1
    problem_of(
        clients.internal.get("/internal/v1/cases/999", headers=officer_headers),
        404,
        "case-not-found",
    )


def _open_case(clients: Clients, account: str, action: str) -> int:
    """A case opened for the account by a block_coverage finding; its id."""
    finding = Finding(
        account=account,
        kind="block_coverage",
        action=action,
        ts=datetime(2026, 11, 2, 9, 0),
        events_seen=9,
        evidence={},
    )
    return clients.services.store.record(finding)


def test_a_scan_taking_turns_between_two_blocks_is_refused_in_both_at_once(
    clients: Clients, data_dir: Path
) -> None:
    settings = make_settings(data_dir)
    scraper = new_key(settings, org="turns-co")
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    clients.services.key_ring.refresh()
    # Four numbers of each of two blocks within seconds, spread over them and taking
    # turns, nothing else looked up: the 22200 block's are answered, the 22201 block's
    # are all unlisted.
    first = [22200100, 22200400, 22200200, 22200300]
    second = [22201200, 22201800, 22201400, 22201600]
    for a, b in zip(first, second, strict=True):
        assert clients.lookup(scraper, str(a)).status_code == 200
        assert clients.lookup(scraper, str(b)).status_code == 404

    # Both are held at the eighth: the first block's fifth listing is refused too.
    def refused_in_first() -> bool:
        return bool(clients.lookup(scraper, "22200450").status_code == 403)

    assert _until(refused_in_first, 1.0), "the first block was not held within a second"
    for number, block in [("22200450", "+4722200000..999"), ("22201000", "+4722201000..999")]:
        assert problem_of(clients.lookup(scraper, number), 403, "block-held")["block"] == block
    problem_of(clients.lookup(scraper, "22202000"), 404, "number-not-found")

    cases = clients.internal.get(
        "/internal/v1/cases", headers={"Authorization": f"Bearer {officer}"}
    ).json()
    (case,) = [c for c in cases if c["account"] == "turns-co"]
    assert case["account_status"] == "throttled"  # its blocks held, not suspended
    body = clients.internal.get(
        f"/internal/v1/cases/{case['id']}", headers={"Authorization": f"Bearer {officer}"}
    ).json()
    assert body["held_blocks"] == ["+4722200000..999", "+4722201000..999"]
    holds = {f["evidence"]["hold"]: f["evidence"]["taking_turns_with"] for f in body["findings"]}
    assert holds == {
        "+4722200000..999": ["+4722201000..999"],
        "+4722201000..999": ["+4722200000..999"],
    }


def test_compliance_answers_while_a_decision_waits_for_the_monitor(
    clients: Clients, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(data_dir)
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    new_key(settings, org="bakery")
    clients.services.key_ring.refresh()
    headers = {"Authorization": f"Bearer {officer}"}
    case_id = _open_case(clients, "bakery", "flag")
    # A restarted monitor's warm-up holds it for seconds; a clear must wait for it.
    monitor = clients.services.monitor
    assert monitor is not None
    warmed = threading.Event()
    monkeypatch.setattr(monitor, "forget", lambda *args: warmed.wait(10))
    decided: list[int] = []
    decision = threading.Thread(
        target=lambda: decided.append(
            clients.internal.post(
                f"/internal/v1/cases/{case_id}/decisions",
                json={"decision": "clear", "reason": "a customer's own numbers"},
                headers=headers,
            ).status_code
        )
    )
    decision.start()
    try:
        assert _until(lambda: clients.internal.get("/internal/v1/cases", headers=headers))
        # Answered while the decision still waits: the wait is not on the event loop.
        assert decision.is_alive()
    finally:
        warmed.set()
        decision.join(10)
    assert decided == [201]


def test_a_decision_on_an_account_the_key_store_lacks_is_refused_and_not_recorded(
    clients: Clients, data_dir: Path
) -> None:
    officer = new_key(make_settings(data_dir), roles="compliance", org="compliance-desk")
    clients.services.key_ring.refresh()
    headers = {"Authorization": f"Bearer {officer}"}
    case_id = _open_case(clients, "ghost", "suspend")
    url = f"/internal/v1/cases/{case_id}/decisions"
    refused = clients.internal.post(
        url, json={"decision": "suspend", "reason": "scanned a block"}, headers=headers
    )
    problem = problem_of(refused, 409, "account-not-found")
    assert "'ghost' is not in the key store" in problem["detail"]
    assert clients.services.store.decisions.trail(case_id=case_id) == []
    # A warning changes no status: it is recorded.
    warned = clients.internal.post(
        url, json={"decision": "warn", "reason": "told the reseller"}, headers=headers
    )
    assert warned.status_code == 201


def test_the_audit_trail_shows_edits(clients: Clients) -> None:
    store = clients.services.store
    event = LookupEvent(
        ts=datetime(2026, 11, 2),
        account="a",
        key="k",
        ip="1.2.3.4",
        number="+4722200000",
        outcome="miss",
    )
    case_id = store.record(
        Finding(
            account="a", kind="miss_ratio", action="flag", ts=event.ts, events_seen=1, evidence={}
        )
    )
    store.decisions.decide(case_id, "warn", "officer/1", "first warning")
    store.decisions.decide(case_id, "clear", "officer/1", "explained")
    assert store.decisions.verify().intact
    store.file.rows("UPDATE decisions SET reason = 'nothing to see' WHERE decision = 'warn'")
    assert not store.decisions.verify().intact


def test_rate_limits_answer_429_with_the_ietf_headers(data_dir: Path) -> None:
    settings = make_settings(data_dir, plan_key="3/second", plan_account="100/second")
    token = new_key(settings, org="busy-co")
    for clients in _start(settings):
        statuses = [clients.lookup(token, "22200000").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = clients.lookup(token, "22200000")
        body = problem_of(limited, 429, "rate-limited")
        assert body["scope"] == "key" and body["limit"] == 3 and "throttled" not in body
        assert 1 <= int(limited.headers["retry-after"]) <= 1
        assert limited.headers["ratelimit-policy"] == '"key-1s";q=3;w=1, "account-1s";q=100;w=1'
        assert limited.headers["ratelimit"] == '"key-1s";r=0;t=1'


def test_account_plans_and_throttling_change_the_limits(data_dir: Path) -> None:
    settings = make_settings(
        data_dir, plan_key="100/second", plan_account="100/second", throttle_factor=50
    )
    token = new_key(settings, org="plan-co")
    store = KeyStore(settings.keys_path)
    store.set_plan("plan-co", "2/minute")
    store.close()
    for clients in _start(settings):
        statuses = [clients.lookup(token, "22200000").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert clients.lookup(token, "22200000").json()["scope"] == "account"
    other = new_key(settings, org="throttled-co")
    store = KeyStore(settings.keys_path)
    store.set_status("throttled-co", "throttled", "test")
    store.close()
    for clients in _start(settings):
        statuses = [clients.lookup(other, "22200000").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # 100/second divided by 50
        cut = problem_of(clients.lookup(other, "22200000"), 429, "rate-limited")
        assert cut["throttled"] is True and "pending a compliance review" in cut["detail"]


def test_an_account_search_plan_replaces_the_default_for_that_account_only(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, plan_search="40/hour")
    desk = new_key(settings, roles="search", org="desk-co")
    other = new_key(settings, roles="search")
    store = KeyStore(settings.keys_path)
    store.set_plan("desk-co", "100/hour;500/day", search=True)
    store.close()
    for clients in _start(settings):

        def search(token: str, clients: Clients = clients) -> Any:
            return clients.public.get(
                "/v1/search",
                params={"name": "Navn", "limit": "20"},
                headers={"Authorization": f"Bearer {token}"},
            )

        # 20 listings a search: the default lets two through, the desk's own plan five.
        assert [search(other).status_code for _ in range(3)] == [200, 200, 429]
        answers = [search(desk) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert '"search-3600s";q=100;w=3600' in answers[0].headers["ratelimit-policy"]
        assert '"search-86400s";q=500;w=86400' in answers[0].headers["ratelimit-policy"]
        refused = problem_of(answers[-1], 429, "rate-limited")
        assert (refused["scope"], refused["limit"]) == ("search", 100)


def test_a_download_by_name_search_is_paused_within_a_second_and_its_pages_reviewed(
    clients: Clients, data_dir: Path
) -> None:
    settings = make_settings(data_dir)
    harvester = new_key(settings, roles="search", org="names-co")
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    desk = new_key(settings, roles="search", org="support-desk")
    clients.services.key_ring.refresh()

    def search(token: str, name: str, limit: int) -> Any:
        return clients.public.get(
            "/v1/search",
            params={"name": name, "limit": str(limit)},
            headers={"Authorization": f"Bearer {token}"},
        )

    # A broad question again and again, every answer a full page of 20: the 100th makes
    # 2,000 listings, all in full pages.
    for _ in range(100):
        body = search(harvester, "Navn", 20).json()
        assert (len(body["results"]), body["truncated"]) == (20, True)
    # A desk's full pages of the same, fewer, are not a download.
    for _ in range(50):
        assert search(desk, "Navn", 20).status_code == 200

    def paused() -> bool:
        return "account-suspended" in search(harvester, "Navn", 1).text

    started = time.monotonic()
    assert _until(paused, 1.0), "the download was not paused within a second"
    assert time.monotonic() - started < 1.0
    assert search(desk, "Navn", 20).status_code == 200

    officer_headers = {"Authorization": f"Bearer {officer}"}
    cases = clients.internal.get("/internal/v1/cases", headers=officer_headers).json()
    assert [c["account"] for c in cases] == ["names-co"]
    body = clients.internal.get(f"/internal/v1/cases/{cases[0]['id']}", headers=officer_headers)
    (finding,) = body.json()["findings"]
    assert (finding["kind"], finding["action"]) == ("distinct_velocity", "suspend")
    rule = finding["evidence"]["rule"]
    assert (rule["pattern"], rule["tier"], rule["listings_in_window"]) == (
        "search_harvest",
        "full_pages",
        2000,
    )
    # The timeline has each search's query and what it returned.
    searches = [row for row in body.json()["timeline"] if row["endpoint"] == "search"]
    assert len(searches) >= 50
    assert {(row["number"], row["listings"], row["full_page"]) for row in searches[:50]} == {
        ("Navn", 20, True)
    }


def test_with_detection_off_nothing_is_suspended_but_everything_is_logged(data_dir: Path) -> None:
    settings = make_settings(data_dir, abuse_detection=False, event_flush_seconds=0.02)
    token = new_key(settings, org="walker-co")
    for clients in _start(settings):
        codes = {clients.lookup(token, str(22200100 + i)).status_code for i in range(60)}
        assert 403 not in codes and clients.lookup(token, "22200000").status_code == 200

        # The monitor writes its batches off the request path: waited for, not slept on
        # (0.2 s was not always enough on a loaded machine).
        def logged(services: Services = clients.services) -> bool:
            rows = services.store.file.rows("SELECT count(*) FROM lookup_log")
            return bool(rows[0][0] >= 61)

        assert _until(logged, 5.0), "the lookups were not all logged within 5 s"


def test_allow_listed_addresses_are_never_acted_on(clients: Clients) -> None:
    monitor = AbuseMonitor(
        clients.services.events,
        clients.services.store,
        clients.services.key_ring,
        allow=parse_networks(["10.0.0.0/8"]),
    )
    walk = [
        LookupEvent(
            ts=datetime(2026, 11, 2, 9, 0, i),
            account="ops",
            key="k",
            ip="10.1.2.3",
            number=f"+47222001{i:02d}",
            outcome="miss" if i % 2 else "hit",
        )
        for i in range(60)
    ]
    assert monitor.submit(walk) == []


def test_an_account_under_review_policy_is_flagged_not_suspended(
    clients: Clients, data_dir: Path
) -> None:
    settings = make_settings(data_dir)
    trusted = new_key(settings, org="trusted-co")
    store = KeyStore(settings.keys_path)
    store.set_enforcement("trusted-co", "review")
    store.close()
    clients.services.key_ring.refresh()
    for offset in range(40):
        assert clients.lookup(trusted, str(22200100 + offset)).status_code in (200, 404)
    time.sleep(0.3)
    assert clients.lookup(trusted, "22200000").status_code == 200
    cases = clients.services.store.cases.summaries("open")
    assert [c["account"] for c in cases] == ["trusted-co"]
    assert any(f.endswith(":suspend") for f in cases[0]["findings"])

    # Put back on automatic enforcement, its next scan is stopped like anyone's: the
    # rules that fired while it was only flagged fire again, on the same case (its block
    # held, then, as it goes on, the account suspended).
    store = KeyStore(settings.keys_path)
    store.set_enforcement("trusted-co", "auto")
    store.close()
    clients.services.key_ring.refresh()
    refusals = []
    held_numbers = []
    for offset in range(40):
        response = clients.lookup(trusted, str(22300100 + offset))
        if response.status_code == 403:
            refusals.append(response.json()["type"])
            if refusals[-1] == "/problems/block-held":
                held_numbers.append(f"+47{22300100 + offset}")
            if refusals[-1] == "/problems/account-suspended":
                break
        time.sleep(0.02)
    assert refusals[0] == "/problems/block-held"
    time.sleep(0.3)
    problem_of(clients.lookup(trusted, "22200000"), 403, "account-suspended")
    # The log says which lookups the hold refused (what a case's timeline and a subject's
    # report tell), and which it let through.
    logged = clients.services.store.file.rows(
        "SELECT number, held FROM lookup_log WHERE account = 'trusted-co' AND number >= ?",
        ["+4722300100"],
    )
    assert held_numbers and {n for n, held in logged if held} == set(held_numbers)
    (case,) = clients.services.store.cases.summaries("open")
    assert case["id"] == cases[0]["id"]


@pytest.mark.parametrize("scheme", ["redis://{}", "redis+sentinel://{}/mymaster"])
def test_a_redis_that_accepts_and_never_answers_refuses_with_503_in_time(
    data_dir: Path, scheme: str
) -> None:
    # The limiter's call runs on the event loop: unbounded, one request would hold every
    # other (probes included) for as long as Redis stays silent; and each call waiting out
    # its timeout would still hold the others for that long, one after another.
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                held.append(silent.accept()[0])

    def release() -> None:
        silent.close()
        for connection in held:
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    # Should the call hang after all, the test fails instead of hanging: the server's
    # shutdown waits for its event loop, which this frees.
    guard = threading.Timer(15, release)
    guard.start()
    port = silent.getsockname()[1]
    storage = scheme.format(f"127.0.0.1:{port}")
    settings = make_settings(data_dir, ratelimit_storage=storage)
    token = new_key(settings, org="any-co")
    try:
        for clients in _start(settings):
            answers: list[Any] = []
            asked: list[int] = []

            def ask(
                clients: Clients = clients, answers: list[Any] = answers, asked: list[int] = asked
            ) -> None:
                answers.append(clients.lookup(token, "22200000"))
                asked.append(len(held))
                answers.extend(clients.lookup(token, "22200000") for _ in range(4))

            asking = threading.Thread(target=ask, daemon=True)
            asking.start()
            asking.join(timeout=10)  # a generous bound on a 0.25 s timeout: not a speed test
            assert held, "the request never reached the silent Redis"
            assert len(answers) == 5, "a request hung on a Redis that never answers"
            for answer in answers:
                problem_of(answer, 503, "rate-limits-unavailable")
            # The first waited out the timeout; the next ones, within the second after it,
            # were refused without asking (a new connection each time, else).
            assert asked == [len(held)]
    finally:
        guard.cancel()
        release()


def test_unreachable_rate_limit_storage_refuses_with_503(data_dir: Path) -> None:
    said: list[logging.LogRecord] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record)

    # On the module's own logger: the app's logging config replaces the root's handlers.
    listener = Listener()
    logging.getLogger("lookup.abuse.ratelimit").addHandler(listener)
    settings = make_settings(data_dir, ratelimit_storage="redis://127.0.0.1:1")
    token = new_key(settings, org="any-co")
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    for clients in _start(settings):
        # Compliance works on: a customer paused by mistake must be reinstated meanwhile.
        cases = clients.internal.get(
            "/internal/v1/cases", headers={"Authorization": f"Bearer {officer}"}
        )
        assert cases.status_code == 200 and cases.json() == []
        response = clients.lookup(token, "22200000")
        problem_of(response, 503, "rate-limits-unavailable")
        assert response.headers["retry-after"] == "1"
        # Not ready either: a load balancer must not send traffic that is all refused.
        problem_of(clients.public.get("/readyz"), 503, "rate-limits-unavailable")
        assert clients.public.head("/readyz").status_code == 503
        assert clients.public.get("/healthz").status_code == 200
        # Said once for the outage, not once for every refused request.
        for _ in range(5):
            problem_of(clients.lookup(token, "22200000"), 503, "rate-limits-unavailable")
        logging.getLogger("lookup.abuse.ratelimit").removeHandler(listener)
        assert len(said) == 1 and said[0].getMessage().startswith("rate-limit storage unavailable")


def test_a_block_new_accounts_split_is_refused_to_the_next_new_account_before_its_first(
    clients: Clients, data_dir: Path
) -> None:
    settings = make_settings(data_dir)
    newcomer = new_key(settings, roles="lookup,search", org="newly-opened-co")
    customer = new_key(settings, roles="lookup,search", org="customer-co")
    dormant = new_key(settings, roles="lookup", org="dormant-co")
    month_ago = utc_now() - timedelta(days=30)
    with contextlib.closing(sqlite3.connect(settings.keys_path)) as keys, keys:
        # Both made a month ago; only the customer has used its account since.
        keys.execute("UPDATE accounts SET created_at = ?", (f"{month_ago.isoformat()}+00:00",))
    monitor = AbuseMonitor(
        clients.services.events, clients.services.store, clients.services.key_ring
    )
    opening = LookupEvent(
        ts=month_ago,
        account="customer-co",
        key="k",
        ip="192.0.2.7",
        number="+4722201000",
        outcome="miss",
    )
    monitor.submit([opening])
    swarm = _swarm(settings)
    assert any(f.evidence.get("swarmed") for f in monitor.submit(swarm))
    clients.services.key_ring.refresh()
    # The next new account is refused every number of the block alike, before its first:
    # listed or not, with when it may ask again (not how new an account must be). So is an
    # account made long ago and never used: it opens at its first lookup.
    listed, unlisted, kept = (
        problem_of(clients.lookup(token, number), 403, "block-swarmed")
        for token, number in ((newcomer, "22200002"), (newcomer, "22200003"), (dormant, "22200002"))
    )
    assert listed == unlisted == kept and listed["block"] == "+4722200000..999"
    assert "opened" not in listed["detail"] and listed["until"].endswith("Z")
    refused = clients.lookup(newcomer, "22200002")
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert "22200002" not in refused.text
    # Elsewhere it is answered, and so is an older customer in the block.
    problem_of(clients.lookup(newcomer, "22201000"), 404, "number-not-found")
    assert clients.lookup(customer, "22200002").status_code == 200
    assert clients.lookup(customer, "22200003").status_code == 404

    def names(token: str) -> list[str]:
        response = clients.public.get(
            "/v1/search",
            params={"name": "Navn", "limit": "20"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        return [hit["listing"]["number"] for hit in response.json()["results"]]

    # A name search does not hand it the block either.
    assert names(newcomer) == [] and len(names(customer)) == 20
    # Compliance staff see why: the block, whom it is refused to, until when.
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    clients.services.key_ring.refresh()
    (shown,) = clients.internal.get(
        "/internal/v1/swarms", headers={"Authorization": f"Bearer {officer}"}
    ).json()
    until = datetime.fromisoformat(shown["until"])
    assert shown["block"] == "+4722200000..999"
    assert f"{until.replace(microsecond=0, tzinfo=None).isoformat()}Z" == listed["until"]
    opened_after = datetime.fromisoformat(shown["accounts_opened_after"])
    assert until - opened_after == timedelta(days=8)  # a week before the swarm, a day after
    # A case of the swarm says how long its account has been in use: since its first
    # lookup, half an hour before, where an established customer's says a month.
    cases = clients.internal.get(
        "/internal/v1/cases", headers={"Authorization": f"Bearer {officer}"}
    ).json()
    case_id = next(case["id"] for case in cases if case["account"] == "sybil-0")
    evidence = clients.internal.get(
        f"/internal/v1/cases/{case_id}", headers={"Authorization": f"Bearer {officer}"}
    ).json()
    assert datetime.fromisoformat(evidence["account_opened"]) == swarm[0].ts.replace(tzinfo=UTC)
    assert clients.services.key_ring.account("customer-co").opened == month_ago
    problem_of(
        clients.internal.get(
            "/internal/v1/swarms", headers={"Authorization": f"Bearer {newcomer}"}
        ),
        403,
        "missing-role",
    )
    # The refusal outlives the server: it is in the key store.
    with contextlib.closing(KeyStore(settings.keys_path)) as store:
        assert [swarm.label for swarm in store.swarms()] == ["+4722200000..999"]
    # Once the swarm's day is over, the block is answered to new accounts again.
    with contextlib.closing(sqlite3.connect(settings.keys_path)) as keys, keys:
        keys.execute("UPDATE swarmed SET until = ?", (utc_now().isoformat(),))
    clients.services.key_ring.refresh()
    assert clients.lookup(newcomer, "22200002").status_code == 200
    ended = clients.internal.get(
        "/internal/v1/swarms", headers={"Authorization": f"Bearer {officer}"}
    )
    assert ended.json() == []


def _swarm(settings: Settings) -> list[LookupEvent]:
    """Eight new accounts, each on an address of its own, three numbers each of the
    fixture's block (every other number of its first half listed), a minute apart."""
    start = utc_now() - timedelta(minutes=30)
    numbers = random.Random(3).sample(range(22200000, 22201000), 24)
    for account in range(8):
        new_key(settings, org=f"sybil-{account}")
    return [
        LookupEvent(
            ts=start + timedelta(minutes=index),
            account=f"sybil-{index // 3}",
            key=f"k{index // 3}",
            ip=f"10.9.0.{index // 3 + 1}",
            number=f"+47{number}",
            outcome="hit" if number < 22200500 and number % 2 == 0 else "miss",
        )
        for index, number in enumerate(numbers)
    ]


def test_a_key_store_that_cannot_take_a_swarm_loses_no_finding_nor_lookup(
    clients: Clients, data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    settings = make_settings(data_dir)
    events = _swarm(settings)
    key_ring = clients.services.key_ring

    def locked(swarm: Any) -> bool:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(key_ring, "swarm", locked)
    monitor = AbuseMonitor(clients.services.events, clients.services.store, key_ring)
    with caplog.at_level(logging.ERROR):
        findings = monitor.submit(events)
    assert any(f.evidence.get("swarmed") for f in findings)
    assert "cannot refuse +4722200000..999 to new accounts: database is locked" in caplog.text
    # Every lookup logged and every finding on a case; the holds were carried out.
    store = clients.services.store
    assert store.file.rows("SELECT count(*) FROM lookup_log")[0][0] == len(events)
    assert {case["account"] for case in store.cases.summaries()} == {f.account for f in findings}
    assert key_ring.account("sybil-0").holds


def test_a_swarm_written_with_its_zone_is_read_as_utc(clients: Clients, data_dir: Path) -> None:
    # A row written by hand or another tool, with its zone: lookups compare naive UTC.
    settings = make_settings(data_dir)
    newcomer = new_key(settings, org="newly-opened-co")
    until = datetime.now(UTC) + timedelta(hours=1)
    with contextlib.closing(sqlite3.connect(settings.keys_path)) as keys, keys:
        keys.execute(
            "INSERT INTO swarmed (block, opened_after, until) VALUES (?, ?, ?)",
            (
                "+4722200000..999",
                (until - timedelta(days=8)).isoformat(),
                until.isoformat().replace("+00:00", "Z"),
            ),
        )
    clients.services.key_ring.refresh()
    refused = problem_of(clients.lookup(newcomer, "22200002"), 403, "block-swarmed")
    assert refused["until"] == f"{until.replace(tzinfo=None).isoformat(timespec='seconds')}Z"
