"""Running the apps: the public and the internal API side by side in one process."""

from __future__ import annotations

import asyncio

import uvicorn
from litestar import Litestar

from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import Settings


def _server(app: Litestar, settings: Settings, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            log_level=settings.log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    )


async def serve_embedded(settings: Settings) -> None:
    """One process: public API, internal compliance API and the abuse monitor."""
    services = Services(settings)
    servers = [
        _server(create_app(settings, services), settings, settings.port),
        _server(create_internal_app(services), settings, settings.internal_port),
    ]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    # One stopped (a signal, or a port in use): stop the other too.
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*pending)
