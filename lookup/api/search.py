"""`GET /v1/search?name=...&city=...` (role `search`): typo-tolerant name search."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from lookup.api import schemas
from lookup.api.auth import role
from lookup.api.numbers import to_response
from lookup.api.services import Services
from lookup.errors import InvalidParameter
from lookup.text import first_control

MAX_RESULTS: Final = 50
_MAX_CITY: Final = 100


class SearchController(Controller):
    """Search listings by name (support staff)."""

    path = "/v1/search"
    opt = role("search")
    tags = ["search"]  # noqa: RUF012

    # Scoring thousands of candidates takes milliseconds of CPU: off the event loop, so
    # lookups in the same worker do not queue behind a search.
    @get("/", summary="Search listings by name", sync_to_thread=True)
    def search(
        self,
        request: Request[Any, Any, Any],
        name: Annotated[str, QueryParameter(description="Name or part of it; typos tolerated.")],
        city: Annotated[
            str | None, QueryParameter(description="Only listings in this city.")
        ] = None,
        limit: Annotated[int, QueryParameter(description="At most this many (1-50).")] = 20,
    ) -> schemas.SearchResults:
        """Listings whose name matches, best first (reserved numbers are never among them)."""
        query = name.strip()
        if not 2 <= len(query) <= 100:
            raise InvalidParameter("name", "name must be 2 to 100 characters")
        if city is not None and not 1 <= len(city.strip()) <= _MAX_CITY:
            raise InvalidParameter("city", f"city must be 1 to {_MAX_CITY} characters")
        for parameter, text in (("name", query), ("city", (city or "").strip())):
            _check_text(parameter, text)
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidParameter("limit", f"limit must be 1 to {MAX_RESULTS}")
        services: Services = request.app.state.services
        snapshot = services.snapshots.current
        found = snapshot.names.search(query, city=city, limit=limit)
        hits = found.hits
        services.emit(request.scope, query, "hit" if hits else "miss", endpoint="search")
        return schemas.SearchResults(
            query=query,
            results=[
                schemas.SearchResult(
                    hit.score, to_response(snapshot.listing(hit.row), snapshot.name)
                )
                for hit in hits[:limit]
            ],
            truncated=len(hits) > limit or found.capped,
            snapshot=snapshot.name,
        )


def _check_text(parameter: str, text: str) -> None:
    """Refuse what no name holds: a byte the URL did not encode as UTF-8 (decoded as
    U+FFFD, it would match nothing, silently) or a control character."""
    if "\ufffd" in text:
        raise InvalidParameter(
            parameter,
            f"{parameter} is not UTF-8: percent-encode the UTF-8 bytes of each letter "
            "(ø is %C3%B8)",
        )
    # Tabs and line breaks are spaces to the search (a name pasted from a spreadsheet).
    control = first_control(text, allowed="\t\n\r")
    if control is not None:
        raise InvalidParameter(
            parameter, f"{parameter} must not contain control characters (U+{ord(control):04X})"
        )
