"""Errors a user of the service can act on, one type per failure.

    LookupServiceError
    ├── InvalidNumber (lookup.numbers; also a ValueError)  -> 422 invalid-number
    ├── ConfigError (lookup.config; also a ValueError)     -> CLI exit 2
    ├── FileRejected      an operator file not applied, with a reason code
    ├── WarehouseBusy     another ingest holds the warehouse
    ├── SnapshotUnavailable  no published snapshot to serve -> 503
    ├── KeyStoreError     bad `lookup keys` input (unknown role, bad CIDR)
    ├── AccountNotFound   a decision on an account the key store lacks       -> 409
    ├── AccountNotSuspended  a reinstatement of an account that is active    -> 409
    ├── UnknownAccount    an account name nothing knows (a typo?)            -> 404
    ├── InvalidParameter  a query parameter the endpoint cannot use   -> 422
    ├── AmbiguousBody     a JSON body giving a key twice               -> 400
    ├── NotJson           a body declared as another media type         -> 415
    ├── BadOutputPath     an output path a command will not write (a folder, a device, its input)
    └── AuthError                                           -> 401 / 403
        ├── MissingCredentials  no or malformed Authorization header
        ├── InvalidKey          unknown or revoked key
        ├── AddressNotAllowed   key used from outside its IP allow-list
        ├── MissingRole         key lacks the role the endpoint needs
        ├── AccountSuspended    account paused pending compliance review
        ├── BlockHeld           a number in a block held for the account, pending review
        ├── BlockSwarmed        a new account's number in a block new accounts are splitting
        └── OwnAccount          a compliance decision on the officer's own account
    (lookup.abuse) RateLimited -> 429, CaseNotFound -> 404, CaseClosed and NotCurrentCase -> 409,
    BadEventFile (an events file `lookup abuse replay` cannot read) -> CLI exit 1

The HTTP mapping lives in one place: `lookup.api.problems`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class LookupServiceError(Exception):
    """Base of every error raised on purpose by the service."""


class RejectReason(StrEnum):
    """Why a whole operator file was not applied (rows have their own codes)."""

    BAD_FILE_NAME = "bad_file_name"
    UNREADABLE = "unreadable"
    SIDECAR_MISMATCH = "sidecar_mismatch"
    BAD_HEADER = "bad_header"
    STALE = "stale"
    TOO_MANY_REJECTS = "too_many_rejects"
    SHRINKS_TOO_MUCH = "shrinks_too_much"
    REPEATS_OLDER = "repeats_older"
    AFTER_ITS_DELTA = "after_its_delta"
    AFTER_HELD_FULL = "after_held_full"
    SAME_STAMP = "same_stamp"


class FileRejected(LookupServiceError):
    """An operator file that is not applied; the warehouse keeps its previous state."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class WarehouseBusy(LookupServiceError):
    """Another process holds the warehouse (only one ingest runs at a time)."""


class SnapshotUnavailable(LookupServiceError):
    """No published snapshot can be served."""


class KeyStoreError(LookupServiceError):
    """A request to the key store that cannot be carried out as given."""


class AccountNotFound(LookupServiceError):
    """A compliance decision would change the status of an account the key store lacks."""


class AccountNotSuspended(LookupServiceError):
    """A reinstatement of an account that is neither suspended nor throttled."""


class UnknownAccount(LookupServiceError):
    """An account name neither the key store nor the audit trail knows."""


class InvalidParameter(LookupServiceError):
    """A request parameter with a value the endpoint cannot use."""

    def __init__(self, parameter: str, detail: str) -> None:
        self.parameter = parameter
        super().__init__(detail)


class AmbiguousBody(LookupServiceError):
    """A JSON body that gives a key twice: which value the sender meant cannot be told."""


class UnreadableBody(LookupServiceError):
    """A JSON body written in a way the decoder's own message would not explain (a
    byte-order mark before it)."""


class NotJson(LookupServiceError):
    """A request body declared as another media type than JSON (a form, plain text)."""


class BadOutputPath(LookupServiceError):
    """An output path a command refuses or cannot write: a folder, a special file, its own
    input, or a place where no file can be created."""


class AuthError(LookupServiceError):
    """A request whose credentials do not allow it."""


class MissingCredentials(AuthError):
    """No usable `Authorization: Bearer` header."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed
        """A header was sent, but no one `Bearer <key>` (RFC 6750's `invalid_request`)."""


class InvalidKey(AuthError):
    """A key that is unknown or revoked."""


class AddressNotAllowed(AuthError):
    """A key used from an address outside its allow-list."""


class AccountSuspended(AuthError):
    """An account paused pending review by compliance."""


class BlockHeld(AuthError):
    """A lookup in an allocation block held for the account pending review by compliance."""

    def __init__(self, block: str, account: str) -> None:
        self.block = block
        # The block, never the number: every number of it, listed or not, gets these bytes.
        super().__init__(
            f"lookups in {block} are held for account {account} pending review by compliance"
        )


class BlockSwarmed(AuthError):
    """A new account's lookup in an allocation block many new accounts are splitting
    between them, refused until the swarm is over."""

    def __init__(self, block: str, until: datetime) -> None:
        self.block = block
        self.until = until
        # The block, never the number: every number of it, listed or not, gets these bytes.
        # Not how new an account must be, nor when it was found: a scan would age its next.
        super().__init__(
            f"lookups in {block} are refused to new accounts until {until:%Y-%m-%d %H:%M} UTC: "
            "many new accounts have been looking up its numbers a few each"
        )


class OwnAccount(AuthError):
    """A compliance decision on a case of the deciding key's own account."""


class MissingRole(AuthError):
    """A key without the role an endpoint requires."""

    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(f"this endpoint needs the '{role}' role")
