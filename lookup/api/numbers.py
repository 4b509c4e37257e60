"""`GET /v1/numbers/{number}`: the listing of one number.

The hot path: normalize, binary search in the mapped snapshot, build a Struct.
A miss is returned, not raised (an exception costs more than the lookup), and
reserved numbers are not in the snapshot at all, so they take exactly the
path of unknown ones and get the same bytes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import Controller, MediaType, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response.base import ASGIResponse

from lookup.abuse.events import Outcome, utc_now
from lookup.abuse.holds import held, swarmed
from lookup.api import openapi, schemas
from lookup.api.auth import role
from lookup.api.params import check_length, check_query, check_text
from lookup.api.problems import PROBLEM_JSON, problem_body
from lookup.api.services import Services
from lookup.errors import BlockHeld, BlockSwarmed, InvalidParameter
from lookup.index.reader import Listing
from lookup.keys import ApiKey
from lookup.names import match_score
from lookup.numbers import InvalidNumber, InvalidReason, e164, national_format, normalize, shown
from lookup.text import bidi_shown

_MAX_NAME: Final = 200
_ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_encoder = msgspec.json.Encoder()


def not_found(national: str) -> ASGIResponse:
    """The one 404 every unknown, unlisted or reserved number gets."""
    number = e164(national)
    return ASGIResponse(
        body=problem_body("number-not-found", f"no listing for {number}", number=number),
        status_code=404,
        media_type=PROBLEM_JSON,
    )


def to_response(listing: Listing, snapshot: str) -> schemas.Listing:
    """Public view of a listing: no operator, no birth date, no hidden address."""
    if listing.kind == "person":
        full = f"{listing.first_name} {listing.last_name}".strip()
        name = schemas.Name(full=full, first=listing.first_name, last=listing.last_name)
    else:
        name = schemas.Name(full=listing.business_name)
    address = None
    if listing.reservation == "listed" and (listing.street or listing.postcode or listing.city):
        address = schemas.Address(
            street=listing.street or None,
            postcode=listing.postcode or None,
            city=listing.city or None,
        )
    return schemas.Listing(
        number=e164(listing.number),
        national_number=national_format(listing.number),
        number_type=cast(schemas.NumberTypeName, listing.number_type),  # the plan's, at ingest
        kind="person" if listing.kind == "person" else "business",
        name=name,
        marketing_reserved=listing.marketing_reserved,
        valid_from=listing.valid_from,
        snapshot=snapshot,
        org_number=listing.org_number or None,
        address=address,
    )


class NumbersController(Controller):
    """Lookups by number."""

    path = "/v1/numbers"
    opt = role("lookup")
    tags = ["lookup"]  # noqa: RUF012

    @get(
        "/{number:str}",
        summary="Look up a number",
        responses={
            200: ResponseSpec(schemas.Listing, description="The listing", generate_examples=False),
            **openapi.problems(
                "number-not-found",
                "invalid-number",
                "invalid-parameter",
                "block-held",
                "block-swarmed",
                "snapshot-unavailable",
            ),
        },
    )
    async def lookup(
        self,
        request: Request[Any, Any, Any],
        number: Annotated[str, PathParameter(description="The number in any common written form.")],
        name: Annotated[
            str | None,
            QueryParameter(description="A name to score against the listed name (0-100)."),
        ] = None,
        birth_date: Annotated[
            str | None,
            QueryParameter(
                description="YYYY-MM-DD; answers only whether it is the person's date of birth."
            ),
        ] = None,
    ) -> ASGIResponse:
        """The listing of a Norwegian number in any common written form."""
        services: Services = request.app.state.services
        try:
            national = normalize(number)
        except InvalidNumber:
            services.emit(request.scope, _as_logged(number), "invalid")
            raise
        # Checked before anything is counted: a malformed parameter is no answer, and must
        # not spend a date-of-birth check.
        check_query(request, "name", "birth_date")
        query = None if name is None else _name_query(name)
        claimed = None if birth_date is None else _claimed_birth_date(birth_date)
        snapshot = services.snapshots.current
        listing = snapshot.find(national)
        key: ApiKey = request.scope["user"]
        account = services.key_ring.account(key.account)
        holds, swarms = account.holds, services.key_ring.swarms
        # Found first, as every lookup is, and told to the detectors as it is: a scan
        # that goes on into its held block goes on being seen (and suspended).
        # Logged as refused: nothing was disclosed (a subject's report counts it so).
        outcome: Outcome = "miss" if listing is None else "hit"
        if holds and (hold := held(holds, int(national))) is not None:
            services.emit(request.scope, e164(national), outcome, held=True)
            raise BlockHeld(hold.label, key.account)
        if (
            swarms
            and (swarm := swarmed(swarms, int(national), account.opened, utc_now())) is not None
        ):
            services.emit(request.scope, e164(national), outcome, held=True)
            raise BlockSwarmed(swarm.hold.label, swarm.until)
        if listing is None:
            services.emit(request.scope, e164(national), "miss")
            return not_found(national)
        if claimed is not None:
            # Guessing a date of birth takes thousands of tries: allow a few per number.
            services.limiter.verify(key.account, national)
        services.emit(request.scope, e164(national), "hit")
        body = to_response(listing, snapshot.name)
        if query is not None or claimed is not None:
            born = None if claimed is None else snapshot.born_on(listing, claimed)
            body = _verify(body, query, born)
        # Handing Litestar a finished ASGI response skips its response pipeline.
        return ASGIResponse(body=_encoder.encode(body), media_type=MediaType.JSON)

    @get("/", include_in_schema=False)
    async def lookup_without_number(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """`/v1/numbers/` with the number left out (an empty template field): invalid, as
        a blank number is, not an unknown route."""
        request.app.state.services.emit(request.scope, "", "invalid")
        raise InvalidNumber("", InvalidReason.EMPTY)

    @get("/{number:str}/{rest:path}", include_in_schema=False)
    async def lookup_with_slash(
        self,
        request: Request[Any, Any, Any],
        number: Annotated[str, PathParameter()],
        rest: Annotated[str, PathParameter()],
    ) -> ASGIResponse:
        """A number written with a slash ("22/33 44 55"): invalid, not an unknown route."""
        # `rest` is the path after the first slash, its own leading "/" included.
        written = number + rest
        request.app.state.services.emit(request.scope, _as_logged(written), "invalid")
        raise InvalidNumber(written, InvalidReason.MALFORMED)


def _as_logged(refused: str) -> str:
    """A refused number as the lookup log keeps it: its start, as written but for text
    direction controls, which would show a compliance officer other digits. Not escaped:
    the log finds a subject's refused lookups by their digits."""
    return bidi_shown(shown(refused))


def _name_query(name: str) -> str:
    """The name of `?name=`, trimmed; 1 to `_MAX_NAME` characters."""
    query = name.strip()
    check_text("name", query)
    # A soft hyphen alone scores as no name at all: what shows must be there.
    check_length("name", query, 1, _MAX_NAME)
    return query


def _claimed_birth_date(birth_date: str) -> date:
    """The date of `?birth_date=`: YYYY-MM-DD only."""
    # The pattern first: `date.fromisoformat` also reads week dates ("1980-W06-7").
    if _ISO_DATE.fullmatch(birth_date):
        try:
            return date.fromisoformat(birth_date)
        except ValueError:
            pass
    raise InvalidParameter("birth_date", "birth_date must be a date as YYYY-MM-DD")


def _verify(
    body: schemas.Listing, query: str | None, birth_date_match: bool | None
) -> schemas.Listing:
    """Add the answers to `?name=` and `?birth_date=`."""
    name_match = None
    if query is not None:
        name_match = schemas.NameMatch(query=query, score=match_score(query, body.name.full))
    return msgspec.structs.replace(body, name_match=name_match, birth_date_match=birth_date_match)
