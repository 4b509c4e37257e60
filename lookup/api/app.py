"""The Litestar applications: one assembly point for routes, auth, errors and lifespan.

`create_app` builds the public API; `create_internal_app` the compliance API,
served on its own port. Both share one `Services` object per process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.logging import LoggingConfig

from lookup.api import health, openapi
from lookup.api.auth import ApiKeyMiddleware
from lookup.api.compliance import ComplianceController
from lookup.api.numbers import NumbersController
from lookup.api.problems import MAX_BODY, handle
from lookup.api.search import SearchController
from lookup.api.services import Services
from lookup.config import Settings, load_settings
from lookup.metrics import MetricsController, count_unrouted, counted


def _running(services: Services) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan that starts the services with the app and stops them after it."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    return lifespan


def _logging(settings: Settings) -> LoggingConfig:
    """Litestar's logging at `LOOKUP_LOG_LEVEL` (its default sets the root logger to INFO)."""
    level = settings.log_level.upper()
    return LoggingConfig(
        root={"handlers": ["queue_listener"], "level": level},
        loggers={"litestar": {"level": level, "handlers": ["queue_listener"], "propagate": False}},
    )


def _guarded(services: Services, app_name: str) -> dict[str, Any]:
    """An app's middleware (keys, roles, suspensions, limits) and, when metrics are on, what
    counts its requests: outermost, so refused requests count too, and a hook for those the
    router answers itself."""
    if not services.settings.metrics:
        return {"middleware": [ApiKeyMiddleware()]}
    return {
        "middleware": [counted(app_name), ApiKeyMiddleware()],
        "before_send": [count_unrouted(app_name)],
    }


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    """The public API; its lifespan runs the shared services."""
    services = services or Services.for_workers(settings or load_settings())
    return Litestar(
        route_handlers=[
            NumbersController,
            SearchController,
            health.healthz,
            health.healthz_head,
            health.readyz,
            health.readyz_head,
            health.problem_type,
        ],
        state=State({"services": services}),
        **_guarded(services, "public"),
        exception_handlers={Exception: handle},
        request_max_body_size=MAX_BODY,
        lifespan=[_running(services)],
        logging_config=_logging(services.settings),
        openapi_config=openapi.config(
            "Nummeropplysning lookup API",
            "Listings of Norwegian phone numbers. Reserved numbers are never shown.",
        ),
        on_startup=[openapi.without_unused_400, openapi.with_quota_fields],
        debug=False,
    )


def create_internal_app(services: Services, *, lifespan: bool = False) -> Litestar:
    """The compliance API (role `compliance`), for the internal network only.

    With `lifespan`, this app runs the services (the stream consumer has no public app).
    `/metrics` (no key: the port is internal) shows every process's metrics.
    """
    return Litestar(
        lifespan=[_running(services)] if lifespan else [],
        logging_config=_logging(services.settings),
        route_handlers=[
            ComplianceController,
            health.healthz,
            health.healthz_head,
            health.problem_type,
            *([MetricsController] if services.settings.metrics else []),
        ],
        state=State({"services": services}),
        **_guarded(services, "internal"),
        exception_handlers={Exception: handle},
        request_max_body_size=MAX_BODY,
        openapi_config=openapi.config("Nummeropplysning compliance API"),
        on_startup=[openapi.with_quota_fields],
        debug=False,
    )
