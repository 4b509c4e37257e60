"""Privacy invariants over every number of the demo fixtures, through real HTTP.

A reserved number must be indistinguishable from an unknown one on every
endpoint and parameter; an address-hidden number never shows an address; no
response ever carries a date of birth or the operator.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from litestar.testing import TestClient

from lookup.abuse.events import utc_now
from lookup.abuse.holds import Hold, Swarmed
from lookup.api.app import create_app
from lookup.config import Settings
from lookup.index.reader import Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest.pipeline import IngestReport
from lookup.ingest.warehouse import Warehouse
from lookup.keys import KeyStore
from lookup.timezones import OSLO
from tests.conftest import new_key, uncounted

# Parameters every lookup is tried with: each endpoint variant must keep the secret.
VARIANTS = ["", "?name=Kari%20Nordmann", "?birth_date=1980-02-03", "?name=x&birth_date=1990-01-01"]
UNKNOWN = "99999999"


def _numbers(manifest: dict[str, Any], reservation: str) -> list[str]:
    return sorted(n for n, v in manifest["numbers"].items() if v["reservation"] == reservation)


def test_the_demo_covers_every_case(manifest: dict[str, Any]) -> None:
    assert len(_numbers(manifest, "reserved")) > 50
    assert len(_numbers(manifest, "address_hidden")) > 20
    assert sum(v["ported"] for v in manifest["numbers"].values()) > 10
    assert UNKNOWN not in manifest["numbers"]


def test_every_demo_file_was_applied(demo_data: tuple[Settings, IngestReport]) -> None:
    _, report = demo_data
    assert {f.batch.status for f in report.files} == {"applied"}


def test_every_planned_reject_is_reported_with_file_line_and_reason(
    manifest: dict[str, Any], demo_data: tuple[Settings, IngestReport]
) -> None:
    _, report = demo_data
    reported = {(f.batch.file, r.line, r.reason) for f in report.files for r in f.rejects}
    planned = {(r["file"], r["line"], r["reason"]) for r in manifest["rejects"]}
    assert planned == reported


def test_reserved_numbers_are_not_in_the_snapshot_at_all(
    manifest: dict[str, Any], demo_settings: Settings
) -> None:
    pointer = read_pointer(demo_settings.snapshots_path)
    assert pointer is not None
    snapshot = Snapshot(snapshot_path(demo_settings.snapshots_path, pointer))
    served = set(snapshot.table().column("number").to_pylist())
    assert served.isdisjoint(_numbers(manifest, "reserved"))
    expected = {n for n, v in manifest["numbers"].items() if v["reservation"] != "reserved"}
    assert served == expected
    hidden_numbers = pa.array(_numbers(manifest, "address_hidden"))
    hidden = pc.is_in(snapshot.table().column("number"), value_set=hidden_numbers)
    for column in ("street", "postcode", "city"):
        values = pc.filter(snapshot.table().column(column), hidden).to_pylist()
        assert set(values) <= {""}


def test_reserved_numbers_answer_exactly_like_unknown_ones(
    manifest: dict[str, Any], demo_client: TestClient[Any]
) -> None:
    for variant in VARIANTS:
        unknown = demo_client.get(f"/v1/numbers/{UNKNOWN}{variant}")
        assert unknown.status_code == 404
        for number in _numbers(manifest, "reserved"):
            response = demo_client.get(f"/v1/numbers/{number}{variant}")
            assert response.status_code == 404, number
            assert response.content.replace(number.encode(), UNKNOWN.encode()) == unknown.content
            assert uncounted(response.headers) == uncounted(unknown.headers)


@pytest.fixture(scope="module")
def stored(demo_settings: Settings) -> dict[str, tuple[Any, ...]]:
    """What the warehouse holds per (operator, number): names, birth date, valid_from."""
    with Warehouse(demo_settings.warehouse_path, read_only=True) as warehouse:
        rows = warehouse.query(
            "SELECT operator || ':' || number, first_name, last_name, business_name, "
            "birth_date, valid_from FROM records"
        )
    return {str(row[0]): row[1:] for row in rows}


def test_listed_numbers_show_the_winning_record_without_secrets(
    manifest: dict[str, Any],
    demo_client: TestClient[Any],
    stored: dict[str, tuple[Any, ...]],
) -> None:
    for number, expected in sorted(manifest["numbers"].items()):
        if expected["reservation"] == "reserved":
            continue
        response = demo_client.get(f"/v1/numbers/{number}?birth_date=1900-01-01")
        assert response.status_code == 200, number
        body = response.json()
        first, last, business, birth_date, valid_from = stored[f"{expected['operator']}:{number}"]
        # The winning operator's record answers (porting: the newer operator).
        assert body["name"]["full"] == (f"{first} {last}" if first else business)
        # Operators' dates are Oslo time, served with the offset of their day (RFC 3339).
        assert body["valid_from"] == valid_from.replace(tzinfo=OSLO).isoformat()
        assert body["kind"] == expected["kind"]
        if expected["reservation"] == "address_hidden":
            assert "address" not in body
        # Never the operator; never the birth date, in any form.
        for operator in manifest["operators"]:
            assert f'"{operator}"' not in response.text
        if birth_date is not None:
            for form in (birth_date.isoformat(), birth_date.strftime("%d.%m.%Y")):
                assert form not in response.text
        assert body.get("birth_date_match") in (False, None)
        assert 'birth_date"' not in response.text


def test_a_held_block_answers_every_number_in_it_alike(
    manifest: dict[str, Any], demo_settings: Settings
) -> None:
    # Every fixture number's block held for one account: listed, address-hidden and
    # reserved numbers alike get the bytes an unknown number of the block gets, and the
    # date-of-birth check is never reached.
    numbers = sorted(manifest["numbers"])
    holds = {Hold.of(int(number)) for number in numbers}
    token = new_key(demo_settings, "lookup", org="held-co")
    store = KeyStore(demo_settings.keys_path)
    try:
        for hold in holds:
            store.hold("held-co", hold)
    finally:
        store.close()
    unknown = {
        hold: next(
            f"{n:08d}"
            for n in range(hold.first, hold.first + hold.size)
            if f"{n:08d}" not in manifest["numbers"]
        )
        for hold in holds
    }
    with TestClient(app=create_app(demo_settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for variant in ("", "?birth_date=1980-02-03"):
            answers = {
                hold: client.get(f"/v1/numbers/{number}{variant}")
                for hold, number in unknown.items()
            }
            for number in numbers:
                hold = Hold.of(int(number))
                response, expected = client.get(f"/v1/numbers/{number}{variant}"), answers[hold]
                assert response.status_code == 403, number
                assert response.content == expected.content, number
                assert uncounted(response.headers) == uncounted(expected.headers)
                assert response.json()["block"] == hold.label


def test_a_swarmed_block_answers_every_number_in_it_alike_to_a_new_account(
    manifest: dict[str, Any], demo_settings: Settings
) -> None:
    # Every fixture number's block swarmed: to an account opened within it, listed,
    # address-hidden and reserved numbers alike get the bytes an unknown number of the
    # block gets (but for Retry-After, which counts down the swarm's time whatever the
    # number), and the date-of-birth check is never reached.
    numbers = sorted(manifest["numbers"])
    now = utc_now()
    swarms = {
        Swarmed(Hold.of(int(number)), now - timedelta(days=7), now + timedelta(hours=1))
        for number in numbers
    }
    token = new_key(demo_settings, "lookup", org="newly-opened-co")
    with contextlib.closing(KeyStore(demo_settings.keys_path)) as store:
        for swarm in swarms:
            store.swarm(swarm)
    try:
        _answer_alike_in_swarmed_blocks(manifest, demo_settings, token, swarms)
    finally:  # the demo's other tests make new accounts too
        with contextlib.closing(sqlite3.connect(demo_settings.keys_path)) as keys, keys:
            keys.execute("DELETE FROM swarmed")


def _answer_alike_in_swarmed_blocks(
    manifest: dict[str, Any], demo_settings: Settings, token: str, swarms: set[Swarmed]
) -> None:
    numbers = sorted(manifest["numbers"])
    unknown = {
        swarm.hold: next(
            f"{n:08d}"
            for n in range(swarm.hold.first, swarm.hold.first + swarm.hold.size)
            if f"{n:08d}" not in manifest["numbers"]
        )
        for swarm in swarms
    }
    with TestClient(app=create_app(demo_settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for variant in ("", "?birth_date=1980-02-03"):
            for number in numbers:
                hold = Hold.of(int(number))
                # Asked together: Retry-After counts down.
                expected = client.get(f"/v1/numbers/{unknown[hold]}{variant}")
                response = client.get(f"/v1/numbers/{number}{variant}")
                assert response.status_code == 403, number
                assert response.content == expected.content, number
                fields, expected_fields = uncounted(response.headers), uncounted(expected.headers)
                waits = int(fields.pop("retry-after")), int(expected_fields.pop("retry-after"))
                assert fields == expected_fields and abs(waits[0] - waits[1]) <= 1
                assert response.json()["block"] == hold.label
