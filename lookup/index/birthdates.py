"""Dates of birth as snapshots keep them: a keyed digest per listing, never the date.

A snapshot only has to answer `?birth_date=` with yes or no, so it need not
hold the date. Each listing keeps a 64-bit BLAKE2b digest of its number and
date under a secret key. A snapshot copied away from its data directory gives
no date of birth, not even to someone trying every day of a century (about
40,000 tries), as that takes the key. The key is made at first use and kept
in the data directory, outside the snapshots folder, readable by its owner
only.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa

from lookup.errors import SnapshotUnavailable

KEY_FILE: Final = "birth-date.key"
KEY_BYTES: Final = 32
NONE: Final = 0
"""Stored for a listing without a date of birth (a digest that comes out as 0 is stored
as 1: one date in 2**64 matches a neighbour's digest, which no one can tell)."""


def load_key(data_dir: Path) -> bytes:
    """The data directory's key, made on first use (two processes making it at once
    agree on one)."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _make_key(path)
    except OSError as exc:
        raise SnapshotUnavailable(f"cannot read the date-of-birth key {path}: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise SnapshotUnavailable(
            f"the date-of-birth key {path} holds {len(key)} bytes, not {KEY_BYTES}: it is "
            "damaged. Remove it and run `lookup ingest` to publish under a new key"
        )
    return key


def _make_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # A hard link never replaces a file: a process that lost the race reads the key
        # the winner put in place whole, never a half-written one.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def key_id(key: bytes) -> str:
    """A name for the key that gives nothing of it away: snapshots record which key
    their digests were made with."""
    return hashlib.blake2b(b"key id", key=key, digest_size=8).hexdigest()


def digest(key: bytes, number: str, born: date) -> int:
    """The stored form of a national number's date of birth (a signed 64-bit integer)."""
    message = f"{number}\x00{born.isoformat()}".encode()
    value = int.from_bytes(
        hashlib.blake2b(message, key=key, digest_size=8).digest(), "little", signed=True
    )
    return value or 1


def digests(key: bytes, numbers: pa.Array, births: pa.Array) -> pa.Array:
    """`digest` of each row, `NONE` where the date of birth is null."""
    return pa.array(
        [
            NONE if born is None else digest(key, number, born)
            for number, born in zip(numbers.to_pylist(), births.to_pylist(), strict=True)
        ],
        pa.int64(),
    )


def matches(key: bytes, number: str, stored: int, claimed: date) -> bool:
    """Whether a claimed date is the one a listing's digest was made of."""
    # The digest is made whether or not a date is on file, so the time taken does not
    # tell that either.
    return digest(key, number, claimed) == stored and stored != NONE
