"""How scans that take turns between several blocks fare: the limit of the block rules.

A scan working k blocks at once gives each 1/k of its attention. One or two are
block scans to the block rules; three to 16 are when nothing else comes between
them for 60 lookups (three or four, within minutes, for 16 or 21); behind decoys,
or over more blocks, they look like a local business's first refresh from its
town's blocks, and are left to the miss and velocity rules and the ceiling. Per
k, with and without a decoy from anywhere before each number: scans suspended,
median lookups to suspension, and the largest share of a targeted block's
listings taken, by block size.

Run from the repo root:  .venv/bin/python bench/block_turns.py [--months 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
from concurrent.futures import ProcessPoolExecutor

from lookup.abuse.evaluate import block_share, run
from lookup.abuse.simulate import Directory, Traffic, scraper


def month(args: tuple[int, int, int]) -> tuple[int | None, float, int]:
    """One scan of `blocks` blocks: lookups to suspension, share taken, block size."""
    seed, blocks, decoys = args
    directory = Directory(seed)
    traffic = Traffic(directory, random.Random(seed))
    actors = scraper(
        traffic,
        "turns",
        "scr-turns",
        order="shuffled",
        rate_seconds=1,
        blocks=blocks,
        decoys=decoys,
    )
    results, _ = run(actors)
    result = results["scr-turns"]
    share = block_share([result], directory)
    assert share is not None
    return result.suspended_after, share[0], share[1]


def main() -> None:
    """Print a line per number of blocks, decoys and block size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--months", type=int, default=40)
    args = parser.parse_args()
    print(
        f"{'blocks':>6} {'decoys':>6} {'size':>6} {'scans':>5} {'suspended':>9} "
        f"{'median lookups':>14} {'max share':>9} {'over 1 %':>8}"
    )
    with ProcessPoolExecutor() as pool:
        for blocks in (1, 2, 3, 4, 5):
            for decoys in (0, 1):
                runs = list(
                    pool.map(month, [(seed, blocks, decoys) for seed in range(args.months)])
                )
                for size in (1_000, 10_000):
                    mine = [r for r in runs if r[2] == size]
                    if not mine:
                        continue
                    after = [a for a, _, _ in mine if a is not None]
                    median = f"{statistics.median(after):.0f}" if after else "-"
                    print(
                        f"{blocks:>6} {decoys:>6} {size:>6} {len(mine):>5} "
                        f"{len(after):>9} {median:>14} {max(s for _, s, _ in mine):>9.2%} "
                        f"{sum(s >= 0.01 for _, s, _ in mine):>8}"
                    )


if __name__ == "__main__":
    main()
