"""Liveness, readiness and problem type pages."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, head
from litestar.params import PathParameter

from lookup.api.problems import problem, problem_type_page
from lookup.api.schemas import Health
from lookup.index.reader import SnapshotSource


@get("/healthz", summary="Liveness", tags=["operations"])
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@get("/readyz", summary="Readiness", tags=["operations"])
async def readyz(request: Request[Any, Any, Any]) -> Health | Response[bytes]:
    """Ready only with a snapshot loaded."""
    source: SnapshotSource = request.app.state.services.snapshots
    if not source.ready:
        return problem("snapshot-unavailable", "no snapshot loaded yet")
    snapshot = source.current
    return Health(status="ready", snapshot=snapshot.name, listings=snapshot.size)


# Load balancers' health checks often send HEAD: the same answers, without a body.
@head("/healthz", summary="Liveness (HEAD)", tags=["operations"], name="healthz-head")
async def healthz_head() -> None:
    """The process is up."""


@head("/readyz", summary="Readiness (HEAD)", tags=["operations"], name="readyz-head")
async def readyz_head(request: Request[Any, Any, Any]) -> Response[None]:
    """200 only with a snapshot loaded, 503 before."""
    source: SnapshotSource = request.app.state.services.snapshots
    return Response(None, status_code=200 if source.ready else 503)


@get("/problems/{slug:str}", summary="Problem type", tags=["operations"])
async def problem_type(slug: Annotated[str, PathParameter()]) -> Response[bytes]:
    """What a problem `type` means."""
    return problem_type_page(slug)
