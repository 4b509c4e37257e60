"""API keys: organization accounts, keys stored only as hashes, roles, IP allow-lists.

The store is a small SQLite file, safe for `lookup keys` to write while
servers read it. Servers keep every key in memory (`lookup.keyring`) and reload
only when the file changed, so authenticating a request does no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from lookup.abuse.events import utc_now
from lookup.abuse.holds import Hold, Swarmed
from lookup.abuse.retention import AFTER_END, check_months
from lookup.errors import KeyStoreError
from lookup.networks import Network, network, stored_network
from lookup.text import first_bidi_control, first_control, invisible

ROLES: Final = ("lookup", "search", "compliance", "admin")
TOKEN_PREFIX: Final = "lk_"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',     -- active | throttled | suspended
    plan TEXT,                                 -- rate limits, e.g. '20/second;600/minute'
    status_reason TEXT,
    allow TEXT NOT NULL DEFAULT '',            -- CIDRs every key of the account is bound to
    enforcement TEXT NOT NULL DEFAULT 'auto',  -- auto | review (findings only flag)
    retention_months INTEGER,                  -- lookup log retention; NULL: the default
    ended_at TEXT,                             -- when the customer relationship ended
    held TEXT NOT NULL DEFAULT '',             -- allocation blocks held pending review
    search_plan TEXT,                          -- listings name searches may return
    first_lookup_at TEXT                       -- its first lookup or search (UTC); NULL: none
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    hash TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,
    allow TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS swarmed (
    block TEXT PRIMARY KEY,                    -- allocation block new accounts split, +47...
    opened_after TEXT NOT NULL,                -- refused to accounts opened after (UTC)
    until TEXT NOT NULL,                       -- until (UTC)
    ended_at TEXT                              -- when an operator ended it early (UTC)
);
"""


ACCOUNT_STATUSES: Final = ("active", "throttled", "suspended")
ENFORCEMENTS: Final = ("auto", "review")


class Account(msgspec.Struct, frozen=True):
    """An organization's standing: its status and its rate-limit plan (None: the default)."""

    name: str
    status: str = "active"
    plan: str | None = None
    reason: str | None = None
    allow: tuple[Network, ...] = ()
    """Networks every key of the account may be used from; empty means anywhere."""
    enforcement: str = "auto"
    """`auto`: findings throttle or suspend as the policy says; `review`: they only flag."""
    retention_months: int | None = None
    """How long the lookup log keeps its lookups; None: the service default."""
    ended_at: datetime | None = None
    """When the customer relationship ended (its keys were revoked then)."""
    holds: frozenset[Hold] = frozenset()
    """Allocation blocks the account's lookups are refused in, pending review."""
    search_plan: str | None = None
    """The listings its name searches may return (None: `LOOKUP_PLAN_SEARCH`)."""
    opened: datetime | None = None
    """When the account was put to use: its first lookup or search, as the monitor records
    it (naive UTC; None: none yet). A swarmed block is refused to new accounts, and an
    account made long ago but never used is one."""


class ApiKey(msgspec.Struct, frozen=True):
    """What a valid key may do; the secret itself is never kept."""

    key_id: str
    account: str
    roles: frozenset[str]
    allow: tuple[Network, ...] = ()
    """Networks the key may be used from; empty means anywhere."""

    def allows(self, address: str) -> bool:
        """Whether the key may be used from this client address."""
        return not self.allow or in_networks(address, self.allow)


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    """Whether a client address is in any of the networks (one that does not parse is not)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def hash_token(token: str) -> str:
    """The stored form of a key. Keys are long random tokens, so SHA-256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_roles(text: str) -> frozenset[str]:
    """Roles from a comma-separated list, refusing unknown ones."""
    roles = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise KeyStoreError(
            f"unknown role(s) {', '.join(unknown) or '(none given)'}; roles: {', '.join(ROLES)}"
        )
    return roles


def parse_networks(texts: Iterable[str], *, stored: bool = False) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of an allow-list; `stored`: as the key store keeps them
    (`networks.stored_network`)."""
    read = stored_network if stored else network
    networks = []
    for text in texts:
        try:
            networks.append(read(text.strip()))
        except ValueError as exc:
            raise KeyStoreError(str(exc)) from None
    return tuple(networks)


_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("accounts", "status", "TEXT NOT NULL DEFAULT 'active'"),
    ("accounts", "plan", "TEXT"),
    ("accounts", "status_reason", "TEXT"),
    ("accounts", "allow", "TEXT NOT NULL DEFAULT ''"),
    ("accounts", "enforcement", "TEXT NOT NULL DEFAULT 'auto'"),
    ("accounts", "retention_months", "INTEGER"),
    ("accounts", "ended_at", "TEXT"),
    ("accounts", "held", "TEXT NOT NULL DEFAULT ''"),
    ("accounts", "search_plan", "TEXT"),
    ("accounts", "first_lookup_at", "TEXT"),
    ("swarmed", "ended_at", "TEXT"),
)
"""Columns added to a table after its first version, for `KeyStore._migrate`."""


def naive_utc(moment: datetime) -> datetime:
    """A time as naive UTC, as events carry time (one with a zone converted)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _stored_time(text: str) -> datetime:
    """A time the key store keeps, as naive UTC (a row written by hand may carry a zone)."""
    return naive_utc(datetime.fromisoformat(text))


def account_name(text: str) -> str:
    """An organization name as the key store keeps and finds it: trimmed, in Unicode's
    composed form (NFC): `Å` typed as an A and a combining ring, as macOS input gives it,
    is the `Å` of the account created before."""
    return unicodedata.normalize("NFC", text.strip())


class KeyStore:
    """The accounts and keys file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The server's refresh runs in a worker thread; the store serializes its own use.
        try:
            self._con = sqlite3.connect(
                path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # SQLite names no file: "unable to open database file" (a read-only data dir),
            # "file is not a database" (a damaged or foreign file).
            raise KeyStoreError(f"cannot open the key store {path}: {exc}") from None
        self._migrate()
        # SQLite's `data_version` moves only for other connections' writes: count ours.
        self._writes = 0

    def _migrate(self) -> None:
        """Add columns that stores made by earlier versions lack."""
        if not self._missing_columns():
            return  # the usual start: no write lock taken
        with self._con:
            # Read again under the write lock: servers starting together on an old store
            # would each add a column another just added ("duplicate column name").
            self._con.execute("BEGIN IMMEDIATE")
            for table, column, ddl in self._missing_columns():
                self._con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")

    def _missing_columns(self) -> list[tuple[str, str, str]]:
        have = {
            (table, row[1])
            for table in {table for table, _, _ in _ADDED_COLUMNS}
            for row in self._con.execute(f"PRAGMA table_info({table})")
        }
        return [added for added in _ADDED_COLUMNS if added[:2] not in have]

    def close(self) -> None:
        """Close the file."""
        self._con.close()

    def stored_name(self, org: str) -> str:
        """The account's name as stored, for a name given in any Unicode form (`Å` typed
        as an A and a combining ring is the `Å` of the account; one made before names were
        kept composed may be stored decomposed); the name composed when there is none."""
        org = org.strip()
        if any("\ud800" <= char <= "\udfff" for char in org):
            # Bytes of no UTF-8 text from the command line (Python keeps them as surrogates,
            # which no file or answer can hold).
            raise KeyStoreError("an organization name must be UTF-8 text")
        if self._con.execute("SELECT 1 FROM accounts WHERE name = ?", (org,)).fetchone():
            return org
        wanted = account_name(org)
        for (name,) in self._con.execute("SELECT name FROM accounts"):
            if account_name(name) == wanted:
                return str(name)
        return wanted

    def create(
        self, org: str, roles: frozenset[str], allow: Sequence[Network] = ()
    ) -> tuple[ApiKey, str]:
        """Create a key for an organization (created on first use); returns it and the token."""
        org = account_name(org)
        if not org or invisible(org):
            raise KeyStoreError("an organization name is required")
        # It is part of every decision's actor, which the audit trail's hash covers and
        # shows: a control character could move text between fields, a direction control
        # show the name in another order than it is kept.
        if (bad := first_control(org)) is not None:
            raise KeyStoreError(
                f"an organization name must not contain control characters (U+{ord(bad):04X})"
            )
        if (bad := first_bidi_control(org)) is not None:
            raise KeyStoreError(
                f"an organization name must not contain text direction controls (U+{ord(bad):04X})"
            )
        if (bad := next((c for c in org if unicodedata.category(c) == "Cf"), None)) is not None:
            # `a\u200bb` shows as `ab`: a second account that looks like the first, and a way
            # back in for an ended one.
            raise KeyStoreError(
                f"an organization name must not contain invisible characters (U+{ord(bad):04X})"
            )
        if "/" in org:
            # A decision's actor is `org/key id`, and the internal API names an account in
            # its path (`/accounts/{account}/decisions`): either would read it as two parts.
            raise KeyStoreError("an organization name must not contain '/'")
        org = self.stored_name(org)
        key_id = secrets.token_hex(5)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")
            ended = self._con.execute(
                "SELECT ended_at FROM accounts WHERE name = ? AND ended_at IS NOT NULL", (org,)
            ).fetchone()
            if ended:
                # Its lookup log is on its way out: a key would start it again unseen.
                raise KeyStoreError(
                    f"account {org!r} ended on "
                    f"{datetime.fromisoformat(ended[0]):%Y-%m-%d %H:%M} UTC; a returning "
                    "customer gets a new "
                    "account (another name)"
                )
            self._con.execute(
                "INSERT INTO accounts (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (org, now),
            )
            self._con.execute(
                "INSERT INTO keys (id, account_id, hash, roles, allow, created_at) "
                "SELECT ?, id, ?, ?, ?, ? FROM accounts WHERE name = ?",
                (
                    key_id,
                    hash_token(token),
                    ",".join(sorted(roles)),
                    ",".join(str(n) for n in allow),
                    now,
                    org,
                ),
            )
        self._wrote()
        return ApiKey(key_id, org, roles, tuple(allow)), token

    def revoke(self, key: str) -> str:
        """Revoke a key, named by its id or given whole; its id. Servers refuse it within
        `key_refresh_seconds`."""
        key_id, whole = key, False
        # Pasted with what stood around it (`Bearer lk_…`, a space): the key from its prefix.
        if (start := key.find(TOKEN_PREFIX)) > 0:
            key = key[start:].strip()
        if key.startswith(TOKEN_PREFIX):
            key_id, _, secret = key.removeprefix(TOKEN_PREFIX).partition("_")
            whole = bool(secret)
        sql = "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params = [datetime.now(UTC).isoformat(timespec="seconds"), key_id]
        if whole:
            # The whole key pasted where its id was asked: revoked only if it is that key.
            sql, params = f"{sql} AND hash = ?", [*params, hash_token(key)]
        with self._con:
            cursor = self._con.execute(sql, params)
        self._wrote()
        if cursor.rowcount == 0:
            # Never the secret: an error line ends up in logs and terminals.
            if whole:
                raise KeyStoreError(f"no active key is the one given ({TOKEN_PREFIX}{key_id}_…)")
            raise KeyStoreError(f"no active key with id {key_id!r}")
        return key_id

    def active(self) -> dict[str, ApiKey]:
        """Every active key by its hash (none of an ended account, whatever a store written
        before ending revoked them says)."""
        rows = self._con.execute(
            "SELECT k.hash, k.id, a.name, k.roles, k.allow FROM keys k "
            "JOIN accounts a ON a.id = k.account_id "
            "WHERE k.revoked_at IS NULL AND a.ended_at IS NULL"
        ).fetchall()
        return {
            digest: ApiKey(
                key_id,
                account,
                frozenset(roles.split(",")),
                parse_networks(allow.split(","), stored=True) if allow else (),
            )
            for digest, key_id, account, roles, allow in rows
        }

    def accounts(self) -> dict[str, Account]:
        """Every account by name."""
        rows = self._con.execute(
            "SELECT name, status, plan, status_reason, allow, enforcement, retention_months, "
            "ended_at, held, search_plan, first_lookup_at FROM accounts"
        )
        return {
            name: Account(
                name,
                status,
                plan,
                reason,
                parse_networks(allow.split(","), stored=True) if allow else (),
                enforcement,
                retention,
                datetime.fromisoformat(ended) if ended else None,
                frozenset(map(Hold.parse, held.split(","))) if held else frozenset(),
                search_plan,
                None if first is None else _stored_time(first),
            )
            for (
                name,
                status,
                plan,
                reason,
                allow,
                enforcement,
                retention,
                ended,
                held,
                search_plan,
                first,
            ) in rows
        }

    def opened(self, firsts: Mapping[str, datetime]) -> None:
        """Record accounts' first lookups (the earliest stands: a monitor that restarted, or
        fills in the lookup log's, may give a later one)."""
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")  # one commit for all, not one an account
            self._con.executemany(
                "UPDATE accounts SET first_lookup_at = ?1 WHERE name = ?2 "
                "AND (first_lookup_at IS NULL OR first_lookup_at > ?1)",
                [
                    (naive_utc(first).isoformat(timespec="microseconds"), name)
                    for name, first in firsts.items()
                ],
            )
        self._wrote()

    def swarm(self, swarm: Swarmed) -> None:
        """Refuse a swarmed block to new accounts until its swarm is over (servers follow
        within a second). Every finding of one swarm names it alike; a swarm found later
        (accounts opened later) replaces an earlier one, and one an operator ended stays
        ended for the rest of its findings."""
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")  # one commit: swarms over go, this one comes
            self._con.execute("DELETE FROM swarmed WHERE until <= ?", (utc_now().isoformat(),))
            self._con.execute(
                "INSERT INTO swarmed (block, opened_after, until) VALUES (?, ?, ?) "
                "ON CONFLICT (block) DO UPDATE SET opened_after = excluded.opened_after, "
                "until = excluded.until, ended_at = NULL "
                "WHERE excluded.opened_after > swarmed.opened_after",
                (
                    swarm.hold.label,
                    naive_utc(swarm.opened_after).isoformat(),
                    naive_utc(swarm.until).isoformat(),
                ),
            )
        self._wrote()

    def end_swarm(self, hold: Hold) -> Swarmed:
        """End a swarmed block's refusal now (an operator's call: the block's swarm was a
        town's new customers); what it was."""
        now = utc_now().isoformat()
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")  # read and end it as one
            row = self._con.execute(
                "SELECT opened_after, until FROM swarmed WHERE block = ? AND ended_at IS NULL "
                "AND until > ?",
                (hold.label, now),
            ).fetchone()
            if row is None:
                raise KeyStoreError(f"{hold.label} is not refused to new accounts now")
            self._con.execute("UPDATE swarmed SET ended_at = ? WHERE block = ?", (now, hold.label))
        self._wrote()
        return Swarmed(hold, _stored_time(row[0]), _stored_time(row[1]))

    def swarms(self) -> dict[Hold, Swarmed]:
        """The swarmed blocks, by block, each until it ends or was ended (an ended one
        until the next write: each lookup reads its time)."""
        return {
            # Naive UTC, as lookups compare them, whatever wrote the row.
            (hold := Hold.parse(block)): Swarmed(
                hold, _stored_time(opened_after), _stored_time(until)
            )
            for block, opened_after, until in self._con.execute(
                "SELECT block, opened_after, coalesce(ended_at, until) FROM swarmed"
            )
        }

    def set_enforcement(self, account: str, enforcement: str) -> None:
        """Whether findings act on the account by themselves (`auto`) or only flag (`review`)."""
        account = self.stored_name(account)
        if enforcement not in ENFORCEMENTS:
            raise KeyStoreError(f"enforcement must be one of {', '.join(ENFORCEMENTS)}")
        with self._con:
            cursor = self._con.execute(
                "UPDATE accounts SET enforcement = ? WHERE name = ?", (enforcement, account)
            )
        self._wrote()
        if cursor.rowcount == 0:
            raise KeyStoreError(f"no account named {account!r}")

    def set_allow(self, account: str, networks: Sequence[Network]) -> int:
        """Bind every key of an account to these networks (empty: no account-wide binding);
        returns how many of its active keys are bound to an allow-list of their own too
        (a client must be in both)."""
        account = self.stored_name(account)
        with self._con:
            cursor = self._con.execute(
                "UPDATE accounts SET allow = ? WHERE name = ?",
                (",".join(str(n) for n in networks), account),
            )
        self._wrote()
        if cursor.rowcount == 0:
            raise KeyStoreError(f"no account named {account!r}")
        (own,) = self._con.execute(
            "SELECT count(*) FROM keys k JOIN accounts a ON a.id = k.account_id "
            "WHERE a.name = ? AND k.revoked_at IS NULL AND k.allow != ''",
            (account,),
        ).fetchone()
        return int(own)

    def set_status(self, account: str, status: str, reason: str) -> None:
        """Suspend, throttle or reinstate an account (servers follow within a second);
        reinstated (active), its held blocks are released too."""
        if status not in ACCOUNT_STATUSES:
            raise KeyStoreError(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
        with self._con:
            cursor = self._con.execute(
                "UPDATE accounts SET status = ?, status_reason = ?, "
                "held = CASE WHEN ? = 'active' THEN '' ELSE held END WHERE name = ?",
                (status, reason, status, account),
            )
        self._wrote()
        if cursor.rowcount == 0:
            raise KeyStoreError(f"no account named {account!r}")

    def hold(self, account: str, hold: Hold) -> None:
        """Refuse the account's lookups in an allocation block until it is reinstated."""
        label = hold.label
        with self._con:
            # One statement: two monitors' holds on one account must not drop either.
            cursor = self._con.execute(
                "UPDATE accounts SET held = CASE "
                "WHEN held = '' THEN ?1 "
                "WHEN instr(',' || held || ',', ',' || ?1 || ',') > 0 THEN held "
                "ELSE held || ',' || ?1 END WHERE name = ?2",
                (label, account),
            )
        self._wrote()
        if cursor.rowcount == 0:
            raise KeyStoreError(f"no account named {account!r}")

    def set_plan(self, account: str, plan: str | None, *, search: bool = False) -> None:
        """Give an account its own rate limits (None: back to the default plan); `search`:
        its search plan, the listings its name searches may return."""
        account = self.stored_name(account)
        column = "search_plan" if search else "plan"
        with self._con:
            cursor = self._con.execute(
                f"UPDATE accounts SET {column} = ? WHERE name = ?", (plan, account)
            )
        self._wrote()
        if cursor.rowcount == 0:
            raise KeyStoreError(f"no account named {account!r}")

    def set_retention(self, account: str, months: int | None) -> None:
        """How long the lookup log keeps an account's lookups (None: the service default)."""
        account = self.stored_name(account)
        if months is not None:
            check_months(months)
        row = self._con.execute(
            "SELECT ended_at FROM accounts WHERE name = ?", (account,)
        ).fetchone()
        if row is None:
            raise KeyStoreError(f"no account named {account!r}")
        if row[0] is not None:
            # Its terms ended with it: the log goes whole AFTER_END after the end, whatever a
            # change would say (one said as made would mislead whoever reads it back).
            ended = datetime.fromisoformat(row[0])
            raise KeyStoreError(
                f"account {account!r} ended on {ended:%Y-%m-%d %H:%M} UTC: its retention "
                f"holds until its whole lookup log is deleted from {ended + AFTER_END:%Y-%m-%d} "
                "(not while a case is open on it), and can no longer be changed"
            )
        with self._con:
            self._con.execute(
                "UPDATE accounts SET retention_months = ? WHERE name = ?", (months, account)
            )
        self._wrote()

    def end(self, account: str) -> tuple[int, datetime]:
        """End the customer relationship: every key revoked at once, and the lookup log
        deletes the account's lookups `AFTER_END` later (not while a case is open).
        Returns how many keys were revoked and when it ended (the first time: ending it
        again moves nothing)."""
        account = self.stored_name(account)
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        with self._con:
            cursor = self._con.execute(
                "UPDATE accounts SET ended_at = coalesce(ended_at, ?) WHERE name = ?",
                (now, account),
            )
            if cursor.rowcount == 0:
                raise KeyStoreError(f"no account named {account!r}")
            revoked = self._con.execute(
                "UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL AND account_id = "
                "(SELECT id FROM accounts WHERE name = ?)",
                (now, account),
            ).rowcount
            ended = self._con.execute(
                "SELECT ended_at FROM accounts WHERE name = ?", (account,)
            ).fetchone()[0]
        self._wrote()
        return int(revoked), datetime.fromisoformat(ended)

    def _wrote(self) -> None:
        # Counted after the commit: a reader that sees the new count then reads the new rows.
        self._writes += 1

    def version(self) -> tuple[int, int]:
        """Changes whenever the file changed, through this connection or another."""
        row = self._con.execute("PRAGMA data_version").fetchone()
        return int(row[0]), self._writes
