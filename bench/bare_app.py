"""A bare Litestar app: the framework's own cost, as a ceiling for the real service.

Two routes, no auth, no middleware, no state, no lifespan:

  GET /bare/{number:str}  a constant listing, the service's own Struct (the same path
                          parameter parsing as `GET /v1/numbers/{number}`);
  GET /const              the same constant Struct, no parameter.

Used by bench/http_throughput.sh, served with the settings `lookup serve` uses:
  .venv/bin/uvicorn --app-dir bench bare_app:app --port 8102 --workers 1 \
      --loop uvloop --http httptools --no-access-log --log-level warning
"""

from __future__ import annotations

from datetime import datetime

from litestar import Litestar, get

from lookup.api.schemas import Address, Listing, Name
from lookup.timezones import OSLO

LISTING = Listing(
    number="+4791234567",
    national_number="912 34 567",
    number_type="mobile",
    kind="person",
    name=Name(full="Kari Nordmann", first="Kari", last="Nordmann"),
    marketing_reserved=False,
    valid_from=datetime(2024, 3, 14, 9, 26, 53, tzinfo=OSLO),  # as served: with its offset
    snapshot="20261122T063000Z-0007",
    address=Address(street="Storgata 1", postcode="0155", city="OSLO"),
)


@get("/bare/{number:str}")
async def bare(number: str) -> Listing:
    """The constant listing, whatever the number."""
    return LISTING


@get("/const")
async def const() -> Listing:
    """The constant listing, no parameter."""
    return LISTING


app = Litestar(route_handlers=[bare, const], openapi_config=None, debug=False)
