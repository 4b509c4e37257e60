"""The Litestar application: one assembly point for routes, auth, errors and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from lookup.api import health
from lookup.api.auth import ApiKeyMiddleware
from lookup.api.numbers import NumbersController
from lookup.api.problems import handle
from lookup.config import Settings, load_settings
from lookup.index.reader import SnapshotSource
from lookup.keys import KeyRing, KeyStore

log = logging.getLogger(__name__)


async def _refresh_forever(app: Litestar, settings: Settings) -> None:
    """Pick up new snapshots and key changes, off the request path."""
    source: SnapshotSource = app.state.snapshots
    ring: KeyRing = app.state.key_ring
    key_every = max(1, round(settings.key_refresh_seconds / settings.snapshot_poll_seconds))
    tick = 0
    while True:
        await asyncio.sleep(settings.snapshot_poll_seconds)
        tick += 1
        try:
            await asyncio.to_thread(source.refresh)
            if tick % key_every == 0:
                ring.refresh()
        except Exception:  # a bad poll must not stop future ones
            log.exception("refresh failed; serving what is loaded")


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the public API for a data directory (settings from the environment by default)."""
    settings = settings or load_settings()
    source = SnapshotSource(settings.snapshots_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Opened here, in the server's thread: SQLite connections stay in theirs.
        store = KeyStore(settings.keys_path)
        app.state.key_ring = KeyRing(store)
        source.refresh()
        task = asyncio.create_task(_refresh_forever(app, settings))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            store.close()

    return Litestar(
        route_handlers=[NumbersController, health.healthz, health.readyz, health.problem_type],
        state=State({"snapshots": source, "settings": settings}),
        middleware=[ApiKeyMiddleware()],
        exception_handlers={Exception: handle},
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Nummeropplysning lookup API",
            version="1",
            description="Listings of Norwegian phone numbers. Reserved numbers are never shown.",
        ),
        debug=False,
    )
