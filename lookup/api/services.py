"""Everything the public and internal apps of one process share, and its background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Final

import redis
from litestar.types import Scope

from lookup.abuse.events import Endpoint, EventBuffer, LookupEvent, Outcome, utc_now
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.ratelimit import RateLimitConfig, RateLimiter
from lookup.abuse.store import ComplianceStore
from lookup.abuse.stream import EventPublisher, Sender, redis_sender, stream_key
from lookup.api.auth import client_address
from lookup.config import Settings
from lookup.index.reader import SnapshotSource
from lookup.keyring import KeyRing
from lookup.keys import ApiKey, KeyStore
from lookup.metrics import EVENTS_DROPPED, SNAPSHOT_LISTINGS, SNAPSHOT_PUBLISHED

log = logging.getLogger(__name__)
SHUTDOWN_FLUSH_SECONDS: Final = 10.0
"""How long a stopping server waits to hand its last events to the monitor."""


SEND_TIMEOUT: Final = 2.0
"""Seconds a batch of events may take to reach Redis before it is retried later."""


class Services:
    """Snapshot, keys, rate limits, event buffer and abuse monitor of one process.

    With a `sender`, the process serves and hands its events to the monitor
    process (`lookup serve`: through a pipe; several workers: through Redis).
    Without one, it runs the abuse monitor and owns the compliance store: the
    monitor process, or everything at once (the app factory's default in tests).
    """

    def __init__(
        self, settings: Settings, sender: Sender | None = None, *, lookups: bool = True
    ) -> None:
        self.settings = settings
        self.lookups = lookups
        """Whether this process answers lookups: the monitor process does not, and leaves
        the snapshot (and its name index, 136 MB for a million listings) unmapped."""
        self.snapshots = SnapshotSource(settings.snapshots_path, settings.data_path)
        self.key_store = KeyStore(settings.keys_path)
        self.key_ring = KeyRing(self.key_store)
        self.limiter = RateLimiter(RateLimitConfig.from_settings(settings))
        self.events = EventBuffer(on_drop=EVENTS_DROPPED.inc)
        self._store: ComplianceStore | None = None
        self.monitor: AbuseMonitor | None = None
        self.publisher: EventPublisher | None = None
        if sender is not None:
            self.publisher = EventPublisher(self.events, sender)
        else:
            self._store = ComplianceStore(settings.compliance_path)
            self.monitor = AbuseMonitor(
                self.events,
                self._store,
                self.key_ring,
                allow=settings.abuse_allow_networks,
                detect=settings.abuse_detection,
                search_plan=settings.plan_search,
                # The monitor process: its source keeps what is not written yet. A process
                # that serves as well (the app factory's default) writes every flush.
                commit_seconds=0.0 if lookups else settings.log_commit_seconds,
            )
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = threading.Lock()

    def emit(
        self,
        scope: Scope,
        number: str,
        outcome: Outcome,
        endpoint: Endpoint = "numbers",
        *,
        held: bool = False,
        listings: int | None = None,
        full_page: bool | None = None,
    ) -> None:
        """Queue the event of an answered request (a list append: the request never waits);
        `held`: refused as in a held block; `listings`, `full_page`: what a search returned."""
        key: ApiKey = scope["user"]
        self.events.emit(
            LookupEvent(
                ts=utc_now(),
                account=key.account,
                key=key.key_id,
                ip=client_address(scope),
                number=number,
                outcome=outcome,
                endpoint=endpoint,
                held=held,
                listings=listings,
                full_page=full_page,
            )
        )

    @classmethod
    def for_workers(cls, settings: Settings) -> Services:
        """A server's services as the app factory builds them (Redis when configured)."""
        if not settings.distributed:
            return cls(settings)
        # Bounded: a Redis that accepts and never answers must not hold the flush thread
        # (its events stay queued and go with the next flush).
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=SEND_TIMEOUT, socket_connect_timeout=SEND_TIMEOUT
        )
        return cls(settings, redis_sender(client, stream_key(settings)))

    @property
    def store(self) -> ComplianceStore:
        """The compliance store (only the process running the monitor has it)."""
        if self._store is None:
            raise RuntimeError("this worker does not own the compliance store")
        return self._store

    def _flush(self) -> None:
        # The loop's flush thread may still be inside a send when the shutdown flushes.
        with self._flush_lock:
            if self.monitor is not None:
                self.monitor.process()
            elif self.publisher is not None:
                self.publisher.publish()

    async def start(self) -> None:
        """Load the snapshot and start the background loops."""
        self._tasks = [
            asyncio.create_task(
                self._every(self.settings.key_refresh_seconds, self.key_ring.refresh)
            ),
        ]
        if self.lookups:
            # The monitor process takes its events from its source, each batch committed
            # with where it ends: a flush of its own would commit one without that mark.
            self._tasks.append(
                asyncio.create_task(self._every(self.settings.event_flush_seconds, self._flush))
            )
            self._refresh_snapshot()
            self._tasks.append(
                asyncio.create_task(
                    self._every(self.settings.snapshot_poll_seconds, self._refresh_snapshot)
                )
            )

    def _refresh_snapshot(self) -> None:
        """Swap in a newly published snapshot, and show which one is served."""
        if self.snapshots.refresh():
            snapshot = self.snapshots.current
            SNAPSHOT_LISTINGS.set(snapshot.size)
            if snapshot.published_at is not None:
                SNAPSHOT_PUBLISHED.set(snapshot.published_at.timestamp())

    async def stop(self) -> None:
        """Stop the loops, handle the last events, close the stores."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lookups:
            try:
                # Bounded: a monitor that has stopped reading must not keep the server alive.
                await asyncio.wait_for(asyncio.to_thread(self._flush), SHUTDOWN_FLUSH_SECONDS)
            except TimeoutError:
                log.error(
                    "the monitor took no events for %gs at shutdown: %d queued events and the "
                    "batch being sent were not logged",
                    SHUTDOWN_FLUSH_SECONDS,
                    len(self.events),
                )
        if self._store is not None:
            self._store.close()
        self.key_store.close()

    @staticmethod
    async def _every(seconds: float, work: object) -> None:
        """Run blocking work in a thread every `seconds`; a failure is logged, not fatal."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)  # type: ignore[arg-type]
            except Exception:
                log.exception("background %s failed; will retry", getattr(work, "__name__", work))
