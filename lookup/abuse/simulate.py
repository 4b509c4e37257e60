"""Labelled traffic for evaluating the detectors: legitimate customers and scrapers.

Deterministic for a seed. A synthetic directory decides hits and misses: a set
of allocated number blocks (10,000 for mobile, 1,000 for geographic), each
number listed with a block-specific probability. Every persona produces
`LookupEvent`s for one or more accounts; `Scenario` merges them in time order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from lookup.abuse.events import LookupEvent, Outcome
from lookup.numbers import InvalidNumber, normalize

START: Final = datetime(2026, 10, 1)
DAYS: Final = 30


_MASK64: Final = 2**64 - 1


def _mix64(value: int) -> int:
    """splitmix64's finalizer: neighbouring inputs give unrelated outputs."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


def _in_plan(first: int, size: int) -> bool:
    """Whether a block's first and last numbers are in Norway's numbering plan."""
    try:
        normalize(f"+47{first:08d}")
        normalize(f"+47{first + size - 1:08d}")
    except InvalidNumber:
        return False
    return True


class Directory:
    """Which numbers are listed: allocated blocks, each with its own listing density."""

    def __init__(self, seed: int, mobile_blocks: int = 1500, fixed_blocks: int = 5000) -> None:
        # About 20 million numbers in use, as in Norway: 15 M mobile and 5 M geographic.
        rng = random.Random(seed)
        # Blocks the numbering plan has (4536xxxx, for one, is a hole in the mobile range).
        mobile = [
            b for b in [*range(4000, 5000), *range(9000, 10_000)] if _in_plan(b * 10_000, 10_000)
        ]
        self.mobile: list[int] = sorted(rng.sample(mobile, mobile_blocks))
        fixed_prefixes = [21, 22, 23, 32, 38, 51, 52, 55, 56, 61, 62, 69, 70, 72, 73, 75, 77]
        # Geographic blocks of 1,000 eight-digit numbers: a prefix, then the block's 3 digits.
        fixed = [p * 1_000 + b for p in fixed_prefixes for b in range(1_000)]
        fixed = [b for b in fixed if _in_plan(b * 1_000, 1_000)]
        self.fixed: list[int] = sorted({rng.choice(fixed) for _ in range(fixed_blocks)})
        self._density: dict[int, float] = {}
        for block in self.mobile:
            self._density[block * 10_000] = rng.uniform(0.35, 0.6)
        for block in self.fixed:
            self._density[block * 1_000] = rng.uniform(0.4, 0.7)
        self._seed = seed

    def _block_start(self, number: int) -> int | None:
        size = self.block_size(number)
        start = number // size * size
        return start if start in self._density else None

    def listed(self, number: int) -> bool:
        """Whether the number has a listing (unallocated numbers never do)."""
        start = self._block_start(number)
        if start is None:
            return False
        # A stable per-number coin: same answer for the same number, every run. Hashed
        # (splitmix64), since a linear coin repeats itself along a strided walk.
        return _mix64(number * 1_000_003 + self._seed) / 2**64 < self._density[start]

    def block_size(self, number: int) -> int:
        """Allocation block size of a number: 10,000 mobile, 1,000 geographic."""
        return 10_000 if number // 10_000_000 in (4, 9) else 1_000

    def random_number(self, rng: random.Random, *, listed: bool | None = None) -> int:
        """A number in an allocated block (listed or not, if asked)."""
        while True:
            if rng.random() < 0.65:
                number = rng.choice(self.mobile) * 10_000 + rng.randrange(10_000)
            else:
                number = rng.choice(self.fixed) * 1_000 + rng.randrange(1_000)
            if listed is None or self.listed(number) == listed:
                return number

    def town_number(self, rng: random.Random, blocks: list[int], *, listed: bool) -> int:
        """A number in one of a town's geographic blocks (listed or not, as asked)."""
        while True:
            number = rng.choice(blocks) * 1_000 + rng.randrange(1_000)
            if self.listed(number) == listed:
                return number

    def listings_in_block(self, number: int) -> int:
        """How many listings the block of a number holds."""
        size = self.block_size(number)
        start = number // size * size
        return sum(self.listed(n) for n in range(start, start + size))


@dataclass
class Actor:
    """One account's traffic and its label."""

    persona: str
    account: str
    scraper: bool
    events: list[LookupEvent] = field(default_factory=list)
    target_blocks: tuple[int, ...] = ()
    """First numbers of the blocks a scraper targets."""
    scrape_from: datetime | None = None
    """When the scraping began (an account may have honest history before)."""
    flag_only: bool = False
    """A scraper the rules can only flag for review: its lookups are what a customer with
    a huge base could make."""


class Traffic:
    """Builds the events of actors against one directory."""

    def __init__(self, directory: Directory, rng: random.Random) -> None:
        self.directory = directory
        self.rng = rng
        self.actors: list[Actor] = []

    def actor(self, persona: str, account: str, *, scraper: bool) -> Actor:
        """A new actor to add events to."""
        actor = Actor(persona, account, scraper)
        self.actors.append(actor)
        return actor

    def lookup(self, actor: Actor, ts: datetime, number: int, key: str, ip: str) -> None:
        """One lookup and its outcome as the API would answer it."""
        outcome: Outcome = "hit" if self.directory.listed(number) else "miss"
        _answer(actor, ts, key, ip, number=f"+47{number:08d}", outcome=outcome)

    def search(
        self, actor: Actor, ts: datetime, key: str, ip: str, *, listings: int, full_page: bool
    ) -> None:
        """One name search and what it returned (the simulated directory has no names)."""
        outcome: Outcome = "hit" if listings else "miss"
        _answer(
            actor,
            ts,
            key,
            ip,
            number="name search",
            outcome=outcome,
            endpoint="search",
            listings=listings,
            full_page=full_page,
        )

    def typo(self, actor: Actor, ts: datetime, key: str, ip: str) -> None:
        """A mistyped number: answered 422."""
        _answer(actor, ts, key, ip, number="2220240", outcome="invalid")


def _answer(actor: Actor, ts: datetime, key: str, ip: str, **answer: Any) -> None:
    """An answered request of the actor's account: its event."""
    actor.events.append(LookupEvent(ts=ts, account=actor.account, key=key, ip=ip, **answer))


def _business_moments(rng: random.Random, day: int, count: int) -> list[datetime]:
    """Call times on a working day: 08-17, with the 09:00 burst."""
    moments = []
    for _ in range(count):
        burst = rng.random() < 0.2
        hour = 9 + rng.random() * 0.25 if burst else 8 + rng.random() * 9
        moments.append(START + timedelta(days=day, hours=hour))
    return sorted(moments)


def _working_days(first: int = 0) -> Iterator[int]:
    return (day for day in range(first, DAYS) if (START + timedelta(days=day)).weekday() < 5)


def crm(
    traffic: Traffic,
    account: str,
    *,
    customers: int,
    calls_per_day: int,
    ip: str = "",
    first_day: int = 0,
    direct_dial_ranges: int = 0,
    refresh: str | None = None,
    town_blocks: int = 0,
    town_share: float = 0.0,
    persona: str = "crm",
) -> Actor:
    """A CRM resolving callers: a customer base with skewed popularity, business hours.

    With `town_blocks`, a `town_share` of the customers live in the same few
    geographic blocks (a local business's town), the rest anywhere.
    """
    rng, directory = traffic.rng, traffic.directory
    actor = traffic.actor(persona, account, scraper=False)
    ip = ip or f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    key = f"{account}-key"
    town = rng.sample(directory.fixed, town_blocks)
    # Most callers are listed; some are reserved, unlisted or unknown numbers.
    base = [
        directory.town_number(rng, town, listed=rng.random() < 0.7)
        if town and rng.random() < town_share
        else directory.random_number(rng, listed=rng.random() < 0.7)
        for _ in range(customers)
    ]
    for _ in range(direct_dial_ranges):
        start = directory.random_number(rng, listed=True)
        base.extend(start + offset for offset in range(rng.randint(5, 20)))
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(base))]
    for day in _working_days(first_day):
        for moment in _business_moments(
            rng, day, max(1, int(rng.gauss(calls_per_day, calls_per_day / 5)))
        ):
            if rng.random() < 0.01:
                traffic.typo(actor, moment, key, ip)
            else:
                traffic.lookup(actor, moment, rng.choices(base, weights)[0], key, ip)
    if refresh is not None:
        every = 1 if refresh == "nightly" else 7
        for day in range(first_day, DAYS, every):
            moment = START + timedelta(days=day, hours=2)
            for number in rng.sample(base, len(base)):
                moment += timedelta(milliseconds=rng.randint(20, 200))
                traffic.lookup(actor, moment, number, key, ip)
    return actor


def support(traffic: Traffic, account: str) -> Actor:
    """Support staff looking numbers up by hand, with typos."""
    rng = traffic.rng
    actor = traffic.actor("support", account, scraper=False)
    for day in _working_days():
        for moment in _business_moments(rng, day, rng.randint(20, 60)):
            if rng.random() < 0.05:
                traffic.typo(actor, moment, "support-key", "10.9.9.9")
            else:
                number = traffic.directory.random_number(rng, listed=rng.random() < 0.75)
                traffic.lookup(actor, moment, number, "support-key", "10.9.9.9")
    return actor


def search_desk(traffic: Traffic, account: str, *, agents: int, full: float) -> Actor:
    """Support staff searching by name (20 to a page): each agent looks for 20-50 people a
    working day; a `full` share of the searches (a common name) fill the page, the rest
    find a few listings or none."""
    rng = traffic.rng
    actor = traffic.actor("search_desk", account, scraper=False)
    key, ip = f"{account}-key", f"10.8.{len(traffic.actors) % 256}.1"
    for day in _working_days():
        count = sum(rng.randint(20, 50) for _ in range(agents))
        for moment in _business_moments(rng, day, count):
            if rng.random() < full:
                traffic.search(actor, moment, key, ip, listings=20, full_page=True)
            else:
                found = min(19, int(rng.expovariate(1 / 4)))
                traffic.search(actor, moment, key, ip, listings=found, full_page=False)
    return actor


def search_harvester(
    traffic: Traffic, persona: str, account: str, *, pages_per_hour: int, hours: tuple[int, int]
) -> Actor:
    """A bulk download by name: broad queries, each a full page of 50 (the most a search
    returns), at `pages_per_hour` within `hours` of every day, up to the search plan's day
    (10,000 listings), from day 3."""
    rng = traffic.rng
    actor = traffic.actor(persona, account, scraper=True)
    key, ip = f"{account}-key", f"198.51.100.{rng.randrange(1, 255)}"
    first, last = hours
    for day in range(3, DAYS):
        moment = START + timedelta(days=day, hours=first + rng.random())
        for _ in range(10_000 // 50):
            if moment >= START + timedelta(days=day, hours=last):
                break
            traffic.search(actor, moment, key, ip, listings=50, full_page=True)
            moment += timedelta(seconds=3600 / pages_per_hour * rng.uniform(0.8, 1.2))
    actor.scrape_from = min(event.ts for event in actor.events)
    return actor


def saas(traffic: Traffic, customers: int) -> list[Actor]:
    """Many small customers behind one integrator's IP address."""
    return [
        crm(
            traffic,
            f"saas-{index:02d}",
            customers=60,
            calls_per_day=15,
            ip="192.0.2.10",
            persona="saas_customer",
        )
        for index in range(customers)
    ]


def scraper(
    traffic: Traffic,
    persona: str,
    account: str,
    *,
    order: str,
    rate_seconds: float,
    keys: int = 1,
    ips: int = 1,
    repeats: float = 0.0,
    decoys: int = 0,
    stride: int = 1,
    start_day: int = 3,
    lookups: int = 3000,
    accounts: list[str] | None = None,
    blocks: int = 1,
) -> list[Actor]:
    """A scraper walking one block: in order, shuffled, strided, split, or slow.

    `repeats`: the chance of looking up a number it found again first; `decoys`: new
    numbers from anywhere in the plan looked up before each of the block's; `blocks`:
    how many blocks (of the first's kind) it works at once, taking turns.
    """
    rng, directory = traffic.rng, traffic.directory
    names = accounts or [account]
    actors = [traffic.actor(persona, name, scraper=True) for name in names]
    target = directory.random_number(rng)
    size = directory.block_size(target)
    starts = [target // size * size]
    while len(starts) < blocks:
        other = directory.random_number(rng)
        if directory.block_size(other) == size and other // size * size not in starts:
            starts.append(other // size * size)
    if order != "random_plan":  # a sampler of the whole plan targets no block
        for actor in actors:
            actor.target_blocks = tuple(starts)
    if order == "random_plan":
        numbers = [directory.random_number(rng) for _ in range(lookups)]
    else:
        walks = [list(range(start, start + size, stride)) for start in starts]
        if order == "shuffled":
            for walk in walks:
                rng.shuffle(walk)
        numbers = [number for turn in zip(*walks, strict=True) for number in turn]
    moment = START + timedelta(days=start_day, hours=rng.uniform(0, 20))
    for actor in actors:
        actor.scrape_from = moment
    found: list[int] = []
    shared_ip = f"203.0.113.{rng.randrange(1, 255)}"
    own_net = f"198.{18 + len(traffic.actors) % 2}.{len(traffic.actors)}"
    for index, number in enumerate(numbers[:lookups]):
        actor = actors[index % len(actors)]
        key = f"{actor.account}-k{index % keys}"
        ip = shared_ip if len(actors) > 1 else f"{own_net}.{index % ips + 1}"
        moment += timedelta(seconds=rate_seconds * rng.uniform(0.5, 1.5))
        if found and rng.random() < repeats:
            traffic.lookup(actor, moment, rng.choice(found), key, ip)
            moment += timedelta(seconds=rate_seconds * rng.uniform(0.5, 1.5))
        for _ in range(decoys):
            traffic.lookup(actor, moment, directory.random_number(rng), key, ip)
            moment += timedelta(seconds=rate_seconds * rng.uniform(0.5, 1.5))
        traffic.lookup(actor, moment, number, key, ip)
        if directory.listed(number):
            found.append(number)
    return actors


def washer(
    traffic: Traffic, account: str, *, per_day: tuple[int, int], start_day: int = 3
) -> Actor:
    """Washing a bought list: real numbers from all over the plan (most of them listed),
    new ones every working day, at a CRM's hours; never the customer's own."""
    rng, directory = traffic.rng, traffic.directory
    actor = traffic.actor("list_washing", account, scraper=True)
    actor.flag_only = True
    ip = f"198.51.100.{rng.randrange(1, 255)}"
    for day in _working_days(start_day):
        for moment in _business_moments(rng, day, rng.randint(*per_day)):
            number = directory.random_number(rng, listed=rng.random() < 0.85)
            traffic.lookup(actor, moment, number, f"{account}-key", ip)
    actor.scrape_from = min(event.ts for event in actor.events)
    return actor


Builder = Callable[[Traffic], object]


def standard_scenario(seed: int = 7) -> tuple[Directory, list[Actor]]:
    """A simulated month: every legitimate persona and every kind of scraper."""
    directory = Directory(seed)
    traffic = Traffic(directory, random.Random(seed))
    for index in range(4):
        crm(traffic, f"crm-small-{index}", customers=300, calls_per_day=40)
    for index in range(2):
        crm(traffic, f"crm-large-{index}", customers=4000, calls_per_day=1500)
    for index in range(2):
        crm(
            traffic,
            f"call-centre-{index}",
            customers=800,
            calls_per_day=300,
            direct_dial_ranges=25,
            persona="call_centre",
        )
    crm(
        traffic,
        "refresh-nightly",
        customers=3000,
        calls_per_day=200,
        refresh="nightly",
        persona="refresh_job",
    )
    crm(
        traffic,
        "refresh-weekly",
        customers=8000,
        calls_per_day=300,
        refresh="weekly",
        persona="refresh_job",
    )
    crm(
        traffic,
        "signup-mid-month",
        customers=2000,
        calls_per_day=400,
        first_day=15,
        refresh="weekly",
        persona="mid_month_signup",
    )
    for index in range(3):
        crm(
            traffic,
            f"local-business-{index}",
            customers=[400, 1500, 3000][index],
            calls_per_day=[30, 120, 300][index],
            town_blocks=[3, 6, 12][index],
            town_share=0.8,
            refresh="weekly" if index else None,
            persona="local_business",
        )
    support(traffic, "support-desk")
    saas(traffic, 30)
    scraper(traffic, "sequential", "scr-seq", order="sequential", rate_seconds=0.5)
    scraper(traffic, "shuffled_block", "scr-shuf", order="shuffled", rate_seconds=0.5)
    scraper(traffic, "strided", "scr-stride", order="sequential", stride=7, rate_seconds=1)
    scraper(traffic, "low_and_slow", "scr-slow", order="shuffled", rate_seconds=90)
    scraper(traffic, "multi_key", "scr-keys", order="shuffled", rate_seconds=1, keys=4, ips=3)
    scraper(
        traffic,
        "multi_account",
        "scr-acct",
        order="sequential",
        rate_seconds=1,
        accounts=["scr-acct-a", "scr-acct-b", "scr-acct-c"],
    )
    scraper(traffic, "repeats_mix", "scr-rep", order="shuffled", rate_seconds=2, repeats=0.5)
    scraper(traffic, "random_plan", "scr-rand", order="random_plan", rate_seconds=3)
    honest = crm(traffic, "scr-honest", customers=500, calls_per_day=60, persona="crm")
    later = scraper(
        traffic, "honest_then_scrape", "scr-honest", order="shuffled", rate_seconds=5, start_day=20
    )
    # The same account: legitimate until day 20, a scraper after.
    later[0].events.extend(honest.events)
    traffic.actors.remove(honest)
    # Last, so that adding them left every earlier persona's draws as they were.
    scraper(traffic, "decoys_mix", "scr-decoy", order="shuffled", rate_seconds=1, decoys=1)
    scraper(traffic, "two_blocks", "scr-two", order="shuffled", rate_seconds=1, blocks=2)
    scraper(traffic, "three_blocks", "scr-three", order="shuffled", rate_seconds=2, blocks=3)
    washer(traffic, "scr-wash", per_day=(250, 1000))
    search_desk(traffic, "desk-small", agents=3, full=0.25)
    search_desk(traffic, "desk-large", agents=15, full=0.25)
    search_harvester(traffic, "search_harvest", "scr-names", pages_per_hour=40, hours=(0, 24))
    search_harvester(traffic, "search_slow", "scr-names-slow", pages_per_hour=10, hours=(8, 17))
    return directory, traffic.actors
