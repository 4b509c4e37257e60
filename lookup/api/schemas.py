"""Response bodies of the public API (msgspec Structs; the OpenAPI schema follows them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

NumberTypeName = Literal[
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "uan",
    "voicemail",
]
"""`lookup.numbers.NumberType`'s values, spelt out for the schema's enum (a test holds the
two together)."""


class Name(msgspec.Struct, frozen=True, omit_defaults=True):
    """A person's name parts, or a business name in `full`."""

    full: str
    first: str | None = None
    last: str | None = None


class Address(msgspec.Struct, frozen=True, omit_defaults=True):
    """Postal address; absent from a listing when the subscriber hid it."""

    street: str | None = None
    postcode: str | None = None
    city: str | None = None


class NameMatch(msgspec.Struct, frozen=True):
    """How well `?name=` matches the listed name (0 to 100, Norwegian letters folded)."""

    query: str
    score: float


class Listing(msgspec.Struct, frozen=True, omit_defaults=True):
    """A listed number."""

    number: str
    """E.164, e.g. +4722202400."""
    national_number: str
    """As written in Norway, e.g. 22 20 24 00."""
    number_type: NumberTypeName
    """The numbering plan's kind of number (libphonenumber's names)."""
    kind: Literal["person", "business"]
    name: Name
    marketing_reserved: bool
    """The subscriber refuses marketing calls (the Reservasjonsregisteret flag)."""
    valid_from: datetime
    """When the operator's record took effect: its date, in Oslo time with the offset."""
    snapshot: str
    """Which published snapshot answered."""
    org_number: str | None = None
    address: Address | None = None
    name_match: NameMatch | None = None
    birth_date_match: bool | None = None
    """Whether `?birth_date=` is the person's date of birth on file (false when none is)."""


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    """Liveness and readiness answers."""

    status: Literal["ok", "ready"]
    snapshot: str | None = None
    listings: int | None = None
    newer_unreadable: str | None = None
    """Why a newer published snapshot is not served (the one named goes on serving)."""


class SearchResult(msgspec.Struct, frozen=True):
    """One match of a name search."""

    score: float
    """How well the name matches the query, 0 to 100 (Norwegian letters folded)."""
    listing: Listing


class SearchResults(msgspec.Struct, frozen=True):
    """Matches of a name search, best first, capped."""

    query: str
    results: list[SearchResult]
    truncated: bool
    """More matches exist than were returned (or the query matched too many names to rank
    them all: narrow it)."""
    snapshot: str
    withheld: int = 0
    """Matches left out, of those that would have been returned, because their numbers are
    in a block held for the account pending review (as lookups there are refused)."""


class Problem(msgspec.Struct, frozen=True):
    """An RFC 9457 problem document, as every error is answered; some types add a field of
    their own (each type's page says which)."""

    type: str
    """`/problems/<slug>`: a page saying what it means."""
    title: str
    status: int
    detail: str
    reason: str | None = None
    """`invalid-number`: why (`empty`, `letters`, `malformed`, `too_short`, `too_long`,
    `not_norwegian`, `not_in_plan`)."""
    number: str | None = None
    """`number-not-found`: the number asked, in E.164."""
    parameter: str | None = None
    """`invalid-parameter`: the parameter at fault."""
    role: str | None = None
    """`missing-role`: the role the endpoint needs."""
    scope: str | None = None
    """`rate-limited`: whose limit was reached (`key`, `account`, `verify`, `search`)."""
    limit: int | None = None
    """`rate-limited`: that limit's number of requests in its window (of listings returned,
    for `search`)."""
    throttled: bool | None = None
    """`rate-limited`: true when the account's limits are cut pending a compliance review."""
    block: str | None = None
    """`block-held`, `block-swarmed`: the allocation block (`+4721279000..999`)."""
    until: str | None = None
    """`block-swarmed`: when its numbers are answered to new accounts again (UTC)."""
    current_case: int | None = None
    """`not-current-case`: the case decisions go on."""
