"""The public API over real HTTP (Litestar's test client) on real snapshot files."""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from lookup.api import problems
from lookup.api.app import create_app
from lookup.api.auth import client_address
from lookup.config import Settings
from lookup.errors import AddressNotAllowed, KeyStoreError
from lookup.index.reader import SnapshotSource
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest.pipeline import ingest
from lookup.keyring import KeyRing
from lookup.keys import KeyStore, parse_networks
from lookup.numbers import NumberType
from tests.conftest import make_settings, new_key, problem_of, uncounted
from tests.ingest_helpers import person, write_csv
from tests.test_crash_safety import Server

ROWS = [
    person("22202400", first="Kari", last="Nordmann", fodselsdato="1980-02-03"),
    person("41234567", first="Ola", last="Hansen", reservert="J"),
    person("41234568", first="Åse", last="Sæther", reservert="A", reklamereservert="J"),
    "55555555;B;;;Nordlys Bakeri AS;923609016;Kirkeveien 3;5003;Bergen;N;N;;2025-02-01",
    *(person(str(90000000 + i), first=f"Navn{i}") for i in range(40)),
]


@pytest.fixture
def data(tmp_path: Path, settings: Settings) -> Settings:
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", ROWS)
    ingest([tmp_path / "in"], settings)
    return settings


@pytest.fixture
def client(data: Settings) -> Iterator[TestClient[Any]]:
    token = new_key(data, "lookup")
    # No background flush: tests read the lookup events queued, which it would take away.
    quiet = make_settings(data.data_path, event_flush_seconds=3600)
    with TestClient(app=create_app(quiet)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_listing_of_a_person(client: TestClient[Any]) -> None:
    response = client.get("/v1/numbers/22202400")
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == "+4722202400"
    assert body["national_number"] == "22 20 24 00"
    assert body["number_type"] == "fixed_line"
    assert body["kind"] == "person"
    assert body["name"] == {"full": "Kari Nordmann", "first": "Kari", "last": "Nordmann"}
    assert body["address"] == {"street": "Storgata 1", "postcode": "0150", "city": "Oslo"}
    assert body["marketing_reserved"] is False
    assert body["valid_from"] == "2025-01-01T00:00:00+01:00"  # Oslo time, winter
    assert body["snapshot"]
    # Never the operator, never the date of birth.
    assert "telenor" not in response.text
    assert "1980" not in response.text and "birth" not in response.text


def test_listing_of_a_business_carries_its_org_number(client: TestClient[Any]) -> None:
    body = client.get("/v1/numbers/55555555").json()
    assert body["kind"] == "business"
    assert body["name"] == {"full": "Nordlys Bakeri AS"}
    assert body["org_number"] == "923609016"


def test_address_hidden_listing_has_no_address(client: TestClient[Any]) -> None:
    response = client.get("/v1/numbers/41234568")
    body = response.json()
    assert body["name"]["full"] == "Åse Sæther"
    assert body["marketing_reserved"] is True
    assert "address" not in body and "Storgata" not in response.text and "0150" not in response.text


@pytest.mark.parametrize(
    "written",
    [
        "22 20 24 00",
        "+47 22 20 24 00",
        "0047 22202400",
        "+47-222-02-400",
        "4722202400",
        "+47 (0) 22 20 24 00",
    ],
)
def test_any_common_written_form_finds_the_listing(client: TestClient[Any], written: str) -> None:
    response = client.get(f"/v1/numbers/{written}")
    assert response.status_code == 200
    assert response.json()["number"] == "+4722202400"


def test_no_answer_to_a_key_is_kept_by_a_cache(client: TestClient[Any]) -> None:
    # A listing a cache kept would be served after its subscriber reserved the number.
    for path in ("/v1/numbers/22202400", "/v1/numbers/22202401", "/v1/numbers/2220"):
        answer = client.get(path)
        assert answer.status_code in (200, 404, 422)
        assert answer.headers["cache-control"] == "no-store", path
    assert "cache-control" not in client.get("/healthz").headers


def test_reserved_number_is_answered_exactly_as_an_unknown_one(client: TestClient[Any]) -> None:
    reserved = client.get("/v1/numbers/41234567")
    unknown = client.get("/v1/numbers/41234569")
    problem_of(reserved, 404, "number-not-found")
    assert reserved.content.replace(b"41234567", b"41234569") == unknown.content
    assert uncounted(reserved.headers) == uncounted(unknown.headers)
    for query in ("?name=Ola%20Hansen", "?birth_date=1970-01-01"):
        again = client.get(f"/v1/numbers/41234567{query}")
        assert again.content == reserved.content


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("2220ABCD", "letters"),
        ("222024", "too_short"),
        ("222024001", "too_long"),
        ("+46812345678", "not_norwegian"),
        ("12345678", "not_in_plan"),
        ("22202400%23", "malformed"),
        ("%20", "empty"),
    ],
)
def test_malformed_numbers_get_422_with_the_reason(
    client: TestClient[Any], written: str, reason: str
) -> None:
    body = problem_of(client.get(f"/v1/numbers/{written}"), 422, "invalid-number")
    assert body["reason"] == reason


def test_a_huge_malformed_number_is_not_echoed_or_logged_whole(client: TestClient[Any]) -> None:
    events = client.app.state.services.events
    events.drain()
    body = problem_of(client.get("/v1/numbers/" + "1" * 5000), 422, "invalid-number")
    assert body["reason"] == "too_long" and len(body["detail"]) < 200
    [event] = events.drain()
    assert event.outcome == "invalid" and event.number == "1" * 40 + "…"


def test_name_match_scores_with_norwegian_letters_folded(client: TestClient[Any]) -> None:
    exact = client.get("/v1/numbers/41234568", params={"name": "Aase Saether"}).json()
    assert exact["name_match"] == {"query": "Aase Saether", "score": 100.0}
    typo = client.get("/v1/numbers/22202400", params={"name": "Kari Nordman"}).json()
    assert 90 < typo["name_match"]["score"] < 100
    other = client.get("/v1/numbers/22202400", params={"name": "Per Olsen"}).json()
    assert other["name_match"]["score"] < 50


def test_birth_date_is_only_verified_never_shown(client: TestClient[Any]) -> None:
    yes = client.get("/v1/numbers/22202400", params={"birth_date": "1980-02-03"})
    no = client.get("/v1/numbers/22202400", params={"birth_date": "1980-02-04"})
    assert yes.json()["birth_date_match"] is True
    assert no.json()["birth_date_match"] is False
    assert "1980-02-03" not in yes.text and "1980-02-03" not in no.text
    business = client.get("/v1/numbers/55555555", params={"birth_date": "1980-02-03"}).json()
    assert business["birth_date_match"] is False  # none on file answers like a wrong date
    bad = client.get("/v1/numbers/22202400", params={"birth_date": "03.02.1980"})
    problem_of(bad, 422, "invalid-parameter")
    problem_of(client.get("/v1/numbers/22202400", params={"name": " "}), 422, "invalid-parameter")


def test_a_name_to_match_that_no_name_could_hold_is_refused(client: TestClient[Any]) -> None:
    # As search refuses it: scored, it would read as "not this person" (0.0).
    not_utf8 = "name is not UTF-8: percent-encode the UTF-8 bytes of each letter (ø is %C3%B8)"
    for raw, detail in [
        ("name=%FF%FE", not_utf8),
        ("name=Tor%00", "name must not contain control characters (U+0000)"),
        ("name=%C3", not_utf8),
        ("name=%E2%80%AEnnamdroN", "name must not contain text direction controls (U+202E)"),
        ("name=Kari%E2%81%A9", "name must not contain text direction controls (U+2069)"),
        ("name=%E2%80%8FKari", "name must not contain text direction controls (U+200F)"),
    ]:
        refused = client.get(f"/v1/numbers/22202400?{raw}")
        problem = problem_of(refused, 422, "invalid-parameter")
        assert (problem["parameter"], problem["detail"]) == ("name", detail), raw
    pasted = client.get("/v1/numbers/22202400?name=Kari%09Nordmann")
    assert pasted.status_code == 200


def test_requests_without_a_valid_key_are_refused(data: Settings) -> None:
    with TestClient(app=create_app(data)) as client:
        missing = client.get("/v1/numbers/22202400")
        problem_of(missing, 401, "missing-credentials")
        # RFC 6750 3.1: no error code when no key was sent, one when it cannot be used.
        assert missing.headers["www-authenticate"] == 'Bearer realm="lookup"'
        assert missing.headers["cache-control"] == "no-store"  # as every answer to a key
        basic = client.get("/v1/numbers/22202400", headers={"Authorization": "Basic abc"})
        problem_of(basic, 401, "missing-credentials")
        assert basic.headers["www-authenticate"].endswith('error="invalid_request"')
        wrong = client.get("/v1/numbers/22202400", headers={"Authorization": "Bearer lk_nope"})
        problem_of(wrong, 401, "invalid-key")
        assert wrong.headers["www-authenticate"].endswith('error="invalid_token"')
        # Two values joined into one field (as a proxy may): which key was meant cannot
        # be told.
        joined = client.get(
            "/v1/numbers/22202400", headers={"Authorization": "Bearer lk_a, Bearer lk_b"}
        )
        assert "more than one value" in problem_of(joined, 401, "missing-credentials")["detail"]


def test_two_authorization_fields_are_refused_whichever_key_comes_first(data: Settings) -> None:
    # The first was used, with its rights, and the second left unread (found by an audit
    # over a raw socket: the test client joins the two into one field).
    token = new_key(data, "lookup", org="two-keys-co")
    server = Server(data.data_path)
    try:
        for pair in ([token, "lk_nope"], ["lk_nope", token], [token, token]):
            fields = "".join(f"Authorization: Bearer {key}\r\n" for key in pair)
            with socket.create_connection(("127.0.0.1", server.port)) as conn:
                conn.sendall(
                    f"GET /v1/numbers/22202400 HTTP/1.1\r\nHost: x\r\n{fields}"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = b"".join(iter(lambda: conn.recv(65536), b""))
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 401"), head
            assert b"more than once" in body and b"missing-credentials" in body
        answered = httpx.get(
            f"{server.url}/v1/numbers/22202400", headers={"Authorization": f"Bearer {token}"}
        )
        assert answered.status_code == 200
    finally:
        server.stop()


def test_keys_lacking_the_role_or_outside_their_network_get_403(data: Settings) -> None:
    search_only = new_key(data, "search")
    elsewhere = new_key(data, "lookup", allow=[ipaddress.ip_network("10.0.0.0/8")])
    with TestClient(app=create_app(data)) as client:
        role = client.get(
            "/v1/numbers/22202400", headers={"Authorization": f"Bearer {search_only}"}
        )
        assert problem_of(role, 403, "missing-role")["role"] == "lookup"
        away = client.get("/v1/numbers/22202400", headers={"Authorization": f"Bearer {elsewhere}"})
        problem_of(away, 403, "address-not-allowed")


def test_an_ipv4_client_of_a_dual_stack_socket_is_seen_as_ipv4(data: Settings) -> None:
    # `serve --host ::` with several workers takes IPv4 clients as ::ffff:a.b.c.d: an IPv4
    # allow-list must still admit them, and the abuse rules see one address, not two.
    token = new_key(data, "lookup", org="v4-co", allow=[ipaddress.ip_network("10.0.0.0/8")])
    ring = KeyRing(KeyStore(data.keys_path))
    for seen, admitted, as_seen in [
        ("::ffff:10.1.2.3", True, "10.1.2.3"),
        ("::FFFF:10.1.2.3", True, "10.1.2.3"),
        ("10.1.2.3", True, "10.1.2.3"),
        ("::ffff:192.0.2.1", False, "192.0.2.1"),
        ("2001:db8::10.1.2.3", False, "2001:db8::a01:203"),
        # One IPv6 address however a proxy's X-Forwarded-For spells it: one address to the
        # per-address rules (three spellings were three addresses).
        ("2001:DB8::7", False, "2001:db8::7"),
        ("2001:0db8:0000:0000:0000:0000:0000:0007", False, "2001:db8::7"),
        ("not an address", False, "not an address"),
    ]:
        address = client_address({"client": (seen, 50000)})  # type: ignore[arg-type]
        assert address == as_seen, seen
        if admitted:
            assert ring.authenticate(f"Bearer {token}", address).account == "v4-co"
        else:
            with pytest.raises(AddressNotAllowed):
                ring.authenticate(f"Bearer {token}", address)


def test_a_refusal_does_not_echo_a_forged_address_whole(data: Settings) -> None:
    # A trusted proxy passes on whatever X-Forwarded-For said: the 403 quotes 40 characters.
    token = new_key(data, "lookup", org="v4-co", allow=[ipaddress.ip_network("10.0.0.0/8")])
    ring = KeyRing(KeyStore(data.keys_path))
    with pytest.raises(AddressNotAllowed) as refused:
        ring.authenticate(f"Bearer {token}", "<script>" * 400)
    assert str(refused.value) == (
        "this key may not be used from an address that does not parse ('"
        + ("<script>" * 5)
        + "'...)"
    )
    with pytest.raises(AddressNotAllowed, match=r"from 192\.0\.2\.1$"):
        ring.authenticate(f"Bearer {token}", "192.0.2.1")


def test_allow_lists_refuse_a_network_with_host_bits_set(data: Settings) -> None:
    # Widened silently, 10.1.2.3/8 would admit a whole /8 where one address was meant.
    with pytest.raises(KeyStoreError, match=r"'10.1.2.3/8' .* did you mean 10.0.0.0/8\?"):
        parse_networks(["10.1.2.3/8"])
    # Python reads an interface's scope as part of the address; no client's carries it.
    with pytest.raises(KeyStoreError, match=r"'fe80::1%eth0' names a network interface"):
        parse_networks(["fe80::1%eth0"])
    written = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::ffff:203.0.113.0/120"]
    assert parse_networks(written) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("203.0.113.0/24"),  # clients are seen as IPv4, so is it
    )


def test_a_scoped_address_an_earlier_version_stored_is_its_address(data: Settings) -> None:
    # Earlier versions kept `fe80::1%eth0` as given: the store must still load (a server
    # refusing it would not start), and it matches what it matched then.
    store = KeyStore(data.keys_path)
    _, token = store.create("link-co", frozenset({"lookup"}))
    store._con.execute("UPDATE keys SET allow = 'fe80::1%eth0/128'")
    store._con.execute("UPDATE accounts SET allow = 'fe80::1%eth0/128, 10.0.0.0/8'")
    store._con.commit()
    ring = KeyRing(store)
    assert ring.authenticate(f"Bearer {token}", "fe80::1").account == "link-co"
    with pytest.raises(AddressNotAllowed):
        ring.authenticate(f"Bearer {token}", "fe80::2")
    store.close()


def test_a_blank_in_the_abuse_allow_list_is_no_network(tmp_path: Path) -> None:
    # The settings' check passed `10.0.0.0/8,` and the monitor then refused '' at every
    # start: no detection, and no compliance API, while lookups were answered.
    settings = make_settings(tmp_path / "var", abuse_allow_ips=" 10.0.0.0/8, ,")
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        monitor = client.app.state.services.monitor
        assert monitor.allow == (ipaddress.ip_network("10.0.0.0/8"),)


def test_keys_created_and_revoked_while_serving_take_effect(data: Settings) -> None:
    with TestClient(app=create_app(data)) as client:
        store = KeyStore(data.keys_path)
        key, token = store.create("late-co", frozenset({"lookup"}))
        headers = {"Authorization": f"Bearer {token}"}
        assert _eventually(lambda: client.get("/v1/numbers/22202400", headers=headers).status_code)
        store.revoke(key.key_id)
        store.close()
        assert _eventually(
            lambda: client.get("/v1/numbers/22202400", headers=headers).status_code, 401
        )


def _eventually(probe: Any, expected: int = 200, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe() == expected:
            return True
        time.sleep(0.02)
    return False


def test_health_and_readiness(settings: Settings, tmp_path: Path) -> None:
    token = new_key(settings)
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        problem_of(client.get("/readyz"), 503, "snapshot-unavailable")
        # Probes that send HEAD get the same status, without a body.
        assert client.head("/healthz").status_code == 200
        assert (client.head("/readyz").status_code, client.head("/readyz").content) == (503, b"")
        # ... and GET's headers: its length and type (a proxy may check them), Retry-After.
        for path in ("/healthz", "/readyz"):
            got, headed = client.get(path), client.head(path)
            for name in ("content-length", "content-type", "retry-after"):
                assert headed.headers.get(name) == got.headers.get(name), (path, name)
        lookup = client.get("/v1/numbers/22202400", headers={"Authorization": f"Bearer {token}"})
        problem_of(lookup, 503, "snapshot-unavailable")
        write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", ROWS)
        ingest([tmp_path / "in"], settings)
        assert _eventually(lambda: client.get("/readyz").status_code)
        ready = client.get("/readyz").json()
        assert client.head("/readyz").status_code == 200
        length = client.head("/readyz").headers["content-length"]
        assert length == client.get("/readyz").headers["content-length"]
        assert ready["status"] == "ready" and ready["listings"] == len(ROWS) - 1


def test_new_snapshot_is_served_without_restart(data: Settings, tmp_path: Path) -> None:
    token = new_key(data)
    with TestClient(app=create_app(data)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        first = client.get("/v1/numbers/22202400").json()["snapshot"]
        rows = [person("22202400", first="Karianne"), *ROWS[1:]]
        write_csv(tmp_path / "next", "telenor_full_20261123T020000.csv", rows)
        ingest([tmp_path / "next"], data)

        def renamed() -> int:
            body = client.get("/v1/numbers/22202400").json()
            return 200 if body["name"]["first"] == "Karianne" else 0

        assert _eventually(renamed)
        assert client.get("/v1/numbers/22202400").json()["snapshot"] != first


def test_an_unreadable_published_snapshot_is_said_once_and_named(
    data: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_key(data)
    pointer = read_pointer(data.snapshots_path)
    assert pointer is not None
    snapshot_path(data.snapshots_path, pointer).write_bytes(b"not an arrow file")
    source = SnapshotSource(data.snapshots_path, data.data_path)
    for _ in range(5):  # five polls
        assert source.refresh() is False
    assert caplog.text.count("keeping nothing") == 1
    with TestClient(app=create_app(data)) as client:
        refused = client.get("/v1/numbers/22202400", headers={"Authorization": f"Bearer {token}"})
        body = problem_of(refused, 503, "snapshot-unavailable")
    assert "published snapshot cannot be read" in body["detail"]


@pytest.mark.parametrize("written", ["22/20 24 00", "22%2F202400", "22/20/24/00"])
def test_a_number_written_with_slashes_is_invalid_not_an_unknown_route(
    client: TestClient[Any], written: str
) -> None:
    events = client.app.state.services.events
    events.drain()
    body = problem_of(client.get(f"/v1/numbers/{written}"), 422, "invalid-number")
    assert body["reason"] == "malformed" and "/" in body["detail"]
    [event] = events.drain()
    assert event.outcome == "invalid" and "/" in event.number


def test_a_lookup_with_the_number_left_out_is_an_empty_number(client: TestClient[Any]) -> None:
    # A CRM's URL template filled with a blank field: the client's input, not a route.
    events = client.app.state.services.events
    events.drain()
    for path in ("/v1/numbers/", "/v1/numbers"):
        body = problem_of(client.get(path), 422, "invalid-number")
        assert body["reason"] == "empty", path
    assert [event.outcome for event in events.drain()] == ["invalid", "invalid"]


def test_unknown_routes_and_methods_are_problems(client: TestClient[Any]) -> None:
    problem_of(client.get("/v2/whatever"), 404, "not-found")
    problem_of(client.post("/v1/numbers/22202400"), 405, "method-not-allowed")


def test_problem_types_are_documented(client: TestClient[Any]) -> None:
    page = client.get("/problems/number-not-found")
    assert page.status_code == 200 and page.json()["status"] == 404
    problem_of(client.get("/problems/nonsense"), 404, "not-found")
    # The schema describes the page as served (it said a JSON string).
    schema = client.get("/schema/openapi.json").json()
    answers = schema["paths"]["/problems/{slug}"]["get"]["responses"]
    described = answers["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][described.rsplit("/", 1)[1]]["properties"]
    assert set(fields) == set(page.json()) == {"slug", "status", "title", "description"}
    assert set(answers) == {"200", "404"}


def test_openapi_schema_describes_the_lookup(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()
    lookup = schema["paths"]["/v1/numbers/{number}"]["get"]
    search = schema["paths"]["/v1/search"]["get"]
    # What a CRM's client generator needs: the key scheme, and every answer it can get.
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert schema["security"] == [{"apiKey": []}]
    assert set(lookup["responses"]) == {"200", "401", "403", "404", "422", "429", "503"}
    assert set(search["responses"]) == {"200", "401", "403", "422", "429", "503"}
    # The bounds the service checks, for a client's generator to check first.
    bounds = {p["name"]: p["schema"] for p in search["parameters"]}
    assert (bounds["limit"]["minimum"], bounds["limit"]["maximum"]) == (1, 50)
    assert (bounds["name"]["minLength"], bounds["name"]["maxLength"]) == (2, 100)
    refused = lookup["responses"]["403"]
    assert "/problems/account-suspended" in refused["description"]
    assert refused["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert "Listing" in str(schema["components"]["schemas"])
    kinds = schema["components"]["schemas"]["Listing"]["properties"]["number_type"]
    assert sorted(kinds["enum"]) == sorted(kind.value for kind in NumberType)
    # No made-up examples (random strings as numbers), and health checks need no key.
    assert "examples" not in str(schema)
    assert schema["paths"]["/readyz"]["get"]["security"] == [{}]
    not_ready = schema["paths"]["/readyz"]["get"]["responses"]
    assert set(not_ready) == {"200", "503"}
    assert "/problems/snapshot-unavailable" in not_ready["503"]["description"]


def test_an_account_allow_list_binds_all_its_keys(data: Settings) -> None:
    token = new_key(data, "lookup", org="gateway-co")
    store = KeyStore(data.keys_path)
    store.set_allow("gateway-co", [ipaddress.ip_network("10.0.0.0/8")])
    store.close()
    with TestClient(app=create_app(data)) as client:
        away = client.get("/v1/numbers/22202400", headers={"Authorization": f"Bearer {token}"})
        assert "gateway-co" in problem_of(away, 403, "address-not-allowed")["detail"]


def test_a_date_of_birth_cannot_be_found_by_guessing(client: TestClient[Any]) -> None:
    answers = [
        client.get("/v1/numbers/22202400", params={"birth_date": f"1980-01-0{day}"}).status_code
        for day in range(1, 6)
    ]
    assert answers == [200, 200, 200, 429, 429]
    body = problem_of(
        client.get("/v1/numbers/22202400", params={"birth_date": "1980-02-03"}),
        429,
        "rate-limited",
    )
    assert "1980" not in body["detail"]
    # The scope the Problem schema names; a message that says it in words.
    assert body["scope"] == "verify" and body["limit"] == 3
    # Each field once (the request's key and account limits were added as a second value
    # of each): the policy lists every limit the request was held to, its own among them.
    refused = client.get("/v1/numbers/22202400", params={"birth_date": "1980-02-04"})
    assert refused.headers.get_list("ratelimit-policy") == [
        '"key-1s";q=100000;w=1, "account-1s";q=100000;w=1, "verify-86400s";q=3;w=86400'
    ]
    (said,) = refused.headers.get_list("ratelimit")
    assert said.startswith('"verify-86400s";r=0;t=')
    assert body["detail"].startswith("date-of-birth check (of this number) limit of 3 per day")
    assert client.get("/v1/numbers/22202400").status_code == 200  # lookups go on


def test_malformed_parameters_get_422_count_nothing_and_spend_no_check(
    client: TestClient[Any],
) -> None:
    events = client.app.state.services.events
    events.drain()
    malformed = (
        {"birth_date": "03.02.1980"},
        {"birth_date": "1980-W06-7"},  # an ISO week date: not YYYY-MM-DD
        {"birth_date": "1980-02-30"},
        {"birth_date": "１９８０-02-03"},  # full-width digits
        {"name": " "},
        {"name": "\u00ad\u200b"},  # a soft hyphen and a zero-width space: no name shows
        {"name": "x" * 201},
        {"name": ["Ola Nordmann", "Kari Nordmann"]},  # which was meant cannot be told
        {"birth_date": ["1980-02-03", "1980-02-04"]},  # and must not be two guesses
        {"nmae": "Ola Nordmann"},  # misspelt: ignored, the answer would read as a match's
        {"birthdate": "1980-02-03"},
    )
    # Listed, reserved and unknown numbers answer a malformed parameter alike.
    for number in ("22202400", "41234567", "41234569"):
        for params in malformed:
            problem_of(client.get(f"/v1/numbers/{number}", params=params), 422, "invalid-parameter")
    assert len(events.drain()) == 0  # no answer, no lookup event
    misspelt = problem_of(client.get("/v1/numbers/22202400?nmae=Ola"), 422, "invalid-parameter")
    assert misspelt["parameter"] == "nmae"
    assert (
        misspelt["detail"] == "unknown query parameter 'nmae': this endpoint takes name, birth_date"
    )
    events.drain()
    guesses = [
        client.get("/v1/numbers/22202400", params={"birth_date": f"1980-01-0{day}"}).status_code
        for day in range(1, 5)
    ]
    assert guesses == [200, 200, 200, 429]  # the malformed ones spent none of the 3 checks
    # The refused guess was not answered: three hits logged, not four.
    assert [event.outcome for event in events.drain()] == ["hit"] * 3


def test_every_problem_type_is_documented_and_every_mapping_uses_one(
    client: TestClient[Any],
) -> None:
    source = Path(problems.__file__).read_text()
    used = set(re.findall(r'problem\(\s*"([a-z-]+)"', source))
    assert used <= set(problems.PROBLEM_TYPES)
    for slug in problems.PROBLEM_TYPES:
        assert client.get(f"/problems/{slug}").status_code == 200
