"""Precedence rules: the pure Python rule and the warehouse's SQL agree."""

from __future__ import annotations

from datetime import datetime
from itertools import permutations

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lookup.ingest.records import Action, Record, Reservation
from lookup.ingest.rules import (
    PRECEDENCE_SQL,
    deduplicate,
    said_before_leaving,
    winner_across_operators,
)
from lookup.numbers import NumberType

_DAYS = [datetime(2025, 1, d) for d in (1, 2, 3)]


def record(number: str, when: datetime, reservation: Reservation, **kw: object) -> Record:
    return Record(
        number=number,
        number_type=NumberType.MOBILE,
        reservation=reservation,
        valid_from=when,
        **kw,  # type: ignore[arg-type]
    )


def test_newest_wins_then_the_most_private() -> None:
    old_listed = record("40000000", _DAYS[0], Reservation.LISTED, first_name="old")
    new_listed = record("40000000", _DAYS[1], Reservation.LISTED, first_name="new")
    new_hidden = record("40000000", _DAYS[1], Reservation.ADDRESS_HIDDEN)
    new_reserved = record("40000000", _DAYS[1], Reservation.RESERVED)
    assert deduplicate([old_listed, new_listed]) == ([new_listed], 1)
    assert deduplicate([new_listed, old_listed]) == ([new_listed], 1)
    assert deduplicate([new_reserved, new_hidden, new_listed])[0] == [new_reserved]
    assert deduplicate([new_listed, new_hidden])[0] == [new_hidden]


def test_a_delete_outranks_an_upsert_of_the_same_moment() -> None:
    upsert = record("40000000", _DAYS[1], Reservation.LISTED)
    delete = record("40000000", _DAYS[1], Reservation.RESERVED, action=Action.DELETE)
    assert deduplicate([upsert, delete])[0] == [delete]


def test_what_a_file_said_of_a_number_it_then_deletes_is_kept_most_private_first() -> None:
    hidden = record("40000000", _DAYS[0], Reservation.ADDRESS_HIDDEN)
    reserved = record("40000000", _DAYS[0], Reservation.RESERVED)
    listed = record("40000000", _DAYS[1], Reservation.LISTED)
    delete = record("40000000", _DAYS[2], Reservation.RESERVED, action=Action.DELETE)
    rows = [hidden, reserved, listed, delete]
    assert said_before_leaving(rows, deduplicate(rows)[0]) == [reserved]
    # Not left: the newest row stands, and nothing was said before a delete.
    kept = [reserved, listed]
    assert said_before_leaving(kept, deduplicate(kept)[0]) == []
    assert said_before_leaving([listed, delete], [delete]) == []


def test_a_broken_rows_file_date_yields_to_a_whole_row_as_private() -> None:
    # A broken row's reservation is dated by its file (the newest date in it): beside a
    # whole row of the number as private, the whole row and its own date win, in any order;
    # beside a less private one, the broken row's reservation wins.
    broken = record("40000000", _DAYS[2], Reservation.RESERVED, dated_by_file=True)
    whole = record("40000000", _DAYS[0], Reservation.RESERVED)
    listed = record("40000000", _DAYS[1], Reservation.LISTED)
    assert deduplicate([broken, whole])[0] == [whole]
    assert deduplicate([whole, broken])[0] == [whole]
    assert deduplicate([listed, broken])[0] == [broken]
    assert deduplicate([broken, listed])[0] == [broken]
    # Whatever the order of three rows: a newer whole listing beats the older whole
    # reservation, and the broken row's reservation (dated by the file) beats the listing.
    newer = record("40000000", _DAYS[1], Reservation.LISTED, first_name="newer")
    for rows in permutations([broken, whole, newer]):
        assert deduplicate(rows) == ([broken], 2)
    # A delete is no reservation: between the two, the dates decide.
    delete = record("40000000", _DAYS[0], Reservation.RESERVED, action=Action.DELETE)
    assert deduplicate([delete, broken])[0] == [broken]
    assert deduplicate([broken, delete])[0] == [broken]


_candidates = st.lists(
    st.tuples(
        st.sampled_from(["telenor", "telia", "ice", "smb-mobil"]),
        st.sampled_from(_DAYS),
        st.sampled_from(list(Reservation)),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c[0],
)


@settings(max_examples=60, deadline=None)
@given(_candidates)
def test_sql_and_python_pick_the_same_winner(candidates: list[tuple[str, datetime, str]]) -> None:
    python = winner_across_operators(
        (operator, record("40000000", when, Reservation(reservation)))
        for operator, when, reservation in candidates
    )
    table = pa.table(
        {
            "operator": [c[0] for c in candidates],
            "valid_from": [c[1] for c in candidates],
            "reservation": [str(c[2]) for c in candidates],
        }
    )
    con = duckdb.connect()
    con.register("records", table)
    rows = con.execute(f"SELECT operator FROM records ORDER BY {PRECEDENCE_SQL} LIMIT 1").fetchall()
    con.close()
    assert rows[0][0] == python[0]
