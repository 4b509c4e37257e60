"""Killing `lookup ingest` at any point never disturbs the server; a rerun completes.

Runs the real `lookup serve` and `lookup ingest` processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lookup.fixtures.generator import generate
from lookup.index.snapshot import read_pointer
from lookup.ingest.warehouse import Warehouse
from tests.conftest import make_settings, new_key
from tests.ingest_helpers import filler, write_csv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A real `lookup serve` process on a private data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LOOKUP_DATA_DIR": str(data_dir),
            "LOOKUP_SNAPSHOT_POLL_SECONDS": "0.05",
            "LOOKUP_KEY_REFRESH_SECONDS": "0.1",
            "LOOKUP_INTERNAL_PORT": str(_free_port()),
            # This test hammers one number as fast as it can; limits are not its subject.
            "LOOKUP_PLAN_KEY": "1000000/second",
            "LOOKUP_PLAN_ACCOUNT": "1000000/second",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lookup.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def server_and_data(tmp_path: Path) -> Iterator[tuple[Server, Path, str]]:
    data_dir = tmp_path / "var"
    write_csv(tmp_path / "v1", "telenor_full_20261122T020000.csv", filler(50))
    env = {**os.environ, "LOOKUP_DATA_DIR": str(data_dir)}
    subprocess.run(
        [sys.executable, "-m", "lookup.cli", "ingest", str(tmp_path / "v1")],
        env=env,
        check=True,
        capture_output=True,
    )
    token = new_key(make_settings(data_dir))
    server = Server(data_dir)
    try:
        yield server, data_dir, token
    finally:
        server.stop()


def _start_ingest(folder: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOOKUP_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "ingest", "--force", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(process: subprocess.Popen[bytes], condition: object, timeout: float = 60) -> bool:
    """SIGKILL the process as soon as `condition()` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():  # type: ignore[operator]
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.0005)
    return False


def test_sigkill_mid_ingest_and_mid_publish_keeps_serving(
    server_and_data: tuple[Server, Path, str], tmp_path: Path
) -> None:
    server, data_dir, token = server_and_data
    snapshots = data_dir / "snapshots"
    before = read_pointer(snapshots)
    assert before is not None
    generate(60_000, 2, 11, tmp_path / "v2")

    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            while not stop.is_set():
                response = c.get("/v1/numbers/40000007")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        # 1: killed while the warehouse is being written.
        ingest = _start_ingest(tmp_path / "v2", data_dir)
        wal = data_dir / "warehouse.duckdb.wal"
        assert _kill_when(ingest, wal.exists), "ingest ended before it could be killed"
        assert read_pointer(snapshots) == before

        # 2: killed while the new snapshot file is being written.
        ingest = _start_ingest(tmp_path / "v2", data_dir)
        assert _kill_when(ingest, lambda: any(snapshots.glob("*.arrow.tmp")))
        assert any(snapshots.glob("*.arrow.tmp")), "the kill did not land mid-publish"
        assert read_pointer(snapshots) == before

        # A rerun completes and the server moves to the new snapshot.
        rerun = _start_ingest(tmp_path / "v2", data_dir)
        assert rerun.wait(timeout=120) == 0
        after = read_pointer(snapshots)
        assert after is not None and after != before
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if httpx.get(server.url + "/readyz").json().get("snapshot") == after.snapshot:
                break
            time.sleep(0.05)
        else:
            pytest.fail("server did not pick up the new snapshot")
    finally:
        stop.set()
        thread.join()
    # The old listing kept answering until the swap; after it, v2 no longer has it.
    assert all(f.startswith("404") for f in failures), failures[:3]
    assert not list(snapshots.glob("*.tmp"))


def test_sigterm_mid_ingest_says_so_in_one_line_and_keeps_the_snapshot(tmp_path: Path) -> None:
    # It ended silently with 143, as killed.
    data_dir = tmp_path / "var"
    write_csv(tmp_path / "v1", "telenor_full_20261122T020000.csv", filler(50))
    env = {**os.environ, "LOOKUP_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "lookup.cli", "ingest", "--force"]
    subprocess.run([*command, str(tmp_path / "v1")], env=env, check=True, capture_output=True)
    before = read_pointer(data_dir / "snapshots")
    generate(60_000, 2, 11, tmp_path / "v2")
    ingest = subprocess.Popen(
        [*command, str(tmp_path / "v2")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wal = data_dir / "warehouse.duckdb.wal"
    deadline = time.monotonic() + 60
    while not wal.exists() and ingest.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    ingest.send_signal(signal.SIGTERM)
    _, err = ingest.communicate(timeout=60)
    assert ingest.returncode == 128 + signal.SIGTERM, err
    assert err.count("\n") == 1 and err.startswith("lookup: ingest interrupted: "), err
    assert read_pointer(data_dir / "snapshots") == before
    # No file blamed for the stop (an interrupted statement was recorded as the file's
    # unexpected error, and the run went on to the next file).
    with Warehouse(data_dir / "warehouse.duckdb", read_only=True) as warehouse:
        blamed = warehouse.query("SELECT file FROM batches WHERE detail LIKE 'unexpected%'")
    assert blamed == []
    rerun = subprocess.run(
        [*command, str(tmp_path / "v2")], check=False, env=env, capture_output=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert read_pointer(data_dir / "snapshots") != before
