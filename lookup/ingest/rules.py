"""Which record wins when one number is delivered more than once. Pure.

Within one file and across operators (porting) the same rule holds: the
newest `valid_from` wins; on a tie the more private record wins (reserved over
address hidden over listed). Ties beyond that go to the operator name, so the
outcome never depends on arrival order. `PRECEDENCE_SQL` states the same order
for the warehouse; a test holds the two together.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from lookup.ingest.records import Action, Record, Reservation

PRIVACY_RANK: Final = {
    Reservation.LISTED: 0,
    Reservation.ADDRESS_HIDDEN: 1,
    Reservation.RESERVED: 2,
}
# A delete in a delta outranks everything of the same moment: the number left.
_DELETE_RANK: Final = 3


def privacy_rank_sql(column: str = "reservation") -> str:
    """PRIVACY_RANK as a SQL expression over `column`."""
    return f"CASE {column} WHEN 'reserved' THEN 2 WHEN 'address_hidden' THEN 1 ELSE 0 END"


PRIVACY_RANK_SQL: Final = privacy_rank_sql()
PRECEDENCE_SQL: Final = f"valid_from DESC, {PRIVACY_RANK_SQL} DESC, operator ASC"


def precedence(record: Record) -> tuple[datetime, int]:
    """Sort key: the larger key wins."""
    rank = _DELETE_RANK if record.action is Action.DELETE else PRIVACY_RANK[record.reservation]
    return record.valid_from, rank


def winner_across_operators(candidates: Iterable[tuple[str, Record]]) -> tuple[str, Record]:
    """The (operator, record) that a number resolves to when several operators deliver it."""
    # Newest first, then most private, then operator name A-Z (as PRECEDENCE_SQL orders).
    return min(
        candidates,
        key=lambda item: (
            -(item[1].valid_from - datetime.min).total_seconds(),
            -precedence(item[1])[1],
            item[0],
        ),
    )


def deduplicate(records: Iterable[Record]) -> tuple[list[Record], int]:
    """One record per number (the winner), in first-seen order, and how many lost."""
    whole: dict[str, Record] = {}
    broken: dict[str, Record] = {}
    order: dict[str, None] = {}
    total = 0
    for record in records:
        total += 1
        order.setdefault(record.number)
        best = broken if record.dated_by_file else whole
        current = best.get(record.number)
        if current is None or precedence(record) > precedence(current):
            best[record.number] = record
    winners = [_settle(whole.get(number), broken.get(number)) for number in order]
    return winners, total - len(winners)


def _settle(whole: Record | None, broken: Record | None) -> Record:
    """The winner of a number's best whole row and its best broken row (dated by its file)."""
    if whole is None or broken is None:
        winner = whole or broken
        assert winner is not None  # one of the two holds the number
        return winner
    # A broken row's date is the file's: it tells when, not what held then. Beside a whole
    # row as private as it, the whole row and its own date are kept; a delete is no
    # reservation, and a less private row is judged by the dates as ever.
    if whole.action is Action.UPSERT and precedence(whole)[1] >= precedence(broken)[1]:
        return whole
    return broken if precedence(broken) > precedence(whole) else whole


def said_before_leaving(records: Iterable[Record], winners: Iterable[Record]) -> list[Record]:
    """Of the numbers a file deletes (a delete won), the most private reservation or hidden
    address the same file gave them before (a subscriber who reserved, then left the
    operator): applied before the delete, it goes on veiling other operators' older
    records, as it does when the two come in two files."""
    leaving = {record.number for record in winners if record.action is Action.DELETE}
    if not leaving:  # a full file, most deltas: nothing to read again
        return []
    said: dict[str, Record] = {}
    for record in records:
        if (
            record.number in leaving
            and record.action is Action.UPSERT
            and record.reservation is not Reservation.LISTED
        ):
            current = said.get(record.number)
            if current is None or precedence(record)[::-1] > precedence(current)[::-1]:
                said[record.number] = record
    return list(said.values())
