"""The detectors' cost per event under many busy accounts whose lookups are mostly new.

The harness's month is mostly repeats; this is the other extreme the monitor
must keep up with: ACCOUNTS CRM-like accounts over DAYS days, 70 % of lookups
from each account's base of 3,000 mobile numbers, 30 % anywhere in the mobile
plan, 30 % misses. Every account then keeps thousands of blocks within the
7-day window. Prints µs per event for each quarter of the run (it must not grow
with the state) and the process's peak memory.

`--walk`: the other extreme a replay meets, one account walking a range number by
number, one every two seconds (a recorded scan replayed whole, after the live
service would have suspended it): its run and blocks grow to the whole walk.

Each round runs a fresh engine over the same events (`--rounds`, default 3); prints the
median of each quarter, and how far the rounds spread (max/min).

`--collector monitor` (default) tunes the cycle collector as a monitor process does
(`lookup.abuse.state.tune_collector`); `--collector default` leaves Python's thresholds,
to see what that saves. The collector's share of each round is printed (its time per event,
from `gc.callbacks`).

Run from the repo root:  .venv/bin/python bench/detector_load.py [--events 400000]
                         .venv/bin/python bench/detector_load.py --walk --events 40000
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import time
from datetime import datetime, timedelta

from lookup.abuse.detectors import Engine
from lookup.abuse.events import LookupEvent
from lookup.abuse.state import tune_collector


def traffic(events: int, accounts: int, days: int, seed: int) -> list[LookupEvent]:
    """The events, in time order."""
    rng = random.Random(seed)
    names = [f"crm{i:03d}" for i in range(accounts)]

    def mobile() -> int:
        return rng.choice((4, 9)) * 10_000_000 + rng.randrange(10_000_000)

    bases = {name: [mobile() for _ in range(3000)] for name in names}
    addresses = {name: f"10.{i % 250}.0.1" for i, name in enumerate(names)}
    start, step = datetime(2026, 3, 1), timedelta(seconds=days * 86400 / events)
    out = []
    for i in range(events):
        name = names[rng.randrange(accounts)]
        number = rng.choice(bases[name]) if rng.random() < 0.7 else mobile()
        out.append(
            LookupEvent(
                ts=start + step * i,
                account=name,
                key=f"k-{name}",
                ip=addresses[name],
                number=f"+47{number}",
                outcome="hit" if rng.random() < 0.7 else "miss",
            )
        )
    return out


def walk(events: int) -> list[LookupEvent]:
    """One account's sequential walk from +4721000000, a third of it misses."""
    start = datetime(2026, 3, 2, 9)
    return [
        LookupEvent(
            ts=start + timedelta(seconds=2 * i),
            account="scraper",
            key="k-scraper",
            ip="10.0.0.1",
            number=f"+47{21_000_000 + i}",
            outcome="miss" if i % 3 == 0 else "hit",
        )
        for i in range(events)
    ]


def main() -> None:
    """Time the engine over the traffic, by quarter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--walk", action="store_true", help="one account's sequential walk")
    parser.add_argument(
        "--rounds", type=int, default=3, help="fresh engines over the same events (medians)"
    )
    parser.add_argument(
        "--collector",
        choices=("monitor", "default"),
        default="monitor",
        help="the cycle collector's thresholds: a monitor process's, or Python's default",
    )
    args = parser.parse_args()
    if args.collector == "monitor":
        tune_collector()
    collecting = _CollectorTime()
    gc.callbacks.append(collecting.note)
    if args.walk:
        events = walk(args.events)
        what = "one account's walk"
    else:
        events = traffic(args.events, args.accounts, args.days, args.seed)
        what = f"{args.accounts} accounts, {args.days} days"
    rounds = [_by_quarter(events) for _ in range(max(1, args.rounds))]
    collected = collecting.seconds / (len(events) // 4 * 4 * len(rounds)) * 1e6
    findings = rounds[0][1]
    medians = [statistics.median(r[0][part] for r in rounds) for part in range(4)]
    spread = [
        max(r[0][part] for r in rounds) / min(r[0][part] for r in rounds) for part in range(4)
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(events):,} events, {what}, median of {len(rounds)} round(s): "
        + " / ".join(f"{f:.1f}" for f in medians)
        + " µs per event by quarter (max/min across rounds "
        + " / ".join(f"{x:.2f}" for x in spread)
        + f"); {findings} findings; peak memory {peak:,.0f} MB; cycle collector"
        + f" ({args.collector} thresholds {gc.get_threshold()}) {collected:.1f} µs per event,"
        + f" {collecting.full} full passes"
    )


class _CollectorTime:
    """Time the cycle collector spends, from its callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2


def _by_quarter(events: list[LookupEvent]) -> tuple[list[float], int]:
    """µs per event in each quarter of the events, through a fresh engine; its findings."""
    engine, quarter = Engine(), len(events) // 4
    findings, figures = 0, []
    for part in range(4):
        started = time.perf_counter()
        for event in events[part * quarter : (part + 1) * quarter]:
            findings += len(engine.observe(event))
        figures.append((time.perf_counter() - started) / quarter * 1e6)
    del engine
    # An engine is a cycle (its address rule calls back into it): freed by a full pass only,
    # which the monitor's thresholds make rare, it would stay beside the next round's.
    gc.collect()
    return figures, findings


if __name__ == "__main__":
    main()
