"""Liveness, readiness and problem type pages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Response, get, head
from litestar.params import PathParameter

from lookup.api.openapi import NO_KEY, problems
from lookup.api.problems import problem, problem_type_page
from lookup.api.schemas import Health

if TYPE_CHECKING:
    from lookup.api.services import Services


@get("/healthz", summary="Liveness", tags=["operations"], security=NO_KEY)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@get(
    "/readyz",
    summary="Readiness",
    tags=["operations"],
    security=NO_KEY,
    responses=problems("snapshot-unavailable", "rate-limits-unavailable", keyed=False),
)
async def readyz(request: Request[Any, Any, Any]) -> Health | Response[bytes]:
    """Ready only with a snapshot loaded and the rate-limit storage answering (every
    request with a key is refused without it)."""
    services: Services = request.app.state.services
    if not services.snapshots.ready:
        return problem("snapshot-unavailable", "no snapshot loaded yet")
    # In a thread: the storage may be Redis, and the loop must not wait on it.
    if not await asyncio.to_thread(services.limiter.available):
        return problem(
            "rate-limits-unavailable",
            "the rate-limit storage does not answer: every request with a key is refused",
            headers={"Retry-After": "1"},
        )
    snapshot = services.snapshots.current
    return Health(status="ready", snapshot=snapshot.name, listings=snapshot.size)


# Load balancers' health checks often send HEAD: the same answers, without a body.
@head(
    "/healthz", summary="Liveness (HEAD)", tags=["operations"], name="healthz-head", security=NO_KEY
)
async def healthz_head() -> None:
    """The process is up."""


@head(
    "/readyz", summary="Readiness (HEAD)", tags=["operations"], name="readyz-head", security=NO_KEY
)
async def readyz_head(request: Request[Any, Any, Any]) -> Response[None]:
    """200 only when `GET /readyz` says ready, 503 otherwise."""
    services: Services = request.app.state.services
    ready = services.snapshots.ready and await asyncio.to_thread(services.limiter.available)
    return Response(None, status_code=200 if ready else 503)


@get("/problems/{slug:str}", summary="Problem type", tags=["operations"], security=NO_KEY)
async def problem_type(slug: Annotated[str, PathParameter()]) -> Response[bytes]:
    """What a problem `type` means."""
    return problem_type_page(slug)
