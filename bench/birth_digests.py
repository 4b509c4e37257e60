"""What keeping dates of birth as keyed digests costs a publish: `birthdates.digests`
over a million listings, nine in ten with a date of birth (fixed seed), three runs.

Run from the repo root:  .venv/bin/python bench/birth_digests.py
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import date, timedelta

import pyarrow as pa

from lookup.index import birthdates

LISTINGS = 1_000_000


def main() -> None:
    """Print the seconds each run took and their median."""
    rng = random.Random(1)
    numbers = pa.array([f"{40_000_000 + i:08d}" for i in range(LISTINGS)])
    births = pa.array(
        [
            None if rng.random() < 0.1 else date(1930, 1, 1) + timedelta(days=rng.randrange(28_000))
            for _ in range(LISTINGS)
        ],
        pa.date32(),
    )
    key = bytes(range(birthdates.KEY_BYTES))
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        birthdates.digests(key, numbers, births)
        runs.append(time.perf_counter() - started)
    print(
        f"birthdates.digests over {LISTINGS:,} listings: "
        f"{', '.join(f'{r:.2f}' for r in runs)} s (median {statistics.median(runs):.2f} s)"
    )


if __name__ == "__main__":
    main()
