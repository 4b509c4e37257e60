"""Human-readable ingest reports: every file's fate and every rejected row."""

from __future__ import annotations

from collections import Counter
from typing import Final

from lookup.config import Settings
from lookup.errors import SnapshotUnavailable
from lookup.index import birthdates
from lookup.index.reader import unreadable
from lookup.index.snapshot import Pointer, read_pointer
from lookup.ingest.batchlog import Batch
from lookup.ingest.pipeline import IngestReport
from lookup.ingest.progress import IngestProgress, read_progress
from lookup.ingest.warehouse import Warehouse
from lookup.text import printable


def _batch_line(batch: Batch) -> str:
    line = f"{printable(batch.file)}: {batch.status}"
    if batch.status in ("applied", "held"):
        line += (
            f" - rows {batch.rows_total}, accepted {batch.rows_accepted}, "
            f"rejected {batch.rows_rejected}, superseded duplicates {batch.rows_superseded}"
        )
    if batch.status == "applied":
        line += f"; numbers added {batch.added}, updated {batch.updated}, removed {batch.removed}"
    if batch.reason:
        line += f"\n  reason: {batch.reason}: {batch.detail}"
    elif batch.detail:
        line += f" ({batch.detail})"
    return line


def render_report(report: IngestReport, *, stopped: bool = False) -> str:
    """The report `lookup ingest` prints (`stopped`: of a run that stopped before its
    publish, whose applied files are not served yet)."""
    lines = []
    for file_report in report.files:
        lines.append(_batch_line(file_report.batch))
        counts = Counter(r.reason for r in file_report.rejects)
        if counts:
            lines.append(
                "  rejects by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )
        for reject in file_report.rejects:
            applied = " (reservation applied)" if reject.record is not None else ""
            lines.append(
                f"  {printable(file_report.batch.file)}:{reject.line}: {reject.reason}: "
                f"{reject.detail}{applied}"
            )
    lines += [f"{printable(name)}: ignored ({why})" for name, why in report.ignored.items()]
    if report.published is not None:
        p = report.published
        lines.append(f"published snapshot {p.snapshot} with {p.listings} listings")
    elif stopped:
        lines.append("not published: the run stopped (the last snapshot stays served)")
    else:
        lines.append("nothing new to publish")
    return "\n".join(lines)


_AGAIN: Final = ": run lookup ingest to publish it again"


def _unservable(settings: Settings, pointer: Pointer) -> str | None:
    """Why a server started now would not serve the published snapshot, if it would not,
    and what to do."""
    if not (settings.data_path / birthdates.KEY_FILE).exists():
        # Not made here (`status` writes nothing): a server would make one, and refuse this.
        return f"there is no {birthdates.KEY_FILE} its dates of birth were digested with{_AGAIN}"
    try:
        key = birthdates.load_key(settings.data_path)
    except SnapshotUnavailable as exc:
        return str(exc)  # a damaged key's message says what to do with it
    why = unreadable(settings.snapshots_path, pointer, key)
    return None if why is None else f"{why}{_AGAIN}"


def render_status(settings: Settings, warehouse: Warehouse | None) -> str:
    """What `lookup ingest status` prints: the served snapshot and recent batches, or,
    while another process holds the warehouse (`None`), what that ingest is doing."""
    lines = [f"data dir: {settings.data_path.resolve()}"]
    try:
        pointer = read_pointer(settings.snapshots_path)
    except SnapshotUnavailable as exc:
        pointer = None
        lines.append(f"serving: nothing: {exc}: run lookup ingest to publish again")
    else:
        lines.append(
            f"serving: {pointer.snapshot} ({pointer.listings} listings, "
            f"published {pointer.published_at:%Y-%m-%d %H:%M:%S} UTC, up to batch "
            f"{pointer.last_batch})"
            if pointer
            else "serving: nothing published yet"
        )
    if pointer is not None and (why := _unservable(settings, pointer)):
        # A server started now would serve nothing: said, as `/readyz` says it.
        lines.append(f"  but {why}")
    if warehouse is None:
        lines.append(_busy_line(read_progress(settings.warehouse_path)))
        return "\n".join(lines)
    lines += [
        f"warehouse: up to batch {warehouse.last_batch_id()}",
        "recent batches (newest first):",
    ]
    for batch in warehouse.log.recent():
        lines.append(f"  #{batch.id} " + _batch_line(batch).replace("\n", "\n    "))
        if batch.id is not None and batch.rows_rejected:
            counts = warehouse.log.reject_counts(batch.id)
            lines.append("    rejects: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)


def _busy_line(progress: IngestProgress | None) -> str:
    if progress is None:
        # An erasure request writes the warehouse too, and an ingest of an older release
        # leaves no progress file.
        return "warehouse: in use by another process; its batches show once it is free"
    step = progress.step
    if step not in ("starting", "publishing"):
        step = f"applying {step}"
    return (
        f"warehouse: an ingest is running (pid {progress.pid}, started "
        f"{progress.started_at:%Y-%m-%d %H:%M:%S} UTC, {progress.done} of "
        f"{len(progress.files)} files done, {step}); its batches show once it ends"
    )
