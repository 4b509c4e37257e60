"""Checks of query parameters that several handlers or the error mapping share."""

from __future__ import annotations

from typing import Any, Final

from litestar import Request

from lookup.errors import InvalidParameter
from lookup.numbers import shown
from lookup.text import first_bidi_control, first_control, without_format

WHOLE_NUMBER: Final = "must be a whole number written in digits (20, not 020, 2.0 or twenty)"
"""What an integer parameter written any other way is told."""


LARGEST_ID: Final = 2**63 - 1
"""The largest id a path takes: ids are DuckDB BIGINTs."""


def _plain_digits(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and (raw == "0" or not raw.startswith("0"))


def check_whole_number(parameter: str, raw: str | None) -> None:
    """Refuse an integer parameter not written in plain digits: msgspec reads `2.0` and
    `1e1` as whole numbers, which a client meant otherwise (or not at all)."""
    if raw is not None and not _plain_digits(raw):
        raise InvalidParameter(parameter, f"query parameter {parameter!r}: {WHOLE_NUMBER}")


def path_id(parameter: str, raw: str) -> int:
    """An id in a path, written in plain digits: Python's `int` (Litestar's `:int`) reads
    `+1`, `01` and other scripts' digits (`١`, `１`) as ids, and a decision recorded on
    a case given so was not the case the client wrote."""
    if not _plain_digits(raw):
        raise InvalidParameter(parameter, f"{parameter} {shown(raw)!r} {WHOLE_NUMBER}")
    # Ids are BIGINT; past 4,300 digits `int` itself refuses (CPython's guard), a 500.
    if len(raw) > len(str(LARGEST_ID)) or int(raw) > LARGEST_ID:
        raise InvalidParameter(
            parameter, f"{parameter} {shown(raw)!r} is larger than any id ({LARGEST_ID:,})"
        )
    return int(raw)


def check_query(request: Request[Any, Any, Any], *parameters: str) -> None:
    """Refuse a query parameter the endpoint does not take (a misspelt `nmae` would be
    ignored, and the answer taken for one to the query meant), or one given more than once
    (Litestar binds the last, and which one the client meant cannot be told)."""
    if not request.scope["query_string"]:  # most lookups: no query to parse
        return
    given = request.query_params
    for parameter in given:
        if parameter not in parameters:
            name = shown(parameter)
            raise InvalidParameter(
                name,
                f"unknown query parameter {name!r}: this endpoint takes "
                + (", ".join(parameters) if parameters else "none"),
            )
    for parameter in parameters:
        if len(given.getall(parameter, [])) > 1:
            raise InvalidParameter(
                parameter, f"query parameter {parameter!r} is given more than once"
            )


def check_text(parameter: str, text: str) -> None:
    """Refuse what no name holds: a byte the URL did not encode as UTF-8 (decoded as
    U+FFFD, it would match nothing, silently), a control character or a text direction
    control."""
    if "\ufffd" in text:
        raise InvalidParameter(
            parameter,
            f"{parameter} is not UTF-8: percent-encode the UTF-8 bytes of each letter "
            "(ø is %C3%B8)",
        )
    # Tabs and line breaks are spaces to a name (one pasted from a spreadsheet).
    control = first_control(text, allowed="\t\n\r")
    if control is not None:
        raise InvalidParameter(
            parameter, f"{parameter} must not contain control characters (U+{ord(control):04X})"
        )
    # No name holds one, and the query is echoed and kept in the lookup log, which a
    # compliance officer reads: an override (U+202E) would show it as other text there.
    bidi = first_bidi_control(text)
    if bidi is not None:
        raise InvalidParameter(
            parameter, f"{parameter} must not contain text direction controls (U+{ord(bidi):04X})"
        )


def check_length(parameter: str, text: str, least: int, most: int) -> None:
    """Refuse text of fewer than `least` or more than `most` characters that show: spaces
    around it and format characters (a soft hyphen, which matching leaves out) not counted."""
    if not least <= len(without_format(text).strip()) <= most:
        raise InvalidParameter(
            parameter,
            f"{parameter} must be {least} to {most} characters (spaces around it and "
            "invisible ones, such as a soft hyphen, not counted)",
        )
