"""Running the apps: the public and the internal API side by side in one process."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

import redis
import uvicorn
from litestar import Litestar

from lookup.abuse.stream import EventConsumer, stream_key
from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import Settings

log = logging.getLogger(__name__)


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


async def serve_consumer(settings: Settings) -> None:
    """The stream consumer: detectors, compliance store and the internal API."""
    services = Services(settings, consumer=True)
    assert services.monitor is not None
    consumer = EventConsumer(
        services.monitor, redis.Redis.from_url(settings.redis_url), stream_key(settings)
    )
    internal = _server(
        create_internal_app(services, lifespan=True), settings, settings.internal_port
    )
    serving = asyncio.create_task(internal.serve())
    while not serving.done():
        try:
            await asyncio.to_thread(consumer.consume)
        except redis.RedisError as exc:
            log.error("event stream unavailable: %s; retrying", exc)
            await asyncio.sleep(1)
    await serving


def serve_workers(settings: Settings) -> None:
    """Several worker processes behind one port, plus the consumer process beside them."""
    env = {
        **os.environ,
        **{
            f"LOOKUP_{k.upper()}": str(getattr(settings, k))
            for k in ("host", "port", "workers", "redis_url", "data_dir")
        },
    }
    os.environ.update(env)
    consumer = subprocess.Popen([sys.executable, "-m", "lookup.cli", "abuse", "consume"], env=env)
    try:
        uvicorn.run(
            "lookup.api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    finally:
        consumer.terminate()
        consumer.wait(timeout=10)
