"""Ingest operator files into the warehouse, then publish a snapshot.

Every file ends in exactly one state, recorded as a batch: `applied`,
`duplicate` (same content applied before: a no-op), `held` (the file broke a
bound: nothing of it applied but its reservations and hidden addresses) or
`rejected` (unusable: bad name, bad digest, bad header, stale, or an
unexpected error, which ends that file only). An empty delta is applied: a day
without changes. Rows that break a rule are stored with file, line, raw
text and reason, so the report accounts for every row delivered.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar, cast

import duckdb
import msgspec

from lookup.config import Settings
from lookup.errors import FileRejected, LookupServiceError, RejectReason, SnapshotUnavailable
from lookup.index import birthdates
from lookup.index.reader import unreadable
from lookup.index.snapshot import (
    Pointer,
    build_table,
    discard_unfinished,
    finish_purge,
    publish,
    read_pointer,
)
from lookup.ingest.batchlog import Batch
from lookup.ingest.decoding import decode, readable_part
from lookup.ingest.files import (
    HEX_DIGEST,
    SIDECAR_SUFFIX,
    FileFormat,
    FileKind,
    OperatorFileName,
    parse_file_name,
    said_digest,
    sidecar_for,
    why_ignored,
)
from lookup.ingest.progress import reporting
from lookup.ingest.readers import read_reservation_rows, read_rows
from lookup.ingest.records import Action, Record, Rejected, Reservation, RowValidator
from lookup.ingest.rules import deduplicate, said_before_leaving
from lookup.ingest.warehouse import Warehouse
from lookup.text import printable
from lookup.timezones import OSLO

log = logging.getLogger(__name__)

FILE_STAMP_LEEWAY: Final = timedelta(hours=1)
"""How far ahead of the clock (Oslo time) a file's name may be stamped.

Files of an operator are applied in stamp order and an older one is stale, so one
file stamped years ahead would make every real file after it stale.
"""


class FileReport(msgspec.Struct, kw_only=True):
    """What became of one file: its batch and every rejected row."""

    batch: Batch
    rejects: list[Rejected] = []


class IngestReport(msgspec.Struct, kw_only=True):
    """What one `lookup ingest` run did."""

    files: list[FileReport] = []
    ignored: dict[str, str] = {}
    """Entries of the given folders that were not read, each with why."""
    published: Pointer | None = None

    @property
    def ok(self) -> bool:
        """True when no file was held back or rejected."""
        return all(f.batch.status in ("applied", "duplicate") for f in self.files)


_MACHINE_FAILURES: Final = (
    duckdb.IOException,
    duckdb.FatalException,
    duckdb.TransactionException,
    duckdb.OutOfMemoryException,
    duckdb.InternalException,
)
"""DuckDB's words for a failure of the machine or of the warehouse file, never of an
operator's file: a full disk says `TransactionException` or `IOException` at commit, and
`FatalException` once DuckDB has given up the database."""


class IngestStopped(LookupServiceError):
    """A run the machine stopped (a full disk, a damaged warehouse or snapshot folder): the
    file it was at is not applied nor recorded, and a rerun takes it; what the run did
    before stays, in `report`."""

    def __init__(
        self, report: IngestReport, at: str, exc: BaseException, *, swapped: bool | None = None
    ) -> None:
        self.report = report
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # DuckDB's run to two lines
        # At the publish, the files are in the warehouse (`ingest status` shows their
        # batches); the snapshot served is the one before, or the new one when the swap
        # was done and what follows it (pruning, its record) failed: the rerun completes it.
        served = {
            True: "the new snapshot is served",
            False: "the snapshot served is the one before",
            None: "which snapshot is served, `lookup ingest status` says",
        }[swapped]
        what = (
            f"the files applied are in the warehouse, {served}"
            if at == PUBLISHING
            else "nothing of it recorded"
        )
        super().__init__(
            f"ingest stopped at {at}, {what}: {why}; fix the cause (free "
            "space?) and run `lookup ingest` again"
        )


PUBLISHING: Final = "publishing the snapshot"


def collect(paths: Iterable[Path]) -> tuple[list[Path], dict[str, str]]:
    """Operator files named directly or found in folders, and the folder entries ignored
    (each with why)."""
    files: list[Path] = []
    ignored: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                why = why_ignored(entry)
                if why is not None:
                    ignored[str(entry) + ("/" if entry.is_dir() else "")] = why
                elif not entry.name.endswith(SIDECAR_SUFFIX):
                    files.append(entry)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            # A device or pipe has no end a digest or a reject ratio could be judged at.
            raise FileNotFoundError(f"not a file or folder: {path} (a device or pipe?)")
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files, ignored


def ingest(
    paths: Sequence[Path],
    settings: Settings,
    *,
    force: bool = False,
    cut_off: Collection[Path] = (),
    rewritten: Collection[Path] = (),
) -> IngestReport:
    """Apply operator files in timestamp order per operator, then publish if anything changed.

    `cut_off`: files a watcher took though they do not look whole (they stopped changing
    long ago): a last line without a line break is rejected as cut off in transfer.
    `rewritten`: files a watcher read before, changed in place since: the later bytes of
    the same delivery, not a twin of it."""
    files, ignored = collect(paths)
    report = IngestReport(ignored=ignored)
    named: list[tuple[OperatorFileName, Path]] = []
    with (
        Warehouse(settings.warehouse_path) as warehouse,
        reporting(settings.warehouse_path, files) as progress,
    ):
        # A publish that failed (a full disk) may have left its file half written: the
        # space goes back before anything else is written. Only ingest writes there, and
        # this run holds the warehouse.
        discard_unfinished(settings.snapshots_path)
        # Before any file: a damaged key stops the run with nothing applied (found at the
        # publish, it came after the files went in, and their report was lost).
        birth_key = birthdates.load_key(settings.data_path)
        latest = datetime.now(OSLO).replace(tzinfo=None) + FILE_STAMP_LEEWAY
        run_start = warehouse.log.newest()
        for path in files:
            try:
                name = parse_file_name(path.name)
                if name.produced_at > latest:
                    raise FileRejected(
                        RejectReason.BAD_FILE_NAME,
                        f"timestamp {name.produced_at:%Y-%m-%d %H:%M:%S} is in the future "
                        f"(Oslo time now {latest - FILE_STAMP_LEEWAY:%Y-%m-%d %H:%M:%S})",
                    )
                named.append((name, path))
            except FileRejected as exc:
                batch = Batch(file=path.name, status="rejected", reason=exc.reason)
                batch.detail = exc.detail
                warehouse.log.add(batch)
                report.files.append(FileReport(batch=batch))
        # A full file and a delta of the same second: the delta is the change on top of the
        # full state (by name, "delta" sorted first and a reservation it made was undone).
        named.sort(
            key=lambda item: (
                item[0].operator,
                item[0].produced_at,
                item[0].kind is not FileKind.FULL,
                item[1].name,
            )
        )
        for name, path in named:
            progress.step(path.name, done=len(report.files))
            try:
                file_report = _ingest_file(
                    warehouse,
                    path,
                    name,
                    settings,
                    force=force,
                    run_start=run_start,
                    cut_off=path in cut_off,
                    rewritten=path in rewritten,
                )
            except _MACHINE_FAILURES as exc:
                raise IngestStopped(report, printable(path.name), exc) from exc
            report.files.append(file_report)
            log.info("%s: %s", path.name, file_report.batch.status)
        progress.step("publishing", done=len(report.files))
        served = _served_pointer(settings)
        try:
            report.published = publish_if_needed(warehouse, settings, birth_key)
        except (*_MACHINE_FAILURES, OSError) as exc:
            now = _served_pointer(settings)
            swapped = None if now is _UNKNOWN or served is _UNKNOWN else now != served
            raise IngestStopped(report, PUBLISHING, exc, swapped=swapped) from exc
    return report


_UNKNOWN: Final = object()


def _served_pointer(settings: Settings) -> object:
    """The pointer to the snapshot served, or `_UNKNOWN` when it cannot be read."""
    try:
        return read_pointer(settings.snapshots_path)
    except (OSError, SnapshotUnavailable):
        return _UNKNOWN


def interrupted(exc: BaseException) -> bool:
    """Whether an exception is DuckDB's word for a statement stopped by a signal (Ctrl-C,
    or SIGTERM where the command lets it unwind): the run stops, no file is to blame.
    Re-raised as `KeyboardInterrupt` where a file's failures are caught; elsewhere the
    command (and the watcher) tell it themselves."""
    return isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc) == "Query interrupted"
    )


def publish_if_needed(warehouse: Warehouse, settings: Settings, birth_key: bytes) -> Pointer | None:
    """Publish when the served snapshot lags the warehouse (also after a killed run), cannot
    be read, or holds dates of birth not digested under `birth_key`, the data directory's
    key."""
    folder = settings.snapshots_path
    finish_purge(folder)
    last_batch = warehouse.last_batch_id()
    try:
        pointer = read_pointer(folder)
        damaged = False
    except SnapshotUnavailable:
        pointer, damaged = None, True  # a damaged `CURRENT`: written anew
    # Checked, not trusted: a damaged or missing file left every server with nothing to
    # serve while this said "nothing new to publish".
    stale = damaged or (pointer is not None and unreadable(folder, pointer, birth_key) is not None)
    if last_batch == 0 or (pointer is not None and pointer.last_batch == last_batch and not stale):
        return None
    table = build_table(warehouse.listable(), birth_key)
    # The older snapshots still hold what a subscriber just withdrew (or dates of birth
    # in the open, or under a lost key, or are not to be trusted): only the new one stays.
    # A server that was about to open a deleted one keeps what it serves and takes the new
    # one at its next poll (servers mapping a deleted file read on: the data lives until
    # the last mapping goes).
    purge = stale or (pointer is not None and warehouse.withdrew_since(pointer.last_batch))
    pointer = publish(
        table,
        folder,
        last_batch=last_batch,
        birth_key=birthdates.key_id(birth_key),
        keep=settings.snapshots_kept,
        purge=purge,
    )
    warehouse.log.record_publish(pointer.snapshot, last_batch, pointer.listings)
    return pointer


def _ingest_file(
    warehouse: Warehouse,
    path: Path,
    name: OperatorFileName,
    settings: Settings,
    *,
    force: bool,
    run_start: int,
    cut_off: bool = False,
    rewritten: bool = False,
) -> FileReport:
    batch = Batch(
        file=path.name,
        operator=name.operator,
        kind=name.kind,
        produced_at=name.produced_at,
        forced=force,
    )
    report = FileReport(batch=batch)
    limit = settings.ingest_max_bytes
    leaving: list[Record] = []
    data = b""
    try:
        size = path.stat().st_size
        if size > limit:
            raise FileRejected(
                RejectReason.UNREADABLE,
                f"the file is {size:,} bytes, more than {limit:,} (LOOKUP_INGEST_MAX_BYTES): "
                "not read",
            )
        data = path.read_bytes()
        batch.digest = hashlib.sha256(data).hexdigest()
        _check_sidecar(path, batch.digest)
        repeat = warehouse.log.repeat_of(name.operator, batch.digest, name.produced_at)
        if repeat == "same":
            batch.status = "duplicate"
            batch.detail = "the same content was applied before"
            warehouse.log.add(batch)
            return report
        last = warehouse.log.last_applied_at(name.operator)
        if last is not None and name.produced_at < last:
            raise FileRejected(
                RejectReason.STALE,
                f"produced {name.produced_at:%Y-%m-%d %H:%M:%S}, older than the last file "
                f"applied for {name.operator} ({last:%Y-%m-%d %H:%M:%S})",
            )
        # Only a CSV line can be cut and still read (a JSON line cut short is no JSON), and
        # only one with more than blanks after the last line break.
        cut = (
            cut_off
            and name.format is FileFormat.CSV
            and not name.gzip
            and bool(data.rsplit(b"\n", 1)[-1].rsplit(b"\r", 1)[-1].strip())
        )
        records, report.rejects = _validate(data, name, limit, cut_off=cut)
        unique, batch.rows_superseded = deduplicate(records)
        leaving = said_before_leaving(records, unique)
        batch.rows_rejected = len(report.rejects)
        batch.rows_total = (
            len(records)
            + batch.rows_rejected
            - sum(1 for r in report.rejects if r.record is not None)
        )
        batch.rows_accepted = batch.rows_total - batch.rows_rejected
        if not batch.rows_total:
            batch.detail = "no data rows: nothing to change"
        # Numbers whose row was rejected keep their previous record (see Warehouse.apply).
        keep = sorted({r.number for r in report.rejects if r.number and r.record is None})
        hold = (
            _after_its_delta(warehouse, name)
            or (None if force else _hold_reason(warehouse, batch, name, unique, keep, settings))
            or _held_for_its_place(
                warehouse,
                name,
                batch.digest,
                path.name,
                repeat=repeat,
                force=force,
                run_start=run_start,
                rewritten=rewritten,
            )
        )
    except FileRejected as exc:
        batch.status, batch.reason, batch.detail = "rejected", exc.reason, exc.detail
        unique = []
        if exc.reason == RejectReason.STALE:
            _honour_late_reservations(warehouse, batch, name, data, limit)
            return report
        if exc.reason in (RejectReason.BAD_HEADER, RejectReason.UNREADABLE):
            unique, read, unread = _readable_reservations(data, name, limit, exc.reason)
            if read or unread:
                # Its rows are not counted as accepted or rejected, never having been
                # validated: said here (the reservations honoured are said when written).
                said = [f"{read + unread} data row(s) not applied"]
                if unread:
                    said.append(
                        f"{unread} row(s) that do not split at its separator were not read "
                        "for reservations (a separator inside a field needs quotes)"
                    )
                exc = FileRejected(exc.reason, "; ".join([exc.detail, *said]))
                batch.detail = exc.detail
        if not unique:
            warehouse.log.add(batch, report.rejects)
            return report
        # Held, not rejected: nothing of it applied but what only takes data away, written
        # below as any held file is (where a refusal of the warehouse ends this file only).
        keep, hold = [], exc
    except OSError as exc:
        batch.status, batch.reason = "rejected", RejectReason.UNREADABLE
        batch.detail = f"cannot read the file: {exc.strerror or exc}"
        warehouse.log.add(batch)
        return report
    except _MACHINE_FAILURES:
        raise
    except Exception as exc:  # one file's surprise must not stop the others
        if interrupted(exc):
            raise KeyboardInterrupt from exc
        # Debug only: the batch keeps the reason, and the CLI's stderr stays one line.
        log.debug("unexpected failure reading %s", path.name, exc_info=exc)
        return _give_up(warehouse, report, exc)

    try:
        _write(warehouse, batch, name, (unique, report.rejects), keep, hold, leaving)
    except _MACHINE_FAILURES:
        # The machine's failure, not the file's: recorded as the file's, its full file
        # would have been left out (and stale for good after a later delta). The run
        # stops; a rerun completes it.
        raise
    except duckdb.Error as exc:
        if interrupted(exc):
            raise KeyboardInterrupt from exc
        # The transaction rolled back; the warehouse refused this file's content, so
        # the file is rejected and the others still go in.
        log.debug("the warehouse refused %s", path.name, exc_info=exc)
        return _give_up(warehouse, report, exc)
    return report


def _honour_late_reservations(
    warehouse: Warehouse, batch: Batch, name: OperatorFileName, data: bytes, limit: int
) -> None:
    """Record a stale file as rejected, applying only its reservations dated after the
    operator's record of the number: a delta delivered late must not leave a subscriber
    listed until the next full file, nor withdraw what the operator listed after it (nor
    again when the file is sent again: its reservation is then no longer newer)."""
    try:
        records, _ = _validate(data, name, limit)
    except FileRejected as exc:
        # Late, and cut short, UTF-16 or with a bad header: what of it can be read.
        readable = exc.reason in (RejectReason.BAD_HEADER, RejectReason.UNREADABLE)
        records = _readable_reservations(data, name, limit, exc.reason)[0] if readable else []
    except Exception as exc:  # unreadable as well as late: nothing of it can be honoured
        log.debug("a stale file could not be read for reservations", exc_info=exc)
        records = []
    unique, _ = deduplicate(records)
    wishes = [
        r for r in unique if r.action is Action.UPSERT and r.reservation is Reservation.RESERVED
    ]
    newer = warehouse.reservations_newer(batch.operator or "", wishes)
    if newer:
        batch.detail = (
            f"{batch.detail}; its {len(newer)} reservation(s) dated after "
            f"{batch.operator}'s record of the number were honoured"
        )
    with warehouse.transaction():
        warehouse.log.add(batch)
        if newer:
            warehouse.apply(batch, FileKind.DELTA, newer, keep=[])


def _readable_reservations(
    data: bytes, name: OperatorFileName, limit: int, reason: RejectReason
) -> tuple[list[Record], int, int]:
    """The reservations and hidden addresses of a file rejected whole for its form, as far
    as its rows can be read: a CSV header that still names the number and the reservation
    once each (a misspelt `gyldig_fra` must not leave a reserved subscriber listed), a
    gzip file cut short up to the cut, UTF-16 text; none otherwise. Also how many rows
    were read for them, and how many could not be."""
    try:
        if reason == RejectReason.BAD_HEADER:
            text: str | None = decode(data, gzipped=name.gzip, limit=limit)
        else:
            text = readable_part(data, gzipped=name.gzip, limit=limit)
        if text is None:
            return [], 0, 0
        if name.format is FileFormat.CSV:
            rows, unread = read_reservation_rows(text)
        else:
            rows, unread = list(read_rows(text, FileFormat.JSONL)), 0
    except FileRejected:  # no header naming the number and the reservation, or empty
        return [], 0, 0
    validator = RowValidator(name.format, name.kind, name.produced_at)
    # The same number twice in the file: one wish each, a reservation over a hidden address
    # whatever their dates (nothing of the file is applied but these).
    wishes: dict[str, Record] = {}
    for row in rows:
        wish = validator.privacy_only(row)
        if wish is not None and (
            wish.number not in wishes or wish.reservation is Reservation.RESERVED
        ):
            wishes[wish.number] = wish
    return list(wishes.values()), len(rows), unread


def _give_up(warehouse: Warehouse, report: FileReport, exc: Exception) -> FileReport:
    """End a file that failed in an unforeseen way as a rejected batch, with the reason."""
    batch = report.batch
    batch.status, batch.reason = "rejected", RejectReason.UNREADABLE
    batch.detail = f"unexpected error, nothing of the file applied: {type(exc).__name__}: {exc}"
    batch.rows_total = batch.rows_accepted = batch.rows_rejected = batch.rows_superseded = 0
    batch.added = batch.updated = batch.removed = 0
    # Its rejects are not stored either: they may be incomplete, and the file is
    # delivered again once the cause is fixed.
    report.rejects = []
    warehouse.log.add(batch)
    return report


def _write(
    warehouse: Warehouse,
    batch: Batch,
    name: OperatorFileName,
    outcome: tuple[Sequence[Record], Sequence[Rejected]],
    keep: Sequence[str],
    hold: FileRejected | None,
    said: Sequence[Record] = (),
) -> None:
    """Record the batch and its rejects, and apply what it may apply, in one transaction;
    `said`: reservations and hidden addresses of numbers the file then deletes, applied
    first (`rules.said_before_leaving`)."""
    unique, rejects = outcome
    # Privacy wins over form: a broken row that hides its address takes the address of
    # the record it leaves in place (or of the one a held file leaves).
    # Their dates cannot be trusted: the record's own stays.
    broken_hidden: dict[str, datetime | None] = {
        r.number: None for r in rejects if r.hide_address and r.number
    }
    with warehouse.transaction():
        if hold is None:
            warehouse.log.add(batch, rejects)
            if said:
                warehouse.apply(batch, FileKind.DELTA, said, keep=[])
            warehouse.apply(batch, name.kind, unique, keep)
            if broken_hidden:
                warehouse.hide_addresses(batch, broken_hidden)
            return
        batch.status, batch.reason, batch.detail = "held", hold.reason, hold.detail
        # Reservations and hidden addresses are honoured at once, even from a file
        # held back: they only ever take data away, never add or change a listing.
        upserts = [*said, *(r for r in unique if r.action is Action.UPSERT)]
        reservations = [r for r in upserts if r.reservation is Reservation.RESERVED]
        hidden = {
            **broken_hidden,
            **{
                r.number: None if r.dated_by_file else r.valid_from
                for r in upserts
                if r.reservation is Reservation.ADDRESS_HIDDEN
            },
        }
        if reservations:
            batch.detail += f"; its {len(reservations)} reservation(s) were honoured"
        if hidden:
            batch.detail += f"; its {len(hidden)} hidden address(es) were applied"
        warehouse.log.add(batch, rejects)
        if reservations:
            warehouse.apply(batch, FileKind.DELTA, reservations, keep=[])
        if hidden:
            warehouse.hide_addresses(batch, hidden)


def _check_sidecar(path: Path, digest: str) -> None:
    sidecar = sidecar_for(path)
    if not sidecar.is_symlink() and not sidecar.exists():
        return
    try:
        data = sidecar.read_bytes()
    except OSError as exc:
        # A sidecar that came is a check asked for: unread, the file is not taken unchecked.
        raise FileRejected(
            RejectReason.SIDECAR_MISMATCH,
            f"its digest sidecar {sidecar.name} cannot be read: {exc.strerror or exc}",
        ) from None
    expected = said_digest(data)
    if expected == digest:
        return
    if not HEX_DIGEST.fullmatch(expected):
        # Not quoted: whatever bytes it holds would go to the report and the terminal.
        said = "is empty" if not expected else "holds no SHA-256 digest (64 hex digits)"
        raise FileRejected(RejectReason.SIDECAR_MISMATCH, f"{sidecar.name} {said}")
    raise FileRejected(
        RejectReason.SIDECAR_MISMATCH,
        f"{sidecar.name} says {expected}, the file's SHA-256 is {digest}",
    )


def _marking_last(items: Iterable[_T]) -> Iterator[tuple[_T, bool]]:
    """Each item, and whether it is the last (read one ahead: rows are not all held)."""
    iterator = iter(items)
    current = next(iterator, _END)
    while current is not _END:
        following = next(iterator, _END)
        yield cast("_T", current), following is _END
        current = following


_END: Final = object()
_T = TypeVar("_T")


def _validate(
    data: bytes, name: OperatorFileName, limit: int, *, cut_off: bool = False
) -> tuple[list[Record], list[Rejected]]:
    """Each row's record or reject; `cut_off`: the last row was cut off in transfer."""
    validator = RowValidator(name.format, name.kind, name.produced_at)
    records: list[Record] = []
    rejects: list[Rejected] = []
    text = decode(data, gzipped=name.gzip, limit=limit)
    rows = read_rows(text, name.format, delta=name.kind is FileKind.DELTA)
    for row, last in _marking_last(rows):
        try:
            outcome = validator.cut_off(row) if cut_off and last else validator.validate(row)
        except Exception as exc:  # a row must never stop the file, let alone the run
            # Debug only: the reject keeps the reason, and stderr stays free of tracebacks.
            log.debug("unexpected failure validating line %d", row.line, exc_info=exc)
            # Its text is not kept: the masking of dates of birth is what may have failed.
            outcome = Rejected(
                row.line,
                "[row text not kept: it could not be read]",
                "unreadable_row",
                f"cannot be read: {type(exc).__name__}",
            )
        if isinstance(outcome, Record):
            records.append(outcome)
        else:
            rejects.append(outcome)
            if outcome.record is not None:
                records.append(outcome.record)
    # An empty delta is a day without changes; an empty full file would say the
    # operator has no subscribers at all, which is never meant.
    if not records and not rejects and name.kind is FileKind.FULL:
        raise FileRejected(RejectReason.BAD_HEADER, "the file has no data rows")
    return records, rejects


def _after_its_delta(warehouse: Warehouse, name: OperatorFileName) -> FileRejected | None:
    """Why a full file of the same second as a delta taken before it (a later round, a
    later run) is held, forced or not: the delta is the change on top of this state, and
    applying the full file now would undo it (a reservation the delta made); the
    operator's next full file brings the rest. One run sorts full first."""
    if name.kind is FileKind.FULL and warehouse.log.delta_applied_at(
        name.operator, name.produced_at
    ):
        return FileRejected(
            RejectReason.AFTER_ITS_DELTA,
            f"a full file of the same second as a delta of {name.operator} taken before "
            "it, which is the change on top of it: only what takes data away is applied, "
            "the rest comes with the next full file (--force does not apply it)",
        )
    return None


def _held_for_its_place(
    warehouse: Warehouse,
    name: OperatorFileName,
    digest: str,
    file: str,
    *,
    repeat: str | None,
    force: bool,
    run_start: int,
    rewritten: bool,
) -> FileRejected | None:
    """Why a file that would otherwise be applied is held for where it stands among its
    operator's files: beside a twin of the same moment, on top of a held full file, or a
    copy of an older file. Forced, only a twin of this run holds it (the operator forces
    one of them alone)."""
    twin = warehouse.log.same_stamp(
        name, digest, after=run_start if force else 0, rewritten=file if rewritten else None
    )
    if twin is not None:
        # Two files of one moment (a .csv and a .csv.gz, a re-export): which is newer
        # cannot be told, and applied in name order the second would undo the first
        # (a reservation, a whole full file's numbers) unseen.
        earlier = (
            "an earlier delivery under this same name, with other content,"
            if twin == file
            else f"{twin}, another file with the same time stamp,"
        )
        return FileRejected(
            RejectReason.SAME_STAMP,
            f"{earlier} was applied before it: "
            "which is newer cannot be told; only its reservations and hidden addresses "
            "are applied (send one file per time stamp, or force this one alone: "
            "lookup ingest --force FILE)",
        )
    base = None if force or name.kind is FileKind.FULL else warehouse.log.held_base(name)
    if base is not None:
        # The change on top of a full file held back: applied on the older state, it
        # would leave that file no way in (older than what is applied, it is stale),
        # and forcing it then would undo this. Held until that file is forced (then
        # this again: held, it was never applied) or the operator's next full file.
        return FileRejected(
            RejectReason.AFTER_HELD_FULL,
            f"the change on top of {base}, which is held: only its reservations and "
            "hidden addresses are applied; force both in one run (lookup ingest --force "
            "with that file and this one, or their folder), or the operator's next full "
            "file brings it all",
        )
    if repeat == "older" and not force:
        # A copy of an older file under a new name: a night's directory that came back
        # (a reservation lifted since must return), or a mover re-sending an old file (a
        # reservation made since must stay). Either way what only takes data away holds.
        return FileRejected(
            RejectReason.REPEATS_OLDER,
            "the same content as an older file of "
            f"{name.operator}, with files applied since; use --force to apply it whole",
        )
    return None


def _hold_reason(
    warehouse: Warehouse,
    batch: Batch,
    name: OperatorFileName,
    unique: Sequence[Record],
    keep: Sequence[str],
    settings: Settings,
) -> FileRejected | None:
    if batch.rows_total and batch.rows_rejected / batch.rows_total > settings.reject_ratio_max:
        return FileRejected(
            RejectReason.TOO_MANY_REJECTS,
            f"{batch.rows_rejected} of {batch.rows_total} rows rejected "
            f"({batch.rows_rejected / batch.rows_total:.1%}, bound "
            f"{settings.reject_ratio_max:.0%}); use --force to apply anyway",
        )
    if name.kind is FileKind.FULL:
        before = warehouse.operator_size(name.operator)
        after = len(unique) + len(warehouse.known_numbers(name.operator, keep))
        if before and (before - after) / before > settings.full_shrink_max:
            return FileRejected(
                RejectReason.SHRINKS_TOO_MUCH,
                f"would shrink {name.operator} from {before} to {after} numbers "
                f"({(before - after) / before:.1%}, bound {settings.full_shrink_max:.0%}); "
                "use --force to apply anyway",
            )
    return None
