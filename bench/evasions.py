"""Scans made to evade the detectors: how much of a block each takes, after how many lookups.

    .venv/bin/python bench/evasions.py [--seed 7]

Each strategy (found by an outside red-team of the rules, 2026-12-04; three blocks at
unequal paces: the way around the `known` tier, which now holds the slow ones) runs alone
through the live detectors with the default policy, as `make eval-abuse` runs its month: a
suspended account's later lookups are refused, and so are its lookups in a block held for
it. Every strategy keeps under the default rate limits. It prints, per strategy, the
lookups made, those until the first finding and until the first hold or suspension
("never" when none came), the
share of its target blocks' listings it got (the most of one block, and their mean), and
the findings by kind and action. README, "What the rules cannot tell apart", says what
each means for a compliance officer. A download by name search targets no block: for it,
the two share columns give the listings its searches returned before it was stopped.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from lookup.abuse.evaluate import AccountResult, run
from lookup.abuse.simulate import Actor, Directory, Traffic

START = datetime(2026, 10, 5, 8, 0)


def _blocks(directory: Directory, rng: random.Random, count: int) -> list[int]:
    """First numbers of `count` geographic blocks, densest third (what a scraper's first
    hits would point it to)."""
    starts = [block * 1_000 for block in rng.sample(directory.fixed, count * 3)]
    return sorted(starts, key=directory.listings_in_block, reverse=True)[:count]


def _walk(start: int, rng: random.Random) -> list[int]:
    numbers = list(range(start, start + 1_000))
    rng.shuffle(numbers)
    return numbers


def paced(minutes: float, days: int) -> Callable[[Traffic, random.Random], list[Actor]]:
    """One block, one number every `minutes`, nothing else, for `days`."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("paced", "paced", scraper=True)
        [start] = _blocks(traffic.directory, rng, 1)
        actor.target_blocks, actor.scrape_from = (start,), START
        moment = START
        for number in _walk(start, rng):
            if moment > START + timedelta(days=days):
                break
            traffic.lookup(actor, moment, number, "paced-k", "198.51.100.7")
            moment += timedelta(minutes=minutes * rng.uniform(0.95, 1.05))
        return [actor]

    return build


def hopping(
    minutes: float, each: int, days: int
) -> Callable[[Traffic, random.Random], list[Actor]]:
    """A new block after every `each` numbers, one number every `minutes`, for `days`."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("hopping", "hops", scraper=True)
        count = int(days * 24 * 60 / minutes / each) + 1
        starts = _blocks(traffic.directory, rng, count)
        actor.target_blocks, actor.scrape_from = tuple(starts), START
        moment = START
        for start in starts:
            for number in _walk(start, rng)[:each]:
                if moment > START + timedelta(days=days):
                    return [actor]
                traffic.lookup(actor, moment, number, "hops-k", "198.51.100.11")
                moment += timedelta(minutes=minutes * rng.uniform(0.95, 1.05))
        return [actor]

    return build


def decoy_pairs(seconds: float, days: int) -> Callable[[Traffic, random.Random], list[Actor]]:
    """One block, each number after a repeat and two new numbers of one fresh block."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("decoy_pairs", "pairs", scraper=True)
        directory = traffic.directory
        [start] = _blocks(directory, rng, 1)
        actor.target_blocks, actor.scrape_from = (start,), START
        moment, found = START, [directory.random_number(rng, listed=True)]
        for number in _walk(start, rng):
            if moment > START + timedelta(days=days):
                break
            decoy = directory.random_number(rng)
            size = directory.block_size(decoy)
            pair = decoy // size * size + rng.randrange(size)
            for each in (rng.choice(found), decoy, pair):
                traffic.lookup(actor, moment, each, "pairs-k", "198.51.100.8")
                moment += timedelta(seconds=seconds * rng.uniform(0.9, 1.1))
            traffic.lookup(actor, moment, number, "pairs-k", "198.51.100.8")
            moment += timedelta(seconds=seconds * rng.uniform(0.9, 1.1))
            if directory.listed(number):
                found.append(number)
        return [actor]

    return build


def unequal_turns(minutes: float, days: int) -> Callable[[Traffic, random.Random], list[Actor]]:
    """Three blocks at paces 3:1:1, a number every `minutes`: two "decoy" blocks each busy
    enough to share the attention, as a town's blocks do (all three count as targets)."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("unequal_turns", "turns", scraper=True)
        starts = _blocks(traffic.directory, rng, 3)
        actor.target_blocks, actor.scrape_from = tuple(starts), START
        walks = [_walk(start, rng) for start in starts]
        moment = START
        for turn in range(10_000):
            if moment > START + timedelta(days=days):
                break
            walk = walks[(0, 0, 0, 1, 2)[turn % 5]]
            traffic.lookup(actor, moment, walk.pop(), "turns-k", "198.51.100.10")
            moment += timedelta(minutes=minutes * rng.uniform(0.95, 1.05))
        return [actor]

    return build


def many_blocks(
    blocks: int, minutes: float, days: int
) -> Callable[[Traffic, random.Random], list[Actor]]:
    """One new number of each of `blocks` dense blocks every `minutes`, a quarter repeats."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("many_blocks", "wide", scraper=True)
        starts = _blocks(traffic.directory, rng, blocks)
        actor.target_blocks, actor.scrape_from = tuple(starts), START
        walks = [_walk(start, rng) for start in starts]
        step = timedelta(minutes=minutes) / blocks
        moment, turn = START, 0
        found: list[int] = []
        while moment < START + timedelta(days=days):
            if found and rng.random() < 0.25:
                number = rng.choice(found)
            else:
                number = walks[turn % blocks].pop()
                turn += 1
                if traffic.directory.listed(number):
                    found.append(number)
            traffic.lookup(actor, moment, number, "wide-k", "198.51.100.9")
            moment += step * rng.uniform(0.9, 1.1)
        return [actor]

    return build


def sybil(
    each: int, gap_seconds: float, aged_days: int = 0, decoys: int = 0
) -> Callable[[Traffic, random.Random], list[Actor]]:
    """A block split between accounts, `each` numbers apiece, each from its own address;
    each account opened (put to use) by a lookup of another block `aged_days` before the
    scan, or by its first there, and looking up `decoys` numbers of other blocks first."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        [start] = _blocks(traffic.directory, rng, 1)
        walk = _walk(start, rng)
        actors, moment = [], START
        for index in range(0, len(walk), each):
            actor = traffic.actor("sybil", f"sybil-{index // each}", scraper=True)
            actor.target_blocks, actor.scrape_from = (start,), START
            ip = f"10.{index // 65_000 % 250}.{index // 250 % 250}.{index % 250 + 1}"
            if aged_days:  # made long before is not enough: the account must have been used
                elsewhere = rng.choice(traffic.directory.fixed) * 1_000 + rng.randrange(1_000)
                opening = moment - timedelta(days=aged_days)
                traffic.lookup(actor, opening, elsewhere, f"{actor.account}-k", ip)
            for decoy in range(decoys, 0, -1):
                elsewhere = rng.choice(traffic.directory.fixed) * 1_000 + rng.randrange(1_000)
                traffic.lookup(
                    actor,
                    moment - timedelta(seconds=10 * decoy),
                    elsewhere,
                    f"{actor.account}-k",
                    ip,
                )
            for offset, number in enumerate(walk[index : index + each]):
                traffic.lookup(
                    actor,
                    moment + offset * timedelta(seconds=gap_seconds),
                    number,
                    f"{actor.account}-k",
                    ip,
                )
            moment += timedelta(seconds=gap_seconds * each)
            actors.append(actor)
        return actors

    return build


def by_name(
    every_seconds: float, short: int, per_day: int, hours: tuple[int, int], days: int
) -> Callable[[Traffic, random.Random], list[Actor]]:
    """A download by name search: a full page of 50 every `every_seconds` within `hours` of
    each day, `short` searches with a few answers (3-7) mixed in after each, until `per_day`
    listings (the search plan's day is 10,000, its hour 2,000)."""

    def build(traffic: Traffic, rng: random.Random) -> list[Actor]:
        actor = traffic.actor("by_name", "by-name", scraper=True)
        for day in range(days):
            moment = START + timedelta(days=day, hours=hours[0] - START.hour)
            end, taken = moment + timedelta(hours=hours[1] - hours[0]), 0
            while moment < end and taken + 50 <= per_day:
                traffic.search(
                    actor, moment, "by-name-k", "198.51.100.7", listings=50, full_page=True
                )
                taken += 50
                for _ in range(short):
                    found = rng.randint(3, 7)
                    traffic.search(
                        actor, moment, "by-name-k", "198.51.100.7", listings=found, full_page=False
                    )
                    taken += found
                moment += timedelta(seconds=every_seconds * rng.uniform(0.9, 1.1))
        actor.scrape_from = actor.events[0].ts
        return [actor]

    return build


STRATEGIES = {
    "one block, a number every 21 min, 7 days": paced(21, 7),
    "one block, a number every 45 min, 28 days": paced(45, 28),
    "one block, a number every 200 min, 7 days": paced(200, 7),
    "a new block every 20 numbers, a number every 200 min, 28 days": hopping(200, 20, 28),
    "a repeat and a decoy pair before each number, every 309 s, 14 days": decoy_pairs(309, 14),
    "three blocks at paces 3:1:1, a number every 45 min, 28 days": unequal_turns(45, 28),
    "300 dense blocks, one number of each every 185 min, 7 days": many_blocks(300, 185, 7),
    "accounts on their own addresses, 3 numbers each a minute apart": sybil(3, 60),
    "... each account opened by a lookup elsewhere 8 days before": sybil(3, 60, aged_days=8),
    "... each account looking up one number elsewhere first": sybil(3, 60, decoys=1),
    "by name, a full page every 90 s, day and night, 14 days": by_name(90, 0, 10_000, (0, 24), 14),
    "by name, 2 short answers after each page, every 100 s, 14 days": by_name(
        100, 2, 10_000, (0, 24), 14
    ),
    "by name, 4 short answers after each page, every 120 s, 14 days": by_name(
        120, 4, 10_000, (0, 24), 14
    ),
    "by name, 1,800 listings a day in full pages, 08-17, 28 days": by_name(
        600, 0, 1_800, (8, 17), 28
    ),
}


def main() -> None:
    """Run each strategy and print what it got."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    directory = Directory(args.seed)
    print(
        f"{'strategy':<68} {'lookups':>8} {'to flag':>8} {'to stop':>8} {'max':>7} {'mean':>7}"
        "  findings"
    )
    for name, build in STRATEGIES.items():
        traffic = Traffic(directory, random.Random(args.seed))
        actors = build(traffic, traffic.rng)
        results, _ = run(actors)
        events = sum(len(actor.events) for actor in actors)
        first = _lookups_until(actors, results, lambda result: result.stopped_after)
        flag = _lookups_until(actors, results, lambda result: result.flagged_after)
        stopped = sum(r.stopped_after is not None for r in results.values())
        got = {int(number[3:]) for r in results.values() for number in r.extracted}
        shares = [
            100 * sum(start <= n < start + 1_000 for n in got) / directory.listings_in_block(start)
            for start in actors[0].target_blocks
        ]
        # A download by name targets no block: what it got is the listings searches returned.
        taken = (
            f"{max(shares):>6.1f}% {statistics.mean(shares):>6.1f}%"
            if shares
            else f"{sum(r.searched for r in results.values()):>15,}"
        )
        kinds = Counter(f"{f.kind}/{f.action}" for r in results.values() for f in r.findings)
        said = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"
        accounts = f"{stopped} of {len(actors)} accounts stopped, " if len(actors) > 1 else ""
        print(
            f"{name:<68} {events:>8,} {flag if flag is not None else 'never':>8} "
            f"{first if first is not None else 'never':>8} "
            f"{taken}  {accounts}{said}"
        )


def _lookups_until(
    actors: list[Actor],
    results: dict[str, AccountResult],
    seen: Callable[[AccountResult], int | None],
) -> int | None:
    """The strategy's lookups, all its accounts' in time order, until the first of them was
    stopped or flagged (`seen`: the events of an account until then). A finding can name
    an account at another's lookup (a block split between accounts): it counts from that
    lookup, the finding's time."""
    moments = []
    for actor in actors:
        result = results[actor.account]
        after = seen(result)
        if after is None:
            continue
        moment = actor.events[after - 1].ts
        # The first finding from the account's own last lookup on: the one that acted.
        moments.append(min((f.ts for f in result.findings if f.ts >= moment), default=moment))
    if not moments:
        return None
    return sum(event.ts <= min(moments) for actor in actors for event in actor.events)


if __name__ == "__main__":
    main()
