"""Build and publish snapshots: immutable Arrow IPC files of listable rows.

Publishing is crash-safe. The new file is written under a temporary name,
flushed to disk and renamed into place; only then is the `CURRENT` pointer
replaced, by the same write-flush-rename. A process killed at any moment
leaves either the old pointer or the new one, each naming a complete file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from lookup.errors import SnapshotUnavailable
from lookup.index import birthdates

POINTER: Final = "CURRENT"
PURGE: Final = "PURGE"
"""Marks a publish whose older snapshots must all go (they hold what a subscriber withdrew):
written before it, removed once they are gone, so a publish killed between switching
`CURRENT` and deleting them is finished by the next run."""
SUFFIX: Final = ".arrow"

TEXT_COLUMNS: Final = (
    "number",
    "number_type",
    "kind",
    "reservation",
    "first_name",
    "last_name",
    "business_name",
    "org_number",
    "street",
    "postcode",
    "city",
)
SCHEMA: Final = pa.schema(
    [
        ("key", pa.int64()),
        *((name, pa.string()) for name in TEXT_COLUMNS),
        ("marketing_reserved", pa.bool_()),
        ("birth_check", pa.int64()),
        ("valid_from", pa.timestamp("us")),
    ]
)


class Pointer(msgspec.Struct, frozen=True):
    """Contents of `CURRENT`: which snapshot is served and what it holds."""

    snapshot: str
    last_batch: int
    listings: int
    published_at: datetime
    birth_key: str = ""
    """Id of the key its dates of birth were digested with (none: written before
    snapshots kept digests, and published again at the next ingest)."""


def build_table(listable: pa.Table, birth_key: bytes) -> pa.Table:
    """Turn the warehouse's listable rows into the snapshot's columns, sorted by key.

    Text columns carry "" for absent values and dates of birth a keyed digest
    (`birthdates.NONE` without one), so the reader never consults validity
    bitmaps on the request path, and the file holds no date of birth.
    """
    keys = pc.cast(pc.binary_join_element_wise("47", listable["number"], ""), pa.int64())
    order = pc.sort_indices(keys)
    columns: dict[str, pa.ChunkedArray | pa.Array] = {"key": keys}
    for name in TEXT_COLUMNS:
        columns[name] = pc.fill_null(pc.cast(listable[name], pa.string()), "")
    columns["marketing_reserved"] = pc.fill_null(listable["marketing_reserved"], False)
    columns["birth_check"] = birthdates.digests(
        birth_key,
        listable["number"].combine_chunks(),
        pc.cast(listable["birth_date"], pa.date32()).combine_chunks(),
    )
    columns["valid_from"] = pc.cast(listable["valid_from"], pa.timestamp("us"))
    table = pa.table(columns, schema=SCHEMA).take(order)
    # One chunk, so the reader can view each column as a single flat buffer.
    return table.combine_chunks()


def _write_durably(path: Path, data: bytes | None = None, table: pa.Table | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as handle:
            if table is not None:
                with pa.ipc.new_file(handle, table.schema) as writer:
                    writer.write_table(table, max_chunksize=max(len(table), 1))
            elif data is not None:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        # A full disk stays full with a half-written snapshot on it.
        tmp.unlink(missing_ok=True)
        raise


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    table: pa.Table,
    folder: Path,
    *,
    last_batch: int,
    birth_key: str,
    keep: int,
    purge: bool = False,
) -> Pointer:
    """Write a snapshot and switch `CURRENT` to it atomically; with `purge`, delete every
    older snapshot, even if this run is killed before it can."""
    folder.mkdir(parents=True, exist_ok=True)
    if purge:
        _write_durably(folder / PURGE, data=b"")
        _sync_dir(folder)
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    name = f"{now:%Y%m%dT%H%M%SZ}-{last_batch:06d}"
    # A second publish of the same batch within a second gets its own name.
    serial = 0
    while (folder / (name + SUFFIX)).exists():
        serial += 1
        name = f"{now:%Y%m%dT%H%M%SZ}-{last_batch:06d}.{serial}"
    metadata = {
        b"snapshot": name.encode(),
        b"last_batch": str(last_batch).encode(),
        b"birth_key": birth_key.encode(),
    }
    _write_durably(folder / (name + SUFFIX), table=table.replace_schema_metadata(metadata))
    _sync_dir(folder)
    pointer = Pointer(
        snapshot=name,
        last_batch=last_batch,
        listings=len(table),
        published_at=now,
        birth_key=birth_key,
    )
    _write_durably(folder / POINTER, data=msgspec.json.encode(pointer))
    _sync_dir(folder)
    prune(folder, keep=1 if purge else keep, current=name)
    if purge:
        (folder / PURGE).unlink()
        _sync_dir(folder)
    return pointer


def discard_unfinished(folder: Path) -> list[Path]:
    """Delete what a publish killed mid-write left (`*.tmp`); only for the one process
    that publishes, while it holds the warehouse."""
    removed = list(folder.glob("*.tmp"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def finish_purge(folder: Path) -> list[Path]:
    """Delete the snapshots older than the published one when a purging publish was
    killed before it did; the files deleted."""
    if not (folder / PURGE).exists():
        return []
    try:
        pointer = read_pointer(folder)
    except SnapshotUnavailable:
        # A damaged `CURRENT`: the publish that follows purges (it left ingest stuck).
        return []
    removed = [] if pointer is None else prune(folder, keep=1, current=pointer.snapshot)
    (folder / PURGE).unlink(missing_ok=True)
    _sync_dir(folder)
    return removed


def read_pointer(folder: Path) -> Pointer | None:
    """The published pointer, or None before the first publish."""
    try:
        return msgspec.json.decode((folder / POINTER).read_bytes(), type=Pointer)
    except FileNotFoundError:
        return None
    except msgspec.DecodeError as exc:
        raise SnapshotUnavailable(f"{folder / POINTER} is corrupt: {exc}") from exc


def snapshot_path(folder: Path, pointer: Pointer) -> Path:
    """The file a pointer names."""
    return folder / (pointer.snapshot + SUFFIX)


def prune(folder: Path, *, keep: int, current: str) -> list[Path]:
    """Delete all but the newest `keep` snapshots and leftovers of killed publishes.

    Servers still mapping a deleted file keep reading it: on POSIX the data
    lives until the last mapping goes.
    """
    removed = [tmp for tmp in folder.glob("*.tmp") if tmp.name != POINTER + ".tmp"]
    snapshots = sorted(folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime_ns)
    old = [p for p in snapshots[:-keep] if p.name != current + SUFFIX]
    for path in [*removed, *old]:
        path.unlink(missing_ok=True)
    return [*removed, *old]
