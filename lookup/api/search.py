"""`GET /v1/search?name=...&city=...` (role `search`): typo-tolerant name search."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from lookup.abuse.events import utc_now
from lookup.abuse.holds import Hold, held
from lookup.api import openapi, schemas
from lookup.api.auth import role
from lookup.api.numbers import to_response
from lookup.api.params import check_length, check_query, check_text, check_whole_number
from lookup.api.services import Services
from lookup.errors import InvalidParameter
from lookup.keys import ApiKey

MAX_RESULTS: Final = 50
_MAX_CITY: Final = 100
PARAMETERS: Final = ("name", "city", "limit")
"""The query parameters the endpoint takes (`opt["query"]`: the error mapping names a
misspelt one before saying that `name` is missing)."""


class SearchController(Controller):
    """Search listings by name (support staff)."""

    path = "/v1/search"
    opt = role("search")
    tags = ["search"]  # noqa: RUF012

    # Scoring thousands of candidates takes milliseconds of CPU: off the event loop, so
    # lookups in the same worker do not queue behind a search.
    @get(
        "/",
        summary="Search listings by name",
        sync_to_thread=True,
        opt={"query": PARAMETERS},
        responses={
            200: ResponseSpec(
                schemas.SearchResults, description="Best matches first", generate_examples=False
            ),
            **openapi.problems("invalid-parameter", "snapshot-unavailable"),
        },
    )
    def search(
        self,
        request: Request[Any, Any, Any],
        # The bounds in the schema only (`schema_extra`): checked below, in the service's words.
        name: Annotated[
            str,
            QueryParameter(
                description="Name or part of it; typos tolerated.",
                schema_extra={"minLength": 2, "maxLength": 100},
            ),
        ],
        city: Annotated[
            str | None,
            QueryParameter(
                description="Only listings in this city.",
                schema_extra={"minLength": 1, "maxLength": _MAX_CITY},
            ),
        ] = None,
        limit: Annotated[
            int,
            QueryParameter(
                description="At most this many (1-50).",
                schema_extra={"minimum": 1, "maximum": MAX_RESULTS},
            ),
        ] = 20,
    ) -> Response[schemas.SearchResults]:
        """Listings whose name matches, best first (never a reserved number, nor one in a block
        held for the account)."""
        # First: which of a repeated parameter's values to check cannot be told either.
        check_query(request, *PARAMETERS)
        query = name.strip()
        # Litestar binds an empty `city=` as no city: read as given, it is refused below
        # rather than the filter dropped silently.
        city = request.query_params.get("city", city)
        for parameter, text in (("name", query), ("city", (city or "").strip())):
            check_text(parameter, text)
        check_length("name", query, 2, 100)
        if city is not None:
            check_length("city", city, 1, _MAX_CITY)
        check_whole_number("limit", request.query_params.get("limit"))
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidParameter("limit", f"limit must be 1 to {MAX_RESULTS}")
        services: Services = request.app.state.services
        snapshot = services.snapshots.current
        key: ApiKey = request.scope["user"]
        account = services.key_ring.account(key.account)
        holds, now = account.holds, utc_now()
        swarms = {
            block: swarm
            for block, swarm in services.key_ring.swarms.items()
            if swarm.refuses(account.opened, now)
        }
        throttled = account.status == "throttled"
        # A name search returns up to 50 listings a request: the listings, not the requests,
        # are what a bulk download by name would take.
        taken = services.limiter.reserve_search(
            key.account, limit, throttled=throttled, plan=account.search_plan
        )

        def refused(row: int) -> bool:
            number = int(snapshot.number(row))
            return held(holds, number) is not None or Hold.of(number) in swarms

        # A held block's listings are refused here too, and a swarmed one's to a new
        # account: else a name search would hand a scan the block its lookups may not read.
        returned = 0
        try:
            found = snapshot.names.search(
                query, city=city, limit=limit, skip=refused if holds or swarms else None
            )
            returned = min(len(found.hits), limit)
        finally:  # what it took and did not return goes back, whatever happened
            services.limiter.settle_search(taken, returned)
        hits = found.hits
        truncated = len(hits) > limit or found.capped
        services.emit(
            request.scope,
            query,
            "hit" if hits else "miss",
            endpoint="search",
            listings=returned,
            full_page=truncated,
        )
        left = services.limiter.search_quota(taken, returned)
        return Response(
            schemas.SearchResults(
                query=query,
                results=[
                    schemas.SearchResult(
                        hit.score, to_response(snapshot.listing(hit.row), snapshot.name)
                    )
                    for hit in hits[:limit]
                ],
                truncated=truncated,
                snapshot=snapshot.name,
                withheld=found.withheld,
            ),
            # What the search plan has left, beside the key's and account's limits.
            headers={"RateLimit-Policy": left.policy, "RateLimit": left.remaining},
        )
