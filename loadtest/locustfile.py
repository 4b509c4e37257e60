"""Load test personas for `lookup serve`; each persona is its own customer account.

Capacity run (the CRM and support staff; the scraper runs only when named):

    LOOKUP_CRM_KEY=lk_... LOOKUP_SUPPORT_KEY=lk_... .venv/bin/locust -f loadtest/locustfile.py \\
        --host http://127.0.0.1:8000 --headless -u 30 -r 10 -t 30s CrmUser SupportUser

Abuse demo (a scraper walking a number block until its account is suspended):

    LOOKUP_SCRAPER_KEY=lk_... .venv/bin/locust -f loadtest/locustfile.py \\
        --host http://127.0.0.1:8000 --headless -u 2 -r 2 -t 30s ScraperUser

| persona | key from | roles | counts as success |
|---|---|---|---|
| `CrmUser` | `LOOKUP_CRM_KEY` | `lookup` | 200, 404 |
| `SupportUser` | `LOOKUP_SUPPORT_KEY` | `lookup,search` | 200, 404 |
| `ScraperUser` | `LOOKUP_SCRAPER_KEY` | `lookup` | 200, 404, 429, 403 (block held, suspended) |

Each key must belong to an account of its own (`lookup keys create --org crm-lt ...`): a
suspension is its account's, so the CRM on the scraper's account would be suspended with it.
Give the CRM's and support's accounts a plan of their own (`lookup keys plan`): the default
plan (`LOOKUP_PLAN_ACCOUNT`, `LOOKUP_PLAN_KEY`) is far below a load test, and every request
over it is a 429 failure. Put them on the `review` policy too (`lookup keys policy`): all
personas come from the load generator's one address, and the address rule
(`distributed_scan`) can suspend every account on it that took a step of what looks like a
walk, which random lookups in the demo's dense blocks make now and then. The scraper's
account stays on `auto`. A selected persona without its key stops the run at start, saying
which variable to set and how to create the key; a key the server refuses (unknown,
revoked, missing a role, its account suspended) stops it too.

Named together (`CrmUser SupportUser ScraperUser`), the scraper is suspended while the
others carry on. A scraper-only run ends once every scraper user is suspended, and exits
non-zero when none was.

Numbers come from a generator manifest (`LOOKUP_LOADTEST_MANIFEST`, default the committed
demo set; `bench/out/files-1m/manifest.json` for the 1M bench set), so hits and misses
resemble real traffic: 30 % of a CRM's callers are numbers the directory has no listing
of. Names searched come from the generator's name lists.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import STATE_RUNNING, LocalRunner, Runner, WorkerRunner
from requests import RequestException
from requests import get as http_get  # after locust: its gevent patching comes first

from lookup.fixtures.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES, PLACES
from lookup.numbers import InvalidNumber, NumberType, classify

log = logging.getLogger("loadtest")

MANIFEST = Path(
    os.environ.get(
        "LOOKUP_LOADTEST_MANIFEST",
        Path(__file__).resolve().parent.parent / "data" / "fixtures" / "demo" / "manifest.json",
    )
)
_numbers: dict[str, dict[str, object]] = json.loads(MANIFEST.read_text())["numbers"]
LISTED = sorted(n for n, v in _numbers.items() if v["reservation"] != "reserved")
ALL = sorted(_numbers)
KNOWN = frozenset(_numbers)
del _numbers
UNLISTED_CALLERS = 0.3
"""The share of a CRM's callers the directory does not answer for (reserved, unlisted,
ported from abroad): the HTTP benches' 30 % misses, and a CRM's real traffic."""
KEY_REFRESH = float(os.environ.get("LOOKUP_KEY_REFRESH_SECONDS") or "0.5")
"""How often the server reads new keys: a key created just before the run may be
refused until then."""

LOAD_TEST_PLAN = "500/second;30000/minute;1000000/day"
SUSPENDED = "/problems/account-suspended"
BLOCK_HELD = "/problems/block-held"
RATE_LIMITED = "/problems/rate-limited"
_WARNED: set[tuple[str, str]] = set()


def _problem_type(response: Any) -> str:
    """The problem type of an error response (RFC 9457 `type`), or its status alone."""
    try:
        return str(response.json()["type"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


class PersonaUser(HttpUser):
    """A persona with a key of its own account, taken from its own environment variable."""

    abstract = True
    key_variable: ClassVar[str]
    roles: ClassVar[str]
    org: ClassVar[str]  # the org name the setup commands suggest
    # A capacity persona: 429 is a failure, and its account needs a load-test plan and the
    # `review` policy (the address rule can name every account on the load generator's
    # address, and the demo's dense blocks give random lookups short "walks").
    capacity: ClassVar[bool] = True

    @classmethod
    def key(cls) -> str:
        return os.environ.get(cls.key_variable, "").strip()

    @classmethod
    def create_command(cls, *, new_org: bool = False) -> str:
        """Shell commands creating the persona's key (for a fresh org: the old one is
        suspended) and its account's settings, exporting the key."""
        org, prefix = cls.org, ""
        if new_org:
            org, prefix = '"$org"', f"org={cls.org}-$(date +%s) && "
        command = (
            f"{prefix}export {cls.key_variable}=$(.venv/bin/lookup keys create --org {org} "
            f"--roles {cls.roles} | tail -n 1)"
        )
        if cls.capacity:
            command += (
                f" && .venv/bin/lookup keys plan --org {org} --plan '{LOAD_TEST_PLAN}'"
                f" && .venv/bin/lookup keys policy --org {org} --enforce review"
            )
        return command

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {self.key()}"

    def expect(self, response: Any, *ok: int) -> None:
        """Count `ok` statuses as success, anything else as a failure naming its problem."""
        if response.status_code in ok:
            response.success()
            return
        kind = _problem_type(response)
        hint = ""
        if kind == RATE_LIMITED:
            hint = (
                f": the account's plan is below this load; raise it: .venv/bin/lookup keys plan "
                f"--org <{self.key_variable}'s org> --plan '{LOAD_TEST_PLAN}'"
            )
        elif kind == SUSPENDED:
            hint = (
                ": the abuse rules suspended this persona's account; put a capacity persona's "
                "account on `lookup keys policy --enforce review`"
            )
        message = f"{response.status_code} {kind}{hint}"
        response.failure(message)
        persona = type(self).__name__
        if (persona, kind) not in _WARNED:  # once per persona and problem; the rest are counted
            _WARNED.add((persona, kind))
            policy = response.headers.get("RateLimit-Policy")
            log.warning("%s: %s%s", persona, message, f" (policy: {policy})" if policy else "")


class CrmUser(PersonaUser):
    """A CRM resolving caller IDs: a customer base of callers who call again and again."""

    wait_time = between(0.2, 1.0)
    weight = 8
    key_variable = "LOOKUP_CRM_KEY"
    roles = "lookup"
    org = "crm-lt"

    def on_start(self) -> None:
        super().on_start()
        listed = random.sample(LISTED, min(350, len(LISTED)))
        unlisted = [_unlisted_mobile() for _ in range(round(len(listed) * 3 / 7))]
        self.callers = listed + unlisted
        random.shuffle(self.callers)  # the most frequent callers listed or not alike

    @task
    def incoming_call(self) -> None:
        # Popularity is skewed: a few customers call most often.
        number = self.callers[min(int(random.paretovariate(1.2)) - 1, len(self.callers) - 1)]
        with self.client.get(
            f"/v1/numbers/{number}", name="/v1/numbers/{n}", catch_response=True
        ) as response:
            self.expect(response, 200, 404)


def number_type_of(number: str) -> NumberType | None:
    """The number's type in the numbering plan; None when it is not in it."""
    try:
        return classify(number)[1]
    except InvalidNumber:
        return None


def _unlisted_mobile() -> str:
    """A mobile number the manifest does not hold: a caller the directory has no listing of."""
    while True:
        number = f"{random.choice('49')}{random.randrange(10**7):07d}"
        if number not in KNOWN and number_type_of(number) is NumberType.MOBILE:
            return number


def _typo(word: str) -> str:
    """The word with two neighbouring letters swapped, as typed in a hurry."""
    if len(word) < 4:
        return word
    i = random.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


class SupportUser(PersonaUser):
    """Support staff typing numbers by hand, in any written form, and searching by name."""

    wait_time = between(2, 6)
    weight = 2
    key_variable = "LOOKUP_SUPPORT_KEY"
    roles = "lookup,search"
    org = "support-lt"

    @task(2)
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
            self.expect(response, 200, 404)

    @task(1)
    def search_by_name(self) -> None:
        last = random.choice(LAST_NAMES)
        if random.random() < 0.2:
            last = _typo(last)
        name = last
        if random.random() < 0.6:
            name = f"{random.choice(MALE_FIRST_NAMES + FEMALE_FIRST_NAMES)} {last}"
        params = {"name": name, "limit": "20"}
        if random.random() < 0.3:
            params["city"] = random.choice(PLACES).city
        with self.client.get(
            "/v1/search", params=params, name="/v1/search (support)", catch_response=True
        ) as response:
            self.expect(response, 200)


@dataclass
class ScraperRecord:
    """What the scraper users of this process met: the end the abuse demo is there to show."""

    lookups: int = 0  # answered or refused in a held block (not 429) by all scraper users
    first_suspended_at: int | None = None  # `lookups` when the first 403 came
    suspended_users: int = 0


SCRAPER = ScraperRecord()


class ScraperUser(PersonaUser):
    """Walks a number block in order: the traffic the abuse module must stop.

    Its end is `403 /problems/account-suspended`: recorded as a success of its own row in
    the statistics, and the user stops; 429 (a throttled or over-plan scraper) is expected too.
    """

    wait_time = between(0.05, 0.2)
    weight = 1  # runs only when named on the command line (see `_select_personas`)
    key_variable = "LOOKUP_SCRAPER_KEY"
    roles = "lookup"
    org = "scraper-lt"
    capacity = False

    def on_start(self) -> None:
        super().on_start()
        self.next = int(random.choice(ALL)) // 10_000 * 10_000
        self.lookups = 0

    @task
    def next_number(self) -> None:
        with self.client.get(
            f"/v1/numbers/{self.next}", name="/v1/numbers/{n} (scraper)", catch_response=True
        ) as response:
            kind = _problem_type(response)
            if response.status_code in (403, 429) and kind in (SUSPENDED, BLOCK_HELD, RATE_LIMITED):
                # A row of its own in the statistics, so the end shows in the output. A held
                # block is refused and the walk goes on, as a scraper's would, until the
                # account is suspended.
                slug = f"{response.status_code} {kind.rsplit('/', 1)[-1]}"
                response.request_meta["name"] = f"/v1/numbers/{{n}} (scraper: {slug})"
                response.success()
            else:
                self.expect(response, 200, 404)
        if response.status_code == 403 and _problem_type(response) == SUSPENDED:
            self._suspended()
        if response.status_code != 429:
            self.lookups += 1
            SCRAPER.lookups += 1
        self.next += 1

    def _suspended(self) -> None:
        if SCRAPER.first_suspended_at is None:
            SCRAPER.first_suspended_at = SCRAPER.lookups
        SCRAPER.suspended_users += 1
        log.info(
            "ScraperUser: 403 %s after %d lookups of this user (%d by all scraper users): "
            "the abuse module suspended the account; this user stops",
            SUSPENDED,
            self.lookups,
            SCRAPER.lookups,
        )
        runner = self.environment.runner
        if isinstance(runner, LocalRunner) and all(
            cls is ScraperUser for cls in self.environment.user_classes
        ):
            gevent.spawn_later(1.0, _quit_when_idle, runner)
        raise StopUser


def _quit_when_idle(runner: Runner) -> None:
    """End a scraper-only run once every scraper user has been suspended."""
    if runner.state == STATE_RUNNING and runner.user_count == 0:
        log.info("every scraper user is suspended: ending the run")
        runner.quit()


PERSONAS: tuple[type[PersonaUser], ...] = (CrmUser, SupportUser, ScraperUser)


def _preflight(persona: type[PersonaUser], host: str) -> str | None:
    """Why the server refuses the persona's key, if it does (one request per role)."""
    # A number not in the plan: 422 once the key is accepted, and no detector moves.
    checks: list[tuple[str, dict[str, str]]] = [("/v1/numbers/00000000", {})]
    if "search" in persona.roles:
        checks.append(("/v1/search", {"name": "Hansen", "limit": "1"}))
    for path, params in checks:
        # A key created just now is refused until the server's next read of the keys.
        deadline = time.monotonic() + 2 * KEY_REFRESH + 1
        while True:
            try:
                response = http_get(
                    host.rstrip("/") + path,
                    params=params,
                    headers={"Authorization": f"Bearer {persona.key()}"},
                    timeout=5,
                )
            except RequestException as exc:
                return f"cannot reach {host} ({type(exc).__name__}): is `lookup serve` running?"
            if response.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if response.status_code not in (401, 403):
            continue
        kind = _problem_type(response)
        if kind == SUSPENDED:
            return (
                f"{persona.key_variable}'s account is suspended (403 {kind}; by an earlier "
                f"run?): create a key for a new org: {persona.create_command(new_org=True)}"
            )
        return (
            f"{persona.key_variable} is refused on {path} ({response.status_code} {kind}): "
            f"create a key for {persona.__name__}: {persona.create_command()}"
        )
    return None


@events.init.add_listener  # type: ignore[untyped-decorator]
def _select_personas(environment: Environment, runner: Runner, **_kwargs: Any) -> None:
    """Leave the scraper out unless named; stop at once on a missing or refused key."""
    options = environment.parsed_options
    named = list(getattr(options, "user_classes", None) or [])
    classes = environment.user_classes
    if ScraperUser in classes and "ScraperUser" not in named and len(classes) > 1:
        classes.remove(ScraperUser)
        log.info("ScraperUser left out: it runs only when named (`... ScraperUser`)")
    selected = [cls for cls in PERSONAS if cls in classes]
    legacy = " (LOOKUP_API_KEY is no longer read)" if os.environ.get("LOOKUP_API_KEY") else ""
    for persona in selected:
        if not persona.key():
            sys.exit(
                f"loadtest: {persona.__name__} needs a key of its own account in "
                f"{persona.key_variable}{legacy}: {persona.create_command()}"
            )
    if isinstance(runner, WorkerRunner) or not environment.host:
        return
    for persona in selected:
        if (reason := _preflight(persona, environment.host)) is not None:
            sys.exit(f"loadtest: {reason}")


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _report_scraper(environment: Environment, **_kwargs: Any) -> None:
    """Say whether the scraper was suspended; a scraper that never was fails the run."""
    if ScraperUser not in environment.user_classes or isinstance(environment.runner, WorkerRunner):
        return
    if SCRAPER.first_suspended_at is not None:
        log.info(
            "scraper: account suspended (403 %s) after %d lookups; %d scraper user(s) stopped",
            SUSPENDED,
            SCRAPER.first_suspended_at,
            SCRAPER.suspended_users,
        )
    else:
        log.error(
            "scraper: NOT suspended after %d lookups (abuse detection off, or the address "
            "in LOOKUP_ABUSE_ALLOW_IPS?)",
            SCRAPER.lookups,
        )
        environment.process_exit_code = 1
