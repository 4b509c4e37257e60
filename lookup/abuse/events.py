"""Lookup events: what every answered request tells the abuse detector and the lookup log."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

import msgspec

Outcome = Literal["hit", "miss", "invalid"]
Endpoint = Literal["numbers", "search"]
OUTCOMES: Final = get_args(Outcome)
ENDPOINTS: Final = get_args(Endpoint)

EPOCH: Final = datetime(1970, 1, 1)
"""Events carry naive UTC times; seconds since this are what the detectors compute with."""


def utc_now() -> datetime:
    """The current time as naive UTC, as events carry it.

    On the request path of every lookup: a third of what
    `datetime.now(UTC).replace(tzinfo=None)` costs, which builds and drops a zone.
    """
    return EPOCH + timedelta(microseconds=time.time_ns() // 1000)


def national_number(e164: str) -> int | None:
    """A Norwegian E.164 number's national digits as an int; None for anything else."""
    digits = e164[3:]
    if not e164.startswith("+47") or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


class LookupEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One answered lookup (or search). The replay file format uses these field names.

    Untracked by the cycle collector (`gc=False`: it holds only strings and a
    datetime), so queued events do not make the serving process collect more often.
    """

    ts: datetime
    account: str
    key: str
    ip: str
    number: str
    """E.164 for number lookups; the raw input when invalid; the query for searches."""
    outcome: Outcome
    endpoint: Endpoint = "numbers"
    held: bool | None = None
    """Refused (403) as in a block held for the account: its outcome is what the number
    would have answered, for the detectors, but nothing was disclosed. None: not known (an
    event of a server from before it was said, on the stream to a newer monitor). Not part
    of the replay's events (the detectors read it not)."""
    listings: int | None = None
    """For a search: how many listings it returned. None for a number lookup, and for a
    search of a server from before it was said."""
    full_page: bool | None = None
    """For a search: its results stopped at its `limit`, more matched than it returned."""

    def looked_up(self) -> int | None:
        """The Norwegian number whose lookup this event answered (national digits); None
        for a search or invalid input, which the scan rules do not count."""
        if self.endpoint != "numbers" or self.outcome == "invalid":
            return None
        return national_number(self.number)


class EventBuffer:
    """Events collected on the request path and handed over in batches.

    `emit` is a list append: the request never waits for the detector or a
    disk write. A background task calls `drain` and does the slow work.
    """

    def __init__(
        self, limit: int = 1_000_000, on_drop: Callable[[int], object] | None = None
    ) -> None:
        self._events: list[LookupEvent] = []
        self._limit = limit
        self.dropped = 0
        """Events refused because the consumer fell `limit` events behind (counted, not silent)."""
        self._on_drop = on_drop

    def emit(self, event: LookupEvent) -> None:
        """Queue an event (O(1), no I/O)."""
        if len(self._events) >= self._limit:
            self.drop(1)
            return
        self._events.append(event)

    def drop(self, count: int) -> None:
        """Count events given up on, here or further on their way (never silently)."""
        self.dropped += count
        if self._on_drop is not None:
            self._on_drop(count)

    def drain(self) -> list[LookupEvent]:
        """Take every queued event, oldest first."""
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._events)
