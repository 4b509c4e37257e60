"""`lookup ingest --watch`: apply operator files as they arrive in a folder.

A file is taken once it has stopped changing and looks whole (its sidecar's digest,
a gzip stream's end, or a last line break), so an upload that pauses is not taken
part-way; each round's report goes to stdout, and a failed round is retried.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import sys
import time
import zlib
from pathlib import Path
from typing import Final, NoReturn

from lookup.config import Settings
from lookup.errors import WarehouseBusy
from lookup.ingest.decoding import GZIP_MAGIC
from lookup.ingest.files import (
    SIDECAR_SUFFIX,
    is_candidate,
    sidecar_digest,
    sidecar_for,
    why_ignored,
)
from lookup.ingest.pipeline import IngestStopped, ingest, interrupted
from lookup.ingest.report import render_report
from lookup.text import printable

log = logging.getLogger(__name__)

WATCH_INTERVAL: Final = 5.0
"""Seconds between `--watch` scans, unless `--interval` says otherwise."""
WATCH_LATE_SCANS: Final = 120
"""Scans after which a file that stopped changing mid-line is taken anyway (10 minutes at
the default interval): its cut last line is then rejected, and counted."""


def _whole(path: Path, size: int, *, read_before: bool, limit: int) -> bool:
    """Whether a file that stopped changing looks whole: of the digest its sidecar gives,
    if it has one; else a gzip file to the end of its stream, any other ending with a
    line break. An upload that paused is otherwise taken part-way, and a full file's
    missing part removed until the rest comes."""
    if size == 0:
        return True
    try:
        # A sidecar that came after the file was read is checked at once: the file
        # stands still, and a mismatch is to be said.
        expected = None if read_before else sidecar_digest(path)
        if expected is not None:
            # Sent first, the sidecar says what the whole file is, wherever it paused.
            with path.open("rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest() == expected
        with path.open("rb") as handle:
            # A plain file named .gz (never gzip: its first bytes are not gzip's) is told
            # whole as any plain file is.
            if path.suffix == ".gz" and (size < 2 or handle.read(2) == GZIP_MAGIC):
                return _gzip_whole(path, limit)
            handle.seek(size - 1)
            return handle.read(1) in (b"\n", b"\r")
    except OSError:
        return False  # gone or unreadable meanwhile: the next scan sees


def _gzip_whole(path: Path, limit: int) -> bool:
    """Whether a gzip file reads to the end of its stream (a paused upload does not); one
    that unpacks to more than `limit` bytes counts as whole, for ingest to refuse."""
    unpacked = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                unpacked += len(chunk)
                if unpacked > limit:
                    return True
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return False
    return True


_FileState = tuple[int, int, tuple[int, int] | None]
"""An operator file's size and time, and its sidecar's if there is one: a sidecar that
comes or changes after its file was read has the file read again, and checked by it."""
_UPLOADING: Final = (".part", ".partial", ".filepart", ".tmp")
"""Names uploads are written under before they are renamed (and dotfiles)."""


def _file_state(path: Path) -> _FileState:
    stat = path.stat()
    try:
        sidecar = sidecar_for(path).stat()
    except FileNotFoundError:
        return stat.st_size, stat.st_mtime_ns, None
    return stat.st_size, stat.st_mtime_ns, (sidecar.st_size, sidecar.st_mtime_ns)


def watch(folder: Path, interval: float, settings: Settings, *, force: bool) -> NoReturn:
    """Ingest operator files as they arrive in a folder, each once it is whole; until
    stopped (Ctrl-C), reporting each round on stdout and what failed on stderr."""
    done: dict[Path, _FileState] = {}
    unchanged_since: dict[Path, tuple[_FileState, float]] = {}
    noted: set[Path] = set()
    print(f"watching {folder} every {interval:g}s (Ctrl-C to stop)", flush=True)
    while True:
        scan: dict[Path, _FileState] = {}
        for path in folder.iterdir():
            try:
                if path.is_file() and is_candidate(path):
                    scan[path] = _file_state(path)
                elif (
                    path not in noted
                    and not path.name.startswith(".")
                    and not path.name.endswith(_UPLOADING)
                ):
                    # Said once, so that a misnamed delivery is not waited for unseen (a
                    # sidecar may come before its file; a dotfile or `.part` is an upload).
                    why = why_ignored(path)
                    if why is not None and not path.name.endswith(SIDECAR_SUFFIX):
                        print(f"{printable(str(path))}: ignored ({why})", flush=True)
                        noted.add(path)
            except FileNotFoundError:
                continue  # moved away between the listing and the look
        # Same size and time for two scans, and it looks whole: the operator has finished.
        now = time.monotonic()
        unchanged_since = {
            p: kept if (kept := unchanged_since.get(p)) and kept[0] == state else (state, now)
            for p, state in scan.items()
        }
        quiet = {
            p: now - unchanged_since[p][1]
            for p, state in scan.items()
            if state != done.get(p) and now - unchanged_since[p][1] >= 2 * interval
        }
        # Files it read before, by whether the file itself changed since (not its sidecar).
        changed = {p: done[p][:2] != scan[p][:2] for p in quiet if p in done}
        whole = {
            p: _whole(
                p,
                scan[p][0],
                read_before=changed.get(p) is False,
                limit=settings.ingest_max_bytes,
            )
            for p in quiet
        }
        settled = [p for p in quiet if whole[p] or quiet[p] >= WATCH_LATE_SCANS * interval]
        # Taken for having waited long enough, not for looking whole: a last line without
        # a line break was cut off in transfer (or the exporter wrote none).
        late = {p for p in settled if not whole[p]}
        # The same delivery written again (an upload it took at a pause, then finished):
        # its later bytes are the later word.
        rewritten = {p for p in settled if changed.get(p)}
        if settled:
            try:
                report = ingest(
                    sorted(settled), settings, force=force, cut_off=late, rewritten=rewritten
                )
            except WarehouseBusy as exc:
                print(f"lookup: {exc}; retrying in {interval:g}s", file=sys.stderr, flush=True)
            except IngestStopped as exc:
                if exc.report.files:
                    print(render_report(exc.report, stopped=True), flush=True)
                print(f"lookup: {exc}; retrying in {interval:g}s", file=sys.stderr, flush=True)
            except Exception as exc:  # a watcher outlives one bad round (full disk, I/O error)
                if interrupted(exc):
                    raise KeyboardInterrupt from exc
                log.debug("ingest round failed", exc_info=exc)
                print(
                    f"lookup: ingest failed ({type(exc).__name__}: {exc}); "
                    f"retrying in {interval:g}s",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                print(render_report(report), flush=True)
                done.update({path: scan[path] for path in settled})
        time.sleep(interval)
