"""JSON objects that give a key twice.

A decoder keeps the last value silently: `"reservation": "reserved",
"reservation": "listed"` would list a subscriber, and `"decision": "reinstate",
"decision": "warn"` record a decision the officer did not mean. Which value the
sender meant cannot be told, so every reader of the service's inputs refuses them.
"""

from __future__ import annotations

import json
import re
from typing import Final

import msgspec

decode_object: Final = msgspec.json.Decoder(dict[str, object]).decode
"""A JSON object's text as a dict (a key given twice keeps its last value: see below)."""
_KEY_END: Final = re.compile(r'"\s*:')


def repeated_key(text: str, keys: int) -> tuple[str, list[tuple[str, object]]] | None:
    """A key the object in `text` (decoded as `keys` keys) gives twice, if any, with all of
    the object's pairs (escapes decoded: `"\\u0072eservation"` is `reservation`)."""
    if len(_KEY_END.findall(text)) <= keys:
        return None  # the common case: no more key ends than keys read
    # Text that looks like a key may sit inside a value: parse to be sure.
    try:
        pairs = json.loads(text, object_pairs_hook=list)
    except ValueError:
        return None
    if not isinstance(pairs, list):
        return None
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return str(key), pairs
        seen.add(key)
    return None
