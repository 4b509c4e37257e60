"""Personal data a later reservation supersedes: an older record of a number, from
another operator, keeps none of what the number's reservation withholds.

A number ported to an operator where its subscriber reserved it goes on being delivered,
name, address and date of birth, by the operator it left (until that one's files stop
naming it). A reserved number keeps only what honouring the reservation needs (number,
operator, valid_from, reservation), so such an older record loses its personal data; a
hidden address takes the address of the older records with it. What precedence reads
(operator, number, date, reservation) stays: the records go on losing as before.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lookup.ingest.records import Reservation
from lookup.ingest.rules import PRIVACY_RANK, privacy_rank_sql

PERSONAL: Final = (
    "kind",
    "first_name",
    "last_name",
    "business_name",
    "org_number",
    "street",
    "postcode",
    "city",
    "birth_date",
)
"""What a reserved number's records do not keep."""
ADDRESS: Final = ("street", "postcode", "city")
"""What an address-hidden number's records do not keep."""
_WITHHELD: Final = (
    (PRIVACY_RANK[Reservation.RESERVED], PERSONAL),
    (PRIVACY_RANK[Reservation.ADDRESS_HIDDEN], ADDRESS),
)
_STATEMENTS: Final = f"""
    SELECT number, operator, valid_from, {privacy_rank_sql()} AS rank
    FROM records WHERE reservation <> 'listed' AND dated_by_file IS NOT true
    UNION ALL
    SELECT number, operator, valid_from, {privacy_rank_sql()}
    FROM withdrawals WHERE reservation <> 'listed' AND dated_by_file IS NOT true
"""
"""Every reservation and hidden address the warehouse holds, records and withdrawals, as
their operators dated them: a broken row's, dated by its file, says when the service learnt
of it, which its operator's next whole row may put before the other's record again."""


def _superseded(rows: str, operator: str, key: str) -> str:
    """(`key` columns, rank) of the `rows` (number, valid_from, reservation; of `operator`)
    that another operator's reservation or hidden address, dated as late or later,
    outranks: the rank of the most private one."""
    return f"""
        SELECT {key}, max(s.rank) AS rank
        FROM {rows} x JOIN ({_STATEMENTS}) s
          ON s.number = x.number AND s.operator <> {operator} AND s.valid_from >= x.valid_from
        GROUP BY {key}, x.reservation
        HAVING max(s.rank) > {privacy_rank_sql("x.reservation")}
    """


def veil_staged(con: duckdb.DuckDBPyConnection, staged: pa.Table, operator: str | None) -> pa.Table:
    """A file's records (registered as `_staged`) without the personal data another
    operator's later reservation or hidden address supersedes: stored as they were, the
    records would differ from what the warehouse keeps every time the file is sent."""
    ranks = dict(
        con.execute(_superseded("_staged", "$op", "x.number"), {"op": operator}).fetchall()
    )
    if not ranks:
        return staged
    numbers = pa.array(list(ranks), pa.string())
    ranked = pc.take(
        pa.array(list(ranks.values()), pa.int8()), pc.index_in(staged["number"], numbers)
    )
    staged = staged.set_column(
        staged.schema.get_field_index("veiled"),
        "veiled",
        pc.max_element_wise(staged["veiled"], ranked, skip_nulls=True),
    )
    for at_least, columns in _WITHHELD:
        covered = pc.fill_null(pc.greater_equal(ranked, at_least), False)
        for name in columns:
            column = staged[name]
            blank = pa.nulls(len(staged), column.type)
            staged = staged.set_column(
                staged.schema.get_field_index(name),
                name,
                pc.if_else(covered, blank, column.combine_chunks()),
            )
    return staged


def veil(con: duckdb.DuckDBPyConnection) -> None:
    """Take from every stored record the personal data another operator's later
    reservation or hidden address supersedes (within the caller's transaction)."""
    for at_least, columns in _WITHHELD:
        kept = " OR ".join(f"r.{name} IS NOT NULL" for name in columns)
        con.execute(
            f"""
            UPDATE records r SET {", ".join(f"{name} = NULL" for name in columns)},
                veiled = greatest(r.veiled, v.rank)
            FROM ({_superseded("records", "x.operator", "x.operator, x.number")}) v
            WHERE r.operator = v.operator AND r.number = v.number AND v.rank >= {at_least}
            AND ({kept} OR r.veiled < v.rank)
            """
        ).fetchall()
