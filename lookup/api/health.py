"""Liveness, readiness and problem type pages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, head
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from lookup.api.openapi import NO_KEY, problems
from lookup.api.problems import ProblemType, problem, problem_type_page
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
    return await _readiness(request)


async def _readiness(request: Request[Any, Any, Any]) -> Health | Response[bytes]:
    services: Services = request.app.state.services
    if not services.snapshots.ready:
        failure = services.snapshots.failure
        return problem(
            "snapshot-unavailable",
            "no snapshot loaded yet"
            if failure is None
            else f"the published snapshot cannot be read ({failure}); publish a new one with "
            "`lookup ingest`",
        )
    # In a thread: the storage may be Redis, and the loop must not wait on it.
    if not await asyncio.to_thread(services.limiter.available):
        return problem(
            "rate-limits-unavailable",
            "the rate-limit storage does not answer: every request with a key is refused",
            headers={"Retry-After": "1"},
        )
    snapshot = services.snapshots.current
    return Health(
        status="ready",
        snapshot=snapshot.name,
        listings=snapshot.size,
        newer_unreadable=services.snapshots.failure,
    )


# Load balancers' health checks often send HEAD: the same answers, without a body.
@head(
    "/healthz", summary="Liveness (HEAD)", tags=["operations"], name="healthz-head", security=NO_KEY
)
async def healthz_head() -> Response[None]:
    """The process is up."""
    return _headers_of(Health(status="ok"))


@head(
    "/readyz", summary="Readiness (HEAD)", tags=["operations"], name="readyz-head", security=NO_KEY
)
async def readyz_head(request: Request[Any, Any, Any]) -> Response[None]:
    """200 only when `GET /readyz` says ready, 503 otherwise."""
    return _headers_of(await _readiness(request))


def _headers_of(answer: Health | Response[bytes]) -> Response[None]:
    """What GET answers, without its body: the same status and headers, its length and
    type among them (Litestar would say the length of an empty body's `null`)."""
    if isinstance(answer, Response):
        body, status, media = answer.content, answer.status_code, str(answer.media_type)
        headers = dict(answer.headers)
    else:
        body, status, media, headers = msgspec.json.encode(answer), 200, MediaType.JSON, {}
    length = {"Content-Length": str(len(body)), "Content-Type": media}
    return Response(None, status_code=status, headers={**headers, **length})


@get(
    "/problems/{slug:str}",
    summary="Problem type",
    tags=["operations"],
    security=NO_KEY,
    responses={
        200: ResponseSpec(ProblemType, description="The problem type", generate_examples=False),
        **problems("not-found", keyed=False),
    },
)
async def problem_type(slug: Annotated[str, PathParameter()]) -> Response[bytes]:
    """What a problem `type` means."""
    return problem_type_page(slug)
