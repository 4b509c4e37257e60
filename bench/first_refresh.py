"""How often a local business is suspended (or has a block held) in its first month, by how
many town blocks hold its customers: the limit of what the block rules can tell from a scan.

Each simulated business has 80 % of its customers in its town's geographic blocks, takes
calls on working days and refreshes its whole list weekly (the first refresh on its first
night, before anything else). The standard scenario of `make eval-abuse` has businesses
of 3 blocks (no refresh), 6 and 12; this varies the crowding.

Run from the repo root:  .venv/bin/python bench/first_refresh.py [--months 200]
"""

from __future__ import annotations

import argparse
import random
from concurrent.futures import ProcessPoolExecutor

from lookup.abuse.evaluate import run
from lookup.abuse.simulate import START, Directory, Traffic, crm

DIRECTORY = Directory(1)
SHAPES = [(1, 400), (2, 400), (3, 400), (3, 1500), (4, 800), (6, 1500)]
"""(town blocks, customers)."""


def month(args: tuple[int, int, int]) -> tuple[bool, bool, bool, bool]:
    """One business's month: suspended, a block held, flagged, and whether the suspension
    came on day 1."""
    seed, blocks, customers = args
    traffic = Traffic(DIRECTORY, random.Random(seed))
    actor = crm(
        traffic,
        "business",
        customers=customers,
        calls_per_day=customers // 12,
        town_blocks=blocks,
        town_share=0.8,
        refresh="weekly",
        persona="local_business",
    )
    result = run([actor])[0]["business"]
    suspensions = [f for f in result.findings if f.action == "suspend"]
    early = bool(suspensions) and suspensions[0].ts.date() == START.date()
    return result.suspended_after is not None, result.held_after is not None, result.flagged, early


def main() -> None:
    """Print, per shape, suspended, held and flagged months."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--months", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{'town blocks':>11} {'customers':>9} {'suspended':>10} {'on day 1':>9} "
        f"{'held':>6} {'flagged':>8}"
    )
    with ProcessPoolExecutor() as pool:
        for blocks, customers in SHAPES:
            months = list(pool.map(month, [(s, blocks, customers) for s in range(args.months)]))
            suspended, held, flagged, early = (sum(column) for column in zip(*months, strict=True))
            print(
                f"{blocks:>11} {customers:>9} {suspended / len(months):>10.1%} {early:>9} "
                f"{held / len(months):>6.1%} {flagged / len(months):>8.1%}"
            )


if __name__ == "__main__":
    main()
