"""Name search latency on the 1M-listing snapshot (in process, no HTTP).

Queries (fixed seed), 300 of each kind, drawn from the snapshot's own names:
  full      a listed person's first and last name, as written
  typo      the same with two neighbouring letters of the surname swapped
  nearword  the first name and a surname one letter off that is itself a listed surname
            ("Tor Hauge" for Tor Haugen: the case a vocabulary-only match missed)
  surname   a surname alone (thousands of rows each)
  city      a surname alone, limited to the listing's city
and, last, the surnames searched by an account with two held blocks, beside the same without.
Prints the index build time and, per kind, the median and 99th percentile in ms, and how
often the listing the query was drawn from was among the (at most 50) results.

Run from the repo root:  .venv/bin/python bench/search_latency.py
(builds the 1M set once, see bench/dataset.py). To compare with another commit, run it
side by side with `PYTHONPATH=<worktree of that commit>`.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from dataset import ensure_dataset  # noqa: E402

from lookup.config import load_settings  # noqa: E402
from lookup.index.reader import SnapshotSource  # noqa: E402

PER_KIND = 300


def _rows(found: Any) -> list[int]:
    # Before 2026-12-01 `search` returned the hits themselves.
    hits = found.hits if hasattr(found, "hits") else found
    return [hit.row for hit in hits]


def main() -> int:
    """Print build time and per-kind latency figures."""
    settings = load_settings(data_dir=str(ensure_dataset(quiet=True)))
    source = SnapshotSource(settings.snapshots_path, settings.data_path)
    started = time.perf_counter()
    source.refresh()  # opens the snapshot and builds its name index before serving it
    snapshot = source.current
    index = snapshot.names
    took = time.perf_counter() - started
    print(f"snapshot open + index build: {took:.2f} s, {len(index):,} listings")
    table = snapshot.table()
    columns = [table[c].to_pylist() for c in ("kind", "first_name", "last_name", "city")]
    people = [
        (row, first, last, city)
        for row, (kind, first, last, city) in enumerate(zip(*columns, strict=True))
        if kind == "person" and first and last and len(last) >= 4
    ]
    surnames = {last.lower() for _, _, last, _ in people}
    rng = random.Random(7)
    sample = rng.sample(people, 20 * PER_KIND)
    queries: dict[str, list[tuple[str, str | None, int]]] = {
        kind: [] for kind in ("full", "typo", "nearword", "surname", "city")
    }
    for row, first, last, city in sample:
        queries["full"].append((f"{first} {last}", None, row))
        swapped = last[:-2] + last[-1] + last[-2]
        queries["typo"].append((f"{first} {swapped}", None, row))
        near = [
            w for w in (last.lower()[:-1], last.lower() + "e", last.lower() + "n") if w in surnames
        ]
        if near:
            queries["nearword"].append((f"{first} {near[0]}", None, row))
        queries["surname"].append((last, None, row))
        queries["city"].append((last, city, row))
    print(f"{'kind':<9} {'median ms':>9} {'p99 ms':>8} {'found':>6}")
    for kind, items in queries.items():
        times, found = [], 0
        for query, city, row in items[:PER_KIND]:
            started = time.perf_counter()
            result = index.search(query, city=city, limit=50)
            times.append((time.perf_counter() - started) * 1000)
            found += row in _rows(result)
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        share = found / len(times)
        print(f"{kind:<9} {statistics.median(times):9.2f} {p99:8.2f} {share:6.0%}")
    _held(snapshot, [query for query, _, _ in queries["surname"][:PER_KIND]])
    return 0


def _held(snapshot: Any, surnames: list[str]) -> None:
    """Surnames searched by an account with two held blocks (the most it can have), holding
    the blocks of each surname's first two results, against the same without holds."""
    if not hasattr(snapshot, "number"):  # before 2026-12-03 search knew no holds
        return
    from lookup.abuse.holds import Hold, held  # noqa: PLC0415 (as the commit may lack it)

    index = snapshot.names
    plain, skipping, withheld = [], [], []
    for surname in surnames:
        first = index.search(surname, limit=50).hits[:2]
        holds = {Hold.of(int(snapshot.number(hit.row))) for hit in first}

        def in_held_block(row: int, holds: set[Hold] = holds) -> bool:
            return held(holds, int(snapshot.number(row))) is not None

        started = time.perf_counter()
        index.search(surname, limit=50)
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        found = index.search(surname, limit=50, skip=in_held_block)
        skipping.append((time.perf_counter() - started) * 1000)
        withheld.append(found.withheld)
    print(
        f"surname searched with two held blocks: median {statistics.median(skipping):.2f} ms "
        f"against {statistics.median(plain):.2f} ms without, "
        f"{statistics.median(withheld):.0f} results withheld (median)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
