"""`lookup abuse replay EVENTS --out FINDINGS.jsonl`: the live detectors over a recorded file.

EVENTS is JSON Lines (or Parquet with the same columns), sorted by time:
`ts` (ISO 8601), `account`, `key`, `ip`, `number` (E.164), `outcome`
(`hit` | `miss` | `invalid`). Each finding is one line of FINDINGS.jsonl.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import LookupEvent
from lookup.abuse.policy import DEFAULT_POLICY, Policy
from lookup.errors import LookupServiceError


class BadEventFile(LookupServiceError):
    """An events file that cannot be replayed, with the line that broke it."""


_REQUIRED = ("ts", "account", "key", "ip", "number", "outcome")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _event(raw: dict[str, object], where: str) -> LookupEvent:
    missing = [name for name in _REQUIRED if raw.get(name) in (None, "")]
    if missing:
        raise BadEventFile(f"{where}: missing {', '.join(missing)}")
    try:
        event = msgspec.convert(raw, LookupEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise BadEventFile(f"{where}: {exc}") from None
    if (
        event.endpoint == "numbers"
        and event.outcome != "invalid"
        and not _E164.fullmatch(event.number)
    ):
        # Read as no number at all, a scan written as "22200100" would replay clean.
        raise BadEventFile(
            f"{where}: number {event.number[:40]!r} is not E.164 (write it as +4722200100)"
        )
    if event.ts.tzinfo is not None:
        event = msgspec.structs.replace(event, ts=event.ts.astimezone(UTC).replace(tzinfo=None))
    return event


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
    if _is_parquet(path):
        import pyarrow.parquet as pq  # noqa: PLC0415 (only needed for Parquet input)

        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise BadEventFile(f"{path}: not a readable Parquet file: {exc}") from None
        for index, row in enumerate(table.to_pylist(), start=1):
            yield f"{path.name} row {index}", {k: _text(v) for k, v in row.items()}
        return
    decoder = msgspec.json.Decoder(dict[str, object])
    with path.open("rb") as handle:
        for index, raw in enumerate(handle, start=1):
            line = raw.removeprefix(codecs.BOM_UTF8) if index == 1 else raw  # an editor's mark
            if not line.strip():
                continue
            try:
                yield f"{path.name}:{index}", decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise BadEventFile(f"{path.name}:{index}: not a JSON object: {exc}") from None


def _is_parquet(path: Path) -> bool:
    """Parquet by its magic bytes, whatever the file is called."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError as exc:
        raise BadEventFile(f"{path}: cannot read: {exc.strerror}") from None


def _text(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def replay(events: Path, out: Path, policy: Policy = DEFAULT_POLICY) -> int:
    """Write the findings of an events file; returns how many."""
    engine = Engine(policy)
    encoder = msgspec.json.Encoder()
    count = 0
    if not out.parent.is_dir():
        raise BadEventFile(f"{out}: the folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("wb") as handle:
            for event in read_events(events):
                for finding in engine.observe(event):
                    handle.write(encoder.encode(finding) + b"\n")
                    count += 1
        tmp.replace(out)
    finally:
        # A failed replay leaves no half-written findings behind.
        tmp.unlink(missing_ok=True)
    return count


def decode_findings(path: Path) -> list[Finding]:
    """Read a FINDINGS.jsonl file back."""
    decoder = msgspec.json.Decoder(Finding)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
