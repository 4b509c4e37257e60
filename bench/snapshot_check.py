"""What checking a snapshot when a server maps it costs: `Table.validate(full=True)` over
a snapshot-shaped table of a million listings (names, addresses, keys), three runs.

Run from the repo root:  .venv/bin/python bench/snapshot_check.py
"""

from __future__ import annotations

import statistics
import time

import pyarrow as pa

from lookup.index.snapshot import SCHEMA, TEXT_COLUMNS

LISTINGS = 1_000_000


def main() -> None:
    """Print the seconds each run took and their median."""
    columns: dict[str, pa.Array] = {"key": pa.array(range(LISTINGS), pa.int64())}
    for name in TEXT_COLUMNS:
        columns[name] = pa.array([f"{name}-{i % 9973}" for i in range(LISTINGS)])
    columns["marketing_reserved"] = pa.array([i % 2 == 0 for i in range(LISTINGS)])
    columns["birth_check"] = pa.array(range(LISTINGS), pa.int64())
    columns["valid_from"] = pa.array([0] * LISTINGS, pa.timestamp("us"))
    table = pa.table(columns, schema=SCHEMA)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        table.validate(full=True)
        runs.append(time.perf_counter() - started)
    print(
        f"validate(full=True) over {LISTINGS:,} listings: "
        f"{', '.join(f'{r * 1000:.0f}' for r in runs)} ms "
        f"(median {statistics.median(runs) * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
