"""A server's in-memory copy of the key store: authenticating a request does no I/O.

It reloads when the store's file changed (`KeyStore.version`), and writes what
the monitor and compliance decide through to the store and, at once, to itself.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from datetime import datetime

import msgspec

from lookup.abuse.events import utc_now
from lookup.abuse.holds import Hold, Swarmed
from lookup.errors import AddressNotAllowed, InvalidKey, MissingCredentials
from lookup.keys import Account, ApiKey, KeyStore, hash_token, in_networks, naive_utc


class KeyRing:
    """A server's in-memory copy of the active keys."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._version: tuple[int, int] | None = None
        # A refresh reading the store while `set_status` writes it would put the status it
        # read before the write back in memory: the two take turns.
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._accounts: dict[str, Account] = {}
        self.swarms: dict[Hold, Swarmed] = {}
        """Blocks refused to new accounts, by block (`holds.swarmed`)."""
        self.refresh()

    def refresh(self) -> bool:
        """Reload when the store changed; True if it did."""
        with self._lock:
            version = self._store.version()
            if version == self._version:
                return False
            self._keys, self._version = self._store.active(), version
            self._accounts = self._store.accounts()
            self.swarms = self._store.swarms()
            return True

    def account(self, name: str) -> Account:
        """An account's standing as last loaded."""
        return self._accounts.get(name) or Account(name)

    def accounts(self) -> list[Account]:
        """Every account's standing, reloaded first if the store changed."""
        self.refresh()
        return list(self._accounts.values())

    def stored_name(self, name: str) -> str:
        """The account's name as stored, for a name given in any Unicode form
        (`KeyStore.stored_name`)."""
        with self._lock:
            return self._store.stored_name(name)

    def has(self, name: str) -> bool:
        """Whether the key store has the account (reloading it first if it changed)."""
        self.refresh()
        return name in self._accounts

    def set_status(self, account: str, status: str, reason: str) -> None:
        """Change an account's status in the store and, at once, in this process."""
        with self._lock:
            self._store.set_status(account, status, reason)
            current = self.account(account)
            holds = frozenset() if status == "active" else current.holds
            self._replace(
                msgspec.structs.replace(current, status=status, reason=reason, holds=holds)
            )

    def hold(self, account: str, hold: Hold) -> bool:
        """Hold a block for an account in the store and, at once, in this process; whether
        it was not held already."""
        with self._lock:
            current = self.account(account)
            if hold in current.holds:
                return False
            self._store.hold(account, hold)
            self._replace(msgspec.structs.replace(current, holds=current.holds | {hold}))
            return True

    def opened(self, firsts: Mapping[str, datetime]) -> None:
        """Record accounts' first lookups in the store and, at once, in this process (the
        earliest stands)."""
        with self._lock:
            self._store.opened(firsts)
            # A new dict, not an update: request threads read the old one meanwhile.
            accounts = dict(self._accounts)
            for name, moment in firsts.items():
                current, first = accounts.get(name), naive_utc(moment)
                if current is not None and (current.opened is None or first < current.opened):
                    accounts[name] = msgspec.structs.replace(current, opened=first)
            self._accounts = accounts

    def swarm(self, swarm: Swarmed) -> bool:
        """Refuse a swarmed block to new accounts, in the store and, at once, in this
        process; whether that changed anything (each of a swarm's findings names it)."""
        with self._lock:
            known = self.swarms.get(swarm.hold)
            if known is not None and known.opened_after >= swarm.opened_after:
                return False  # the same swarm (perhaps ended by an operator), or an older
            if swarm.until <= utc_now():
                return False  # found in old events: over already
            self._store.swarm(swarm)
            # A new dict, not an update: request threads read the old one meanwhile.
            self.swarms = {**self.swarms, swarm.hold: swarm}
            return True

    def _replace(self, account: Account) -> None:
        # A new dict, not an update: request threads read the old one meanwhile.
        self._accounts = {**self._accounts, account.name: account}

    def authenticate(self, authorization: str | None, client: str) -> ApiKey:
        """The key of an `Authorization: Bearer <key>` header used from `client`."""
        if not authorization:
            raise MissingCredentials("send your API key as 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise MissingCredentials(
                "the Authorization header must be 'Bearer <key>'", malformed=True
            )
        if "," in token:  # no key has one: two headers a proxy joined into one
            raise MissingCredentials(
                "the Authorization header holds more than one value: send one key",
                malformed=True,
            )
        key = self._keys.get(hash_token(token))
        if key is None:
            raise InvalidKey("the API key is unknown or revoked")
        if not key.allows(client):
            raise AddressNotAllowed(f"this key may not be used from {_shown(client)}")
        account = self._accounts.get(key.account)
        if account is not None and account.allow and not in_networks(client, account.allow):
            raise AddressNotAllowed(f"account {key.account} may not be used from {_shown(client)}")
        return key


def _shown(client: str) -> str:
    """A client address as a refusal quotes it: a proxy's `X-Forwarded-For` may be any
    text, which is not echoed back whole."""
    try:
        ipaddress.ip_address(client)
    except ValueError:
        cut = "..." if len(client) > 40 else ""
        return f"an address that does not parse ({client[:40]!r}{cut})"
    return client
