"""`lookup abuse replay EVENTS --out FINDINGS.jsonl`: the live detectors over a recorded file.

EVENTS is JSON Lines (or Parquet with the same columns), sorted by time:
`ts` (ISO 8601), `account`, `key`, `ip`, `number` (E.164), `outcome`
(`hit` | `miss` | `invalid`). Each finding is one line of FINDINGS.jsonl.
"""

from __future__ import annotations

import codecs
import os
import secrets
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import msgspec

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import ENDPOINTS, EPOCH, OUTCOMES, LookupEvent, national_number
from lookup.abuse.policy import DEFAULT_POLICY, Policy
from lookup.errors import BadOutputPath, LookupServiceError
from lookup.jsonkeys import decode_object, repeated_key
from lookup.numbers import InvalidNumber, normalize, shown

if TYPE_CHECKING:
    import pyarrow as pa


class BadEventFile(LookupServiceError):
    """An events file that cannot be replayed, with the line that broke it."""


_REQUIRED: Final = ("ts", "account", "key", "ip", "number", "outcome")
_COLUMNS: Final = frozenset((*_REQUIRED, "endpoint"))
"""The columns read (a lookup log's `held` is no part of the contract)."""
_NAMED: Final = ("account", "key", "ip")
_BATCH_ROWS: Final = 4_096
"""Parquet rows held at once: memory stays flat whatever the file's size."""
_GZIP: Final = b"\x1f\x8b"
_PARQUET: Final = b"PAR1"


def _event(raw: dict[str, object], where: str) -> LookupEvent:
    if raw.get("endpoint", "") is None:
        del raw["endpoint"]  # optional: a Parquet column of it may hold nulls
    _check_present(raw, where)
    _check_values(raw, where)
    # Only the contract's columns: a lookup log's export carries `held` (null in old rows).
    raw = {name: value for name, value in raw.items() if name in _COLUMNS}
    given = raw["ts"]
    raw["ts"] = _time(given, where)
    try:
        event = msgspec.convert(raw, LookupEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise BadEventFile(f"{where}: {exc}") from None
    if event.endpoint == "numbers" and event.outcome != "invalid":
        # Read as no number at all, a scan written as "22200100" would replay clean.
        unusable = _unusable(event.number)
        if unusable is not None:
            raise BadEventFile(f"{where}: number {shown(event.number)!r} {unusable}")
    if event.ts.tzinfo is not None:
        try:
            utc = event.ts.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is a valid time whose UTC is not a datetime.
            raise BadEventFile(
                f"{where}: ts {given!r} is out of range: in UTC it falls outside years 1 to 9999"
            ) from None
        event = msgspec.structs.replace(event, ts=utc.replace(tzinfo=None))
    return event


def _check_present(raw: dict[str, object], where: str) -> None:
    # The live service logs the raw input of an invalid lookup, an empty one too.
    may_be_empty = {"number"} if raw.get("outcome") == "invalid" else set()
    missing = [
        name
        for name in _REQUIRED
        if raw.get(name) is None or (raw.get(name) == "" and name not in may_be_empty)
    ]
    if missing:
        raise BadEventFile(f"{where}: missing {', '.join(missing)}")
    for name in _NAMED:
        value = raw[name]
        # Blank names would merge unrelated callers into one account, key or address.
        if isinstance(value, str) and not value.strip():
            raise BadEventFile(f"{where}: {name} is blank")


def _check_values(raw: dict[str, object], where: str) -> None:
    """Refuse a value of the wrong kind in words (the decoder's own message names its path)."""
    for name in (*_NAMED, "number"):
        if not isinstance(raw[name], str):
            raise BadEventFile(f"{where}: {name} must be text, not {shown(repr(raw[name]))}")
    for name, allowed in (("outcome", OUTCOMES), ("endpoint", ENDPOINTS)):
        if name in raw and raw[name] not in allowed:
            raise BadEventFile(
                f"{where}: {name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                f"not {shown(str(raw[name]))!r}"
            )


def _time(value: object, where: str) -> datetime:
    # Strict: a lax read takes an epoch number (or a string of digits) as a time.
    try:
        return msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise BadEventFile(
            f"{where}: ts must be an ISO 8601 time in its extended form "
            f"(2026-11-01T12:00:00Z), not {shown(repr(value))}"
        ) from None


def _unusable(number: str) -> str | None:
    """Why `number` is not a Norwegian number of the plan written as the service logs it,
    or None."""
    if national_number(number) is None or len(number) not in (8, 11):
        return "is not a Norwegian number (E.164, +47 and 8 digits, or 5 for short numbers)"
    national = number[3:]
    try:
        if normalize(national) == national:
            return None
    except InvalidNumber:
        pass
    return "is not in the Norwegian numbering plan (no such number series)"


def read_events(path: Path) -> Iterator[LookupEvent]:
    """Events of a JSON Lines or Parquet file, checked to be in time order."""
    previous: datetime | None = None
    for where, raw in _rows(path):
        event = _event(raw, where)
        if previous is not None and event.ts < previous:
            raise BadEventFile(f"{where}: events are not sorted by time ({event.ts} < {previous})")
        previous = event.ts
        yield event


def _rows(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    magic = _magic(path)
    if magic == _PARQUET:
        yield from _parquet_rows(path)
        return
    if magic.startswith(_GZIP):
        raise BadEventFile(f"{path}: file is gzip-compressed: decompress it first")
    # `{"` with a NUL after (or before) each: UTF-16's ASCII; not UTF-32's, nor all NULs.
    nuls = sorted((magic[0::2].count(0), magic[1::2].count(0)))
    utf32 = magic.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE))
    if not utf32 and (
        magic.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or nuls == [0, 2]
    ):
        raise BadEventFile(
            f"{path}: the file is UTF-16 text: events are UTF-8 JSON Lines (or Parquet); "
            "convert it first (iconv -f UTF-16 -t UTF-8)"
        )
    with path.open("rb") as handle:
        for index, raw in enumerate(handle, start=1):
            line = raw.removeprefix(codecs.BOM_UTF8) if index == 1 else raw  # an editor's mark
            if not line.strip():
                continue
            where = f"{path.name}:{index}"
            try:
                fields = decode_object(line)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise BadEventFile(f"{where}: not a JSON object: {exc}") from None
            _check_keys_once(line, fields, where)
            yield where, fields


def _check_keys_once(line: bytes, fields: dict[str, object], where: str) -> None:
    # The decoder keeps the last value silently: `"outcome": "miss", "outcome": "hit"`
    # would replay whichever the writer happened to put last.
    try:
        # Decoded already, so valid UTF-8.
        repeated = repeated_key(line.decode(), len(fields))
    except RecursionError:
        raise BadEventFile(
            f"{where}: nested too deep to tell whether a key is given twice"
        ) from None
    if repeated is not None:
        raise BadEventFile(
            f"{where}: key {repeated[0]!r} is given twice: which value holds cannot be told"
        )


def _magic(path: Path) -> bytes:
    """The first bytes, which tell Parquet and gzip whatever the file is called."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BadEventFile(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        # A pipe (/dev/stdin, <(...)) would lose these bytes to the look, and Parquet
        # cannot be read from one at all; opening a FIFO with no writer would hang.
        raise BadEventFile(
            f"{path} is not a regular file (a pipe or device): write the events to a file first"
        )
    try:
        with path.open("rb") as handle:
            return handle.read(len(_PARQUET))
    except OSError as exc:
        raise BadEventFile(f"{path}: cannot read: {exc.strerror}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    index = 0
    for batch in _parquet_batches(path):
        columns = [_values(batch.column(i)) for i in range(batch.num_columns)]
        for values in zip(*columns, strict=True):
            index += 1
            yield f"{path.name} row {index}", dict(zip(batch.schema.names, values, strict=True))


def _parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq  # noqa: PLC0415 (only needed for Parquet input)

    try:
        with pq.ParquetFile(path) as source:
            columns = [name for name in source.schema_arrow.names if name in _COLUMNS]
            missing = [name for name in _REQUIRED if name not in columns]
            if not missing and len(set(columns)) == len(columns):
                yield from source.iter_batches(batch_size=_BATCH_ROWS, columns=columns)
                return
    except Exception as exc:
        raise BadEventFile(f"{path}: not a readable Parquet file: {exc}") from None
    if missing:
        # Said of the file, rows or none: an export with other column names is no empty one.
        raise BadEventFile(f"{path.name}: no column {', '.join(missing)}")
    # As a JSON Lines key given twice: each row would take the last column's value.
    twice = next(name for name in columns if columns.count(name) > 1)
    raise BadEventFile(
        f"{path.name}: column {twice!r} is given twice: which value holds cannot be told"
    )


def _values(column: pa.Array) -> list[object]:
    import pyarrow as pa  # noqa: PLC0415

    kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        # Python's datetime stops at microseconds: spelt out, the nanoseconds are
        # rounded by the same parser as a JSON Lines file's.
        suffix = "Z" if kind.tz is not None else ""
        nanos: list[int | None] = column.cast(pa.int64()).to_pylist()
        return [None if n is None else _nanos_text(n) + suffix for n in nanos]
    return [_text(value) for value in column.to_pylist()]


def _nanos_text(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return f"{(EPOCH + timedelta(seconds=seconds)).isoformat()}.{fraction:09d}"


def _text(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def replay(events: Path, out: Path, policy: Policy = DEFAULT_POLICY) -> int:
    """Write the findings of an events file to `out` (a symlink's target); returns how many."""
    target = _target(events, out)
    older = _identity(target)
    # Named before it is made: a Ctrl-C or SIGTERM at any moment after finds it to remove
    # (one between its making and the `try` left it behind, seen under load).
    tmp = target.with_name(f"{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = _create(tmp, out)
        with os.fdopen(fd, "wb") as handle:
            count = _write_findings(read_events(events), Engine(policy), handle, out)
            _sync(handle, out)
        _publish(tmp, target, out)
    except BaseException:
        # A failed (or interrupted) replay leaves no findings file, not an older one
        # that looks complete; but one another replay put there meanwhile is that
        # replay's whole output, and stays.
        if older is not None and _identity(target) == older:
            _remove_regular(target)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _target(events: Path, out: Path) -> Path:
    """The file to write: `out`, or what a symlink there points to; refused unless a
    regular file (or none yet) in an existing folder, other than the events file."""
    target = Path(os.path.realpath(out))
    try:
        # Through its links, before their path is resolved: /dev/stdout on a pipe resolves
        # to a name that does not exist (`/proc/…/fd/pipe:[…]`).
        mode = out.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise BadOutputPath(f"{out}: cannot write there: {exc.strerror}") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise BadOutputPath(f"{out} is a folder: give the findings file to write")
        if not stat.S_ISREG(mode):
            # Replacing it would swap a device or pipe for a plain file.
            raise BadOutputPath(f"{out} is not a regular file: give a file to write")
        if _same_file(events, target):
            raise BadOutputPath(f"{out} is the events file {events}: write the findings elsewhere")
    if not target.parent.is_dir():
        raise BadOutputPath(f"{out}: the folder {target.parent} does not exist")
    return target


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """Which file is at a path (device, inode, change time, size), if any."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size


def _same_file(events: Path, target: Path) -> bool:
    try:
        return events.samefile(target)
    except OSError:
        return False  # an unreadable events file is reported when it is read


def _create(tmp: Path, out: Path) -> int:
    """A new file of our own beside the target, so the rename is atomic and no other
    file (an input, another replay's output) is ever opened for writing."""
    try:
        # O_EXCL: never a file that is there already; mode as a new file's, umask applied.
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise BadOutputPath(
            f"{out}: cannot create a file in {tmp.parent}: {exc.strerror}"
        ) from None


def _write_findings(
    events: Iterator[LookupEvent], engine: Engine, handle: IO[bytes], out: Path
) -> int:
    encoder = msgspec.json.Encoder()
    count = 0
    for event in events:
        for finding in engine.observe(event):
            try:
                handle.write(encoder.encode(finding) + b"\n")
            except OSError as exc:
                raise BadOutputPath(f"{out}: cannot write the findings: {exc.strerror}") from None
            count += 1
    return count


def _sync(handle: IO[bytes], out: Path) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise BadOutputPath(f"{out}: cannot write the findings: {exc.strerror}") from None


def _publish(tmp: Path, target: Path, out: Path) -> None:
    try:
        tmp.replace(target)
    except OSError as exc:
        raise BadOutputPath(f"{out}: cannot be replaced: {exc.strerror}") from None


def discard_findings(out: Path) -> None:
    """Remove an older findings file at `out` (a symlink's target): a replay that cannot
    start leaves none that looks complete, as one that fails does."""
    _remove_regular(Path(os.path.realpath(out)))


def _remove_regular(path: Path) -> None:
    try:
        if stat.S_ISREG(path.lstat().st_mode):
            path.unlink()
    except OSError:
        pass  # nothing there, or not ours to remove: the failure itself is what is reported


def decode_findings(path: Path) -> list[Finding]:
    """Read a FINDINGS.jsonl file back."""
    decoder = msgspec.json.Decoder(Finding)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
