"""Operator file names: `<operator>_<kind>_<YYYYMMDDTHHMMSS>.<ext>[.gz]`."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from lookup.errors import FileRejected, RejectReason

_NAME = re.compile(
    r"(?P<operator>[a-z0-9-]+)_(?P<kind>[a-z]+)_(?P<stamp>\d{8}T\d{6})"
    r"\.(?P<format>[a-z]+)(?P<gzip>\.gz)?"
)
SIDECAR_SUFFIX = ".sha256"


class FileKind(StrEnum):
    """A complete directory, or changes only."""

    FULL = "full"
    DELTA = "delta"


class FileFormat(StrEnum):
    """Row format of an operator file."""

    CSV = "csv"
    JSONL = "jsonl"


class OperatorFileName(msgspec.Struct, frozen=True):
    """What an operator file's name says about it."""

    operator: str
    kind: FileKind
    produced_at: datetime
    """When the operator produced the file (Europe/Oslo wall clock, naive)."""
    format: FileFormat
    gzip: bool


def parse_file_name(name: str) -> OperatorFileName:
    """Read an operator file name, or say precisely what is wrong with it."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise FileRejected(
            RejectReason.BAD_FILE_NAME,
            f"{name!r} does not follow <operator>_<full|delta>_<YYYYMMDDTHHMMSS>.<csv|jsonl>[.gz]",
        )
    try:
        kind = FileKind(match["kind"])
    except ValueError:
        raise FileRejected(
            RejectReason.BAD_FILE_NAME, f"kind {match['kind']!r} is neither 'full' nor 'delta'"
        ) from None
    try:
        file_format = FileFormat(match["format"])
    except ValueError:
        raise FileRejected(
            RejectReason.BAD_FILE_NAME, f"extension {match['format']!r} is neither csv nor jsonl"
        ) from None
    try:
        produced_at = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S")
    except ValueError:
        raise FileRejected(
            RejectReason.BAD_FILE_NAME, f"timestamp {match['stamp']!r} is not a real date and time"
        ) from None
    return OperatorFileName(
        operator=match["operator"],
        kind=kind,
        produced_at=produced_at,
        format=file_format,
        gzip=match["gzip"] is not None,
    )


def is_candidate(path: Path) -> bool:
    """Whether a file in an inbox is meant as an operator file (sidecars are not). An
    extension in capitals (`.CSV`) is one too: its name is then rejected, and said why."""
    name = path.name.lower()
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
        return False
    return name.endswith((".csv", ".jsonl", ".csv.gz", ".jsonl.gz"))


def why_ignored(entry: Path) -> str | None:
    """Why an entry of an inbox folder is not read, or None for an operator file or a
    sidecar beside its file (read with it)."""
    name = entry.name
    if entry.is_dir():
        # Folders are not searched: an operator file in one would be missed unseen.
        return "a folder: give it by name to read it"
    if name.endswith(SIDECAR_SUFFIX):
        if entry.with_name(name.removesuffix(SIDECAR_SUFFIX)).exists():
            return None
        return "a digest sidecar with no file beside it"
    if not is_candidate(entry):
        return "not an operator file name"
    if entry.is_symlink() and not entry.exists():
        return "a broken symbolic link: its target is missing, or links back to it"
    if not entry.is_file():
        # A pipe or device has no end a digest or a reject ratio could be judged at.
        return "not a regular file: a pipe or a device"
    return None


def sidecar_for(path: Path) -> Path:
    """The optional `.sha256` file beside an operator file."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


_TAGGED_DIGEST: Final = re.compile(r"SHA256 \(.*\) = ([0-9A-Fa-f]{64})", re.DOTALL)
HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")


def said_digest(sidecar: bytes) -> str:
    """What a sidecar's bytes give as the digest, lowercase (a SHA-256 if `HEX_DIGEST`
    matches it): as sha256sum writes it (`<hex>  <name>`, or `SHA256 (<name>) = <hex>`
    with --tag), or as PowerShell does, a byte-order mark first."""
    text = sidecar.decode("utf-8-sig", errors="replace").strip()
    tagged = _TAGGED_DIGEST.fullmatch(text)
    return tagged[1].lower() if tagged else text.split()[0].lower() if text else ""


def sidecar_digest(path: Path) -> str | None:
    """The SHA-256 an operator file's sidecar gives, or None: no sidecar, or one that
    cannot be read or gives no digest (ingest says which)."""
    try:
        said = said_digest(sidecar_for(path).read_bytes())
    except OSError:
        return None
    return said if HEX_DIGEST.fullmatch(said) else None
