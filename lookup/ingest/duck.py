"""Running DuckDB statements as the warehouse's parts do: each result read to its end."""

from __future__ import annotations

from typing import Any

import duckdb


def run(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> None:
    """Run statements to completion (DuckDB refuses new work beside an unread result)."""
    con.execute(sql, params).fetchall()


def first_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: object = None
) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None
