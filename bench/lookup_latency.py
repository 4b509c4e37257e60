"""In-process lookup latency on the 1M-listing snapshot (no HTTP, no framework).

Measures, per call with `time.perf_counter_ns`, on 100,000 inputs (fixed seed: 70 % numbers
listed in the snapshot, 30 % random valid mobile/fixed numbers that miss; 80 % written as
8 plain digits, 20 % as "+47 xx xx xx xx"), each after a 10,000-call warm-up:

  (a) the full in-process lookup: `normalize` + `Snapshot.find` + `to_response` +
      `msgspec.json.encode` (a miss takes the handler's `not_found` instead);
  (b) the binary search alone: `Snapshot.find` on a miss, and bare `np.searchsorted`;
  (c) baseline normalizer: `phonenumbers.parse` + `is_valid_number` + `number_type`;
  (d) `lookup.numbers.normalize` alone;
plus a breakdown of a hit (find, to_response, encode), the snapshot open time and RSS.

Run from the repo root:  .venv/bin/python bench/lookup_latency.py   (builds the 1M set once,
see bench/dataset.py; the first run takes a few minutes).
"""

from __future__ import annotations

import gc
import platform
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import phonenumbers
from dataset import ensure_dataset, sample_numbers

from lookup.api.numbers import not_found, to_response
from lookup.config import load_settings
from lookup.index.reader import Listing, Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.numbers import normalize, to_key

SAMPLES = 100_000
WARMUP = 10_000
WRITTEN_SHARE = 0.20
SEED = 20_251_122


def rss_mib() -> float:
    """Current resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def written(national: str) -> str:
    """The "+47 xx xx xx xx" form."""
    pairs = " ".join(national[i : i + 2] for i in range(0, len(national), 2))
    return f"+47 {pairs}"


def percentiles(ns: np.ndarray[Any, Any]) -> tuple[float, float, float, float]:
    """Median, p90, p99 and mean of nanosecond samples, in microseconds."""
    p50, p90, p99 = np.percentile(ns, [50, 90, 99]) / 1000
    return float(p50), float(p90), float(p99), float(ns.mean() / 1000)


def measure(fn: Callable[[str], object], inputs: Sequence[str]) -> np.ndarray[Any, Any]:
    """Time `fn` per input after a warm-up; returns nanoseconds per call."""
    for raw in inputs[:WARMUP]:
        fn(raw)
    out = np.empty(len(inputs), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, raw in enumerate(inputs):
        start = clock()
        fn(raw)
        out[i] = clock() - start
    return out


def main() -> int:
    """Build/reuse the dataset, open the snapshot, time each path and print a table."""
    data_dir = ensure_dataset()
    settings = load_settings(data_dir=str(data_dir))
    pointer = read_pointer(settings.snapshots_path)
    if pointer is None:
        raise SystemExit(f"no snapshot published in {data_dir}")
    path = snapshot_path(settings.snapshots_path, pointer)

    rss_before = rss_mib()
    started = time.perf_counter_ns()
    snapshot = Snapshot(path)
    open_ms = (time.perf_counter_ns() - started) / 1e6
    rss_open = rss_mib()

    listed = snapshot.table().column("number").to_pylist()
    picks = sample_numbers(listed, SAMPLES, seed=SEED)
    form_rng = random.Random(SEED + 1)
    inputs = [written(n) if form_rng.random() < WRITTEN_SHARE else n for n, _ in picks]
    hits = [raw for raw, (_, hit) in zip(inputs, picks, strict=True) if hit]
    misses = [raw for raw, (_, hit) in zip(inputs, picks, strict=True) if not hit]
    miss_nationals = [n for n, hit in picks if not hit]
    hit_nationals = [n for n, hit in picks if hit]
    keys = snapshot.table().column("key").chunk(0).to_numpy(zero_copy_only=True)
    name = snapshot.name
    encode = msgspec.json.encode

    def full_path(raw: str) -> object:
        national = normalize(raw)
        listing = snapshot.find(national)
        if listing is None:
            return not_found(national)  # the handler's miss path: problem body + Response
        return encode(to_response(listing, name))

    def baseline(raw: str) -> object:
        parsed = phonenumbers.parse(raw, "NO")
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError(raw)
        return phonenumbers.number_type(parsed)

    def searchsorted(national: str) -> int:
        return int(np.searchsorted(keys, to_key(national)))

    found = [snapshot.find(n) for n in hit_nationals]
    listings: list[Listing] = [x for x in found if x is not None]
    assert len(listings) == len(hit_nationals), "a sampled hit is missing from the snapshot"
    bodies = [to_response(x, name) for x in listings]
    sample_body = bodies[0]

    # (label, function, inputs): rows of the table, in print order.
    rows: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("(a) full lookup, all inputs", full_path, inputs),
        ("(a)   hits only (200 body)", full_path, hits),
        ("(a)   misses only (404 body)", full_path, misses),
        ("(b) Snapshot.find on a miss", snapshot.find, miss_nationals),
        ("(b) np.searchsorted + to_key", searchsorted, miss_nationals),
        ("(c) phonenumbers parse+valid+type", baseline, inputs),
        ("(d) normalize, all inputs", normalize, inputs),
        ("(d)   8 plain digits", normalize, [r for r in inputs if "+" not in r]),
        ("(d)   '+47 xx xx xx xx'", normalize, [r for r in inputs if "+" in r]),
        ("hit: Snapshot.find (incl. Listing)", snapshot.find, hit_nationals),
        ("hit: to_response", lambda x: to_response(x, name), listings),
        ("hit: msgspec.json.encode", encode, bodies),
        ("timer overhead (empty call)", lambda _: None, inputs),
    ]

    gc.collect()
    gc.freeze()  # setup garbage stays out of the measured collections
    results = []
    for label, fn, args in rows:
        ns = measure(fn, args)
        results.append((label, len(args), *percentiles(ns)))

    print()
    print(
        f"lookup latency, in process: {snapshot.size:,} listings, snapshot {name}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"phonenumbers {phonenumbers.__version__}"
    )
    print(
        f"inputs: {SAMPLES:,} (seed {SEED}): {len(hits):,} hits / {len(misses):,} misses, "
        f"{sum('+' in r for r in inputs):,} written '+47 xx xx xx xx'; "
        f"warm-up {WARMUP:,} calls per row; one call timed per sample"
    )
    print(
        f"snapshot open: {open_ms:.1f} ms ({path.stat().st_size / 2**20:.0f} MiB file, mmap); "
        f"RSS {rss_before:.0f} MiB before open, {rss_open:.0f} MiB after open, "
        f"{rss_mib():.0f} MiB after the runs (peak {peak_rss_mib():.0f} MiB; includes the "
        f"bench's own lists of {len(listed):,} numbers and {SAMPLES:,} inputs)"
    )
    print(
        f"sample 200 body: {len(encode(sample_body))} bytes; snapshot pages of every sampled "
        "row are touched during setup, so figures are for a warm page cache"
    )
    print()
    header = f"{'measurement':<36} {'n':>7} {'median':>8} {'p90':>8} {'p99':>8} {'mean':>8}"
    print(header + "   (µs)")
    print("-" * len(header))
    for label, n, p50, p90, p99, mean in results:
        print(f"{label:<36} {n:>7,} {p50:>8.2f} {p90:>8.2f} {p99:>8.2f} {mean:>8.2f}")
    print()
    print(
        "(each figure includes one perf_counter_ns pair and a Python call; see the "
        "timer-overhead row)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
