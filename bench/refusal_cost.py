"""What a request refused by its rate limits costs against one they count, on Redis.

Times `RateLimiter.hit` in process against Redis database 9 (`BENCH_REDIS_URL` names
another), the limiter's real storage calls, no HTTP: a key plan no request reaches, then
one every request after the first is refused by (its second, minute and day all spent),
2,000 calls each; prints the medians.
Deletes the counters it made.

Run from the repo root (Redis on 127.0.0.1:6379):  .venv/bin/python bench/refusal_cost.py
To compare with another commit, run it side by side with `PYTHONPATH=<worktree>`.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time

import redis

from lookup.abuse.ratelimit import RateLimitConfig, RateLimited, RateLimiter

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
r = redis.Redis.from_url(URL)


def run(plan_key: str, n: int = 2000) -> float:
    """Median µs of `n` calls under this key plan."""
    limiter = RateLimiter(
        RateLimitConfig(
            account_plan="1000000/second;1000000/minute;100000000/day",
            key_plan=plan_key,
            storage=URL,
            namespace="bench-refuse",
        )
    )
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with contextlib.suppress(RateLimited):
            limiter.hit("k1", "acme", plan=None, throttled=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    """Both medians, side by side."""
    ok = run("100000000/second;100000000/minute;100000000/day")
    for key in r.scan_iter("LIMITS:LIMITER/bench-refuse/*"):
        r.delete(key)
    refused = run("1/day;1/second;1/minute")
    for key in r.scan_iter("LIMITS:LIMITER/bench-refuse/*"):
        r.delete(key)
    print(f"counted {ok:.0f} µs, refused {refused:.0f} µs a call (median, Redis)")


if __name__ == "__main__":
    main()
