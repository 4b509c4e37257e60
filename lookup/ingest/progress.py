"""What a running ingest is doing, for `lookup ingest status` to show meanwhile.

The warehouse admits one process at a time, so a status check during a long nightly
ingest cannot read the batches. The ingest holding it keeps a small file beside it
instead: which files it was given, which one it is on, since when. The file is only
believed while the warehouse is locked: one left behind by a killed ingest says
nothing once the lock is gone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)


class IngestProgress(msgspec.Struct, kw_only=True):
    """A running ingest: its process, start, files and where it is."""

    pid: int
    started_at: datetime
    files: list[str]
    step: str = "starting"
    """`starting`, a file's name while it is applied, or `publishing`."""
    done: int = 0
    """Files finished so far."""


def progress_path(warehouse_path: Path) -> Path:
    """Where the ingest writing this warehouse says what it is doing."""
    return warehouse_path.with_name("ingest-running.json")


class ProgressFile:
    """The running ingest's side of the file: written whole at each step."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        self.path = path
        self.progress = IngestProgress(
            pid=os.getpid(), started_at=datetime.now(UTC), files=[f.name for f in files]
        )

    def step(self, step: str, *, done: int | None = None) -> None:
        """Record the step the ingest is on (and how many files it has finished)."""
        self.progress.step = step
        if done is not None:
            self.progress.done = done
        # A whole new file renamed over the old: a reader never sees half of one.
        scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            scratch.write_bytes(msgspec.json.encode(self.progress))
            scratch.replace(self.path)
        except OSError as exc:
            # Only `ingest status` reads it: a full disk must not fail the ingest here.
            log.warning("cannot write %s: %s", self.path, exc)
            with suppress(OSError):
                scratch.unlink()


@contextmanager
def reporting(warehouse_path: Path, files: list[Path]) -> Iterator[ProgressFile]:
    """Keep the progress file while the block runs (the caller holds the warehouse)."""
    progress = ProgressFile(progress_path(warehouse_path), files)
    progress.step("starting")
    try:
        yield progress
    finally:
        with suppress(OSError):
            progress.path.unlink()


def read_progress(warehouse_path: Path) -> IngestProgress | None:
    """What the ingest holding the warehouse wrote, if it wrote anything readable."""
    try:
        progress = msgspec.json.decode(
            progress_path(warehouse_path).read_bytes(), type=IngestProgress
        )
    except (OSError, msgspec.DecodeError):
        return None
    return progress if _alive(progress.pid) else None


def _alive(pid: int) -> bool:
    """Whether the process still runs (a killed ingest's file outlives it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
