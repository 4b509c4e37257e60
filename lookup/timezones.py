"""The time zones of the service's times.

Operators date their records in Norway's local time, and the warehouse and the
snapshot keep those dates as local wall-clock times; every time the service
records itself (ingests, lookups, cases, decisions) is kept in UTC. Both are
stored without an offset, and given one when served, as RFC 3339 asks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

OSLO: Final = ZoneInfo("Europe/Oslo")


def oslo(moment: datetime) -> datetime:
    """A local time in Norway, as stored, with its offset (+01:00 or +02:00)."""
    return moment.replace(tzinfo=OSLO)


def utc(moment: datetime) -> datetime:
    """A time the service recorded, as stored, with its offset (+00:00)."""
    return moment.replace(tzinfo=UTC)
