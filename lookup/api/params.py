"""Checks of the free-text query parameters (`name`, `city`) that every handler shares."""

from __future__ import annotations

from lookup.errors import InvalidParameter
from lookup.text import first_control


def check_text(parameter: str, text: str) -> None:
    """Refuse what no name holds: a byte the URL did not encode as UTF-8 (decoded as
    U+FFFD, it would match nothing, silently) or a control character."""
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
