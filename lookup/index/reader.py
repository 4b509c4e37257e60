"""Serve lookups from the published snapshot: memory-mapped, binary search, no SQL.

`Snapshot` maps one immutable file; `SnapshotSource` holds the current one
and swaps in a newly published file. A request takes a reference to a
`Snapshot` once and uses only that object, so a swap never disturbs it.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from lookup.errors import SnapshotUnavailable
from lookup.index import birthdates
from lookup.index.search import NameIndex
from lookup.index.snapshot import (
    SCHEMA,
    TEXT_COLUMNS,
    Pointer,
    read_pointer,
    snapshot_path,
)
from lookup.numbers import to_key
from lookup.timezones import OSLO

log = logging.getLogger(__name__)
_EPOCH_DT: Final = datetime(1970, 1, 1, tzinfo=OSLO)
"""The snapshot's `valid_from` is Oslo wall-clock time; adding to an aware time keeps
the wall clock, and the listing carries Oslo's offset of its date."""


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """One listable number as the snapshot holds it (absent text is "")."""

    number: str
    number_type: str
    kind: str
    reservation: str
    first_name: str
    last_name: str
    business_name: str
    org_number: str
    street: str
    postcode: str
    city: str
    marketing_reserved: bool
    birth_check: int
    """Keyed digest of the date of birth, for yes/no verification only (`birthdates`)."""
    valid_from: datetime
    """When the operator's record took effect, in Oslo time (with its offset)."""


class _Text:
    """Zero-copy view of a one-chunk Arrow string column."""

    __slots__ = ("_data", "_offsets")

    def __init__(self, array: pa.Array) -> None:
        _, offsets, data = array.buffers()
        assert offsets is not None and array.offset == 0
        # memoryview indexing yields Python ints directly: several times cheaper
        # per row than indexing a numpy array and converting the scalar.
        self._offsets = memoryview(offsets).cast("B").cast("i")
        self._data = memoryview(data) if data is not None else memoryview(b"")

    def __getitem__(self, row: int) -> str:
        offsets = self._offsets
        return str(self._data[offsets[row] : offsets[row + 1]], "utf-8")


def _fixed_width(array: pa.Array, code: Literal["i", "q"]) -> memoryview[int]:
    """Zero-copy view of a one-chunk fixed-width column (`code` as in the struct module)."""
    assert array.offset == 0
    data = array.buffers()[1]
    return memoryview(data if data is not None else b"").cast("B").cast(code)


class _Bits:
    """Zero-copy view of a one-chunk boolean column (a bitmap, least significant bit first)."""

    __slots__ = ("_bytes",)

    def __init__(self, array: pa.Array) -> None:
        assert array.offset == 0
        data = array.buffers()[1]
        self._bytes = memoryview(data if data is not None else b"").cast("B")

    def __getitem__(self, row: int) -> bool:
        return bool(self._bytes[row >> 3] >> (row & 7) & 1)


class Snapshot:
    """One published snapshot, memory-mapped read-only.

    Opened with the data directory's date-of-birth key, it answers `born_on`;
    a snapshot digested under another key is refused then, as every check
    would answer no.
    """

    def __init__(self, path: Path, birth_key: bytes | None = None) -> None:
        try:
            source = pa.memory_map(str(path), "r")
            table = pa.ipc.open_file(source).read_all()
            # Every offset and string checked once, here: the request path reads the
            # buffers unchecked, and a damaged file crashed the server (a segfault).
            table.validate(full=True)
            metadata = table.schema.metadata or {}
            name = metadata.get(b"snapshot", path.stem.encode()).decode()
            published_key = metadata.get(b"birth_key", b"").decode()
        except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
            # A damaged file's metadata too: undecodable, it crashed the server's start.
            raise SnapshotUnavailable(f"cannot read snapshot {path.name}: {exc}") from exc
        if not table.schema.equals(SCHEMA, check_metadata=False):
            raise SnapshotUnavailable(
                f"snapshot {path.name} has an unexpected schema (written by another version?)"
            )
        table = table.combine_chunks()
        self.path = path
        self.name = name
        if birth_key is not None and published_key != birthdates.key_id(birth_key):
            raise SnapshotUnavailable(
                f"snapshot {self.name} was not published under this data directory's "
                f"date-of-birth key ({birthdates.KEY_FILE} replaced, or the snapshot written "
                "by an older version)"
            )
        self._birth_key = birth_key
        self.size = len(table)
        self._table = table
        self._names: NameIndex | None = None
        columns = {
            field.name: chunks.chunk(0) if chunks.num_chunks else pa.array([], field.type)
            for field, chunks in zip(table.schema, table.columns, strict=True)
        }
        # bisect over a memoryview compares Python ints in C, without numpy's
        # per-call dispatch: the cheaper binary search for one key at a time.
        self._keys = _fixed_width(columns["key"], "q")
        keys = columns["key"].to_numpy(zero_copy_only=False)
        if keys.size > 1 and not bool((keys[1:] > keys[:-1]).all()):
            # A binary search needs them in order: damage there (no offset or string to
            # check) answered a listed number with 404, unseen.
            raise SnapshotUnavailable(
                f"cannot read snapshot {path.name}: its numbers are out of order (damaged)"
            )
        self._text = {name: _Text(columns[name]) for name in TEXT_COLUMNS}
        self._marketing = _Bits(columns["marketing_reserved"])
        self._birth = _fixed_width(columns["birth_check"], "q")
        self._valid_from = _fixed_width(columns["valid_from"], "q")

    @property
    def published_at(self) -> datetime | None:
        """When it was published (its name begins with the time, UTC), if its name says."""
        try:
            return datetime.strptime(self.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<Snapshot {self.name} listings={self.size}>"

    def find(self, national: str) -> Listing | None:
        """The listing of a normalized national number, or None."""
        key = to_key(national)
        keys = self._keys
        row = bisect_left(keys, key)
        if row >= self.size or keys[row] != key:
            return None
        return self.listing(row)

    def number(self, row: int) -> str:
        """The national number at a row of the snapshot."""
        return self._text["number"][row]

    def listing(self, row: int) -> Listing:
        """The listing at a row of the snapshot."""
        text = self._text
        return Listing(
            number=text["number"][row],
            number_type=text["number_type"][row],
            kind=text["kind"][row],
            reservation=text["reservation"][row],
            first_name=text["first_name"][row],
            last_name=text["last_name"][row],
            business_name=text["business_name"][row],
            org_number=text["org_number"][row],
            street=text["street"][row],
            postcode=text["postcode"][row],
            city=text["city"][row],
            marketing_reserved=self._marketing[row],
            birth_check=self._birth[row],
            valid_from=_EPOCH_DT + timedelta(microseconds=self._valid_from[row]),
        )

    def born_on(self, listing: Listing, claimed: date) -> bool:
        """Whether a claimed date is the listing's date of birth (false when none is on file)."""
        if self._birth_key is None:
            raise SnapshotUnavailable(f"snapshot {self.name} was opened without its key")
        return birthdates.matches(self._birth_key, listing.number, listing.birth_check, claimed)

    def table(self) -> pa.Table:
        """The whole snapshot as an Arrow table (for indexes built at load)."""
        return self._table

    @property
    def names(self) -> NameIndex:
        """The name search index, built on first use (the source builds it before swapping)."""
        if self._names is None:
            table = self._table
            full = pc.if_else(
                pc.equal(table["kind"], "person"),
                pc.binary_join_element_wise(table["first_name"], table["last_name"], " "),
                table["business_name"],
            )
            self._names = NameIndex(full, table["city"])
        return self._names


def unreadable(folder: Path, pointer: Pointer, birth_key: bytes | None = None) -> str | None:
    """Why the snapshot a pointer names cannot be served (missing, damaged, or digested
    under another key than `birth_key`), or None when it can."""
    try:
        Snapshot(snapshot_path(folder, pointer), birth_key)
    except SnapshotUnavailable as exc:
        return str(exc)
    return None


class SnapshotSource:
    """The snapshot a process serves, swapped when a new one is published."""

    def __init__(self, folder: Path, data_dir: Path) -> None:
        self.folder = folder
        self.data_dir = data_dir
        """Where the date-of-birth key is (read at each new publish: a replaced key is
        followed without a restart)."""
        self._current: Snapshot | None = None
        self._pointer: Pointer | None = None
        self._failure: str | None = None
        """Why the published snapshot could not be loaded (logged once, not every poll)."""

    @property
    def current(self) -> Snapshot:
        """The snapshot to answer from; raises when none is published yet."""
        snapshot = self._current
        if snapshot is None:
            if self._failure is not None:
                raise SnapshotUnavailable(
                    f"the published snapshot cannot be read ({self._failure}); "
                    "publish a new one with `lookup ingest`"
                )
            raise SnapshotUnavailable("no snapshot has been published yet; run `lookup ingest`")
        return snapshot

    @property
    def ready(self) -> bool:
        """Whether a snapshot is loaded."""
        return self._current is not None

    @property
    def failure(self) -> str | None:
        """Why the newest published snapshot is not the one served, if it is not."""
        return self._failure

    def refresh(self) -> bool:
        """Load the published snapshot if it changed; True when a new one was swapped in.

        A pointer naming a missing or unreadable file is logged (once) and ignored:
        the snapshot already loaded goes on serving.
        """
        try:
            pointer = read_pointer(self.folder)
            if pointer is None or pointer == self._pointer:
                return False
            key = birthdates.load_key(self.data_dir)
            snapshot = Snapshot(snapshot_path(self.folder, pointer), key)
            snapshot.names  # noqa: B018 (built here, off the request path, before the swap)
        except SnapshotUnavailable as exc:
            if str(exc) != self._failure:
                self._failure = str(exc)
                serving = self._current.name if self._current is not None else "nothing"
                log.error("keeping %s: %s", serving, exc)
            return False
        self._failure = None
        self._current, self._pointer = snapshot, pointer
        log.info("serving snapshot %s (%d listings)", snapshot.name, snapshot.size)
        return True
