"""Everything the public and internal apps of one process share, and its background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lookup.abuse.events import EventBuffer
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.ratelimit import RateLimitConfig, RateLimiter
from lookup.abuse.store import ComplianceStore
from lookup.config import Settings
from lookup.index.reader import SnapshotSource
from lookup.keys import KeyRing, KeyStore, parse_networks

log = logging.getLogger(__name__)


class Services:
    """Snapshot, keys, rate limits, event buffer and abuse monitor of one server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.snapshots = SnapshotSource(settings.snapshots_path)
        self.key_store = KeyStore(settings.keys_path)
        self.key_ring = KeyRing(self.key_store)
        self.limiter = RateLimiter(
            RateLimitConfig(
                account_plan=settings.plan_account,
                key_plan=settings.plan_key,
                throttle_factor=settings.throttle_factor,
                storage=settings.ratelimit_storage,
            )
        )
        self.events = EventBuffer()
        self.store = ComplianceStore(settings.compliance_path)
        allow = settings.abuse_allow_ips.split(",") if settings.abuse_allow_ips else []
        self.monitor = AbuseMonitor(
            self.events,
            self.store,
            self.key_ring,
            allow=parse_networks(allow),
            detect=settings.abuse_detection,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load the snapshot and start the background loops."""
        self.snapshots.refresh()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.snapshot_poll_seconds, self._refresh)),
            asyncio.create_task(
                self._every(self.settings.event_flush_seconds, self.monitor.process)
            ),
        ]

    async def stop(self) -> None:
        """Stop the loops, handle the last events, close the stores."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.monitor.process()
        self.store.close()
        self.key_store.close()

    def _refresh(self) -> None:
        self.snapshots.refresh()
        self.key_ring.refresh()

    @staticmethod
    async def _every(seconds: float, work: object) -> None:
        """Run blocking work in a thread every `seconds`; a failure is logged, not fatal."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)  # type: ignore[arg-type]
            except Exception:
                log.exception("background %s failed; will retry", getattr(work, "__name__", work))
