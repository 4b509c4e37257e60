"""Moving lookup events from the serving processes to the one process that runs the detectors.

Serving processes only queue events and hand them over in batches; a single
monitor process logs them, runs the detectors and owns the compliance store,
so the detector never competes with requests for the interpreter. Two
transports: a pipe to a child process (`lookup serve`, one worker) and a
Redis Stream (several workers, `LOOKUP_REDIS_URL`). Suspensions travel back
through the key store, which every server re-reads every
`LOOKUP_KEY_REFRESH_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final, Protocol, cast

import msgspec
import redis

from lookup.abuse.events import EventBuffer, LookupEvent
from lookup.config import Settings

log = logging.getLogger(__name__)
_FIELD: Final = b"e"
_MAX_LEN: Final = 1_000_000
_READ_MAX: Final = 50_000
"""Events the monitor takes in one go."""
_MAX_PENDING: Final = 100_000
"""Events a server holds while the monitor is unreachable (each retry re-sends them all)."""
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LookupEvent).decode
_decode_batch = msgspec.json.Decoder(list[LookupEvent]).decode

Sender = Callable[[list[LookupEvent]], None]


class TransportError(Exception):
    """The way to the monitor is down; events stay queued."""


def stream_key(settings: Settings) -> str:
    """The stream of one data dir: two services with different data dirs never mix events."""
    digest = hashlib.sha256(str(settings.data_path.resolve()).encode()).hexdigest()[:12]
    return f"lookup:{digest}:events"


def redis_sender(client: redis.Redis, key: str) -> Sender:
    """Append a batch to the stream in one round trip."""

    def send(events: list[LookupEvent]) -> None:
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(key, {_FIELD: _encode(event)}, maxlen=_MAX_LEN, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise TransportError(f"event stream unavailable: {exc}") from exc

    return send


def pipe_sender(connection: Connection) -> Sender:
    """Send a batch to the monitor process as one message."""

    def send(events: list[LookupEvent]) -> None:
        try:
            connection.send_bytes(_encode(events))
        except OSError as exc:
            raise TransportError(f"monitor process unreachable: {exc}") from exc

    return send


class EventPublisher:
    """Hands a server's queued events to the monitor, one batch per flush."""

    def __init__(self, buffer: EventBuffer, send: Sender) -> None:
        self.buffer = buffer
        self.send = send
        self._pending: list[LookupEvent] = []

    def publish(self) -> int:
        """Send what is queued; when the transport is down, keep it for the next try."""
        self._pending.extend(self.buffer.drain())
        if not self._pending:
            return 0
        try:
            self.send(self._pending)
        except TransportError as exc:
            log.error("%s; %d events held", exc, len(self._pending))
            if len(self._pending) > _MAX_PENDING:
                # Bounded: count what cannot be kept, never hide it.
                self.buffer.dropped += len(self._pending) - _MAX_PENDING
                self._pending = self._pending[-_MAX_PENDING:]
            return 0
        sent, self._pending = len(self._pending), []
        return sent


class EventSource(Protocol):
    """Where the monitor process reads events from."""

    def read(self, timeout: float) -> list[LookupEvent] | None:
        """The next batch ([] when none arrived in time), or None when the source closed."""
        ...

    def done(self, count: int) -> None:
        """Acknowledge that the last batch was handled."""
        ...


class PipeSource:
    """The read end of the pipe from the serving process."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def read(self, timeout: float) -> list[LookupEvent] | None:
        """Every batch the server has sent so far, or None once it closed the pipe.

        Batches that queued up while the monitor was busy are taken together:
        the lookup log then costs one insert for all of them.
        """
        events: list[LookupEvent] = []
        try:
            if not self.connection.poll(timeout):
                return []
            while True:
                events.extend(_decode_batch(self.connection.recv_bytes()))
                if len(events) >= _READ_MAX or not self.connection.poll(0):
                    return events
        except (EOFError, OSError):
            # Closed: hand over what arrived first; the next read reports the end.
            return events or None

    def done(self, count: int) -> None:
        """Nothing to acknowledge: a pipe delivers once."""


class RedisSource:
    """The stream, read from where the last consumer left off."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._cursor_key = key + ":consumed"
        cursor = client.get(self._cursor_key)
        self.cursor = cursor.decode() if isinstance(cursor, bytes) else "0-0"
        self._next = self.cursor

    def read(self, timeout: float, count: int = 5000) -> list[LookupEvent] | None:
        """The next batch of new events."""
        reply = cast(
            "list[Any]",
            self.client.xread({self.key: self.cursor}, count=count, block=int(timeout * 1000)),
        )
        if not reply:
            return []
        entries = reply[0][1]
        self._next = entries[-1][0].decode()
        events = []
        for entry_id, fields in entries:
            try:
                events.append(_decode(fields[_FIELD]))
            except (KeyError, msgspec.DecodeError) as exc:
                # Skipped, not retried forever: the cursor moves past it with its batch.
                log.error("stream entry %s is not an event, skipped: %s", entry_id, exc)
        return events

    def done(self, count: int) -> None:
        """Move the saved cursor past the handled batch: a crash replays, never loses."""
        if self._next != self.cursor:
            self.cursor = self._next
            self.client.set(self._cursor_key, self.cursor)
