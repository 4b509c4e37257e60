"""The shared event stream (Redis Streams) for several server workers.

Workers append their lookup events to one stream; a single consumer process
(`lookup abuse consume`) reads it, runs the detectors and owns the compliance
store. Suspensions travel back through the key store, which every worker
re-reads within `LOOKUP_KEY_REFRESH_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Final, cast

import msgspec
import redis

from lookup.abuse.events import EventBuffer, LookupEvent
from lookup.abuse.monitor import AbuseMonitor
from lookup.config import Settings

log = logging.getLogger(__name__)
_FIELD: Final = b"e"
_MAX_LEN: Final = 1_000_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LookupEvent).decode


def stream_key(settings: Settings) -> str:
    """The stream of one data dir: two services with different data dirs never mix events."""
    digest = hashlib.sha256(str(settings.data_path.resolve()).encode()).hexdigest()[:12]
    return f"lookup:{digest}:events"


class EventPublisher:
    """Moves a worker's buffered events to the stream, in one round trip per batch."""

    def __init__(self, buffer: EventBuffer, client: redis.Redis, key: str) -> None:
        self.buffer = buffer
        self.client = client
        self.key = key
        self._pending: list[LookupEvent] = []

    def publish(self) -> int:
        """Send what is queued; on a Redis failure keep it for the next try."""
        self._pending.extend(self.buffer.drain())
        if not self._pending:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for event in self._pending:
            pipe.xadd(self.key, {_FIELD: _encode(event)}, maxlen=_MAX_LEN, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.error("event stream unavailable, %d events held: %s", len(self._pending), exc)
            if len(self._pending) > _MAX_LEN:
                # Bounded like the buffer: count what cannot be kept, never hide it.
                self.buffer.dropped += len(self._pending) - _MAX_LEN
                self._pending = self._pending[-_MAX_LEN:]
            return 0
        sent, self._pending = len(self._pending), []
        return sent


class EventConsumer:
    """Reads the stream from where it left off and feeds the monitor."""

    def __init__(self, monitor: AbuseMonitor, client: redis.Redis, key: str) -> None:
        self.monitor = monitor
        self.client = client
        self.key = key
        self._cursor_key = key + ":consumed"
        cursor = client.get(self._cursor_key)
        self.cursor = cursor.decode() if isinstance(cursor, bytes) else "0-0"

    def consume(self, block_ms: int = 500, count: int = 5000) -> int:
        """Handle one batch of new events; returns how many."""
        reply = cast(
            "list[Any]", self.client.xread({self.key: self.cursor}, count=count, block=block_ms)
        )
        if not reply:
            return 0
        entries = reply[0][1]
        events = [_decode(fields[_FIELD]) for _, fields in entries]
        self.monitor.submit(events)
        self.cursor = entries[-1][0].decode()
        # Saved after processing: a crash replays a batch rather than losing it.
        self.client.set(self._cursor_key, self.cursor)
        return len(events)
