"""Rate limits and account standing through real HTTP: refusals, account plans, shared Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from limits import parse
from litestar.testing import TestClient

from lookup.abuse.ratelimit import RateLimitConfig, RateLimited, RateLimiter, plan_limits
from lookup.abuse.stream import stream_key
from lookup.api.app import create_app
from lookup.api.services import Services
from lookup.config import Settings
from lookup.ingest.pipeline import ingest
from lookup.keyring import KeyRing
from lookup.keys import Account, KeyStore
from tests.conftest import make_settings, new_key, problem_of
from tests.ingest_helpers import filler, write_csv
from tests.test_cli import lookup as run_cli

REDIS_URL = "redis://127.0.0.1:6379/11"
"""A database of its own: test_distributed uses 0, and these tests empty theirs."""
LISTED = "22200000"


def _ingested(root: Path) -> Path:
    """A data dir serving every other number of a block."""
    write_csv(root / "in", "telenor_full_20261122T020000.csv", filler(500, start=22200000)[::2])
    ingest([root / "in"], make_settings(root / "var"))
    return root / "var"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return _ingested(tmp_path)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.fail("these tests need Redis on 127.0.0.1:6379 (it runs on the project's machines)")
    # Not emptied: another service may count in it. Each test's counters carry its own
    # data dir's namespace; those it made are deleted after it.
    before = set(connection.scan_iter())
    yield connection
    made = [key for key in connection.scan_iter() if key not in before]
    if made:
        connection.delete(*made)
    connection.close()


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    """Every rate-limit test runs against both storages the service supports."""
    if request.param == "redis":
        request.getfixturevalue("redis_db")
        return REDIS_URL
    return "memory://"


def _get(client: TestClient[Any], token: str, number: str = LISTED) -> Any:
    return client.get(f"/v1/numbers/{number}", headers={"Authorization": f"Bearer {token}"})


def _client(settings: Settings, services: Services | None = None) -> TestClient[Any]:
    return TestClient(app=create_app(settings, services))


def test_a_refused_request_costs_no_quota(data_dir: Path, storage: str) -> None:
    settings = make_settings(
        data_dir, plan_key="1000/second;20/day", plan_account="2/second", ratelimit_storage=storage
    )
    token = new_key(settings, org="retry-co")
    with _client(settings) as client:
        statuses = [_get(client, token).status_code for _ in range(25)]
        assert statuses == [200] * 2 + [429] * 23
        assert _get(client, token).json()["scope"] == "account"
        time.sleep(1.1)
        # 24 refusals later the key has used 2 of its 20 a day, not all of them.
        assert [_get(client, token).status_code for _ in range(2)] == [200, 200]


def test_retry_after_names_the_exceeded_limit_that_resets_last(
    data_dir: Path, storage: str
) -> None:
    settings = make_settings(
        data_dir, plan_key="2/second", plan_account="2/minute", ratelimit_storage=storage
    )
    token = new_key(settings, org="busy-co")
    with _client(settings) as client:
        assert [_get(client, token).status_code for _ in range(2)] == [200, 200]
        limited = _get(client, token)
        body = problem_of(limited, 429, "rate-limited")
        # Over both limits: retrying after the key's second would only be refused again.
        assert body["scope"] == "account" and body["limit"] == 2
        assert body["detail"].startswith("account limit of 2 per minute reached; retry in ")
        retry_after = int(limited.headers["retry-after"])
        # Whole seconds, rounded up: never one less (Redis's TTL, rounded, made it up to 61).
        assert 58 <= retry_after <= 60
        # draft-ietf-httpapi-ratelimit-headers-10: every limit held to, and the one spent.
        assert limited.headers["ratelimit-policy"] == '"key-1s";q=2;w=1, "account-60s";q=2;w=60'
        assert limited.headers["ratelimit"] == f'"account-60s";r=0;t={retry_after}'


def test_every_counted_answer_says_what_its_tightest_limit_has_left(
    data_dir: Path, storage: str
) -> None:
    settings = make_settings(
        data_dir, plan_key="4/second;100/day", plan_account="3/minute", ratelimit_storage=storage
    )
    token = new_key(settings, org="pacing-co")
    policy = '"key-1s";q=4;w=1, "account-60s";q=3;w=60, "key-86400s";q=100;w=86400'
    with _client(settings) as client:
        answers = [_get(client, token, number) for number in (LISTED, "22200001", "2220")]
        # A hit, a number not listed (404) and a malformed one (422) alike: each counted.
        assert [answer.status_code for answer in answers] == [200, 404, 422]
        assert [answer.headers["ratelimit-policy"] for answer in answers] == [policy] * 3
        # Of the key's second (3 left after one) and the account's minute (2 left), the
        # account's: the one the client must pace to.
        assert [answer.headers["ratelimit"] for answer in answers] == [
            '"account-60s";r=2',
            '"account-60s";r=1',
            '"account-60s";r=0',
        ]
        refused = _get(client, token)
        assert refused.status_code == 429
        assert refused.headers["ratelimit"].startswith('"account-60s";r=0;t=')
        # Answers no limit counted carry neither field.
        for public in (client.get("/healthz"), client.get("/v1/numbers/22200000")):
            assert "ratelimit" not in public.headers and "ratelimit-policy" not in public.headers
        # The schema a client is generated from names them where they come.
        paths = client.get("/schema/openapi.json").json()["paths"]
        fields = {"RateLimit", "RateLimit-Policy"}
        assert set(paths["/v1/numbers/{number}"]["get"]["responses"]["200"]["headers"]) == fields
        assert set(paths["/v1/search"]["get"]["responses"]["200"]["headers"]) == fields
        assert not paths["/healthz"]["get"]["responses"]["200"].get("headers")
        # A swarmed block's refusal says when it ends; a search is never refused so.
        number = paths["/v1/numbers/{number}"]["get"]["responses"]
        assert set(number["403"]["headers"]) == {*fields, "Retry-After"}
        assert set(paths["/v1/search"]["get"]["responses"]["403"]["headers"]) == fields


def test_retry_after_is_never_more_than_a_second_late(storage: str) -> None:
    # Redis's TTL is whole seconds, padded by half of one: a 1/second plan said
    # "retry in 2" when the next window opened within a second.
    limiter = RateLimiter(
        RateLimitConfig(account_plan="1/second", key_plan="1/second", storage=storage)
    )
    for _ in range(5):
        limiter.hit("k1", "acme", plan=None, throttled=False)
        started = time.time()
        with pytest.raises(RateLimited) as refused:
            limiter.hit("k1", "acme", plan=None, throttled=False)
        assert refused.value.retry_after == 1
        time.sleep(max(0.0, started + 1.05 - time.time()))  # into the next window


def test_a_refusal_names_the_window_as_the_plan_wrote_it() -> None:
    for plan, says in [
        ("1000/year", "per year"),
        ("10/2 minutes", "per 2 minutes"),
        ("3/day", "per day"),
        ("5/second", "per second"),
    ]:
        refused = RateLimited("key", parse(plan), time.time() + 5, "")
        assert str(refused).startswith(f"key limit of {parse(plan).amount} {says} reached"), plan


def test_of_a_key_and_its_account_both_spent_the_one_resetting_last_is_named(
    data_dir: Path, storage: str
) -> None:
    # Windows of one length: the account's began before the key's (another key opened it),
    # expired, and began again after it, so the key's resets first.
    settings = make_settings(
        data_dir, plan_key="2/2 seconds", plan_account="3/2 seconds", ratelimit_storage=storage
    )
    first, second, third = (new_key(settings, org="busy-co") for _ in range(3))
    with _client(settings) as client:
        assert _get(client, second).status_code == 200
        time.sleep(1.0)
        assert [_get(client, first).status_code for _ in range(2)] == [200, 200]
        time.sleep(1.1)  # the account's first window is over; the first key's is not
        assert [_get(client, token).status_code for token in (second, second, third)] == [
            200,
            200,
            200,
        ]
        limited = _get(client, first)
        body = problem_of(limited, 429, "rate-limited")
        assert (body["scope"], body["limit"]) == ("account", 3)
        # Waiting what it says gets the next request through.
        time.sleep(int(limited.headers["retry-after"]))
        assert _get(client, first).status_code == 200


def test_an_account_plan_above_the_default_key_plan_is_granted(
    data_dir: Path, storage: str
) -> None:
    settings = make_settings(
        data_dir, plan_key="5/second", plan_account="10/second", ratelimit_storage=storage
    )
    first = new_key(settings, org="bigcrm")
    second = new_key(settings, org="bigcrm")
    small = new_key(settings, org="small-co")
    plan = run_cli("keys", "plan", "--org", "bigcrm", "--plan", "20/second", data_dir=data_dir)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout == "bigcrm: rate limits 20/second\n"
    with _client(settings) as client:
        statuses = [_get(client, first).status_code for _ in range(21)]
        assert statuses == [200] * 20 + [429]
        body = problem_of(_get(client, second), 429, "rate-limited")
        assert body["scope"] == "account" and body["limit"] == 20
        # Without a plan of its own an account's keys keep the default key plan.
        statuses = [_get(client, small).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        body = problem_of(_get(client, small), 429, "rate-limited")
        assert body["scope"] == "key" and body["limit"] == 5


def test_services_with_different_data_dirs_count_apart_on_one_redis(
    tmp_path: Path, redis_db: redis.Redis
) -> None:
    plans = {"plan_key": "1000/second", "plan_account": "3/minute"}
    first = make_settings(tmp_path / "a", ratelimit_storage=REDIS_URL, **plans)
    second = make_settings(tmp_path / "b", ratelimit_storage=REDIS_URL, **plans)
    limiters = [RateLimiter(RateLimitConfig.from_settings(s)) for s in (first, second)]
    for _ in range(3):
        limiters[0].hit("k1", "acme", plan=None, throttled=False)
    with pytest.raises(RateLimited):
        limiters[0].hit("k1", "acme", plan=None, throttled=False)
    limiters[1].hit("k2", "acme", plan=None, throttled=False)
    stems = {stream_key(s).rpartition(":")[0] for s in (first, second)}
    # Other services' counters may share the database: these two's, by their namespaces.
    counters = {
        key.decode() for stem in stems for key in redis_db.scan_iter(f"LIMITS:LIMITER/{stem}/*")
    }
    assert {c.split("/")[1] for c in counters} == stems
    assert {f"LIMITS:LIMITER/{stem}/account/acme/60s" for stem in stems} <= counters


def test_two_servers_with_different_data_dirs_share_redis_but_not_counters(
    tmp_path: Path, redis_db: redis.Redis
) -> None:
    plans = {"plan_key": "1000/second", "plan_account": "3/minute"}
    tokens = []
    for name in ("a", "b"):
        settings = make_settings(_ingested(tmp_path / name), ratelimit_storage=REDIS_URL, **plans)
        tokens.append((settings, new_key(settings, org="acme")))
    for settings, token in tokens:
        with _client(settings) as client:
            assert [_get(client, token).status_code for _ in range(3)] == [200] * 3


def test_a_write_through_the_servers_own_connection_is_reloaded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    new_key(settings, org="acme")
    store = KeyStore(settings.keys_path)
    ring = KeyRing(store)
    store.set_plan("acme", "7/second")
    assert ring.refresh() is True
    assert ring.account("acme").plan == "7/second"
    store.close()


def test_a_refresh_overlapping_a_suspension_does_not_undo_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(data_dir)
    token = new_key(settings, org="scraper-co")
    services = Services(settings)
    new_key(settings, org="another-co")  # the file changed: the next refresh reloads
    reading, release = threading.Event(), threading.Event()
    accounts = services.key_store.accounts

    def slow_accounts() -> dict[str, Account]:
        rows = accounts()
        if not reading.is_set():
            reading.set()
            release.wait(5)
        return rows

    monkeypatch.setattr(services.key_store, "accounts", slow_accounts)
    ring = services.key_ring
    refresh = threading.Thread(target=ring.refresh)
    refresh.start()
    assert reading.wait(5)
    suspend = threading.Thread(
        target=ring.set_status, args=("scraper-co", "suspended", "case 1: block_coverage")
    )
    suspend.start()
    time.sleep(0.1)  # the suspension lands while the refresh still holds what it read
    release.set()
    refresh.join(5)
    suspend.join(5)
    assert ring.account("scraper-co").status == "suspended"
    with _client(settings, services) as client:
        time.sleep(0.2)  # a few background refreshes
        problem_of(_get(client, token), 403, "account-suspended")


def test_a_refund_after_the_window_rolled_over_grants_nothing_extra() -> None:
    limiter = RateLimiter(RateLimitConfig(account_plan="1/second", key_plan="1/second"))
    item = plan_limits("1/second")[0]
    key = item.key_for("account", "acme")
    limiter.hit("k1", "acme", plan=None, throttled=False)
    limiter._limiter.storage.clear(key)  # the window rolled over before the refund landed
    limiter._refund(item, "account", "acme", floor=1)
    assert limiter._limiter.storage.get(key) == 0  # not -1: the next window is the plan's


def test_a_throttled_account_goes_on_from_what_it_has_used(storage: str) -> None:
    # The counters were named by the limit's amount: divided, the plan started on empty
    # ones, and an account that had spent its minute got a tenth of it again at once.
    limiter = RateLimiter(
        RateLimitConfig(
            account_plan="10/minute", key_plan="100/minute", throttle_factor=5, storage=storage
        )
    )
    for _ in range(3):
        limiter.hit("k1", "acme", plan=None, throttled=False)
    with pytest.raises(RateLimited) as refused:
        limiter.hit("k1", "acme", plan=None, throttled=True)
    assert (refused.value.scope, refused.value.limit) == ("account", 2)
    # Told why its plan no longer holds: else a customer takes the cut for an outage.
    assert refused.value.throttled
    assert "cut to 1/5 of its plan pending a compliance review" in str(refused.value)
    # So does a plan set by hand: 3 used of a new 4/minute leaves one, however the plan
    # writes the minute.
    limiter.hit("k1", "acme", plan="4/minute", throttled=False)
    with pytest.raises(RateLimited):
        limiter.hit("k1", "acme", plan="4/60 seconds", throttled=False)


def test_a_refusal_on_a_short_window_never_touches_the_longer_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Counted longest first, a key refused for its second had already raised its account's
    # day counter; until the refund, another key of the account was refused, told to retry
    # in a day (seen twice in six runs against a real server).
    limiter = RateLimiter(
        RateLimitConfig(account_plan="1000/second;3/day", key_plan="1/second;1000/day")
    )
    limiter.hit("k1", "acme", plan=None, throttled=False)
    counted: list[str] = []
    real = limiter._limiter.storage.incr

    def incr(key: str, expiry: int, amount: int = 1) -> int:
        counted.append(key)
        return real(key, expiry, amount=amount)

    monkeypatch.setattr(limiter._limiter.storage, "incr", incr)
    with pytest.raises(RateLimited) as refused:
        limiter.hit("k1", "acme", plan=None, throttled=False)
    assert refused.value.retry_after == 1
    assert counted and not [key for key in counted if key.endswith("/day")]


def test_a_window_rolling_over_under_a_refusal_lets_no_extra_request_through(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refused counter was refunded too: landing after its window rolled over, the
    # refund took back the next window's first request, and one more got through.
    limiter = RateLimiter(
        RateLimitConfig(account_plan="1/second", key_plan="1000/second", storage=storage)
    )
    limiter.hit("k1", "acme", plan=None, throttled=False)
    real = limiter._count

    def counted_as_the_window_rolls_over(item: Any, *identifiers: str) -> int:
        count = real(item, *identifiers)
        if count > item.amount:
            limiter._limiter.storage.clear(item.key_for(*identifiers))
            assert real(item, *identifiers) == 1  # another worker's request opens the next
        return count

    monkeypatch.setattr(limiter, "_count", counted_as_the_window_rolls_over)
    with pytest.raises(RateLimited):
        limiter.hit("k1", "acme", plan=None, throttled=False)
    monkeypatch.undo()
    with pytest.raises(RateLimited):  # the new window's one request is spent
        limiter.hit("k2", "acme", plan=None, throttled=False)


def test_refunds_of_requests_refused_together_bring_the_window_back_to_its_plan(
    storage: str,
) -> None:
    # Each refund asked for the count its request saw: landing in the other order, the
    # second found less and was kept, and the window climbed (106 in a 1/second window).
    limiter = RateLimiter(
        RateLimitConfig(account_plan="1/minute", key_plan="100/minute", storage=storage)
    )
    item, ids = plan_limits("1/minute")[0], ("account", "acme")
    seen = [limiter._call(limiter._count, item, *ids) for _ in range(3)]
    assert seen == [1, 2, 3]  # one answered, two refused together
    limiter._give_back([(item, ids, 2)])
    limiter._give_back([(item, ids, 3)])
    assert limiter._call(limiter._limiter.get_window_stats, item, *ids).remaining == 0
    assert limiter._call(limiter._count, item, *ids) == 2  # back to the one answered


def test_refunds_landing_out_of_order_leave_the_other_windows_as_they_were(
    storage: str,
) -> None:
    # Two requests of a key whose day is spent, counted in the account's minute first: the
    # first refund to land asked for the count the other request saw, the second found
    # less and was dropped, and the account's other keys were refused on its minute (300
    # counted after 5 answered, across six workers, in a review).
    limiter = RateLimiter(
        RateLimitConfig(account_plan="300/minute", key_plan="5/day", storage=storage)
    )
    minute, day = plan_limits("300/minute")[0], plan_limits("5/day")[0]
    account, key = ("account", "acme"), ("key", "k1")
    for _ in range(5):
        limiter.hit("k1", "acme", plan=None, throttled=False)
    first = limiter._call(limiter._count, minute, *account)
    second = limiter._call(limiter._count, minute, *account)
    refused = [limiter._call(limiter._count, day, *key) for _ in range(2)]
    limiter._give_back([(minute, account, first), (day, key, refused[0])])
    limiter._give_back([(minute, account, second), (day, key, refused[1])])
    assert limiter._call(limiter._limiter.get_window_stats, minute, *account).remaining == 295
    assert limiter._call(limiter._limiter.get_window_stats, day, *key).remaining == 0


def test_a_refund_on_redis_decrements_only_a_live_counter(redis_db: redis.Redis) -> None:
    limiter = RateLimiter(
        RateLimitConfig(account_plan="5/minute", key_plan="1/minute", storage=REDIS_URL)
    )
    item = plan_limits("5/minute")[0]
    limiter._refund(item, "account", "nobody", floor=1)  # expired: not made anew at -1
    # Without a data dir, the counters have no namespace.
    assert list(redis_db.scan_iter("LIMITS:LIMITER/account/nobody/*")) == []
    limiter.hit("k1", "acme", plan=None, throttled=False)
    with pytest.raises(RateLimited):  # refused on the key: the account's hit given back
        limiter.hit("k1", "acme", plan=None, throttled=False)
    (counter,) = redis_db.scan_iter("LIMITS:LIMITER/account/acme/*")
    count, left = cast("bytes", redis_db.get(counter)), cast("int", redis_db.pttl(counter))
    assert int(count) == 1 and 0 < left <= 60_000


def test_a_plan_stored_before_plans_were_checked_falls_back_to_the_default(
    data_dir: Path,
) -> None:
    # `keys plan` once accepted a limit of 0: every request would have been a 500 now.
    settings = make_settings(data_dir, plan_key="3/second", plan_account="10/second")
    token = new_key(settings, org="old-co")
    store = KeyStore(settings.keys_path)
    store.set_plan("old-co", "0/second")
    store.close()
    with _client(settings) as client:
        statuses = [_get(client, token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the default key plan


def test_searches_sent_together_cannot_all_pass_a_spent_window(storage: str) -> None:
    # Checked before and counted after, 30 searches in flight at once all passed: 3.6 times
    # the plan (a review). Each takes its limit first; what it did not return goes back.
    limiter = RateLimiter(RateLimitConfig(search_plan="100/hour;1000/day", storage=storage))
    holds, refused = [], 0
    for _ in range(30):
        try:
            holds.append(limiter.reserve_search("acme", 50, throttled=False))
        except RateLimited:
            refused += 1
    assert (len(holds), refused) == (2, 28)
    for hold in holds:
        limiter.settle_search(hold, 10)  # each returned 10: 80 of 100 left for later
    for _ in range(2):
        limiter.settle_search(limiter.reserve_search("acme", 50, throttled=False), 40)
    with pytest.raises(RateLimited) as spent:
        limiter.reserve_search("acme", 1, throttled=False)
    assert (spent.value.scope, spent.value.limit, spent.value.window) == ("search", 100, 3600)


def test_a_refused_search_names_the_spent_window_that_resets_last(storage: str) -> None:
    limiter = RateLimiter(RateLimitConfig(search_plan="40/hour;30/day", storage=storage))
    limiter.settle_search(limiter.reserve_search("acme", 45, throttled=False), 45)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve_search("acme", 5, throttled=False)
    # Both spent: an hour's wait would meet the day's limit again.
    assert (refused.value.limit, refused.value.window) == (30, 86400)
    assert refused.value.retry_after > 3600
