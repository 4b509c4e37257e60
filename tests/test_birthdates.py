"""Dates of birth in snapshots: kept as keyed digests, never as dates.

A copied snapshot must give away no date of birth, while `?birth_date=` still
answers yes for the date on file, for every listing of the demo.
"""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest
from litestar.testing import TestClient

from lookup.api.app import create_app
from lookup.config import Settings
from lookup.index import birthdates
from lookup.index.reader import Snapshot, SnapshotSource
from lookup.index.snapshot import POINTER, read_pointer, snapshot_path
from lookup.ingest.pipeline import ingest
from lookup.ingest.warehouse import Warehouse
from tests.conftest import new_key
from tests.ingest_helpers import person, write_csv
from tests.test_cli import lookup


def _served(settings: Settings) -> Snapshot:
    pointer = read_pointer(settings.snapshots_path)
    assert pointer is not None
    return Snapshot(snapshot_path(settings.snapshots_path, pointer))


def test_no_demo_date_of_birth_is_in_the_snapshot_yet_each_is_verified(
    demo_settings: Settings,
) -> None:
    with Warehouse(demo_settings.warehouse_path, read_only=True) as warehouse:
        listable = warehouse.listable()
    born = {
        number: birth
        for number, birth in zip(
            listable["number"].to_pylist(), listable["birth_date"].to_pylist(), strict=True
        )
        if birth is not None
    }
    assert len(born) > 500
    snapshot = _served(demo_settings)
    table = snapshot.table()
    # No column can hold a date: the file has text, keys, digests and valid_from only.
    assert not [f.name for f in table.schema if pa.types.is_date(f.type)]
    assert "birth_date" not in table.column_names
    key = birthdates.load_key(demo_settings.data_path)
    other = bytes(32)
    stored = dict(zip(table["number"].to_pylist(), table["birth_check"].to_pylist(), strict=True))
    epoch = date(1970, 1, 1)
    for number, birth in born.items():
        assert stored[number] == birthdates.digest(key, number, birth), number
        assert stored[number] != birthdates.digest(other, number, birth)
        assert stored[number] != (birth - epoch).days
    assert all(stored[n] == birthdates.NONE for n in stored.keys() - born.keys())
    token = new_key(demo_settings, "lookup", org="birth-date-checks")
    with TestClient(app=create_app(demo_settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for number, birth in sorted(born.items()):
            right = client.get(f"/v1/numbers/{number}", params={"birth_date": birth.isoformat()})
            assert right.json()["birth_date_match"] is True, number
            assert birth.isoformat() not in right.text
        # A listing without a date of birth answers no to any date.
        nobody = min(stored.keys() - born.keys())
        answer = client.get(f"/v1/numbers/{nobody}", params={"birth_date": "1980-02-03"})
        assert answer.json()["birth_date_match"] is False


def test_the_key_is_the_owners_alone_and_made_once(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: birthdates.load_key(tmp_path / "var"), range(16)))
    assert len(set(keys)) == 1 and len(keys[0]) == birthdates.KEY_BYTES
    path = tmp_path / "var" / birthdates.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [birthdates.KEY_FILE]  # no leftovers


def _one_listing(tmp_path: Path, settings: Settings) -> None:
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("22202400")])
    assert ingest([tmp_path / "in"], settings).published is not None


def _answer(settings: Settings, claimed: str) -> Any:
    token = new_key(settings, "lookup", org=f"checks-{claimed}")
    with TestClient(app=create_app(settings)) as client:
        response = client.get(
            "/v1/numbers/22202400",
            params={"birth_date": claimed},
            headers={"Authorization": f"Bearer {token}"},
        )
    return response.status_code, response.json()


def test_a_snapshot_from_before_the_digests_is_published_again_and_deleted(
    tmp_path: Path, settings: Settings
) -> None:
    _one_listing(tmp_path, settings)
    # What an older version published: dates of birth as days, a pointer without a key.
    folder = settings.snapshots_path
    pointer = read_pointer(folder)
    assert pointer is not None
    old = snapshot_path(folder, pointer)
    table = pyarrow.ipc.open_file(pa.BufferReader(old.read_bytes())).read_all()
    index = table.schema.get_field_index("birth_check")
    days = pa.array([(date(1980, 2, 3) - date(1970, 1, 1)).days], pa.int32())
    table = table.set_column(index, "birth_date", days)
    with old.open("wb") as handle, pa.ipc.new_file(handle, table.schema) as writer:
        writer.write_table(table)
    (folder / POINTER).write_text((folder / POINTER).read_text().replace(',"birth_key"', ',"x"'))
    source = SnapshotSource(folder, settings.data_path)
    assert source.refresh() is False and not source.ready
    with pytest.raises(Exception, match="unexpected schema"):
        source.current  # noqa: B018
    assert _answer(settings, "1980-02-03")[0] == 503

    report = ingest([tmp_path / "in"], settings)  # the same file again: nothing new
    assert [f.batch.status for f in report.files] == ["duplicate"]
    assert report.published is not None
    assert not old.exists()  # the dates in the open are gone with it
    assert source.refresh() is True
    assert _answer(settings, "1980-02-03")[1]["birth_date_match"] is True
    assert _answer(settings, "1980-02-04")[1]["birth_date_match"] is False


def test_a_replaced_key_is_not_served_until_a_snapshot_is_published_under_it(
    tmp_path: Path, settings: Settings
) -> None:
    _one_listing(tmp_path, settings)
    old = snapshot_path(settings.snapshots_path, _pointer(settings))
    (settings.data_path / birthdates.KEY_FILE).unlink()
    source = SnapshotSource(settings.snapshots_path, settings.data_path)
    # Served, every date of birth would be answered no: served only once published anew.
    assert source.refresh() is False
    with pytest.raises(Exception, match="date-of-birth key"):
        source.current  # noqa: B018
    assert ingest([tmp_path / "in"], settings).published is not None
    assert not old.exists()
    assert source.refresh() is True
    assert _answer(settings, "1980-02-03")[1]["birth_date_match"] is True


def _pointer(settings: Settings) -> Any:
    pointer = read_pointer(settings.snapshots_path)
    assert pointer is not None
    return pointer


def test_status_says_once_what_to_do_with_a_damaged_key(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("22202400")])
    var = tmp_path / "var"
    assert lookup("ingest", str(tmp_path / "in"), data_dir=var).returncode == 0
    (var / birthdates.KEY_FILE).write_bytes(b"short")
    status = lookup("ingest", "status", data_dir=var)
    [but] = [line for line in status.stdout.splitlines() if line.startswith("  but ")]
    # Its own instruction alone: "run lookup ingest to publish it again" ran on after it.
    assert but.endswith("Remove it and run `lookup ingest` to publish under a new key"), but
    assert but.count("lookup ingest") == 1


def test_a_damaged_key_is_named_in_one_line(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("22202400")])
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / birthdates.KEY_FILE).write_bytes(b"short")
    result = lookup("ingest", str(tmp_path / "in"), data_dir=tmp_path / "var")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{birthdates.KEY_FILE} holds 5 bytes, not 32" in result.stderr
    # Said before any file went in: found at the publish, the files were applied and
    # their report lost.
    with Warehouse(tmp_path / "var" / "warehouse.duckdb", read_only=True) as warehouse:
        assert warehouse.query("SELECT count(*) FROM batches") == [(0,)]
