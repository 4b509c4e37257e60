"""Privacy over random nights of operator files: what only reserved rows said is never shown.

Each seed builds a few weeks of files from two or three operators about four subjects:
full files and deltas, old content sent again under a newer name, files of one second,
broken rows, files held for their rejects or their header, and `--force` now and then.
A name written only on reserved rows must never reach the snapshot or a rejected row's
kept text, and a subject only ever delivered as reserved must never be served.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lookup.index.reader import Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest.pipeline import ingest
from lookup.ingest.warehouse import Warehouse
from tests.conftest import make_settings
from tests.ingest_helpers import HEADER, filler, person, write_csv

SUBJECTS = ("22202400", "22202401", "22202402", "22202403")
FILLER = {"telenor": 40000000, "telia": 41000000, "ice": 45000000}
DATES = ("2026-09-01", "2026-10-15", "2026-11-01")
BROKEN = [person(f"2220ABC{i}") for i in range(5)]


def _subject_row(rng: random.Random, number: str, reservation: str, day: datetime) -> str:
    """A subject's row: a reserved one's name is `Secret…`, written on no other row."""
    first = f"Secret{number[-1]}" if reservation == "J" else f"Open{number[-1]}"
    dated = rng.choice([*DATES, day.date().isoformat(), "garbage"])  # garbage: a broken row
    postcode = "XY" if rng.random() < 0.1 else "0150"  # rejected for its postcode
    written = rng.choice([number, f"+47 {number}", f"0047{number}"])
    return person(written, first=first, reservert=reservation, gyldig_fra=dated, postnr=postcode)


def _night(
    rng: random.Random,
    folder: Path,
    operator: str,
    stamp: datetime,
    always_reserved: set[str],
    sent: list[tuple[str, list[str], str]],
) -> None:
    """One operator's file of the night (or an old one's content under a new name)."""
    if sent and rng.random() < 0.15:
        kind, rows, header = rng.choice(sent)
    else:
        kind = "delta" if rng.random() < 0.3 else "full"
        rows = []
        for number in SUBJECTS:
            if rng.random() < 0.3:
                continue  # left out: a full file drops it
            reservation = "J" if number in always_reserved else rng.choice("NAJ")
            row = _subject_row(rng, number, reservation, stamp)
            rows.append(row + (";" + rng.choice("UUD") if kind == "delta" else ""))
        padding = filler(20, FILLER[operator])
        rows += [row + ";U" for row in padding] if kind == "delta" else padding
        if rng.random() < 0.1:
            rows += [row + (";U" if kind == "delta" else "") for row in BROKEN]  # held back
        header = HEADER + (";action" if kind == "delta" else "")
        if rng.random() < 0.08:
            header = header.replace("gyldig_fra", "gyldig_fro")  # held for its header
        sent.append((kind, rows, header))
    write_csv(folder, f"{operator}_{kind}_{stamp:%Y%m%dT%H%M%S}.csv", rows, header=header)


@pytest.mark.parametrize("seed", range(8))
def test_what_only_reserved_rows_said_is_never_served_nor_kept(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    settings = make_settings(tmp_path / "var")
    operators = rng.sample(sorted(FILLER), rng.choice([2, 3]))
    always_reserved = {number for number in SUBJECTS if rng.random() < 0.35}
    stamps = {operator: datetime(2026, 11, 1, 2) for operator in operators}
    sent: dict[str, list[tuple[str, list[str], str]]] = {operator: [] for operator in operators}
    for night in range(8):
        folder = tmp_path / f"night{night}"
        for operator in operators:
            if rng.random() < 0.2:
                continue
            if rng.random() > 0.1:  # else a second file of the same second
                stamps[operator] += timedelta(days=1, seconds=rng.randrange(3600))
            _night(rng, folder, operator, stamps[operator], always_reserved, sent[operator])
        if not folder.exists():
            continue
        report = ingest([folder], settings, force=rng.random() < 0.1)
        for file in report.files:
            assert not (file.batch.detail or "").startswith("unexpected error"), file.batch
        pointer = read_pointer(settings.snapshots_path)
        if pointer is None:
            continue
        snapshot = Snapshot(snapshot_path(settings.snapshots_path, pointer))
        for number in SUBJECTS:
            listing = snapshot.find(number)
            assert listing is None or number not in always_reserved, (night, number)
            assert listing is None or not (listing.first_name or "").startswith("Secret")
        with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
            kept = warehouse.query("SELECT raw FROM rejects WHERE raw LIKE '%Secret%'")
        assert kept == [], (night, kept)
