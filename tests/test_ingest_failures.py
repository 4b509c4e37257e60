"""Failures of the machine during ingest: a full disk, a damaged snapshot.

The file the run was at is neither applied nor blamed; what went before stays;
the next run completes the work and every server keeps serving meanwhile.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.ipc
import pytest
from litestar.testing import TestClient

from lookup import cli
from lookup.api.app import create_app
from lookup.config import Settings
from lookup.index import birthdates
from lookup.index import snapshot as snapshot_module
from lookup.index.reader import Snapshot, SnapshotSource
from lookup.index.snapshot import POINTER, read_pointer, snapshot_path
from lookup.ingest import pipeline
from lookup.ingest.pipeline import IngestStopped, ingest
from lookup.ingest.report import render_status
from lookup.ingest.warehouse import Warehouse
from tests.ingest_helpers import HEADER, filler, person, write_csv

ICE = "ice_full_20261122T010000.csv"
TELENOR_FULL = "telenor_full_20261122T020000.csv"
TELENOR_DELTA = "telenor_delta_20261122T030000.csv"


def _deliveries(folder: Path) -> None:
    write_csv(folder, ICE, [person("22202400")])
    write_csv(folder, TELENOR_FULL, filler(30))
    write_csv(
        folder, TELENOR_DELTA, [person("40000100", first="Ny") + ";U"], header=HEADER + ";action"
    )


def _batches(settings: Settings) -> list[tuple[Any, ...]]:
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.query("SELECT file, status FROM batches ORDER BY id")


def _served(settings: Settings) -> int:
    pointer = read_pointer(settings.snapshots_path)
    assert pointer is not None
    return len(Snapshot(snapshot_path(settings.snapshots_path, pointer)))


def _disk_full_at(file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline._write

    def write(warehouse: Warehouse, batch: Any, *args: Any) -> None:
        if batch.file == file:
            raise duckdb.IOException(
                'Could not write file "warehouse.duckdb.wal": No space left on device\n'
                "Original error: disk full"
            )
        real(warehouse, batch, *args)

    monkeypatch.setattr(pipeline, "_write", write)


def test_a_full_disk_stops_the_run_and_blames_no_operator_file(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deliveries(tmp_path / "in")
    _disk_full_at(TELENOR_FULL, monkeypatch)
    with pytest.raises(IngestStopped) as stopped:
        ingest([tmp_path / "in"], settings)
    # Recorded as the file's fault, the full file was left out, the delta applied on an
    # empty state, and every rerun called the full file stale: 30 listings lost.
    assert [f.batch.file for f in stopped.value.report.files] == [ICE]
    assert _batches(settings) == [(ICE, "applied")]
    monkeypatch.undo()
    report = ingest([tmp_path / "in"], settings)
    assert [(f.batch.file, f.batch.status) for f in report.files] == [
        (ICE, "duplicate"),
        (TELENOR_FULL, "applied"),
        (TELENOR_DELTA, "applied"),
    ]
    assert _served(settings) == 32


def test_the_command_says_what_went_in_before_the_stop_and_why_in_one_line(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _deliveries(tmp_path / "in")
    _disk_full_at(TELENOR_FULL, monkeypatch)
    monkeypatch.setenv("LOOKUP_DATA_DIR", str(settings.data_path))
    assert cli.main(["ingest", str(tmp_path / "in")]) == 1
    out, err = capsys.readouterr()
    assert ICE in out and "applied" in out
    # Not "nothing new to publish": the applied file is not served yet.
    assert out.splitlines()[-1] == "not published: the run stopped (the last snapshot stays served)"
    assert err.count("\n") == 1, err
    assert err.startswith(f"lookup: ingest stopped at {TELENOR_FULL}, nothing of it recorded:")
    assert "No space left on device Original error: disk full" in err
    assert "run `lookup ingest` again" in err


def test_a_snapshot_that_cannot_be_written_leaves_no_half_of_it(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deliveries(tmp_path / "in")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    birthdates.load_key(settings.data_path)  # made before the disk fills
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        IngestStopped,
        match=r"publishing the snapshot, the files applied are in the warehouse, the snapshot "
        r"served is the one before: .*No space left",
    ):
        ingest([tmp_path / "in"], settings)
    monkeypatch.undo()
    # A half-written file kept the disk full, and the next run could not get past it.
    assert list(settings.snapshots_path.iterdir()) == []
    (settings.snapshots_path / "20261122T020000Z-000002.arrow.tmp").write_bytes(b"x" * 1000)
    report = ingest([tmp_path / "in"], settings)
    assert {f.batch.status for f in report.files} == {"duplicate"}
    assert report.published is not None
    assert not list(settings.snapshots_path.glob("*.tmp"))


def test_a_publish_stopped_after_its_swap_says_the_new_snapshot_is_served(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "a", ICE, [person("22202400")])
    ingest([tmp_path / "a"], settings)
    before = read_pointer(settings.snapshots_path)
    write_csv(tmp_path / "b", TELENOR_FULL, filler(30))

    def refused(*_: object, **__: object) -> list[Path]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    # The pointer swapped, then the old files could not be pruned: the message said the
    # snapshot before was served.
    monkeypatch.setattr(snapshot_module, "prune", refused)
    with pytest.raises(IngestStopped, match="the new snapshot is served: PermissionError"):
        ingest([tmp_path / "b"], settings)
    assert read_pointer(settings.snapshots_path) != before


def _publish_copy(settings: Settings, change: Any) -> Path:
    """Make a changed copy of the served snapshot file the published one."""
    folder = settings.snapshots_path
    pointer = read_pointer(folder)
    assert pointer is not None
    copy = folder / f"{pointer.snapshot}-copy.arrow"
    copy.write_bytes(change(snapshot_path(folder, pointer).read_bytes()))
    text = (folder / POINTER).read_text().replace(pointer.snapshot, copy.stem)
    (folder / POINTER).write_text(text)
    return copy


def _damage(settings: Settings) -> Path:
    """Publish a copy of the served snapshot with one string offset far out of bounds."""

    def offset_out_of_bounds(data: bytes) -> bytes:
        buffer = pa.py_buffer(data)
        table = pyarrow.ipc.open_file(pa.BufferReader(buffer)).read_all()  # zero-copy
        offsets = table.column("first_name").chunk(0).buffers()[1]
        at = offsets.address - buffer.address + 4 * 20
        return data[:at] + (0x7FFF0000).to_bytes(4, "little") + data[at + 4 :]

    return _publish_copy(settings, offset_out_of_bounds)


def test_a_damaged_snapshot_is_refused_and_published_anew(
    tmp_path: Path, settings: Settings
) -> None:
    _deliveries(tmp_path / "in")
    ingest([tmp_path / "in"], settings)
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        damaged = _damage(settings)
        # Read unchecked, such a file crashed the server (a segfault) at its next poll.
        deadline = time.monotonic() + 10
        while "newer_unreadable" not in (ready := client.get("/readyz").json()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ready["listings"] == 32 and "cannot read snapshot" in ready["newer_unreadable"]
    with TestClient(app=create_app(settings)) as client:
        starting = client.get("/readyz")
    assert starting.status_code == 503
    detail = starting.json()["detail"]
    assert detail.startswith("the published snapshot cannot be read (cannot read snapshot")
    # Nothing new came, yet the run publishes: "nothing new to publish" left it unserved.
    report = ingest([tmp_path / "in"], settings)
    assert report.published is not None and not damaged.exists()
    serving = SnapshotSource(settings.snapshots_path, settings.data_path)
    assert serving.refresh() is True and serving.failure is None


def test_a_snapshot_whose_metadata_is_damaged_is_refused_and_published_anew(
    tmp_path: Path, settings: Settings
) -> None:
    _deliveries(tmp_path / "in")
    ingest([tmp_path / "in"], settings)
    key_id = birthdates.key_id(birthdates.load_key(settings.data_path)).encode()
    # Undecodable, the metadata crashed the server's start and every ingest after.
    damaged = _publish_copy(settings, lambda data: data.replace(key_id, b"\xff" * len(key_id)))
    serving = SnapshotSource(settings.snapshots_path, settings.data_path)
    assert serving.refresh() is False and "cannot read snapshot" in (serving.failure or "")
    assert "but cannot read snapshot" in render_status(settings, None)
    assert ingest([tmp_path / "in"], settings).published is not None and not damaged.exists()
    assert serving.refresh() is True


def test_a_damaged_pointer_left_with_a_purge_marker_is_published_anew(
    tmp_path: Path, settings: Settings
) -> None:
    _deliveries(tmp_path / "in")
    ingest([tmp_path / "in"], settings)
    folder = settings.snapshots_path
    # A purging publish stopped (a full disk) after its marker, over a damaged pointer:
    # every rerun said only that the pointer is corrupt.
    (folder / "PURGE").write_bytes(b"")
    (folder / POINTER).write_text('{"snapshot": ')
    assert "serving: nothing: " in render_status(settings, None)
    report = ingest([tmp_path / "in"], settings)
    assert report.published is not None
    left = {p.name for p in folder.iterdir()}
    assert left == {POINTER, f"{report.published.snapshot}.arrow"}


def test_status_says_when_a_server_would_refuse_the_snapshot_for_its_key(
    tmp_path: Path, settings: Settings
) -> None:
    _deliveries(tmp_path / "in")
    ingest([tmp_path / "in"], settings)
    key = settings.data_path / birthdates.KEY_FILE
    key.write_bytes(bytes(birthdates.KEY_BYTES))  # replaced
    assert "date-of-birth key" in render_status(settings, None)
    key.unlink()
    assert f"there is no {birthdates.KEY_FILE}" in render_status(settings, None)
    assert not key.exists()  # status writes nothing


def test_a_snapshot_whose_numbers_are_damaged_is_refused_and_published_anew(
    tmp_path: Path, settings: Settings
) -> None:
    _deliveries(tmp_path / "in")
    ingest([tmp_path / "in"], settings)

    def key_scrambled(data: bytes) -> bytes:
        # No offset or string to check there: the binary search answered 404 unseen.
        buffer = pa.py_buffer(data)
        table = pyarrow.ipc.open_file(pa.BufferReader(buffer)).read_all()  # zero-copy
        keys = table.column("key").chunk(0).buffers()[1]
        at = keys.address - buffer.address + 8 * 3
        return data[:at] + (2**62).to_bytes(8, "little") + data[at + 8 :]

    damaged = _publish_copy(settings, key_scrambled)
    serving = SnapshotSource(settings.snapshots_path, settings.data_path)
    assert serving.refresh() is False
    assert "its numbers are out of order" in (serving.failure or "")
    assert ingest([tmp_path / "in"], settings).published is not None and not damaged.exists()
    assert serving.refresh() is True
