"""The time zones of the service's times.

Operators date their records in Norway's local time, and the warehouse and the
snapshot keep those dates as local wall-clock times; every time the service
records itself (ingests, lookups, cases, decisions) is kept in UTC. Both are
stored without an offset, and given one when served, as RFC 3339 asks.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

OSLO: Final = ZoneInfo("Europe/Oslo")


def oslo(moment: datetime) -> datetime:
    """A local time in Norway, as stored, with its offset (+01:00 or +02:00)."""
    # The stored time keeps no fold: one in the autumn's repeated hour reads as the
    # first of the two (summer time).
    return _zoned(moment, OSLO)


def utc(moment: datetime) -> datetime:
    """A time the service recorded, as stored, with its offset (+00:00)."""
    return _zoned(moment, UTC)


def in_utc(rows: list[dict[str, Any]], *fields: str) -> list[dict[str, Any]]:
    """Rows as served: copies with their stored times (`fields`, UTC or None) offset."""
    return [
        {**row, **{field: utc(row[field]) for field in fields if row[field] is not None}}
        for row in rows
    ]


def _zoned(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is not None:
        # Stored times are naive: an aware one here came another way, and relabelling it
        # would shift it silently.
        raise ValueError(f"{moment.isoformat()} already has its zone")
    return moment.replace(tzinfo=zone)
