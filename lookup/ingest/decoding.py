"""Turning an operator file's bytes into text: gzip, encodings, and a cut gzip's whole lines."""

from __future__ import annotations

import re
import zlib
from typing import Final

from lookup.errors import FileRejected, RejectReason


def decode(data: bytes, *, gzipped: bool, limit: int) -> str:
    """Unpack and decode a file: UTF-8 (with or without BOM), else Windows-1252/ISO-8859-1;
    one unpacking to more than `limit` bytes is refused."""
    if gzipped:
        if not data:  # gzip reads no bytes as no members, and would unpack them to nothing
            raise FileRejected(
                RejectReason.UNREADABLE, "not a valid gzip file: it is empty (0 bytes)"
            )
        if len(data) >= 2 and not data.startswith(GZIP_MAGIC):
            _refuse_other_forms(data, gzipped=False)  # said as what it is: UTF-16, a zip
            raise FileRejected(
                RejectReason.UNREADABLE,
                "not a valid gzip file: named .gz, but its content is not gzip-compressed",
            )
        try:
            data = _gunzip(data, limit)
        except zlib.error as exc:
            raise FileRejected(RejectReason.UNREADABLE, f"not a valid gzip file: {exc}") from exc
    _refuse_other_forms(data, gzipped=gzipped)
    # One byte-order mark, or several (an export that added its own to one it copied).
    while data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Decided line by line: an export appended to by two systems can mix both
        # encodings, and one Latin-1 line must not garble every UTF-8 name around it.
        # A newline byte never occurs inside a UTF-8 sequence, so the split is safe.
        return "\n".join(_decode_line(line) for line in data.split(b"\n"))


GZIP_MAGIC: Final = b"\x1f\x8b"
"""The first bytes of every gzip file."""
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_GUNZIP_STEP: Final = 16 * 2**20
"""Bytes unpacked at a time."""


def _gunzip(data: bytes, limit: int, *, cut_short: bool = False) -> bytes:
    """Every member of a gzip file, unpacked a bounded step at a time: a bomb is refused
    once it passes `limit`, before it takes the memory it would unpack to. With
    `cut_short`, a file that ends before its end-of-stream marker gives its whole lines."""
    parts: list[bytes] = []
    size = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)  # gzip's header and trailer, checked
        pending = rest
        while pending and not inflater.eof:
            # A step at a time: the memory a bomb takes before it is refused is one step's.
            part = inflater.decompress(pending, min(_GUNZIP_STEP, limit + 1 - size))
            size += len(part)
            if size > limit:
                raise FileRejected(
                    RejectReason.UNREADABLE,
                    f"it unpacks to more than {limit:,} bytes (LOOKUP_INGEST_MAX_BYTES): not read",
                )
            parts.append(part)
            pending = inflater.unconsumed_tail
        if not inflater.eof and cut_short:
            # Up to its last line break: the line the cut went through is no row (a number
            # cut short can read as another, `4791234567` as 47912345).
            whole = b"".join(parts)
            return whole[: max(whole.rfind(b"\n"), whole.rfind(b"\r")) + 1]
        if not inflater.eof:
            raise FileRejected(
                RejectReason.UNREADABLE,
                "not a valid gzip file: it ends before its end-of-stream marker (cut short)",
            )
        # NULs after a member pad a transfer's last block (gzip(1) reads past them too).
        rest = inflater.unused_data.lstrip(b"\x00")
    return b"".join(parts)


def readable_part(data: bytes, *, gzipped: bool, limit: int) -> str | None:
    """The text a file `decode` refused still holds, for the reservations in it: a gzip
    file cut short unpacked to its last whole line, plain text named .gz, UTF-16 text;
    None for any other (empty, a bomb, a zip archive)."""
    if gzipped and data.startswith(GZIP_MAGIC):
        try:
            data = _gunzip(data, limit, cut_short=True)
        except (zlib.error, FileRejected):
            return None  # broken before its first line, or a bomb
    if not data[:200].strip(b"\x00"):
        return None  # zero-filled
    if _is_utf16(data):
        return _utf16(data)
    if not gzipped:
        return None
    try:
        return decode(data, gzipped=False, limit=limit)
    except FileRejected:
        return None


def _utf16(data: bytes) -> str:
    """UTF-16 text, by its byte-order mark or, without one, by which bytes are NUL (an
    ASCII digit or letter has a NUL high byte). A character it cannot read reads as
    U+FFFD, which rejects that row alone."""
    if data.startswith(_UTF16_BOMS):
        codec = "utf-16"
    else:
        head = data[:200]
        codec = "utf-16-le" if head[1::2].count(0) >= head[0::2].count(0) else "utf-16-be"
    return data[: len(data) // 2 * 2].decode(codec, errors="replace")


def _refuse_other_forms(data: bytes, *, gzipped: bool) -> None:
    """Refuse, saying what it is, a file in a form the contract does not allow, which
    would otherwise be read as text with no header row."""
    form = None
    head = data[:200]
    if head and not head.strip(b"\x00"):
        raise FileRejected(
            RejectReason.UNREADABLE,
            f"the file's first {len(head)} bytes are all NUL (zero-filled: a transfer that "
            "failed, or space set aside and never written)",
        )
    if _is_utf16(data):
        form = 'UTF-16 text (as Excel\'s "Unicode text" saves it)'
    elif data.startswith(GZIP_MAGIC):
        form = "gzip-compressed, but not named .gz" if not gzipped else "gzip-compressed twice"
    elif data.startswith(b"PK\x03\x04"):
        form = "a zip archive"
    if form is not None:
        raise FileRejected(
            RejectReason.UNREADABLE,
            f"the file is {form}: the contract's files are UTF-8 or ISO-8859-1 text, "
            "gzip-compressed only when named .gz",
        )


def _is_utf16(data: bytes) -> bool:
    """Whether the bytes are UTF-16 text, with a byte-order mark or without."""
    return data.startswith(_UTF16_BOMS) or _every_other_nul(data[:200])


def _every_other_nul(head: bytes) -> bool:
    """Whether the bytes read as UTF-16 without a byte-order mark: Latin letters and
    digits, each with a NUL beside it. NULs elsewhere are a broken row's (its rejection
    says so), not the file's form."""
    for half in (head[0::2], head[1::2]):
        if len(half) >= 10 and half.count(0) >= 0.9 * len(half):
            return True
    return False


_UTF8_LETTER: Final = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
"""A character of two bytes or more as UTF-8 writes it (`ø` is C3 B8), which a Latin-1 or
Windows-1252 name all but never holds."""


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _UTF8_LETTER.search(line):
        # UTF-8 with a stray byte (a cut or a bit flipped): read as Windows-1252, every
        # letter of the line would be garbled (`BjÃ¸rn`, said to be encoded twice). The
        # stray byte reads as U+FFFD, which rejects the row its field is in, saying so.
        return line.decode("utf-8", errors="replace")
    try:
        # Exports labelled ISO-8859-1 are mostly Windows-1252 (it adds the euro sign and
        # typographic quotes where Latin-1 has unused control codes).
        return line.decode("cp1252")
    except UnicodeDecodeError:
        # Every byte decodes as Latin-1, so the text is never lost.
        return line.decode("iso-8859-1")
