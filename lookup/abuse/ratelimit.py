"""Rate limits per key and per account, with `limits`.

Plans are strings in the `limits` notation (`"20/second;600/minute;20000/day"`).
An account may have its own plan; a throttled account gets its plan divided
by `throttle_factor`. Storage is in memory by default and Redis when several
workers must share counters (`LOOKUP_RATELIMIT_STORAGE=redis://...`).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import msgspec
import redis
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from lookup.errors import LookupServiceError


class RateLimited(LookupServiceError):
    """A request over one of its plan's limits."""

    def __init__(self, scope: str, item: RateLimitItem, reset_at: float, policy: str) -> None:
        self.scope = scope
        self.limit = item.amount
        self.window = item.get_expiry()
        self.retry_after = max(1, math.ceil(reset_at - time.time()))
        self.policy = policy
        super().__init__(
            f"{scope} limit of {item.amount} per {self._window_text()} reached; "
            f"retry in {self.retry_after}s"
        )

    def _window_text(self) -> str:
        return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(
            self.window, f"{self.window}s"
        )

    def headers(self) -> dict[str, str]:
        """`Retry-After` and the IETF `RateLimit-Policy` / `RateLimit` fields."""
        return {
            "Retry-After": str(self.retry_after),
            "RateLimit-Policy": self.policy,
            "RateLimit": f"limit={self.limit}, remaining=0, reset={self.retry_after}",
        }


class RateLimitsUnavailable(LookupServiceError):
    """The shared rate-limit storage cannot be reached; requests are refused, not let through."""


class PlanError(LookupServiceError):
    """A plan string `limits` cannot read."""


@lru_cache(maxsize=256)
def parse_plan(plan: str, divide_by: int = 1) -> tuple[RateLimitItem, ...]:
    """The limits of a plan string (cached: plans repeat across requests)."""
    try:
        items = parse_many(plan)
    except ValueError as exc:
        raise PlanError(f"cannot read plan {plan!r}: {exc}") from None
    if divide_by == 1:
        return tuple(items)
    return tuple(
        type(item)(max(1, item.amount // divide_by), item.multiples, item.namespace)
        for item in items
    )


def policy_header(items: tuple[RateLimitItem, ...]) -> str:
    """`RateLimit-Policy` value, e.g. `20;w=1, 600;w=60`."""
    return ", ".join(f"{item.amount};w={item.get_expiry()}" for item in items)


class RateLimitConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Default plans and where counters live."""

    account_plan: str = "50/second;1500/minute;50000/day"
    key_plan: str = "25/second;1000/minute;40000/day"
    throttle_factor: int = 10
    verify_plan: str = "3/day"
    """Date-of-birth checks allowed per account and number."""
    storage: str = "memory://"


class RateLimiter:
    """Checks and counts requests against their key's and account's limits."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        parse_plan(config.account_plan)
        parse_plan(config.key_plan)
        parse_plan(config.verify_plan)
        self._limiter = FixedWindowRateLimiter(storage_from_string(config.storage))

    def hit(self, key_id: str, account: str, *, plan: str | None, throttled: bool) -> None:
        """Count the request, or raise `RateLimited` naming the limit it is over."""
        divide = self.config.throttle_factor if throttled else 1
        scopes = (
            ("key", key_id, parse_plan(self.config.key_plan, divide)),
            ("account", account, parse_plan(plan or self.config.account_plan, divide)),
        )
        for scope, identity, items in scopes:
            for item in items:
                if not self._hit(item, scope, identity):
                    stats = self._limiter.get_window_stats(item, scope, identity)
                    raise RateLimited(scope, item, stats.reset_time, policy_header(items))

    def verify(self, account: str, number: str) -> None:
        """Count one date-of-birth check of a number, or raise `RateLimited`."""
        items = parse_plan(self.config.verify_plan)
        for item in items:
            if not self._hit(item, "verify", account, number):
                stats = self._limiter.get_window_stats(item, "verify", account, number)
                raise RateLimited(
                    "birth_date verification", item, stats.reset_time, policy_header(items)
                )

    def _hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        try:
            return self._limiter.hit(item, *identifiers)
        except (redis.RedisError, OSError) as exc:
            raise RateLimitsUnavailable(f"rate-limit storage unavailable: {exc}") from exc
