"""Rate limits per key and per account, with `limits`.

Plans are strings in the `limits` notation (`"20/second;600/minute;20000/day"`).
An account without a plan of its own has the default account plan for all its
keys together and the default key plan for each key. An account given its own
plan (`lookup keys plan`) is governed by that plan alone: its keys share it and
any one key may use all of it, so a plan above the default key plan is really
granted. A throttled account gets its plan divided by `throttle_factor`.

A refused request costs nothing: what it counted is given back, and the refusal
names the exceeded limit that resets last (the earliest time a retry can
succeed). Storage is in memory by default and Redis when several
workers must share counters (`LOOKUP_RATELIMIT_STORAGE=redis://...`); counters
carry the data dir's namespace, so services with different data dirs sharing
one Redis never count against each other.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, partial
from typing import Any, Final, NamedTuple, TypeVar

import msgspec
import redis
from limits import RateLimitItem
from limits.limits import safe_string
from limits.storage import RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from lookup.abuse.plans import DEFAULT_SEARCH_PLAN, PlanError, parse_plan
from lookup.abuse.stream import stream_key
from lookup.config import Settings
from lookup.errors import LookupServiceError

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Scope = tuple[str, tuple[RateLimitItem, ...], tuple[str, ...]]
"""What a limit is named in a refusal, the plan's limits, and the counter's identifiers."""
_Entry = tuple[str, RateLimitItem, tuple[str, ...]]
"""One limit of a request: its scope's name, the limit, the counter's identifiers (a plain
tuple: built for every limit of every request)."""


def window_text(item: RateLimitItem) -> str:
    """A limit's window as its plan wrote it: `year`, `2 minutes` (not `31104000s`)."""
    name = item.GRANULARITY.name
    return name if item.multiples == 1 else f"{item.multiples} {name}s"


VERIFY: Final = "verify"
"""The scope of the date-of-birth checks of one number by one account."""
SEARCH: Final = "search"
"""The scope of the listings name searches returned to one account."""
_SAID: Final = {
    VERIFY: "date-of-birth check (of this number)",
    SEARCH: "listings returned by name search",
}
"""Scopes as a refusal's message names them, where their name is no word."""


class RateLimited(LookupServiceError):
    """A request over one of its plan's limits."""

    def __init__(
        self,
        scope: str,
        item: RateLimitItem,
        reset_at: float,
        policy: str,
        *,
        throttled_by: int | None = None,
    ) -> None:
        self.scope = scope
        self.limit = item.amount
        self.window = item.get_expiry()
        self.retry_after = max(1, math.ceil(reset_at - time.time()))
        self.policy = policy
        self.throttled = throttled_by is not None
        # A throttled customer is told why its plan's limits no longer hold, or it would
        # take the cut for an outage, or for its plan.
        why = (
            f" (the account's limits are cut to 1/{throttled_by} of its plan pending a "
            "compliance review)"
            if throttled_by is not None
            else ""
        )
        super().__init__(
            f"{_SAID.get(scope, scope)} limit of {item.amount} per {window_text(item)} "
            f"reached{why}; retry in {self.retry_after}s"
        )

    def headers(self) -> dict[str, str]:
        """`Retry-After` and the `RateLimit-Policy` / `RateLimit` fields of the IETF draft
        (draft-ietf-httpapi-ratelimit-headers-10: structured-field lists of named policies)."""
        name = policy_name(self.scope, self.window)
        return {
            "Retry-After": str(self.retry_after),
            "RateLimit-Policy": self.policy,
            "RateLimit": f'"{name}";r=0;t={self.retry_after}',
        }


STORAGE_TIMEOUT: Final = 0.25
"""Seconds a Redis call may take before the request is refused (503): a stalled Redis must
not hold the event loop, whose requests all wait behind the middleware's call."""
STORAGE_BACKOFF: Final = 1.0
"""Seconds after a failed storage call during which requests are refused without asking."""


_REFUND: Final = """
local count = tonumber(redis.call('get', KEYS[1]))
if count and count >= tonumber(ARGV[1]) then
    return redis.call('decrby', KEYS[1], ARGV[2])
end
return count
"""
"""A refund on Redis: a decrement (by `amount`) of a counter that is there and holds at least
the floor (DECRBY keeps its expiry)."""


class SearchHold(NamedTuple):
    """Listings a search took from its account's windows before it ran."""

    account: str
    items: tuple[RateLimitItem, ...]
    listings: int
    counts: tuple[int, ...]
    """What each window held once the listings were taken."""


class RateLimitsUnavailable(LookupServiceError):
    """The shared rate-limit storage cannot be reached; requests are refused, not let through."""


def _key_by_window(self: RateLimitItem, *identifiers: bytes | str | int | float) -> str:
    # By the window's length, not as the plan wrote it: `1000/minute` rewritten as
    # `1000/60 seconds` started a counter of its own, and that minute allowed twice.
    parts = [*(safe_string(part) for part in identifiers), f"{self.get_expiry()}s"]
    return f"{self.namespace}/{'/'.join(parts)}"


@lru_cache(maxsize=16)
def _counted_by_window(kind: type[RateLimitItem]) -> type[RateLimitItem]:
    """A limit class whose counter is named by its window alone, not by its amount: so a
    throttled account (its plan divided) or a new plan goes on from what the window has
    counted (named by amount, every throttle or plan change started on empty counters: a
    day's quota spent, a throttled account got a tenth of it again)."""
    return type(kind.__name__, (kind,), {"key_for": _key_by_window})


@lru_cache(maxsize=256)
def plan_limits(plan: str, divide_by: int = 1) -> tuple[RateLimitItem, ...]:
    """`parse_plan`'s limits, counted by window (cached: plans repeat across requests)."""
    return tuple(
        _counted_by_window(type(item))(item.amount, item.multiples, item.namespace)
        for item in parse_plan(plan, divide_by)
    )


@lru_cache(maxsize=256)
def _usable(plan: str) -> bool:
    """Whether an account's stored plan can be used (once per plan string, logged once): one
    stored before plans were checked as they are now, `0/second`, would answer every request
    with a 500."""
    try:
        parse_plan(plan)
    except PlanError as exc:
        log.error("%s; the account is held to the default plan until it is set again", exc)
        return False
    return True


@lru_cache(maxsize=64)
def policy_name(scope: str, window: int) -> str:
    """A policy's identifier in the RateLimit fields, e.g. `account-60s`."""
    return f"{scope.replace('_', '-').replace(' ', '-')}-{window}s"


def policy_header(limits: Iterable[tuple[str, RateLimitItem]]) -> str:
    """`RateLimit-Policy` value naming every limit a request is held to, e.g.
    `"key-1s";q=25;w=1, "account-60s";q=1500;w=60`."""
    return ", ".join(
        f'"{policy_name(scope, item.get_expiry())}";q={item.amount};w={item.get_expiry()}'
        for scope, item in limits
    )


def merged_policies(*fields: str) -> str:
    """`RateLimit-Policy` values as one, shortest window first (a handler's own limits
    beside the key's and account's)."""
    items = [item for field in fields for item in field.split(", ") if item]
    return ", ".join(sorted(items, key=lambda item: int(item.rpartition(";w=")[2])))


def least_left(*fields: str) -> str:
    """Of `RateLimit` values (`"name";r=N`), the one with least left."""
    return min(fields, key=lambda field: int(field.rpartition(";r=")[2].partition(";")[0]))


@lru_cache(maxsize=256)
def _policy(key_plan: str | None, account_plan: str, divide_by: int) -> str:
    """`RateLimit-Policy` of a request held to these plans, shortest window first as they
    are counted (once per plans: the same few serve every request)."""
    limits = [("account", item) for item in plan_limits(account_plan, divide_by)]
    if key_plan is not None:
        limits[:0] = [("key", item) for item in plan_limits(key_plan, divide_by)]
    return policy_header(sorted(limits, key=lambda limit: limit[1].get_expiry()))


class Quota(NamedTuple):
    """What a counted request's limits have left, as draft-10's fields say it: every limit
    it is held to (`RateLimit-Policy`) and the one with least left (`RateLimit`, its `r`
    alone: the reset `t` is optional, and reading it would cost a storage call a request)."""

    policy: str
    remaining: str


class RateLimitConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Default plans and where counters live."""

    account_plan: str = "50/second;1500/minute;50000/day"
    key_plan: str = "25/second;1000/minute;40000/day"
    throttle_factor: int = 10
    verify_plan: str = "3/day"
    """Date-of-birth checks allowed per account and number."""
    search_plan: str = DEFAULT_SEARCH_PLAN
    """Listings name searches may return to one account."""
    storage: str = "memory://"
    namespace: str = ""
    """Prefix of every counter, so services sharing one storage keep their own counts."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimitConfig:
        """The plans and storage of a service, namespaced by its data dir."""
        return cls(
            account_plan=settings.plan_account,
            key_plan=settings.plan_key,
            throttle_factor=settings.throttle_factor,
            verify_plan=settings.plan_verify,
            search_plan=settings.plan_search,
            storage=settings.ratelimit_uri,
            # The event stream's key already names the data dir (`lookup:<digest>:events`);
            # its stem keeps the two namespaces one and the same.
            namespace=stream_key(settings).rpartition(":")[0],
        )


def _search_ids(account: str) -> tuple[str, str]:
    """The counter identifiers of an account's search plan."""
    return (SEARCH, account)


class RateLimiter:
    """Checks and counts requests against their key's and account's limits."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        parse_plan(config.account_plan)
        parse_plan(config.search_plan)
        parse_plan(config.key_plan)
        parse_plan(config.verify_plan)
        redis_storage = config.storage.startswith("redis")
        # No retries either: redis-py retries a timed-out call, and a silent sentinel's
        # discovery took 10 s, retried, instead of one timeout.
        timeouts = {
            "socket_timeout": STORAGE_TIMEOUT,
            "socket_connect_timeout": STORAGE_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
        }
        options: dict[str, Any] = dict(timeouts) if redis_storage else {}
        if config.storage.startswith("redis+sentinel"):
            # The sentinels' own connections take none of the options above.
            options["sentinel_kwargs"] = timeouts
        self._down_until = 0.0
        self._limiter = FixedWindowRateLimiter(storage_from_string(config.storage, **options))

    def hit(self, key_id: str, account: str, *, plan: str | None, throttled: bool) -> Quota:
        """Count the request, or raise `RateLimited` naming the limit it is over; what the
        request's limits have left."""
        divide = self.config.throttle_factor if throttled else 1
        if plan and not _usable(plan):
            plan = None  # the defaults, as for an account without a plan of its own
        scopes: list[_Scope] = []
        if not plan:
            scopes.append(("key", plan_limits(self.config.key_plan, divide), ("key", key_id)))
        # With its own plan the account counter bounds every key of it, so a key counter on
        # the same plan could never refuse first: it would only cost storage round trips.
        account_plan = plan or self.config.account_plan
        scopes.append(("account", plan_limits(account_plan, divide), ("account", account)))
        remaining = self._take(scopes, throttled_by=divide if throttled else None)
        key_plan = None if plan else self.config.key_plan
        return Quota(_policy(key_plan, account_plan, divide), remaining)

    def verify(self, account: str, number: str) -> None:
        """Count one date-of-birth check of a number, or raise `RateLimited`."""
        items = plan_limits(self.config.verify_plan)
        self._take([(VERIFY, items, ("verify", account, number))])

    def reserve_search(
        self, account: str, listings: int, *, throttled: bool, plan: str | None = None
    ) -> SearchHold:
        """Take `listings` (a search's `limit`) from every window of the account's search
        plan (`plan`, its own; else the default) before the search runs, or raise
        `RateLimited` when a window was spent already (what it took given back). Taken
        first, searches sent together cannot all pass a check of what was counted before
        them; `settle_search` gives back what the search did not return."""
        divide = self.config.throttle_factor if throttled else 1
        if not plan or not _usable(plan):
            plan = self.config.search_plan  # as `hit` does with an unusable plan
        items = plan_limits(plan, divide)
        ids = _search_ids(account)
        counts: list[int] = []
        for item in items:
            counts.append(self._call(partial(self._count, amount=listings), item, *ids))
            if counts[-1] - listings >= item.amount:
                for each in items[: len(counts)]:
                    self._call(partial(self._refund, floor=listings, amount=listings), each, *ids)
                raise self._search_refusal(items, ids, divide if throttled else None)
        return SearchHold(account, items, listings, tuple(counts))

    def settle_search(self, hold: SearchHold, returned: int) -> None:
        """Give back what a search took and did not return."""
        unused = hold.listings - returned
        if unused <= 0:
            return
        for item in hold.items:
            self._call(
                # Only from a window still holding them: one that rolled over since keeps
                # the next window's count (gone below zero, it would grant more than the plan).
                partial(self._refund, floor=unused, amount=unused),
                item,
                *_search_ids(hold.account),
            )

    @staticmethod
    def search_quota(hold: SearchHold, returned: int) -> Quota:
        """The account's search plan after a search that returned `returned` listings: its
        `RateLimit-Policy`, and the `RateLimit` of the window with least left (of equals,
        the longest), from the counts its reservation read (no storage call more)."""
        unused = max(hold.listings - returned, 0)
        left, window = min(
            (item.amount - (count - unused), -item.get_expiry())
            for item, count in zip(hold.items, hold.counts, strict=True)
        )
        policy = policy_header((SEARCH, item) for item in hold.items)
        return Quota(policy, f'"{policy_name(SEARCH, -window)}";r={max(left, 0)}')

    def _search_refusal(
        self, items: Sequence[RateLimitItem], ids: Sequence[str], throttled_by: int | None
    ) -> RateLimited:
        """The refusal of a search, naming the spent window that resets last (a retry cannot
        succeed before it)."""
        spent = [
            (self._call(self._reset_at, item, *ids), item)
            for item in items
            if self._call(self._used, item, *ids) >= item.amount
        ]
        reset_at, item = max(spent, key=lambda pair: pair[0], default=(time.time() + 1, items[0]))
        policy = policy_header((SEARCH, each) for each in items)
        return RateLimited(SEARCH, item, reset_at, policy, throttled_by=throttled_by)

    def _take(self, scopes: Sequence[_Scope], *, throttled_by: int | None = None) -> str:
        """Count a request in every limit of its scopes, or raise `RateLimited`; the
        `RateLimit` field naming the limit with least left. `throttled_by`: what the plan
        was divided by, to say so in a refusal."""
        # `limits` counts a hit even when it refuses it: counting limit by limit, a client
        # retrying against one exhausted limit would drain all the others (a day's key quota
        # burnt by a minute of account-level 429s). So a refused request gives back what it
        # counted. Hit first and refund on refusal, not test everything first: testing
        # doubled the storage calls of every request (45 µs more per request in memory).
        # Shortest windows first: a request refused on one (the usual refusal: a burst) has
        # not yet touched the longer ones. Longest first, another key of the account sent
        # in the moment before the refund was refused on the inflated day counter, told to
        # retry in a day. The refusal still names the exceeded limit that resets last.
        ordered = sorted(
            ((scope, item, ids) for scope, items, ids in scopes for item in items),
            key=lambda entry: entry[1].get_expiry(),
        )
        counted: list[tuple[RateLimitItem, tuple[str, ...], int]] = []
        least, tightest = -1, ordered[0]
        for entry in ordered:
            _, item, ids = entry
            count = self._call(self._count, item, *ids)
            counted.append((item, ids, count))
            if count > item.amount:
                self._give_back(counted)
                raise self._refusal(ordered, entry, throttled_by)
            # The limit with least left (of equals, the longest: it recovers last).
            left = item.amount - count
            if least < 0 or left <= least:
                least, tightest = left, entry
        scope, item, _ = tightest
        return f'"{policy_name(scope, item.get_expiry())}";r={least}'

    def _refusal(
        self, ordered: Sequence[_Entry], refused: _Entry, throttled_by: int | None
    ) -> RateLimited:
        """The refusal naming, of every limit the request is over, the one resetting last:
        a key's and its account's limits of the same length can both be spent, and the one
        tested first may reset first. The limits counted before the refused one were not
        over (the request fitted them): only those after it are read, a count each, and the
        reset of those spent (one storage call apiece: a scraper's refusals are most of its
        requests, and reading every window made each cost three times a lookup's calls)."""
        after = ordered[ordered.index(refused) + 1 :]
        latest = (self._call(self._reset_at, refused[1], *refused[2]), refused)
        for entry in after:
            _, item, ids = entry
            if self._call(self._used, item, *ids) >= item.amount:
                reset_at = self._call(self._reset_at, item, *ids)
                if reset_at > latest[0]:
                    latest = (reset_at, entry)
        reset_at, (scope, item, _) = latest
        policy = policy_header((scope_of, limit) for scope_of, limit, _ in ordered)
        return RateLimited(scope, item, reset_at, policy, throttled_by=throttled_by)

    def available(self) -> bool:
        """Whether the storage answers (always, in memory; a ping within the timeout, Redis)."""
        return bool(self._limiter.storage.check())

    def _used(self, item: RateLimitItem, *identifiers: str) -> int:
        """What a limit's window has counted (0 when it has not begun)."""
        return int(self._limiter.storage.get(item.key_for(*identifiers)))

    def _reset_at(self, item: RateLimitItem, *identifiers: str) -> float:
        """When a limit's window resets (a time.time())."""
        storage = self._limiter.storage
        key = item.key_for(*identifiers)
        if not isinstance(storage, RedisStorage):
            return float(storage.get_expiry(key))
        # `limits` reads the TTL, which Redis rounds to the second: a reset told half a
        # second early had to be padded, and `Retry-After` came up to 1.4 s late (a client
        # pacing itself on it got half a 1/second plan). PTTL tells milliseconds.
        connection: Any = storage.get_connection(True)  # typed by `limits` without pttl
        left = int(connection.pttl(storage.prefixed_key(key)))
        return time.time() + max(left, 0) / 1000

    def _give_back(self, counted: Sequence[tuple[RateLimitItem, tuple[str, ...], int]]) -> None:
        """Refund what a refused request counted (each limit, and what its window held); the
        last is the limit that refused it."""
        *passed, (refused, refused_ids, _) = counted
        for item, identifiers, _ in passed:
            self._call(partial(self._refund, floor=1), item, *identifiers)
        # The refused counter only while it is over: a refund landing after its window
        # rolled over took back the next window's first request, and one more than the
        # plan got through (42 answers where 40 were allowed, in an audit). Over, whatever
        # order the refunds of requests refused together land in, it comes back to the
        # plan (asking each for the count its request saw, refunds from several workers
        # landing out of order were dropped, and the other keys of the account refused).
        self._call(partial(self._refund, floor=refused.amount + 1), refused, *refused_ids)

    def _count(self, item: RateLimitItem, *identifiers: str, amount: int = 1) -> int:
        """Count a request (or `amount`, a search's listings) in a limit's window; what the
        window holds now (as `limits`' fixed window does, which tells only whether it is
        over)."""
        return int(
            self._limiter.storage.incr(item.key_for(*identifiers), item.get_expiry(), amount)
        )

    def _refund(self, item: RateLimitItem, *identifiers: str, floor: int, amount: int = 1) -> None:
        """Give back a request (or `amount`), if the window holds at least `floor`."""
        key = item.key_for(*identifiers)
        storage = self._limiter.storage
        if isinstance(storage, RedisStorage):
            # One step on the server: between a read and a decrement the counter could
            # expire, and the decrement made it anew below zero for a whole window.
            connection: Any = storage.get_connection()
            connection.eval(_REFUND, 1, storage.prefixed_key(key), floor, amount)
        elif storage.get(key) >= floor:
            storage.incr(key, item.get_expiry(), amount=-amount)

    def _call(self, method: Callable[..., _T], item: RateLimitItem, *identifiers: str) -> _T:
        if self.config.namespace:
            identifiers = (self.config.namespace, *identifiers)
        if self._down_until and time.monotonic() < self._down_until:
            # Each call to a Redis that does not answer holds the event loop for the whole
            # timeout: after one failure, the requests of the next moment are refused at once.
            raise RateLimitsUnavailable(
                "rate-limit storage unavailable: it failed less than "
                f"{STORAGE_BACKOFF:g} s ago and is not asked again before then"
            )
        try:
            result = method(item, *identifiers)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            # Said once an outage, not once a refused request (hundreds a second).
            if not self._down_until:
                log.error(
                    "rate-limit storage unavailable, refusing lookups until it answers: %s", exc
                )
            self._down_until = time.monotonic() + STORAGE_BACKOFF
            raise RateLimitsUnavailable(f"rate-limit storage unavailable: {exc}") from exc
        if self._down_until:
            self._down_until = 0.0
            log.warning("rate-limit storage answers again")
        return result
