"""The internal compliance API over real HTTP and a real compliance store: which case
a decision may go on, what a case's evidence shows, and the audit trail's integrity."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest
from litestar.testing import TestClient

from lookup.abuse.audit import GENESIS, seal
from lookup.abuse.decisions import CaseClosed
from lookup.abuse.detectors import Finding
from lookup.abuse.events import Endpoint, LookupEvent, Outcome, utc_now
from lookup.abuse.holds import Hold
from lookup.abuse.retention import Sweep
from lookup.abuse.store import ComplianceStore
from lookup.api.app import create_internal_app
from lookup.api.services import Services
from lookup.config import Settings
from lookup.errors import KeyStoreError
from lookup.ingest.pipeline import ingest
from lookup.keys import KeyStore
from tests.conftest import make_settings, new_key, problem_of
from tests.ingest_helpers import HEADER, filler, person, write_csv

DAY = datetime(2026, 11, 2)


class Desk:
    """A compliance officer's client on the internal API, and the services behind it."""

    def __init__(self, client: TestClient[Any], services: Services, token: str) -> None:
        self.client = client
        self.services = services
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Any:
        return self.client.get(f"/internal/v1{path}", headers=self.headers)

    def subject(self, number: str) -> Any:
        """A data subject's access request, with its reference."""
        return self.get(f"/subjects/{number}?reason=DSR-2026-17")

    def decide(self, case_id: int, decision: str, reason: str = "reviewed") -> Any:
        return self.client.post(
            f"/internal/v1/cases/{case_id}/decisions",
            json={"decision": decision, "reason": reason},
            headers=self.headers,
        )

    def status(self, account: str) -> str:
        return self.services.key_ring.account(account).status


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "var")
    new_key(settings, org="cust-co")
    return settings


def _desk(settings: Settings) -> Iterator[Desk]:
    officer = new_key(settings, roles="compliance", org="compliance-desk")
    services = Services(settings)
    with TestClient(app=create_internal_app(services, lifespan=True)) as client:
        yield Desk(client, services, officer)


@pytest.fixture
def desk(settings: Settings) -> Iterator[Desk]:
    yield from _desk(settings)


def _finding(account: str, ts: datetime, action: str = "suspend") -> Finding:
    return Finding(
        account=account, kind="block_coverage", action=action, ts=ts, events_seen=9, evidence={}
    )


def _open(desk: Desk, account: str, ts: datetime, action: str = "suspend") -> int:
    """A case opened (or added to) by a finding, its action carried out as the monitor would."""
    case_id = desk.services.store.record(_finding(account, ts, action))
    if action == "suspend":
        desk.services.key_ring.set_status(account, "suspended", f"case {case_id}")
    return case_id


def _lookup(
    ts: datetime,
    number: str,
    outcome: Outcome = "hit",
    endpoint: Endpoint = "numbers",
    account: str = "cust-co",
    *,
    held: bool | None = False,
) -> LookupEvent:
    return LookupEvent(
        ts=ts,
        account=account,
        key="k",
        ip="192.0.2.1",
        number=number,
        outcome=outcome,
        endpoint=endpoint,
        held=held,
    )


# --- which case a decision may go on


def test_a_reinstatement_through_an_old_case_while_a_newer_one_is_open_is_refused(
    desk: Desk,
) -> None:
    old = _open(desk, "cust-co", DAY)
    assert desk.decide(old, "reinstate", "its own direct-dial range").status_code == 201
    new = _open(desk, "cust-co", DAY + timedelta(days=1))
    assert new != old and desk.status("cust-co") == "suspended"

    refused = desk.decide(old, "reinstate", "again, through the old case")
    problem = problem_of(refused, 409, "not-current-case")
    assert problem["current_case"] == new
    assert f"case {new} (open)" in problem["detail"]
    assert f"decide on case {new}" in problem["detail"]
    # Nothing recorded, nothing changed: the open case's findings still wait for a decision.
    assert desk.status("cust-co") == "suspended"
    assert [d["decision"] for d in desk.get(f"/cases/{old}").json()["decisions"]] == ["reinstate"]
    assert desk.get(f"/cases/{new}").json()["decisions"] == []
    assert desk.services.store.cases.get(new).status == "open"
    assert desk.get("/audit/verify").json()["intact"] is True
    # A restart has nothing to carry out again behind compliance's back.
    monitor = desk.services.monitor
    assert monitor is not None
    assert monitor.resume() == 0

    # On the open case it is decided, and the restart leaves the account alone.
    assert desk.decide(new, "reinstate", "the same range, confirmed").status_code == 201
    assert desk.status("cust-co") == "active"
    assert monitor.resume() == 0 and desk.status("cust-co") == "active"


def test_an_old_closed_case_gives_way_to_the_newest_closed_one(desk: Desk) -> None:
    old = _open(desk, "cust-co", DAY)
    assert desk.decide(old, "clear", "a refresh job").status_code == 201
    new = _open(desk, "cust-co", DAY + timedelta(days=1))
    assert desk.decide(new, "clear", "the same refresh job").status_code == 201
    desk.services.key_ring.set_status("cust-co", "suspended", "paused by hand")

    problem = problem_of(desk.decide(old, "reinstate"), 409, "not-current-case")
    assert f"case {new} (closed)" in problem["detail"]
    assert desk.status("cust-co") == "suspended"
    # The newest case may still be reinstated after it was closed.
    assert desk.decide(new, "reinstate", "pause lifted").status_code == 201
    assert desk.status("cust-co") == "active"


def test_officers_deciding_at_once_close_a_case_once(desk: Desk) -> None:
    case_id = _open(desk, "cust-co", DAY, action="flag")
    store = desk.services.store
    outcomes: list[str] = []

    def clear(officer: int) -> None:
        try:
            store.decisions.decide(case_id, "clear", f"officer/{officer}", "explained")
            outcomes.append("decided")
        except CaseClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=clear, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["closed"] * 7 + ["decided"]
    assert len(store.decisions.trail(case_id=case_id)) == 1


def test_officers_reinstating_at_once_record_one_reinstatement(desk: Desk) -> None:
    case_id = _open(desk, "cust-co", DAY)
    assert desk.status("cust-co") == "suspended"
    codes: list[int] = []
    start = threading.Barrier(8)

    def reinstate(officer: int) -> None:
        start.wait()
        codes.append(desk.decide(case_id, "reinstate", f"reviewed by {officer}").status_code)

    threads = [threading.Thread(target=reinstate, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One took effect; the others found the account active again, and recorded nothing.
    assert sorted(codes) == [201] + [409] * 7
    trail = desk.get("/accounts/cust-co/decisions").json()
    assert [entry["decision"] for entry in trail] == ["reinstate"]
    assert desk.status("cust-co") == "active"


def test_an_account_s_audit_trail_is_found_however_its_letters_are_composed(
    settings: Settings,
) -> None:
    new_key(settings, org="Ålesund Taxi")
    for desk in _desk(settings):
        case_id = _open(desk, "Ålesund Taxi", DAY)
        assert desk.decide(case_id, "reinstate", "a new customer").status_code == 201
        composed = desk.get("/accounts/%C3%85lesund%20Taxi/decisions").json()
        assert [entry["decision"] for entry in composed] == ["reinstate"]
        # Typed on a Mac: an A and a combining ring (U+030A).
        decomposed = desk.get("/accounts/A%CC%8Alesund%20Taxi/decisions")
        assert decomposed.status_code == 200
        assert decomposed.json() == composed


def test_a_body_that_gives_a_key_twice_or_is_not_json_is_refused_and_nothing_recorded(
    desk: Desk,
) -> None:
    case_id = _open(desk, "cust-co", DAY)
    path = f"/internal/v1/cases/{case_id}/decisions"

    def post(body: bytes, media: str | None = "application/json") -> Any:
        headers = {**desk.headers, **({"Content-Type": media} if media else {})}
        return desk.client.post(path, content=body, headers=headers)

    twice = post(b'{"decision": "reinstate", "reason": "explained", "decision": "warn"}')
    assert problem_of(twice, 400, "bad-request")["detail"] == (
        "the body gives 'decision' more than once: which value holds cannot be told"
    )
    escaped = post(b'{"reason": "x", "re\\u0061son": "y", "decision": "warn"}')
    assert "'reason' more than once" in problem_of(escaped, 400, "bad-request")["detail"]
    for media in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        refused = problem_of(post(b"decision=warn&reason=x", media), 415, "unsupported-media-type")
        assert refused["detail"] == (
            f"the body is declared as {media!r}: send it as application/json"
        )
    assert desk.get("/accounts/cust-co/decisions").json() == []
    assert desk.status("cust-co") == "suspended"
    # A key inside a value is no second key; JSON with a charset, or undeclared, is read.
    inside = rb'{"decision": "warn", "reason": "said \"decision\": twice"}'
    assert post(inside, "application/json; charset=utf-8").status_code == 201
    assert post(b'{"decision": "warn", "reason": "again"}', None).status_code == 201


def test_the_case_list_comes_a_page_at_a_time(desk: Desk) -> None:
    accounts = [f"cust-{i}" for i in range(5)]
    for i, account in enumerate(accounts):
        new_key(desk.services.settings, org=account)
        _open(desk, account, DAY + timedelta(hours=i), action="flag")
    first = desk.get("/cases?limit=2")
    assert [c["account"] for c in first.json()] == ["cust-4", "cust-3"]
    pages = [first.json()]
    link = first.headers["link"]
    while link:
        assert link.endswith('>; rel="next"')
        following = desk.client.get(link[1 : link.index(">")], headers=desk.headers)
        pages.append(following.json())
        link = following.headers.get("link", "")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [c["account"] for page in pages for c in page] == accounts[::-1]
    assert "status=open" in first.headers["link"]
    assert desk.get("/cases").json() == [c for page in pages for c in page]  # all in 100
    huge = desk.get(f"/cases?before={10**30}&limit=1")
    assert [c["account"] for c in huge.json()] == ["cust-4"]
    for query, says in [
        ("limit=0", "limit must be 1 to 500"),
        ("limit=501", "limit must be 1 to 500"),
        ("limit=2.0", "query parameter 'limit': must be a whole number"),
        ("before=-1", "query parameter 'before': must be a whole number"),
        ("limit=1&limit=2", "query parameter 'limit' is given more than once"),
        ("status=open&status=closed", "query parameter 'status' is given more than once"),
        ("state=open", "unknown query parameter 'state': this endpoint takes status, limit"),
    ]:
        refused = problem_of(desk.get(f"/cases?{query}"), 422, "invalid-parameter")
        assert refused["detail"].startswith(says), refused


# --- what a case's evidence shows


def test_the_timeline_shows_the_lookups_nearest_each_finding_of_a_busy_account(
    desk: Desk,
) -> None:
    first = DAY + timedelta(hours=12)
    later = first + timedelta(hours=3)
    # An hour of a busy CRM's traffic before each finding, two lookups a second, with a
    # short walk through a block just before each.
    busy = [
        _lookup(moment - timedelta(minutes=59) + timedelta(seconds=i / 2), f"+479{i:07d}")
        for moment in (first, later)
        for i in range(7080)
    ]
    walks = {
        moment: [
            _lookup(moment - timedelta(seconds=10 - i), f"+4722{j}000{i:02d}", "miss")
            for i in range(10)
        ]
        for j, moment in enumerate((first, later))
    }
    after = [_lookup(first + timedelta(seconds=1), "+4798888888")]
    desk.services.store.commit(sorted(busy + walks[first] + walks[later] + after, key=_ts), [])
    case_id = _open(desk, "cust-co", first)
    assert desk.services.store.record(_finding("cust-co", later)) == case_id

    body = desk.get(f"/cases/{case_id}").json()
    timeline = body["timeline"]
    numbers = {row["number"] for row in timeline}
    # Both findings' walks are there, and what the account did right after the first.
    assert {e.number for e in walks[first]} <= numbers
    assert {e.number for e in walks[later]} <= numbers
    assert "+4798888888" in numbers
    stamps = [datetime.fromisoformat(row["ts"]) for row in timeline]
    assert stamps == sorted(stamps)
    assert len(timeline) <= 2 * (50 + 10)
    # Nothing from the far ends of the busy hours (logged in UTC, served with the offset).
    assert min(stamps) > (first - timedelta(minutes=1)).replace(tzinfo=UTC)


def test_the_timeline_stays_bounded_for_a_case_with_many_findings(desk: Desk) -> None:
    store = desk.services.store
    store.commit([_lookup(DAY + timedelta(seconds=i), f"+479{i:07d}") for i in range(20_000)], [])
    moments = [DAY + timedelta(seconds=600 * n) for n in range(30)]
    case_id = _open(desk, "cust-co", moments[0])
    for moment in moments[1:]:
        store.record(_finding("cust-co", moment))
    timeline = desk.get(f"/cases/{case_id}").json()["timeline"]
    assert 0 < len(timeline) <= 600
    # The finding that opened the case and the latest one are both covered.
    stamps = {datetime.fromisoformat(row["ts"]) for row in timeline}
    assert {moments[0].replace(tzinfo=UTC), moments[-1].replace(tzinfo=UTC)} <= stamps


def test_the_blocks_count_looked_up_numbers_not_searches_or_typos(desk: Desk) -> None:
    t = DAY + timedelta(hours=12)
    desk.services.store.commit(
        [
            _lookup(t - timedelta(seconds=60), "Kari Nordmann", endpoint="search"),
            _lookup(t - timedelta(seconds=59), "Hansen", "miss", endpoint="search"),
            _lookup(t - timedelta(seconds=58), "2220ABCD", "invalid"),
        ]
        + [_lookup(t - timedelta(seconds=30 - i), f"+4722200{100 + i}") for i in range(3)],
        [],
    )
    case_id = _open(desk, "cust-co", t, action="flag")
    body = desk.get(f"/cases/{case_id}").json()
    assert [(b["block"], b["distinct"], b["lookups"]) for b in body["blocks"]] == [
        ("+4722200000..999", 3, 3)
    ]
    # The timeline is the whole traffic, searches included.
    assert {"Kari Nordmann", "Hansen"} <= {row["number"] for row in body["timeline"]}


# --- the audit trail


def _two_decisions(desk: Desk) -> int:
    case_id = _open(desk, "cust-co", DAY)
    assert desk.decide(case_id, "warn", "told them the terms").status_code == 201
    assert desk.decide(case_id, "suspend", "went on scanning").status_code == 201
    assert desk.get("/audit/verify").json()["intact"] is True
    return case_id


def test_deleting_the_newest_decision_shows(desk: Desk) -> None:
    case_id = _two_decisions(desk)
    desk.services.store.file.rows(
        "DELETE FROM decisions WHERE id = (SELECT max(id) FROM decisions)"
    )
    removed = desk.get("/audit/verify").json()
    assert removed["intact"] is False
    assert removed["problem"] == (
        "the trail's head names 2 decisions, and 1 are there: the newest were removed"
    )
    # A decision after it does not cover it up.
    assert desk.decide(case_id, "warn", "last warning").status_code == 201
    assert desk.get("/audit/verify").json()["intact"] is False


def test_a_rewrite_that_seals_the_chain_again_shows_against_a_head_kept_elsewhere(
    desk: Desk,
) -> None:
    case_id = _two_decisions(desk)
    kept = desk.get("/audit/verify").json()
    assert (kept["decisions"], kept["broken_at"], kept["problem"]) == (2, None, None)
    recorded = f"{kept['decisions']}:{kept['head']}"
    assert desk.get(f"/audit/verify?head={recorded}").json()["intact"] is True
    assert desk.decide(case_id, "warn", "a third").status_code == 201
    assert desk.get(f"/audit/verify?head={recorded}").json()["intact"] is True
    # Behind the service's back: the first reason changed, every decision sealed again.
    store = desk.services.store
    rows = store.file.rows("SELECT * FROM decisions ORDER BY id")
    prev = GENESIS
    for row in rows:
        reason = "nothing to see" if row[0] == rows[0][0] else row[5]
        forged = seal(prev, row[0], row[1], row[2], row[3], row[4], reason, row[6])
        store.file.rows(
            "UPDATE decisions SET reason = ?, prev_hash = ?, hash = ? WHERE id = ?",
            [reason, forged.prev_hash, forged.hash, row[0]],
        )
        prev = forged.hash
    store.file.rows("UPDATE audit_head SET hash = ? WHERE id = 1", [prev])
    assert desk.get("/audit/verify").json()["intact"] is True  # the chain alone holds
    caught = desk.get(f"/audit/verify?head={recorded}").json()
    assert caught["intact"] is False and caught["broken_at"] == rows[1][0]
    assert "does not pass through the recorded head" in caught["problem"]
    hashed = kept["head"]
    # A count past 4,300 digits was a 500 (Python's int refused it).
    for bad in (
        "2",
        "2:abc",
        f"x:{hashed}",
        f"02:{hashed}",
        f"2:{'A' * 64}",
        f"{'9' * 4301}:{hashed}",
    ):
        problem = problem_of(desk.get(f"/audit/verify?head={bad}"), 422, "invalid-parameter")
        assert problem["parameter"] == "head" and "COUNT:HASH" in problem["detail"], bad


def test_an_edited_decision_is_named(desk: Desk) -> None:
    _two_decisions(desk)
    desk.services.store.file.rows("UPDATE decisions SET reason = 'edited' WHERE id = 1")
    found = desk.get("/audit/verify").json()
    assert (found["intact"], found["broken_at"]) == (False, 1)
    assert found["problem"].startswith("decision 1 (1 of 2) does not match its hash")


def test_emptying_the_audit_trail_shows(desk: Desk) -> None:
    _two_decisions(desk)
    desk.services.store.file.rows("DELETE FROM decisions")
    assert desk.get("/audit/verify").json()["intact"] is False


def test_an_empty_audit_trail_is_intact(desk: Desk) -> None:
    assert desk.get("/audit/verify").json()["intact"] is True


def test_a_store_from_before_the_chain_head_keeps_its_trail_and_gains_the_check(
    settings: Settings,
) -> None:
    for desk in _desk(settings):
        _two_decisions(desk)
    # The store as the version before the chain head left it on disk.
    with duckdb.connect(str(settings.compliance_path)) as con:
        con.execute("DROP TABLE audit_head")
    for desk in _desk(settings):
        assert desk.get("/audit/verify").json()["intact"] is True
        assert len(desk.get("/accounts/cust-co/decisions").json()) == 2
        assert desk.decide(1, "warn", "after the upgrade").status_code == 201
        assert desk.get("/audit/verify").json()["intact"] is True
        desk.services.store.file.rows("DELETE FROM decisions WHERE id = 3")
        assert desk.get("/audit/verify").json()["intact"] is False
    # Reopened, the store does not take the shortened trail as its new head.
    for desk in _desk(settings):
        assert desk.get("/audit/verify").json()["intact"] is False


def test_a_closed_cases_evidence_ends_when_it_was_closed(desk: Desk) -> None:
    monitor = desk.services.monitor
    assert monitor is not None
    start = utc_now() - timedelta(minutes=10)
    walk = [_lookup(start + timedelta(seconds=i), f"+47222024{i:02d}", "miss") for i in range(4)]
    monitor.submit(walk)
    [case] = desk.get("/cases").json()
    assert desk.decide(case["id"], "clear", "a customer's own callers").status_code == 201
    # Looked up after the case was closed: no evidence of it.
    after = utc_now() + timedelta(seconds=5)
    monitor.submit([_lookup(after, "+4791234567"), _lookup(after, "+4722202499")])
    detail = desk.get(f"/cases/{case['id']}").json()
    assert [item["number"] for item in detail["timeline"]] == [e.number for e in walk]
    (block,) = detail["blocks"]
    assert (block["block"], block["lookups"]) == ("+4722202000..999", 4)


def test_a_log_from_before_it_said_which_lookups_were_held_tells_them_by_the_hold(
    settings: Settings,
) -> None:
    walk = [_lookup(DAY + timedelta(seconds=i), f"+47222024{i:02d}", "miss") for i in range(4)]
    for desk in _desk(settings):
        monitor = desk.services.monitor
        assert monitor is not None
        monitor.submit([*walk, _lookup(DAY + timedelta(seconds=10), "+4722202450", held=True)])
    # The log as the version before `held` left it on disk.
    with duckdb.connect(str(settings.compliance_path)) as con:
        con.execute("ALTER TABLE lookup_log DROP COLUMN held")
    for desk in _desk(settings):
        monitor = desk.services.monitor
        assert monitor is not None
        # Logged now: this one was answered (the server had not seen the hold yet); the
        # next comes from a server from before `held` (its event does not say).
        monitor.submit(
            [
                _lookup(DAY + timedelta(seconds=11), "+4722202451"),
                _lookup(DAY + timedelta(seconds=12), "+4722202452", held=None),
            ]
        )
        [case] = desk.get("/cases").json()
        timeline = desk.get(f"/cases/{case['id']}").json()["timeline"]
        assert [(item["number"], item["held"]) for item in timeline[-3:]] == [
            ("+4722202450", True),  # after the hold, in its block: told by its time
            ("+4722202451", False),  # as logged
            ("+4722202452", True),  # not said: told by its time
        ]


def test_decisions_made_through_the_api_leave_a_restart_nothing_to_carry_out(
    settings: Settings,
) -> None:
    for desk in _desk(settings):
        _two_decisions(desk)
        assert desk.status("cust-co") == "suspended"
        assert desk.services.store.decisions.pending() == []
    # A store from before decisions were marked carried out: they were, as they were made.
    with duckdb.connect(str(settings.compliance_path)) as con:
        con.execute("DROP TABLE decisions_carried_out")
    for desk in _desk(settings):
        assert desk.services.store.decisions.pending() == []


def test_a_missing_chain_head_is_not_taken_for_an_intact_trail(settings: Settings) -> None:
    for desk in _desk(settings):
        _two_decisions(desk)
    store = ComplianceStore(settings.compliance_path)
    store.file.rows("DELETE FROM decisions WHERE id = 2")
    store.file.rows("DELETE FROM audit_head")
    store.close()
    for desk in _desk(settings):
        assert desk.get("/audit/verify").json()["intact"] is False


def _ts(event: LookupEvent) -> datetime:
    return event.ts


def _ola_on_file(tmp_path: Path) -> Settings:
    """A data dir where 22202400 (Ola Nordmann) is listed, with one rejected row of his."""
    settings = make_settings(tmp_path / "var")
    write_csv(
        tmp_path / "a",
        "telenor_full_20261122T020000.csv",
        [person("22202400", first="Ola", last="Nordmann"), *filler(5)],
    )
    ingest([tmp_path / "a"], settings)
    rejected = person("22202400", first="Ola", last="Nordmann", postnr="150") + ";U"
    write_csv(
        tmp_path / "b", "telenor_delta_20261123T020000.csv", [rejected], header=HEADER + ";action"
    )
    ingest([tmp_path / "b"], settings)
    return settings


def _times(body: Any, path: str = "") -> Iterator[tuple[str, datetime]]:
    """Every date-time the body holds (a string that reads as one), but in evidence."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key != "evidence":
                yield from _times(value, f"{path}.{key}")
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from _times(value, f"{path}[{index}]")
    elif isinstance(body, str) and len(body) > 10 and body[4] == "-" and body[10] == "T":
        yield path, datetime.fromisoformat(body)


def test_every_time_the_compliance_api_serves_says_its_offset(tmp_path: Path) -> None:
    # RFC 3339 (the schema's `date-time`) asks for one, and the answers mixed two zones:
    # an operator's valid_from is Oslo time, the service's own times UTC.
    settings = _ola_on_file(tmp_path)
    new_key(settings, org="cust-co")
    for desk in _desk(settings):
        desk.services.store.commit([_lookup(DAY, "+4722202400")], [])
        case_id = _open(desk, "cust-co", DAY)
        assert desk.decide(case_id, "warn").status_code == 201
        answers = [
            desk.subject("22202400").json(),
            desk.get("/cases").json(),
            desk.get(f"/cases/{case_id}").json(),
            desk.get("/accounts/cust-co/decisions").json(),
            desk.decide(case_id, "reinstate").json(),
        ]
        seen = {}
        for answer in answers:
            for path, moment in _times(answer):
                seen[path] = moment
                assert moment.utcoffset() is not None, path
        subject, case = answers[0], answers[2]
        # The operator's date, Oslo time in winter.
        assert subject["directory"][0]["valid_from"] == "2025-01-01T00:00:00+01:00"
        assert subject["published"]["valid_from"] == subject["directory"][0]["valid_from"]
        for utc_time in (
            subject["history"][0]["ingested_at"],
            subject["lookups"]["first"],
            case["case"]["opened_at"],
            case["findings"][0]["ts"],
            case["timeline"][0]["ts"],
            case["blocks"][0]["first"],
            case["decisions"][0]["ts"],
        ):
            assert utc_time.endswith("Z"), utc_time
        assert len(seen) >= 12


def test_an_ingest_is_dated_in_utc_whatever_the_hosts_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB's now() is the host's local time: on a host in Tokyo an ingest was stamped
    # nine hours ahead, and served as UTC.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        before = datetime.now(UTC)
        settings = _ola_on_file(tmp_path)
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    for desk in _desk(settings):
        history = desk.subject("22202400").json()["history"]
        stamps = [datetime.fromisoformat(change["ingested_at"]) for change in history]
        assert stamps and all(before <= stamp <= after for stamp in stamps), stamps


def test_a_data_subject_gets_everything_stored_about_their_number(tmp_path: Path) -> None:
    settings = _ola_on_file(tmp_path)
    new_key(settings, org="cust-co")
    for desk in _desk(settings):
        store = desk.services.store
        store.commit([_lookup(DAY + timedelta(minutes=i), "+4722202400") for i in range(3)], [])
        store.commit([_lookup(DAY, "+4722202400", "miss", account="other-co")], [])
        # Written in a form the normalizer refused, the log keeps it as typed; a typo of
        # another number is not about it.
        written = ["22/20 24 00", "+47 22202400 x", "2220240"]
        store.commit([_lookup(DAY, raw, "invalid") for raw in written], [])
        # The log keeps a search's query as typed: one typed as the number is about it.
        queries = ["22202400", "Ola +47 22 20 24 00", "２２２０２４００", "Ola Nordmann", "2220240"]
        # Nor is a longer number, one ending in it, or digits of words apart.
        queries += ["Kari 122202400", "+47 92220240 0", "Storgata 22, 2024 00", "4722202400 1"]
        store.commit([_lookup(DAY, q, "miss", "search", "searcher") for q in queries], [])
        case_id = store.record(
            Finding(
                account="cust-co",
                kind="block_coverage",
                action="flag",
                ts=DAY,
                events_seen=3,
                evidence={"lookups": [{"number": "+4722202400"}]},
            )
        )
        body = desk.subject("22 20 24 00").json()
        assert body["number"] == "+4722202400"
        [record] = body["directory"]
        assert (record["operator"], record["first_name"], record["street"]) == (
            "telenor",
            "Ola",
            "Storgata 1",
        )
        # Whether a date of birth is on file, never the date itself.
        assert record["birth_date_on_file"] is True and "1980-02-03" not in str(body)
        assert body["published"]["name"]["full"] == "Ola Nordmann"
        assert [c["change"] for c in body["history"]] == ["added"]
        assert [r["reason"] for r in body["rejected_rows"]] == ["bad_postcode"]
        assert body["lookups"]["total"] == 9
        assert [
            (a["account"], a["lookups"], a["answered"], a["searched"])
            for a in body["lookups"]["by_account"]
        ] == [("cust-co", 5, 3, 0), ("searcher", 3, 0, 3), ("other-co", 1, 0, 0)]
        assert body["cases"] == [case_id]
        unknown = desk.subject("41999999").json()
        assert unknown["directory"] == [] and unknown["published"] is None
        problem_of(desk.subject("12"), 422, "invalid-number")
        # Left out, or written with a slash: invalid numbers, as on /v1/numbers/, not routes.
        for path in ("/subjects/", "/subjects/2127%2F9132", "/subjects/22/20/24/00?reason=r"):
            refused = problem_of(desk.get(path), 422, "invalid-number")
            assert refused["reason"] in ("empty", "malformed"), path
        assert desk.get("/subjects/22202400/erasure").status_code == 405


def test_each_access_request_is_recorded_with_who_and_why_and_needs_a_reference(
    tmp_path: Path,
) -> None:
    # The report tells whether a number is reserved, which no other path does: whoever
    # reads one leaves their name and the request's reference, never the number.
    settings = _ola_on_file(tmp_path)
    for desk in _desk(settings):
        for query in ("", "?reason=", "?reason=%20%20", "?reason=%E2%80%AEx"):
            refused = problem_of(desk.get(f"/subjects/22202400{query}"), 422, "invalid-parameter")
            assert refused["parameter"] == "reason", query
        assert (
            "the request's reference"
            in problem_of(desk.get("/subjects/22202400"), 422, "invalid-parameter")["detail"]
        )
        store = desk.services.store
        assert store.file.rows("SELECT count(*) FROM subject_accesses") == [(0,)]
        assert desk.subject("22202400").status_code == 200
        assert desk.get("/subjects/41999999?reason=DSR%202026-18").status_code == 200
        problem_of(desk.subject("12"), 422, "invalid-number")  # nothing shown, none recorded
        rows = store.file.rows("SELECT actor, reason FROM subject_accesses ORDER BY ts")
        assert [reason for _, reason in rows] == ["DSR-2026-17", "DSR 2026-18"]
        assert all(actor.startswith("compliance-desk/") for actor, _ in rows)
        assert "2220" not in str(store.file.rows("SELECT * FROM subject_accesses"))


def test_an_erasure_anonymises_the_lookups_but_those_under_legal_hold(tmp_path: Path) -> None:
    settings = _ola_on_file(tmp_path)
    for desk in _desk(settings):
        store = desk.services.store
        store.commit([_lookup(DAY + timedelta(minutes=i), "+4722202400") for i in range(3)], [])
        store.commit([_lookup(DAY, "+4722202400", "miss", account="other-co")], [])
        typed = ("0047-2220-2400", "+47 (0)22 20 24 00", "０２２２０２４００", "2220240")
        store.commit([_lookup(DAY, raw, "invalid") for raw in typed], [])
        queries = ("22 20 24 00", "+4722202400", "Ola Nordmann")
        store.commit([_lookup(DAY, q, "miss", "search") for q in queries], [])
        quoting = {"lookups": [{"number": "+4722202400"}], "range": ["+4722202400", "+4722202410"]}
        cleared = store.record(msgspec.structs.replace(_finding("cust-co", DAY), evidence=quoting))
        store.decisions.decide(cleared, "clear", "desk/k1", "reviewed")  # closed: no hold
        held = store.record(  # other-co is under hold
            msgspec.structs.replace(_finding("other-co", DAY, action="flag"), evidence=quoting)
        )
        assert desk.subject("22202400").json()["cases"] == [cleared, held]
        refused = desk.client.post(
            "/internal/v1/subjects/22202400/erasure", json={"reason": " "}, headers=desk.headers
        )
        problem_of(refused, 422, "invalid-parameter")
        done = desk.client.post(
            "/internal/v1/subjects/22202400/erasure",
            json={"reason": "request 2026-117"},
            headers=desk.headers,
        ).json()
        assert (done["lookups_erased"], done["held_by_open_cases"]) == (8, ["other-co"])
        # The closed case's evidence quotes it no more; the open one's keeps it (legal hold).
        assert done["findings_erased"] == 1
        [erased] = desk.get(f"/cases/{cleared}").json()["findings"]
        assert erased["evidence"] == {
            "lookups": [{"number": "erased"}],
            "range": ["erased", "+4722202410"],
        }
        [kept] = desk.get(f"/cases/{held}").json()["findings"]
        assert kept["evidence"] == quoting
        invalid = "SELECT number FROM lookup_log WHERE outcome = 'invalid' ORDER BY number"
        assert store.file.rows(invalid) == [("2220240",), ("erased",), ("erased",), ("erased",)]
        searches = "SELECT number FROM lookup_log WHERE endpoint = 'search' ORDER BY number"
        assert store.file.rows(searches) == [("Ola Nordmann",), ("erased",), ("erased",)]
        assert done["rejected_rows_erased"] == 1
        after = desk.subject("22202400").json()
        assert after["lookups"]["total"] == 1  # the held account's lookup only
        assert after["cases"] == [held]
        assert [r["raw"] for r in after["rejected_rows"]] == ["[erased on request]"]
        assert "Nordmann" not in str(after["rejected_rows"])
        # The erasure is on record, without the number.
        assert store.file.rows(
            "SELECT actor LIKE 'compliance-desk/%', reason, erased, held, findings FROM erasures"
        ) == [(True, "request 2026-117", 8, 1, 1)]
        assert "22202400" not in str(store.file.rows("SELECT * FROM erasures"))
        assert done["directory"] == "kept"
        assert done["directory_note"].startswith("each operator delivers it every night")


def test_what_compliance_reads_or_erases_holds_the_lookups_the_monitor_gathered(
    tmp_path: Path,
) -> None:
    settings = _ola_on_file(tmp_path)
    for desk in _desk(settings):
        monitor = desk.services.monitor
        assert monitor is not None
        monitor.commit_seconds = 3600  # gathering, as the monitor process does for a second
        monitor.submit([_lookup(DAY + timedelta(minutes=i), "+4722202400") for i in range(2)])
        assert monitor.unlogged == 2
        assert desk.subject("22202400").json()["lookups"]["total"] == 2
        monitor.submit([_lookup(DAY + timedelta(minutes=5), "+4722202400")])
        done = desk.client.post(
            "/internal/v1/subjects/22202400/erasure",
            json={"reason": "request 2026-118"},
            headers=desk.headers,
        ).json()
        # None written after the erasure with the number in it.
        assert (done["lookups_erased"], monitor.unlogged) == (3, 0)
        monitor.write_log()
        assert desk.services.store.file.rows(
            "SELECT number, count(*) FROM lookup_log GROUP BY ALL"
        ) == [("erased", 3)]


def test_a_scan_under_way_quotes_a_number_erased_meanwhile_as_erased(tmp_path: Path) -> None:
    settings = _ola_on_file(tmp_path)
    new_key(settings, org="cust-co")
    for desk in _desk(settings):
        monitor = desk.services.monitor
        assert monitor is not None
        walk = [_lookup(DAY + timedelta(seconds=i), f"+47222024{i:02d}") for i in range(4)]
        assert monitor.submit(walk[:2]) == []  # the detectors remember +4722202400
        done = desk.client.post(
            "/internal/v1/subjects/22202400/erasure",
            json={"reason": "request 2026-121"},
            headers=desk.headers,
        ).json()
        assert (done["lookups_erased"], done["findings_erased"]) == (1, 0)
        found = monitor.submit(walk[2:])  # the walk's fourth number within a minute
        assert [(f.kind, f.action) for f in found] == [("block_coverage", "throttle")]
        assert desk.status("cust-co") == "throttled"
        [case] = desk.get("/cases").json()
        [finding] = desk.get(f"/cases/{case['id']}").json()["findings"]
        assert [item["number"] for item in finding["evidence"]["lookups"]] == [
            "erased",
            "+4722202401",
            "+4722202402",
            "+4722202403",
        ]
        assert desk.subject("22202400").json()["cases"] == []
        blocks = desk.get(f"/cases/{case['id']}").json()["blocks"]
        assert [(b["block"], b["distinct"], b["lookups"]) for b in blocks] == [
            ("+4722202000..999", 3, 3),
            ("erased", None, 1),
        ]


def test_a_short_numbers_erasure_reaches_the_closed_cases_quoting_it(tmp_path: Path) -> None:
    settings = _ola_on_file(tmp_path)
    new_key(settings, org="cust-co")
    for desk in _desk(settings):
        monitor = desk.services.monitor
        assert monitor is not None
        walk = [_lookup(DAY + timedelta(seconds=i), f"+47028{i:02d}", "miss") for i in range(10)]
        assert monitor.submit(walk)
        [case] = desk.get("/cases").json()
        assert desk.subject("02800").json()["cases"] == [case["id"]]
        [block] = desk.get(f"/cases/{case['id']}").json()["blocks"]
        assert (block["block"], block["distinct"]) == ("+4702000..999", 10)  # as evidence names it
        assert desk.decide(case["id"], "reinstate").status_code == 201
        done = desk.client.post(
            "/internal/v1/subjects/02800/erasure",
            json={"reason": "request 2026-123"},
            headers=desk.headers,
        ).json()
        assert done["findings_erased"] >= 1
        assert desk.subject("02800").json()["cases"] == []
        assert '"+4702800"' not in desk.get(f"/cases/{case['id']}").text


def test_an_erased_numbers_lookups_that_reach_the_log_later_are_erased_as_they_arrive(
    tmp_path: Path,
) -> None:
    # Lookups made before the erasure can reach the log after it: queued in a server, or
    # sent again to a monitor restarted before it had written them.
    settings = _ola_on_file(tmp_path)
    for desk in _desk(settings):
        store = desk.services.store
        now = utc_now()
        store.commit([_lookup(now - timedelta(minutes=5), "+4722202400", account="held-co")], [])
        store.record(_finding("held-co", DAY, action="flag"))  # under legal hold
        erased = desk.client.post(
            "/internal/v1/subjects/22202400/erasure",
            json={"reason": "request 2026-119"},
            headers=desk.headers,
        ).json()
        assert (erased["lookups_erased"], erased["held_by_open_cases"]) == (0, ["held-co"])
        assert "send this request again once they are closed" in erased["held_note"]
        # What the erasure decided holds: held-co's case closes, another opens after it.
        store.decisions.decide(1, "clear", "desk/k1", "reviewed")
        store.record(_finding("late-co", DAY, action="flag"))
        store.commit(
            [
                _lookup(now - timedelta(seconds=30), "+4722202400"),
                _lookup(now - timedelta(seconds=20), "0047 22 20 24 00", "invalid"),
                _lookup(now - timedelta(seconds=15), "+4722202400", account="late-co"),
                _lookup(now - timedelta(seconds=10), "+4722202400", account="held-co"),
                _lookup(now - timedelta(seconds=5), "+4722202401"),
                # A clock a little ahead of the monitor's: still made before the erasure.
                _lookup(now + timedelta(seconds=2), "+4722202400"),
            ],
            [],
        )
        store.commit([_lookup(now + timedelta(seconds=10), "+4722202400")], [])  # a new one
        assert store.file.rows("SELECT account, number FROM lookup_log ORDER BY ts") == [
            ("held-co", "+4722202400"),  # kept by the erasure, and not erased since
            ("cust-co", "erased"),
            ("cust-co", "erased"),
            ("late-co", "erased"),
            ("held-co", "+4722202400"),
            ("cust-co", "+4722202401"),
            ("cust-co", "erased"),
            ("cust-co", "+4722202400"),
        ]
        assert store.file.rows("SELECT erased, held FROM erasures") == [(4, 1)]
        # The number is kept for an hour, then the hourly sweep deletes it.
        kept = "SELECT number FROM late_erasures"
        assert store.file.rows(kept) == [("+4722202400",)]
        sweep = Sweep(default_cutoff=DAY - timedelta(days=999), cutoffs={})
        store.sweep(sweep)
        assert store.file.rows(kept) == [("+4722202400",)]
        with store.file.transaction() as con:
            con.execute("UPDATE late_erasures SET erased_at = erased_at - INTERVAL 61 MINUTE")
        store.sweep(sweep)
        assert store.file.rows(kept) == []


def test_a_restarted_monitors_store_still_erases_the_lookups_that_arrive_late(
    tmp_path: Path,
) -> None:
    path = tmp_path / "compliance.duckdb"
    store = ComplianceStore(path)
    erasure = store.erase("+4722202400", "desk/k1", "request 2026-120")
    assert (erasure.lookups, erasure.held_by, erasure.findings) == (0, [], 0)
    store.close()
    store = ComplianceStore(path)  # the monitor restarted; the server sends its lookups again
    store.commit([_lookup(utc_now() - timedelta(seconds=30), "+4722202400")], [])
    assert store.file.rows("SELECT number FROM lookup_log") == [("erased",)]
    store.close()


def test_the_internal_schema_declares_every_answer_a_decision_can_get(desk: Desk) -> None:
    schema = desk.client.get("/schema/openapi.json").json()
    decide = schema["paths"]["/internal/v1/cases/{case_id}/decisions"]["post"]["responses"]
    assert set(decide) == {
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "422",
        "429",
        "503",
    }
    for slug in ("case-closed", "not-current-case", "account-not-found", "account-not-suspended"):
        assert f"/problems/{slug}" in decide["409"]["description"], slug
    assert "/problems/own-account" in decide["403"]["description"]
    # The answers as they come: a closed case, and a body that is not JSON.
    case_id = _open(desk, "cust-co", DAY)
    assert desk.decide(case_id, "clear", "a refresh job").status_code == 201
    assert desk.decide(case_id, "warn", "again").status_code == 409
    garbled = desk.client.post(
        f"/internal/v1/cases/{case_id}/decisions", content=b"{", headers=desk.headers
    )
    assert str(garbled.status_code) in decide
    trail = schema["paths"]["/internal/v1/accounts/{account}/decisions"]["get"]["responses"]
    assert "/problems/unknown-account" in trail["404"]["description"]
    subject = schema["paths"]["/internal/v1/subjects/{number}"]["get"]["responses"]
    assert {"422", "503"} <= set(subject)
    # Every operation with a key declares what a request with a key can be refused for.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") != [{}]:
                responses = operation["responses"]
                assert {"401", "403", "429"} <= set(responses), (path, method)
                # And the fields of a counted request: on a refusal by its limits too.
                assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(
                    responses["429"]["headers"]
                ), (path, method)
                assert "headers" not in responses["401"], (path, method)


def test_an_erasure_says_what_is_kept_of_the_directory_and_not_whether_it_is_reserved(
    tmp_path: Path,
) -> None:
    settings = _ola_on_file(tmp_path)
    reserve = person("40000001", reservert="J", gyldig_fra="2026-11-23") + ";U"
    write_csv(
        tmp_path / "c", "telenor_delta_20261124T020000.csv", [reserve], header=HEADER + ";action"
    )
    ingest([tmp_path / "c"], settings)
    # Ported to telia, where its subscriber reserved it; telenor still delivers its older
    # record, which the reservation stripped of everything but what precedence reads.
    listed = person("40000003", gyldig_fra="2025-01-01") + ";U"
    write_csv(
        tmp_path / "d", "telenor_delta_20261125T020000.csv", [listed], header=HEADER + ";action"
    )
    ported = person("40000003", reservert="J", gyldig_fra="2026-06-01")
    write_csv(tmp_path / "d", "telia_full_20261125T030000.csv", [ported])
    ingest([tmp_path / "d"], settings)
    # A hidden address its operator let go: the statement stays, and nobody reserved it.
    hidden = person("40000004", reservert="A", gyldig_fra="2026-01-01")
    for folder, stamp, action in (("e", "26", "U"), ("f", "27", "D")):
        write_csv(
            tmp_path / folder,
            f"telenor_delta_202611{stamp}T020000.csv",
            [f"{hidden};{action}"],
            header=HEADER + ";action",
        )
        ingest([tmp_path / folder], settings)
    for desk in _desk(settings):

        def erase(number: str, desk: Desk = desk) -> tuple[str, str]:
            answer = desk.client.post(
                f"/internal/v1/subjects/{number}/erasure",
                json={"reason": "request 2026-118"},
                headers=desk.headers,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            return body["directory"], body["directory_note"]

        kept, note = erase("40000002")
        assert kept == "kept" and note.startswith("each operator delivers it every night")
        # A reserved number answers as one no operator delivers: any number can be sent,
        # and only the subject access report (recorded as one) tells them apart.
        unknown = erase("99999999")
        assert unknown[0] == "not_served"
        assert unknown[1].startswith("nothing of a subscriber of this number is served or kept")
        assert erase("40000001") == unknown  # reserved
        assert erase("40000003") == unknown  # telenor's older record keeps nothing of them
        assert erase("40000004") == unknown  # a hidden address its operator let go


def test_a_reinstatement_of_a_closed_case_keeps_the_time_it_was_closed(desk: Desk) -> None:
    case_id = _open(desk, "cust-co", DAY)
    assert desk.decide(case_id, "clear", "a refresh job").status_code == 201
    closed_at = desk.get(f"/cases/{case_id}").json()["case"]["closed_at"]
    assert closed_at is not None
    desk.services.key_ring.set_status("cust-co", "suspended", "paused by hand")
    assert desk.decide(case_id, "reinstate", "paused by mistake").status_code == 201
    assert desk.get(f"/cases/{case_id}").json()["case"]["closed_at"] == closed_at


def test_reinstating_an_account_that_is_not_paused_is_refused_and_nothing_recorded(
    desk: Desk,
) -> None:
    case_id = _open(desk, "cust-co", DAY, action="flag")
    problem = problem_of(
        desk.decide(case_id, "reinstate", "never paused"), 409, "account-not-suspended"
    )
    assert "'cust-co' is active" in problem["detail"]
    assert desk.get(f"/cases/{case_id}").json()["decisions"] == []
    assert desk.services.store.cases.get(case_id).status == "open"
    # Once cleared, a second officer's reinstatement is refused too, not a second entry.
    assert desk.decide(case_id, "clear", "its refresh job").status_code == 201
    problem_of(desk.decide(case_id, "reinstate", "again"), 409, "account-not-suspended")
    assert [d["decision"] for d in desk.get(f"/cases/{case_id}").json()["decisions"]] == ["clear"]
    # A throttled account is reinstated to its full limits.
    desk.services.key_ring.set_status("cust-co", "throttled", "by hand")
    assert desk.decide(case_id, "reinstate", "limits restored").status_code == 201
    assert desk.status("cust-co") == "active"


def test_a_reason_longer_than_the_trail_keeps_is_refused_and_nothing_recorded(
    desk: Desk,
) -> None:
    case_id = _open(desk, "cust-co", DAY)
    problem = problem_of(desk.decide(case_id, "warn", "r" * 2001), 422, "invalid-parameter")
    assert problem["parameter"] == "reason"
    assert "at most 2000 characters (it has 2001)" in problem["detail"]
    assert desk.get("/accounts/cust-co/decisions").json() == []
    assert desk.decide(case_id, "warn", "r" * 2000).status_code == 201


def test_the_trail_of_an_account_that_never_was_is_not_found(desk: Desk) -> None:
    # An account nobody decided on has an empty trail; a name no store knows is a typo.
    assert desk.get("/accounts/cust-co/decisions").json() == []
    problem = problem_of(desk.get("/accounts/cust-coo/decisions"), 404, "unknown-account")
    assert "no account 'cust-coo'" in problem["detail"]
    # A name of any length is echoed by its start only.
    long = problem_of(desk.get(f"/accounts/{'x' * 5000}/decisions"), 404, "unknown-account")
    assert long["detail"] == f"no account '{'x' * 40}…' in the key store or the audit trail"


def test_bad_bodies_and_parameters_say_which_field_and_why(desk: Desk) -> None:
    case_id = _open(desk, "cust-co", DAY)
    path = f"/internal/v1/cases/{case_id}/decisions"

    def post(body: bytes) -> Any:
        headers = {**desk.headers, "Content-Type": "application/json"}
        return desk.client.post(path, content=body, headers=headers)

    empty = problem_of(post(b""), 422, "invalid-parameter")
    assert empty["detail"] == "a JSON body is required"
    assert "errors" not in empty  # Litestar's own list said only `'data'`
    missing = problem_of(post(b"{}"), 422, "invalid-parameter")
    assert missing["detail"] == "body: Object missing required field `decision`"
    assert missing["parameter"] == "decision"
    unknown = problem_of(post(b'{"decision": "approve", "reason": "x"}'), 422, "invalid-parameter")
    assert unknown["detail"] == (
        "body field 'decision': Invalid enum value 'approve': "
        "one of clear, warn, suspend, reinstate"
    )
    assert unknown["parameter"] == "decision"
    # A whole number written otherwise is said alike, whichever parameter (`before` may be
    # left out: its type is another to the decoder).
    for query in ("before=abc", "before=", "before=-1", "limit=abc", "limit=1.0"):
        said = problem_of(desk.get(f"/cases?{query}"), 422, "invalid-parameter")
        name = query.split("=")[0]
        assert said["detail"].startswith(f"query parameter {name!r}: must be a whole number")
    status = problem_of(desk.get("/cases?status=bogus"), 422, "invalid-parameter")
    assert status["detail"] == (
        "query parameter 'status': Invalid enum value 'bogus': one of open, closed, all"
    )
    # A body nested too deeply for the decoder, one cut short, an invisible reason or one
    # that would display in another order: each named, nothing kept.
    deep = problem_of(post(b"[" * 1000 + b"]" * 1000), 400, "bad-request")
    assert deep["detail"] == "JSON is malformed: nested too deeply"
    latin = desk.client.post(
        path,
        content='{"decision": "warn", "reason": "x"}',
        headers={**desk.headers, "Content-Type": "application/json; charset=latin-1"},
    )
    assert problem_of(latin, 415, "unsupported-media-type")["detail"] == (
        "the body is declared as 'latin-1': send it as UTF-8"
    )
    marked = problem_of(
        post(b'\xef\xbb\xbf{"decision": "warn", "reason": "x"}'), 400, "bad-request"
    )
    assert marked["detail"].startswith("the body starts with a byte-order mark")
    cut = problem_of(post(b'{"decision": "clear"'), 400, "bad-request")
    assert cut["detail"].startswith("JSON is malformed: it ends before it is complete")
    for reason, says in [
        ("\u200b", "a decision needs a reason"),
        ("\ufeff \u200b", "a decision needs a reason"),
        # Letters and marks that show nothing: a blank Braille pattern, the Hangul fillers,
        # an accent with no letter.
        ("\u2800", "a decision needs a reason"),
        ("\u115f \u3164", "a decision needs a reason"),
        ("\u0301", "a decision needs a reason"),
        ("cleared \u202egnorw", "text direction controls (U+202E)"),
    ]:
        refused = problem_of(desk.decide(case_id, "warn", reason), 422, "invalid-parameter")
        assert says in refused["detail"], refused
    wrong = desk.client.put(path, json={}, headers=desk.headers)
    assert problem_of(wrong, 405, "method-not-allowed")["detail"] == (
        f"PUT is not allowed on {path}; allowed: OPTIONS, POST"
    )
    # No request of the API needs a big body: refused with the right status, nothing kept.
    huge = problem_of(post(b"x" * 70_000), 413, "body-too-large")
    assert huge["detail"] == "the request body is over 65,536 bytes"
    # A query parameter on an endpoint that takes none is no less a mistake.
    stray = desk.client.post(
        f"{path}?dry_run=1", json={"decision": "clear", "reason": "x"}, headers=desk.headers
    )
    assert problem_of(stray, 422, "invalid-parameter")["detail"] == (
        "unknown query parameter 'dry_run': this endpoint takes none"
    )
    for query in (
        f"/cases/{case_id}?verbose=1",
        "/accounts/cust-co/decisions?since=2026-01-01",
        "/audit/verify?full",
        "/subjects/22202400?reason=DSR-1&fields=all",
    ):
        problem_of(desk.get(query), 422, "invalid-parameter")
    erase = desk.client.post(
        "/internal/v1/subjects/22202400/erasure?confirm=yes",
        json={"reason": "request 1"},
        headers=desk.headers,
    )
    problem_of(erase, 422, "invalid-parameter")
    assert desk.get("/accounts/cust-co/decisions").json() == []


def test_a_customer_holding_a_compliance_key_cannot_decide_on_its_own_case(
    settings: Settings,
) -> None:
    insider = new_key(settings, roles="lookup,compliance", org="cust-co")
    for desk in _desk(settings):
        own = {"Authorization": f"Bearer {insider}"}
        case_id = _open(desk, "other-co", DAY, action="flag")
        # Active, it may decide on another account's case ...
        assert desk.decide(case_id, "warn", "first notice").status_code == 201
        own_case = _open(desk, "cust-co", DAY)
        assert desk.status("cust-co") == "suspended"
        # ... but once paused, its keys open nothing: not the cases, not a decision.
        path = f"/internal/v1/cases/{own_case}/decisions"
        body = {"decision": "clear", "reason": "all good, trust me"}
        problem_of(desk.client.get("/internal/v1/cases", headers=own), 403, "account-suspended")
        problem_of(desk.client.post(path, json=body, headers=own), 403, "account-suspended")
        # Reinstated by mistake elsewhere, it still cannot clear its own case.
        desk.services.key_ring.set_status("cust-co", "active", "test")
        refused = problem_of(desk.client.post(path, json=body, headers=own), 403, "own-account")
        assert refused["detail"] == f"case {own_case} is about your own account 'cust-co'"
        assert desk.get(f"/cases/{own_case}").json()["decisions"] == []
        assert desk.services.store.cases.get(own_case).status == "open"


def test_an_ended_accounts_case_shows_it_ended_whatever_was_decided(
    settings: Settings,
) -> None:
    for desk in _desk(settings):
        case_id = _open(desk, "cust-co", DAY)
        store = KeyStore(settings.keys_path)
        store.end("cust-co")
        store.close()
        desk.services.key_ring.refresh()
        assert desk.decide(case_id, "reinstate", "the dispute is settled").status_code == 201
        assert desk.get(f"/cases/{case_id}").json()["account_status"] == "ended"
        # Active again but ended: a second reinstatement is refused naming it as ended.
        again = problem_of(desk.decide(case_id, "reinstate", "again"), 409, "account-not-suspended")
        assert again["detail"].startswith("account 'cust-co' is ended: nothing to reinstate")
        (summary,) = desk.get("/cases?status=closed").json()
        assert summary["account_status"] == "ended"


def test_a_held_block_stays_held_until_compliance_clears_the_account(
    settings: Settings, desk: Desk
) -> None:
    monitor = desk.services.monitor
    assert monitor is not None
    walk = [_lookup(DAY + timedelta(seconds=i), f"+47222024{i:02d}", "miss") for i in range(4)]
    (hold,) = monitor.submit(walk)
    assert (hold.action, hold.evidence["hold"]) == ("throttle", "+4722202000..999")
    block = Hold.of(22202400)
    # In the key store, where every server (and a restarted one) reads it.
    store = KeyStore(settings.keys_path)
    try:
        assert store.accounts()["cust-co"].holds == {block}
    finally:
        store.close()
    # Lookups after it: in the held block, one answered before this server saw the hold
    # (within LOOKUP_KEY_REFRESH_SECONDS) and one refused (and still seen), elsewhere, and
    # a search.
    monitor.submit(
        [
            _lookup(DAY + timedelta(seconds=4), "+4722202449", "hit"),
            _lookup(DAY + timedelta(seconds=10), "+4722202450", "hit", held=True),
            _lookup(DAY + timedelta(seconds=11), "+4791234567", "hit"),
            _lookup(DAY + timedelta(seconds=12), "+4722202451", "hit", endpoint="search"),
        ]
    )
    [case] = desk.get("/cases").json()
    detail = desk.get(f"/cases/{case['id']}").json()
    assert detail["held_blocks"] == ["+4722202000..999"]
    # The timeline tells the lookups the hold refused from those answered, as they were
    # answered (it told them by the hold's time, and called the first one held too).
    assert [(item["number"], item["held"]) for item in detail["timeline"]] == [
        *((f"+47222024{i:02d}", False) for i in range(4)),
        ("+4722202449", False),
        ("+4722202450", True),
        ("+4791234567", False),
        ("+4722202451", False),
    ]
    # The number's subject is told of the one lookup answered, not of the one refused.
    (seen,) = desk.subject("+4722202449").json()["lookups"]["by_account"]
    (refused,) = desk.subject("+4722202450").json()["lookups"]["by_account"]
    assert (seen["lookups"], seen["answered"]) == (1, 1)
    assert (refused["lookups"], refused["answered"]) == (1, 0)
    # Nor does the case count a refused listed number as a hit of its block.
    (covered,) = [b for b in detail["blocks"] if b["block"] == "+4722202000..999"]
    assert (covered["distinct"], covered["hits"]) == (6, 1)
    # A warning leaves the account as it is; clearing it releases the block with it.
    assert desk.decide(case["id"], "warn", "told them the terms").status_code == 201
    assert desk.services.key_ring.account("cust-co").holds == {block}
    assert desk.decide(case["id"], "clear", "a customer's own callers").status_code == 201
    assert (desk.status("cust-co"), desk.services.key_ring.account("cust-co").holds) == (
        "active",
        frozenset(),
    )
    store = KeyStore(settings.keys_path)
    try:
        assert store.accounts()["cust-co"].holds == frozenset()
    finally:
        store.close()
    assert desk.get(f"/cases/{case['id']}").json()["held_blocks"] == []
    # A later scan holds another block in a new case: the old case does not show it as its
    # own, and the new case shows only its own.
    later = DAY + timedelta(days=1)
    walk = [_lookup(later + timedelta(seconds=i), f"+47215001{i:02d}", "miss") for i in range(4)]
    (again,) = monitor.submit(walk)
    assert again.evidence["hold"] == "+4721500000..999"
    newest, oldest = desk.get("/cases").json() + desk.get("/cases?status=closed").json()
    assert oldest["id"] == case["id"] and newest["id"] != case["id"]
    # Open and closed together, newest first: an account's history in one list.
    assert desk.get("/cases?status=all").json() == [newest, oldest]
    assert desk.get(f"/cases/{case['id']}").json()["held_blocks"] == []
    assert desk.get(f"/cases/{newest['id']}").json()["held_blocks"] == ["+4721500000..999"]


def test_a_key_store_written_before_holds_existed_is_read_with_none(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
            "created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active')"
        )
        con.execute("INSERT INTO accounts (name, created_at) VALUES ('old-co', '2026-01-01')")
    store = KeyStore(path)
    try:
        assert store.accounts()["old-co"].holds == frozenset()
        store.hold("old-co", Hold.of(91234567))
        store.hold("old-co", Hold.of(91230000))  # the same block: held once
        store.hold("old-co", Hold.of(22202400))
        assert store.accounts()["old-co"].holds == {Hold.of(91234567), Hold.of(22202400)}
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(path)) as con:
        # Each block once in the column itself, not only in the set read from it.
        (held,) = con.execute("SELECT held FROM accounts WHERE name = 'old-co'").fetchone()
    assert held == "+4791230000..9999,+4722202000..999"
    store = KeyStore(path)
    try:
        with pytest.raises(KeyStoreError, match="no account named 'ghost'"):
            store.hold("ghost", Hold.of(22202400))
    finally:
        store.close()


def test_a_key_store_whose_swarms_cannot_be_ended_gains_the_column(tmp_path: Path) -> None:
    # As the first version of the swarmed table wrote it, with a swarm under way.
    path = tmp_path / "keys.sqlite"
    KeyStore(path).close()
    until = utc_now() + timedelta(hours=3)
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("ALTER TABLE swarmed DROP COLUMN ended_at")
        con.execute(
            "INSERT INTO swarmed VALUES ('+4722200000..999', ?, ?)",
            ((until - timedelta(days=8)).isoformat(), until.isoformat()),
        )
    with contextlib.closing(KeyStore(path)) as store:
        assert [swarm.until for swarm in store.swarms().values()] == [until]
        ended = store.end_swarm(Hold.of(22200123))
        assert ended.until == until and store.swarms()[ended.hold].until < until


def test_servers_starting_together_on_an_older_key_store_both_open_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    KeyStore(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("ALTER TABLE accounts DROP COLUMN held")  # as a version before holds
        # Another server's upgrade, under way while this one starts.
        con.execute("BEGIN IMMEDIATE")
        con.execute("ALTER TABLE accounts ADD COLUMN held TEXT NOT NULL DEFAULT ''")
        failures: list[BaseException] = []

        def start() -> None:
            try:
                KeyStore(path).close()
            except BaseException as exc:  # reported below, in the test's own thread
                failures.append(exc)

        starting = threading.Thread(target=start)
        starting.start()
        starting.join(0.5)  # it reads the columns it has and waits for the write lock
        con.execute("COMMIT")
        starting.join()
    assert failures == []


def test_a_block_held_while_compliance_clears_the_account_stays_held(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = desk.services.monitor
    assert monitor is not None
    walk = [_lookup(DAY + timedelta(seconds=i), f"+47222024{i:02d}", "miss") for i in range(4)]
    monitor.submit(walk)
    [case] = desk.get("/cases").json()
    # The scan goes on into another block while the clearance is carried out: its batch
    # arrives just after the detectors forgot the account ...
    scan = [_lookup(DAY + timedelta(minutes=1, seconds=i), f"+47332214{i:02d}") for i in range(4)]
    batch = threading.Thread(target=monitor.submit, args=(scan,))
    reset, set_status = monitor.engine.reset, desk.services.key_ring.set_status

    def resetting(*args: Any, **kwargs: Any) -> None:
        reset(*args, **kwargs)
        batch.start()

    def setting(*args: Any) -> None:
        if threading.current_thread() is not batch:
            batch.join(1.0)  # ... and lands before the account is set active, if it can
        set_status(*args)

    monkeypatch.setattr(monitor.engine, "reset", resetting)
    monkeypatch.setattr(desk.services.key_ring, "set_status", setting)
    assert desk.decide(case["id"], "clear", "a customer's own callers").status_code == 201
    batch.join()
    # Its hold is not lost to the clearance's release of the first.
    assert desk.services.key_ring.account("cust-co").holds == {Hold.of(33221400)}
    assert desk.status("cust-co") == "throttled"


def test_a_hold_found_while_the_account_is_on_review_refuses_nothing(
    settings: Settings, desk: Desk
) -> None:
    store = KeyStore(settings.keys_path)
    try:
        store.set_enforcement("cust-co", "review")
    finally:
        store.close()
    desk.services.key_ring.refresh()
    monitor = desk.services.monitor
    assert monitor is not None
    walk = [_lookup(DAY + timedelta(seconds=i), f"+47222024{i:02d}", "miss") for i in range(4)]
    (hold,) = monitor.submit(walk)
    assert hold.evidence["hold"] == "+4722202000..999"
    # Its callers from the block are answered, so a slow scan of it is judged as any.
    callers = [
        _lookup(DAY + timedelta(minutes=30 * (i + 1)), f"+47222025{i:02d}", "miss")
        for i in range(8)
    ]
    assert [f.action for f in monitor.submit(callers)] == ["suspend"]
    [case] = desk.get("/cases").json()
    detail = desk.get(f"/cases/{case['id']}").json()
    assert [(f["action"], f["enforced"]) for f in detail["findings"]] == [
        ("throttle", False),
        ("suspend", False),
    ]
    assert detail["held_blocks"] == [] and desk.status("cust-co") == "active"
    assert not any(item["held"] for item in detail["timeline"])


def test_a_batch_submitted_while_a_flush_runs_beside_it_answers_its_own_findings(
    settings: Settings, desk: Desk
) -> None:
    accounts = [f"co-{n}" for n in range(15)]
    for account in accounts:
        new_key(settings, org=account)
    desk.services.key_ring.refresh()
    monitor = desk.services.monitor
    assert monitor is not None
    stop = threading.Event()

    def flush() -> None:
        while not stop.is_set():
            monitor.process()

    beside = threading.Thread(target=flush)
    beside.start()
    try:
        answered = []
        for n, account in enumerate(accounts):
            # Each account's walk of a block of its own, held at its fourth number.
            walk = [
                _lookup(DAY + timedelta(seconds=i), f"+47222{n:02d}4{i:02d}", account=account)
                for i in range(4)
            ]
            answered.append([f.account for f in monitor.submit(walk)])
    finally:
        stop.set()
        beside.join()
    assert answered == [[account] for account in accounts]


def test_a_case_id_not_written_in_plain_digits_is_refused_and_nothing_recorded(
    desk: Desk,
) -> None:
    case_id = _open(desk, "cust-co", DAY)
    assert case_id == 1
    # Python's int reads each of these as case 1: a decision on "٨" went to case 8.
    for written in ("%D9%A1", "%EF%BC%91", "+1", "01", "abc", "1.0", "1e0", "-1", "%201"):
        shown = desk.get(f"/cases/{written}")
        problem = problem_of(shown, 422, "invalid-parameter")
        assert problem["parameter"] == "case_id", written
        assert "whole number written in digits" in problem["detail"], written
        decided = desk.client.post(
            f"/internal/v1/cases/{written}/decisions",
            json={"decision": "warn", "reason": "x"},
            headers=desk.headers,
        )
        problem_of(decided, 422, "invalid-parameter")
    assert desk.get("/accounts/cust-co/decisions").json() == []
    assert desk.get("/cases/1").status_code == 200
    for missing in ("2", "9223372036854775807"):
        problem_of(desk.get(f"/cases/{missing}"), 404, "case-not-found")
    # The schema tells a client generator what is taken, as the handler checks it.
    schema = desk.client.get("/schema/openapi.json").json()
    [parameter] = schema["paths"]["/internal/v1/cases/{case_id}"]["get"]["parameters"]
    pattern = re.compile(parameter["schema"]["pattern"])
    assert pattern.fullmatch("1") and pattern.fullmatch("9223372036854775807")
    assert not any(pattern.fullmatch(w) for w in ("01", "+1", "١", "99999999999999999999"))
    for larger in ("9223372036854775808", "99999999999999999999999", "9" * 5000):
        problem = problem_of(desk.get(f"/cases/{larger}"), 422, "invalid-parameter")
        assert problem["parameter"] == "case_id"
        assert "is larger than any id (9,223,372,036,854,775,807)" in problem["detail"]
        assert len(problem["detail"]) < 200
