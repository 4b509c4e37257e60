"""The 1,000,000-listing benchmark data dir, built once and cached under `bench/out/`.

Measures (on a fresh build): fixture generation time, ingest time, ingest rows/s and the
peak RSS of each phase (each phase runs in its own spawned process, so `ru_maxrss` is
that phase's alone). A cached build reprints the figures recorded when it was built.

Run from the repo root:  .venv/bin/python bench/dataset.py [--rebuild]
                         [--numbers FILE [--count N]]  (also write N lookup numbers, 70 % hits)
Import:                  from dataset import ensure_dataset  (bench/ on sys.path)

Layout: bench/out/files-1m (operator files + manifest.json), bench/out/var-1m (data dir:
warehouse, snapshots/CURRENT, keys), bench/out/dataset-1m.json (build figures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
FILES_DIR = OUT / "files-1m"
DATA_DIR = OUT / "var-1m"
FIGURES = OUT / "dataset-1m.json"
LISTINGS = 1_000_000
OPERATORS = 3
SEED = 42
HIT_SHARE = 0.70
NUMBERS_SEED = 7


def generator_digest() -> str:
    """Digest of the fixture generator's source, to tell when a cached build is stale."""
    import lookup.fixtures  # noqa: PLC0415

    folder = Path(lookup.fixtures.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(folder.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _peak_rss_mib() -> float:
    """This process's peak RSS (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate_phase(out: str) -> dict[str, Any]:
    from lookup.fixtures.generator import generate  # noqa: PLC0415 (runs in the child)

    started = time.perf_counter()
    summary = generate(LISTINGS, OPERATORS, SEED, Path(out))
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": _peak_rss_mib(),
        "files": list(summary.files),
        "rows": summary.rows,
        "rejects": summary.rejects,
    }


def _ingest_phase(files: str, data_dir: str) -> dict[str, Any]:
    from lookup.config import load_settings  # noqa: PLC0415 (runs in the child)
    from lookup.ingest.pipeline import ingest  # noqa: PLC0415

    settings = load_settings(data_dir=data_dir)
    started = time.perf_counter()
    report = ingest([Path(files)], settings)
    seconds = time.perf_counter() - started
    failed = [
        f"{f.batch.file}: {f.batch.status} {f.batch.reason}"
        for f in report.files
        if f.batch.status not in ("applied", "duplicate")
    ]
    if failed or report.published is None:
        raise RuntimeError(f"ingest did not publish cleanly: {failed or 'nothing published'}")
    return {
        "seconds": seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "listings": report.published.listings,
        "snapshot": report.published.snapshot,
        "row_rejects": sum(len(f.rejects) for f in report.files),
    }


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, so its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result: dict[str, Any] = pool.submit(fn, *args).result()
    return result


def is_built() -> bool:
    """Whether a published snapshot exists in the cached data dir."""
    return (DATA_DIR / "snapshots" / "CURRENT").exists()


def build() -> dict[str, Any]:
    """Generate the operator files and ingest them into a fresh data dir."""
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"generating {LISTINGS:,} listings, {OPERATORS} operators, seed {SEED} ...", flush=True)
    generated = _in_child(_generate_phase, str(FILES_DIR))
    print(f"ingesting {generated['rows']:,} rows into {DATA_DIR} ...", flush=True)
    ingested = _in_child(_ingest_phase, str(FILES_DIR), str(DATA_DIR))
    files_bytes = sum((FILES_DIR / name).stat().st_size for name in generated["files"])
    figures = {
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "generator": generator_digest(),
        "generate": generated,
        "ingest": ingested,
        "files_mib": files_bytes / 2**20,
    }
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    return figures


def report(figures: dict[str, Any], *, cached: bool) -> str:
    """The build figures as a few lines."""
    gen, ing = figures["generate"], figures["ingest"]
    rows = gen["rows"]
    how = f"cached, built {figures['built_at']}" if cached else "built now"
    return "\n".join(
        [
            f"dataset: {DATA_DIR.relative_to(BENCH.parent)} ({how})",
            f"  generate: {gen['seconds']:8.1f} s   {rows:,} rows in {len(gen['files'])} files "
            f"({figures['files_mib']:.0f} MiB, {gen['rejects']:,} planned rejects)   "
            f"peak RSS {gen['peak_rss_mib']:,.0f} MiB",
            f"  ingest:   {ing['seconds']:8.1f} s   {rows / ing['seconds']:,.0f} rows/s   "
            f"-> {ing['listings']:,} listable numbers in snapshot {ing['snapshot']}   "
            f"peak RSS {ing['peak_rss_mib']:,.0f} MiB",
        ]
    )


def ensure_dataset(*, rebuild: bool = False, quiet: bool = False) -> Path:
    """The data dir of the 1M set, built if missing; prints its build figures."""
    cached = is_built() and not rebuild
    if cached:
        try:
            figures = json.loads(FIGURES.read_text("utf-8"))
        except (OSError, ValueError):
            figures = None
    else:
        figures = build()
    if not quiet:
        if figures is None:
            print(f"dataset: {DATA_DIR} (cached; build figures not recorded)")
        else:
            print(report(figures, cached=cached))
            if cached and figures.get("generator") != generator_digest():
                print(
                    "  note: lookup/fixtures changed since this build; "
                    "`.venv/bin/python bench/dataset.py --rebuild` to rebuild"
                )
    return DATA_DIR


def random_miss(rng: random.Random, listed: set[str]) -> str:
    """A valid-looking Norwegian mobile or fixed-line number that is not in the snapshot."""
    from lookup.numbers import InvalidNumber, normalize  # noqa: PLC0415 (keeps import light)

    while True:
        first = rng.choice("49" if rng.random() < 0.6 else "23567")
        number = first + "".join(rng.choices("0123456789", k=7))
        if number in listed:
            continue
        try:
            normalize(number)
        except InvalidNumber:
            continue
        return number


def sample_numbers(
    listed: Sequence[str], count: int, *, seed: int, hit_share: float = HIT_SHARE
) -> list[tuple[str, bool]]:
    """`count` national numbers with whether each is listed: hits drawn from `listed`."""
    rng = random.Random(seed)
    listed_set = set(listed)
    return [
        (rng.choice(listed), True)
        if rng.random() < hit_share
        else (random_miss(rng, listed_set), False)
        for _ in range(count)
    ]


def listed_numbers(data_dir: Path = DATA_DIR) -> list[str]:
    """Every national number in the published snapshot, in key order."""
    from lookup.config import load_settings  # noqa: PLC0415
    from lookup.index.reader import Snapshot  # noqa: PLC0415
    from lookup.index.snapshot import read_pointer, snapshot_path  # noqa: PLC0415

    folder = load_settings(data_dir=str(data_dir)).snapshots_path
    pointer = read_pointer(folder)
    if pointer is None:
        raise RuntimeError(f"no snapshot published in {data_dir}")
    numbers: list[str] = Snapshot(snapshot_path(folder, pointer)).table()["number"].to_pylist()
    return numbers


def write_numbers(out: Path, count: int) -> tuple[int, int]:
    """Write `count` plain 8-digit numbers, one a line (70 % listed); returns hits, misses."""
    picks = sample_numbers(listed_numbers(), count, seed=NUMBERS_SEED)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{number}\n" for number, _ in picks), "ascii")
    hits = sum(hit for _, hit in picks)
    return hits, count - hits


def main() -> int:
    """Build (or reuse) the dataset and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument("--quiet", action="store_true", help="print nothing when cached")
    parser.add_argument("--numbers", type=Path, help="also write lookup numbers to this file")
    parser.add_argument("--count", type=int, default=10_000, help="how many (--numbers)")
    args = parser.parse_args()
    ensure_dataset(rebuild=args.rebuild, quiet=args.quiet and is_built())
    if args.numbers is not None:
        hits, misses = write_numbers(args.numbers, args.count)
        if not args.quiet:
            print(f"numbers: {args.numbers} ({hits:,} listed, {misses:,} not listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
