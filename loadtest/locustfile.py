"""Load test personas for `lookup serve`.

    LOOKUP_API_KEY=lk_... .venv/bin/locust -f loadtest/locustfile.py \\
        --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 1m

Numbers come from a generator manifest (`LOOKUP_LOADTEST_MANIFEST`, default
the committed demo set), so hits and misses resemble real traffic. Select a
persona with Locust's class picker, e.g. `CrmUser SupportUser`.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from locust import HttpUser, between, task

MANIFEST = Path(
    os.environ.get(
        "LOOKUP_LOADTEST_MANIFEST",
        Path(__file__).resolve().parent.parent / "data" / "fixtures" / "demo" / "manifest.json",
    )
)
_numbers: dict[str, dict[str, object]] = json.loads(MANIFEST.read_text())["numbers"]
LISTED = sorted(n for n, v in _numbers.items() if v["reservation"] != "reserved")
ALL = sorted(_numbers)


def _headers() -> dict[str, str]:
    key = os.environ.get("LOOKUP_API_KEY", "")
    return {"Authorization": f"Bearer {key}"}


class CrmUser(HttpUser):
    """A CRM resolving caller IDs: a customer base of callers who call again and again."""

    wait_time = between(0.2, 1.0)
    weight = 8

    def on_start(self) -> None:
        self.client.headers.update(_headers())
        self.callers = random.sample(LISTED, min(500, len(LISTED)))

    @task
    def incoming_call(self) -> None:
        # Popularity is skewed: a few customers call most often.
        number = self.callers[min(int(random.paretovariate(1.2)) - 1, len(self.callers) - 1)]
        with self.client.get(
            f"/v1/numbers/{number}", name="/v1/numbers/{n}", catch_response=True
        ) as response:
            if response.status_code in (200, 404):
                response.success()


class SupportUser(HttpUser):
    """Support staff typing numbers by hand, in any written form, checking a name."""

    wait_time = between(2, 6)
    weight = 2

    def on_start(self) -> None:
        self.client.headers.update(_headers())

    @task
    def look_up_by_hand(self) -> None:
        number = random.choice(ALL)
        written = random.choice(
            [number, f"+47 {number}", f"{number[:2]} {number[2:4]} {number[4:]}"]
        )
        with self.client.get(
            f"/v1/numbers/{written}",
            params={"name": "Hansen"} if random.random() < 0.3 else None,
            name="/v1/numbers/{n} (support)",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 404):
                response.success()


class ScraperUser(HttpUser):
    """Walks a number block in order: the traffic the abuse module must stop."""

    wait_time = between(0.05, 0.2)
    weight = 0  # only when selected explicitly: `locust ... ScraperUser`

    def on_start(self) -> None:
        self.client.headers.update(_headers())
        self.next = int(random.choice(ALL)) // 10_000 * 10_000

    @task
    def next_number(self) -> None:
        with self.client.get(
            f"/v1/numbers/{self.next}", name="/v1/numbers/{n} (scraper)", catch_response=True
        ) as response:
            if response.status_code in (200, 404, 403, 429):
                response.success()
        self.next += 1
