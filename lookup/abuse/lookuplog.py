"""The lookup log: every answered lookup, kept for the detectors' warm restart, for
compliance's timelines and block coverage, and for data subjects' requests.

Lookups of an account with an open case are under legal hold: retention
sweeps and erasures leave them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from lookup.abuse.cases import Condition
from lookup.abuse.events import LookupEvent, utc_now
from lookup.abuse.state import ERASED
from lookup.abuse.storefile import StoreFile

_LOG_SCHEMA: Final = pa.schema(
    [("ts", pa.timestamp("us"))]
    + [(name, pa.string()) for name in ("account", "key", "ip", "number", "outcome", "endpoint")]
    + [("held", pa.bool_()), ("listings", pa.int32()), ("full_page", pa.bool_())]
)
"""Columns of `lookup_log`, in the order of `LookupEvent`'s fields. `held` is null in the
rows logged before it was (`holds.mark_held` tells them by the findings' times), and so are
`listings` and `full_page` (what a search returned; null for number lookups too)."""
TIMELINE_BEFORE: Final = 50
"""Lookups a case's timeline shows up to each finding (as many as its evidence quotes)."""
TIMELINE_AFTER: Final = 10
"""Lookups it shows after each finding (what the account did next)."""
TIMELINE_REACH: Final = timedelta(days=1)
"""How far from a finding a lookup may be to count as near it."""
LATE_ERASURE: Final = timedelta(hours=1)
"""How long an erased number is kept at least (`late_erasures`) to erase its lookups that reach
the log after the erasure: gathered by the monitor, queued in a server, or held for a monitor
that was restarting (the server sends them again). The hourly sweep after that deletes it."""
CLOCK_MARGIN: Final = timedelta(seconds=5)
"""How far a serving process's clock may run ahead of the monitor's: a lookup made before an
erasure may carry a time up to this much after it."""
_ARRIVING: Final = "arriving_lookups"
"""A temporary table where a batch with lookups of an erased number is erased before it is
logged."""
TIMELINE_MOMENTS: Final = 10
"""Findings a timeline covers at most (the first and the latest): at most 600 rows."""
_TIMELINE_COLUMNS: Final = (
    "ts",
    "key",
    "ip",
    "number",
    "outcome",
    "endpoint",
    "held",
    "listings",
    "full_page",
)


_FULL_WIDTH_DIGITS: Final = "".join(chr(0xFF10 + digit) for digit in range(10))


_NUMBER_RUN: Final = r"[0-9+(][0-9 ()./-]*[0-9]"
"""A number as a query may write it: digits, spaces and the marks numbers are written with
(`+47 (0)22 20 24 00`, `22.20.24.00`), not letters or commas."""


def _about(number: str) -> tuple[str, list[Any]]:
    """A condition on `lookup_log` rows about a number (E.164), and its parameters: its
    lookups; the invalid ones that wrote it in a form the normalizer refused
    ("22/33 44 55", "+47 22334455 x", "+47 (0)22 33 44 55", full-width digits), which the
    log keeps as written: their digits are the number's, after 47, 0047 or a trunk 0; and
    the searches with such a number among their words ("Ola 22 33 44 55"), as typed too.
    A longer number, or digits of words apart ("Storgata 22, 2024 00"), are not it."""
    national = number.removeprefix("+47")
    forms = [prefix + national for prefix in ("", "0", "47", "470", "0047", "00470")]
    ascii_digits = f"translate(number, '{_FULL_WIDTH_DIGITS}', '0123456789')"
    runs = (
        f"list_transform(regexp_extract_all({ascii_digits}, '{_NUMBER_RUN}'), "
        "lambda run: regexp_replace(run, '[^0-9]', '', 'g'))"
    )
    return (
        f"(number = ? OR (outcome = 'invalid' AND regexp_replace({ascii_digits}, '[^0-9]', '', "
        f"'g') IN ({', '.join('?' * len(forms))})) OR (endpoint = 'search' "
        # Most queries are names: the digits are looked for only in those that have one.
        f"AND regexp_matches(number, '[0-9{_FULL_WIDTH_DIGITS}]') "
        f"AND list_has_any({runs}, ?::VARCHAR[])))",
        [number, *forms, forms],
    )


def log_batch(events: Sequence[LookupEvent]) -> pa.Table:
    """Events as the rows of `lookup_log`."""
    # Typed columns: inferring the types took a third of building the table.
    columns = list(zip(*map(msgspec.structs.astuple, events), strict=True))
    return pa.table(
        [pa.array(column, field.type) for column, field in zip(columns, _LOG_SCHEMA, strict=True)],
        schema=_LOG_SCHEMA,
    )


class LookupLog:
    """The `lookup_log` table of the compliance file."""

    def __init__(self, file: StoreFile) -> None:
        self._file = file
        # Whether `late_erasures` may hold a number (one did at the start, or an erasure was
        # made since): else an insert does not ask, which cost a quarter of a 300-row insert.
        # This process is the file's only writer.
        self._late = bool(file.rows("SELECT count(*) FROM late_erasures")[0][0])

    def insert(self, con: duckdb.DuckDBPyConnection, batch: pa.Table) -> None:
        """Append a `log_batch`, within the caller's transaction. Its lookups of a number
        erased since they were made are erased first, as that erasure decided: but for the
        accounts it found under legal hold (the rows already logged were its own to erase
        or keep, and stay as it left them); each is counted on its erasure's record."""
        pending = (
            self._late
            and con.execute(
                "SELECT number, erased_at, held FROM late_erasures WHERE erased_at + ? >= ?",
                [CLOCK_MARGIN, pc.min(batch["ts"]).as_py()],
            ).fetchall()
        )
        # By name: a log's columns are in the order its versions added them (a column
        # dropped and added again goes last), not necessarily the batch's.
        if not pending:
            con.execute("INSERT INTO lookup_log BY NAME SELECT * FROM batch").fetchall()
            return
        con.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_ARRIVING} AS SELECT * FROM lookup_log LIMIT 0"
        ).fetchall()
        con.execute(f"INSERT INTO {_ARRIVING} BY NAME SELECT * FROM batch").fetchall()
        for number, erased_at, held in pending:
            about, parameters = _about(number)
            late = con.execute(
                f"UPDATE {_ARRIVING} SET number = '{ERASED}' WHERE {about} AND ts <= ? "
                "AND NOT list_contains(?::VARCHAR[], account)",
                [*parameters, erased_at + CLOCK_MARGIN, held],
            ).fetchall()[0][0]
            if late:
                con.execute(
                    "UPDATE erasures SET erased = erased + ? WHERE ts = ?", [late, erased_at]
                ).fetchall()
        con.execute(f"INSERT INTO lookup_log SELECT * FROM {_ARRIVING}").fetchall()
        con.execute(f"DELETE FROM {_ARRIVING}").fetchall()

    @staticmethod
    def prune(con: duckdb.DuckDBPyConnection, due: Sequence[Condition]) -> int:
        """Delete the lookups a retention sweep says are `due` (`ComplianceStore.sweep`),
        within the caller's transaction; returns how many went. An erased number kept for
        its late lookups goes once `LATE_ERASURE` has passed."""
        con.execute(
            "DELETE FROM late_erasures WHERE erased_at < ?", [utc_now() - LATE_ERASURE]
        ).fetchall()
        deleted = 0
        for condition, parameters in due:
            deleted += con.execute(
                f"DELETE FROM lookup_log WHERE {condition}", parameters
            ).fetchall()[0][0]
        return int(deleted)

    def lookups_of(self, number: str) -> dict[str, Any]:
        """Customers' lookups of a number (E.164): how many, when, by which accounts; the
        searches whose query held it among them (`searched`)."""
        about, parameters = _about(number)
        rows = self._file.rows(
            # Answered: a listing of it went out (not to a lookup refused in a held block,
            # nor to a search: its query is a name's, whatever it holds).
            "SELECT account, count(*), count(*) FILTER (WHERE outcome = 'hit' "
            "AND held IS NOT TRUE AND endpoint = 'numbers'), min(ts), max(ts), "
            "count(*) FILTER (WHERE endpoint = 'search') "
            f"FROM lookup_log WHERE {about} GROUP BY account ORDER BY 2 DESC, account",
            parameters,
        )
        return {
            "total": sum(int(r[1]) for r in rows),
            "first": min((r[3] for r in rows), default=None),
            "last": max((r[4] for r in rows), default=None),
            "by_account": [
                {
                    "account": r[0],
                    "lookups": r[1],
                    "answered": r[2],
                    "searched": r[5],
                    "first": r[3],
                    "last": r[4],
                }
                for r in rows
            ],
        }

    def erase(
        self, con: duckdb.DuckDBPyConnection, number: str, at: datetime, hold: list[str]
    ) -> tuple[int, int, list[str]]:
        """Anonymise a number (E.164) on its subject's request at `at`, within the caller's
        transaction, but in the lookups of the accounts under legal hold (`hold`); returns
        how many rows were erased, how many kept, and the accounts keeping them. The number
        itself is kept for `LATE_ERASURE`, to erase its lookups that reach the log later."""
        about, parameters = _about(number)
        kept = con.execute(
            f"SELECT account, count(*) FROM lookup_log WHERE {about} "
            "AND list_contains(?::VARCHAR[], account) GROUP BY account ORDER BY account",
            [*parameters, hold],
        ).fetchall()
        erased = con.execute(
            f"UPDATE lookup_log SET number = '{ERASED}' WHERE {about} "
            "AND NOT list_contains(?::VARCHAR[], account)",
            [*parameters, hold],
        ).fetchall()[0][0]
        # Its lookups still on their way to the log are erased as they arrive (`insert`),
        # but those of the accounts under legal hold now: what this answer says.
        con.execute("INSERT INTO late_erasures VALUES (?, ?, ?)", [number, at, hold]).fetchall()
        self._late = True
        return int(erased), sum(int(r[1]) for r in kept), [str(r[0]) for r in kept]

    def late_erasures(self) -> list[tuple[str, datetime, list[str]]]:
        """(number, erased at, accounts then under legal hold) of the erasures whose late
        lookups are still erased as they arrive."""
        return self._file.rows("SELECT number, erased_at, held FROM late_erasures ORDER BY 2")

    def last_lookups(
        self, since: datetime, until: datetime
    ) -> list[tuple[str, str, datetime, str]]:
        """(account, number, last lookup before `until`, its outcome) of the numbers answered
        from `since` on, oldest first: the lookups `LookupEvent.looked_up` counts. A number
        looked up again from `until` on is here too, so that those lookups are repeats."""
        return self._file.rows(
            "SELECT account, number, max(ts) AS last, arg_max(outcome, ts) FROM lookup_log "
            "WHERE ts >= ? AND ts < ? AND outcome <> 'invalid' AND endpoint = 'numbers' "
            "GROUP BY account, number ORDER BY last",
            [since, until],
        )

    def had_at(
        self, starts: dict[str, datetime], known_seconds: float, until: datetime
    ) -> set[tuple[str, str]]:
        """(account, number) of the numbers each account had when its evidence started afresh
        (`starts`: when compliance last cleared it) and has had since without a gap of
        `known_seconds`, as of `until`: its lookups of them are repeats, not evidence."""
        if not starts:
            return set()
        rows = self._file.rows(
            "WITH starts AS (SELECT unnest(?::VARCHAR[]) AS account, "
            "unnest(?::TIMESTAMP[]) AS start), "
            "looked AS (SELECT l.account, l.number, l.ts, s.start, "
            "lag(l.ts) OVER (PARTITION BY l.account, l.number ORDER BY l.ts) AS before "
            "FROM lookup_log l JOIN starts s USING (account) "
            "WHERE l.ts >= least(s.start, ?) - to_seconds(?) AND l.ts < ? "
            "AND l.outcome <> 'invalid' AND l.endpoint = 'numbers') "
            # When each number last became new (none looked up in the known_seconds before).
            "SELECT account, number FROM looked GROUP BY account, number "
            "HAVING max(ts) FILTER (WHERE before IS NULL OR ts - before > to_seconds(?)) "
            "<= any_value(start)",
            [list(starts), list(starts.values()), until, known_seconds, until, known_seconds],
        )
        return {(str(account), str(number)) for account, number in rows}

    def first_lookups(self, accounts: Sequence[str]) -> dict[str, datetime]:
        """The first logged lookup or search of each of these accounts that has one."""
        rows = self._file.rows(
            "SELECT account, min(ts) FROM lookup_log "
            "WHERE account IN (SELECT unnest(?::VARCHAR[])) GROUP BY account",
            [list(accounts)],
        )
        return {str(account): first for account, first in rows}

    def replay(self, since: datetime, into: Callable[[LookupEvent], object]) -> int:
        """Hand the logged lookups from `since` on to `into`, in time order; how many."""
        count = 0
        # On a connection of its own: the compliance API goes on being answered meanwhile
        # (a week's replay takes seconds), and `into` may use the store.
        with self._file.cursor() as con:
            relation = con.sql(
                "SELECT ts, account, key, ip, number, outcome, endpoint, listings, full_page "
                "FROM lookup_log WHERE ts >= ? ORDER BY ts",
                params=[since],
            )
            for batch in relation.to_arrow_reader(50_000):
                for row in zip(*batch.to_pydict().values(), strict=True):
                    into(
                        LookupEvent(
                            ts=row[0],
                            account=row[1],
                            key=row[2],
                            ip=row[3],
                            number=row[4],
                            outcome=row[5],
                            endpoint=row[6],
                            listings=row[7],
                            full_page=row[8],
                        )
                    )
                    count += 1
        return count

    def timeline(
        self,
        account: str,
        moments: Sequence[datetime],
        *,
        before: int = TIMELINE_BEFORE,
        after: int = TIMELINE_AFTER,
        reach: timedelta = TIMELINE_REACH,
        most: int = TIMELINE_MOMENTS,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The account's lookups nearest each moment (traffic data), merged, in time order;
        none after `until` (a closed case's end: what came after is no evidence of it)."""
        chosen = sorted(set(moments))
        if len(chosen) > most:
            # The first opened the case; the latest are what it is about now.
            chosen = chosen[:1] + chosen[len(chosen) - most + 1 :]
        columns = ", ".join(_TIMELINE_COLUMNS)
        # Nearest, not first: a busy account's hour holds thousands of lookups, and the
        # ones that raised a finding are those just before it.
        up_to = (
            f"SELECT rowid, {columns} FROM lookup_log WHERE account = ? "
            "AND ts BETWEEN ? AND ? ORDER BY ts DESC, rowid DESC LIMIT ?"
        )
        next_ = (
            f"SELECT rowid, {columns} FROM lookup_log WHERE account = ? "
            "AND ts > ? AND ts <= ? ORDER BY ts, rowid LIMIT ?"
        )
        rows: dict[int, tuple[Any, ...]] = {}
        with self._file.reading() as con:  # the rowids that merge overlapping windows hold still
            for moment in chosen:
                end = moment + reach if until is None else min(moment + reach, until)
                for sql, params in (
                    (up_to, [account, moment - reach, min(moment, end), before]),
                    (next_, [account, moment, end, after]),
                ):
                    for row in con.execute(sql, params).fetchall():
                        rows[row[0]] = row[1:]
        return [
            dict(zip(_TIMELINE_COLUMNS, rows[rowid], strict=True))
            for rowid in sorted(rows, key=lambda rowid: (rows[rowid][0], rowid))
        ]

    def blocks(
        self, account: str, since: datetime, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Number blocks the account looked up since a moment (and until another): coverage
        per block."""
        # Erased lookups, whose block went with their number, are counted apart, on a line
        # after the 20 blocks with most numbers. A block is its number's thousand, as the
        # detectors name it (a short number's: `+4702000..999`).
        rows = self._file.rows(
            f"""
            SELECT CASE number WHEN '{ERASED}' THEN number
                   ELSE substr(number, 1, length(number) - 3) || '000..999' END AS block,
                   count(DISTINCT number) AS numbers, count(*),
                   count(DISTINCT number) FILTER (WHERE outcome = 'hit' AND held IS NOT TRUE),
                   min(ts), max(ts)
            FROM lookup_log
            WHERE account = ? AND ts >= ? AND (ts <= ? OR ? IS NULL)
                AND outcome <> 'invalid' AND endpoint = 'numbers'
            GROUP BY block
            QUALIFY row_number() OVER (PARTITION BY block = '{ERASED}' ORDER BY numbers DESC)
                <= 20
            ORDER BY block = '{ERASED}', numbers DESC, block
            """,
            [account, since, until, until],
        )
        return [
            {
                "block": r[0],
                # How many numbers the erased lookups were of is not known any more.
                "distinct": None if r[0] == ERASED else r[1],
                "lookups": r[2],
                "hits": None if r[0] == ERASED else r[3],
                "first": r[4],
                "last": r[5],
            }
            for r in rows
        ]
