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

import contextlib
import hashlib
import logging
import threading
import uuid
from collections import deque
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

Sender = Callable[[list[LookupEvent]], None]
Mark = tuple[str, str]
"""Where a source's last batch came from and how far it was: (channel, position). Committed
with the batch's lookups, so a restarted monitor neither loses nor repeats a batch."""
Committed = Callable[[str], str | None]
"""The position the compliance store committed for a channel, if any."""


class PipeBatch(msgspec.Struct, array_like=True):
    """A batch on the pipe: the server run that sent it, its number in the run, its events."""

    run: str
    seq: int
    events: list[LookupEvent]


_decode_pipe = msgspec.json.Decoder(PipeBatch).decode
_UP: Final = b"up"


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


class PipeChannel:
    """The serving process's end of the pipe to its monitor child.

    Batches are numbered and kept until the monitor acknowledges that it committed
    them: a monitor that dies with batches in the pipe, or read but not committed,
    gets them again once restarted (`reconnect`), and skips those it had committed.
    """

    def __init__(
        self,
        connection: Connection,
        run: str | None = None,
        on_drop: Callable[[int], object] | None = None,
    ) -> None:
        self.connection = connection
        self._on_drop = on_drop
        self.run = run or uuid.uuid4().hex
        self._seq = 0
        self._unacked: deque[tuple[int, int, bytes]] = deque()
        self._unacked_events = 0
        self._up = False
        # One sender at a time: a shutdown's last flush must not interleave its bytes with
        # (or take the number of) a flush still blocked on a full pipe.
        self._lock = threading.Lock()

    def send(self, events: list[LookupEvent]) -> None:
        """Send a batch (raises TransportError while the monitor is down)."""
        with self._lock:
            self._send(events)

    def _send(self, events: list[LookupEvent]) -> None:
        self._take_acks()
        payload = _encode(PipeBatch(self.run, self._seq + 1, events))
        try:
            self.connection.send_bytes(payload)
        except OSError as exc:
            raise TransportError(f"monitor process unreachable: {exc}") from exc
        self._seq += 1
        self._unacked.append((self._seq, len(events), payload))
        self._unacked_events += len(events)
        while self._unacked_events > _MAX_PENDING and len(self._unacked) > 1:
            # A monitor alive but not acknowledging: bounded, and said, never hidden.
            _, count, _ = self._unacked.popleft()
            self._unacked_events -= count
            log.error("%d sent events unacknowledged by the monitor; no longer kept", count)
            if self._on_drop is not None:
                self._on_drop(count)

    def reconnect(self, connection: Connection) -> None:
        """A new monitor: hand it every batch the last one did not acknowledge."""
        with self._lock:
            self.connection = connection
            try:
                for _, _, payload in self._unacked:
                    connection.send_bytes(payload)
            except OSError as exc:  # dead again: the next restart sends them once more
                log.error("monitor process unreachable: %s", exc)

    @property
    def up(self) -> bool:
        """Whether the monitor has said it listens (its internal API bound, its store open)."""
        with self._lock:
            self._take_acks()
            return self._up

    @property
    def unacknowledged(self) -> int:
        """Events sent but not yet acknowledged as committed."""
        with self._lock:
            self._take_acks()
            return self._unacked_events

    def _take_acks(self) -> None:
        try:
            while self.connection.poll(0):
                message = self.connection.recv_bytes()
                if message == _UP:
                    self._up = True
                    continue
                acked = int(message)
                while self._unacked and self._unacked[0][0] <= acked:
                    self._unacked_events -= self._unacked.popleft()[1]
        except (EOFError, OSError, ValueError):
            return  # a dead monitor acknowledges nothing more


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
                self.buffer.drop(len(self._pending) - _MAX_PENDING)
                self._pending = self._pending[-_MAX_PENDING:]
            return 0
        sent, self._pending = len(self._pending), []
        return sent


class EventSource(Protocol):
    """Where the monitor process reads events from."""

    mark: Mark | None
    """Where the batches read so far end, to commit with them."""

    def resume(self, committed: Committed) -> None:
        """Skip what the compliance store has committed already (before the first read)."""
        ...

    def announce(self) -> None:
        """Tell the sender the monitor is up (its internal API listening)."""
        ...

    def read(self, timeout: float) -> list[LookupEvent] | None:
        """The next batch ([] when none arrived in time), or None when the source closed."""
        ...

    def done(self, count: int) -> None:
        """Acknowledge the batches read so far: handled, and written to the lookup log."""
        ...


class PipeSource:
    """The monitor's end of the pipe from the serving process."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.mark: Mark | None = None
        self._committed: Committed = lambda _: None
        self._last: dict[str, int] = {}
        self._ack = 0
        self._acked = 0

    def resume(self, committed: Committed) -> None:
        """Skip batches the store committed already (a server resends unacknowledged ones)."""
        self._committed = committed

    def announce(self) -> None:
        """Tell the server this monitor is up: `lookup serve` waits for it to start."""
        with contextlib.suppress(OSError):
            self.connection.send_bytes(_UP)

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
                message = self.connection.recv_bytes()
                try:
                    self._take(_decode_pipe(message), events)
                except msgspec.DecodeError as exc:
                    # Never seen since sends are serialised; a crash loop would be worse.
                    log.error("a message on the pipe is not a batch, skipped: %s", exc)
                if len(events) >= _READ_MAX or not self.connection.poll(0):
                    return events
        except (EOFError, OSError):
            # Closed: hand over what arrived first; the next read reports the end.
            return events or None

    def _take(self, batch: PipeBatch, into: list[LookupEvent]) -> None:
        channel = f"pipe:{batch.run}"
        last = self._last.get(batch.run)
        if last is None:
            committed = self._committed(channel)
            last = int(committed) if committed else 0
        self._ack = max(self._ack, batch.seq)
        if batch.seq <= last:
            return  # sent again after a restart, but committed before it
        self._last[batch.run] = batch.seq
        self.mark = (channel, str(batch.seq))
        into.extend(batch.events)

    def done(self, count: int) -> None:
        """Tell the server the batches read so far are written: it forgets them."""
        # Only news: the server reads acknowledgements when it sends, and an idle one
        # would otherwise let a repeated one fill the pipe until this send blocked the
        # monitor's loop (and the internal API with it).
        if self._ack > self._acked:
            # A server that is gone waits for no acknowledgement.
            with contextlib.suppress(OSError):
                self.connection.send_bytes(str(self._ack).encode())
            self._acked = self._ack


def _stream_id(entry: str) -> tuple[int, int]:
    """A stream entry id (`<ms>-<seq>`) as numbers, to compare two."""
    milliseconds, _, sequence = entry.partition("-")
    return int(milliseconds), int(sequence or 0)


class RedisSource:
    """The stream, read from where the last consumer left off."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._cursor_key = key + ":consumed"
        # Read at the first read, not here: with Redis down the consumer must still start
        # and serve the compliance API (an officer reinstating an account meanwhile).
        self.cursor = self._next = ""
        """Where the handled (`done`) entries end, and where the read ones end: the monitor
        may read several batches before it writes them."""
        self._committed: str | None = None
        self.mark: Mark | None = None

    def announce(self) -> None:
        """Nothing waits for a consumer to start (`--workers` supervises it instead)."""

    def resume(self, committed: Committed) -> None:
        """Start after what the store committed: the cursor saved in Redis after a write can
        lag it by the batches of one write (a consumer that died between the two)."""
        self._committed = committed(self.key)

    def _start(self) -> None:
        saved = self.client.get(self._cursor_key)
        cursor = saved.decode() if isinstance(saved, bytes) else "0-0"
        if self._committed is not None and _stream_id(self._committed) > _stream_id(cursor):
            cursor = self._committed
        self.cursor = self._next = cursor

    def read(self, timeout: float, count: int = 5000) -> list[LookupEvent] | None:
        """The next batch of new events."""
        if not self.cursor:
            self._start()  # a RedisError here is retried by the caller, as any read's
        reply = cast(
            "list[Any]",
            self.client.xread({self.key: self._next}, count=count, block=int(timeout * 1000)),
        )
        if not reply:
            return []
        entries = reply[0][1]
        self._next = entries[-1][0].decode()
        self.mark = (self.key, self._next)
        events = []
        for entry_id, fields in entries:
            try:
                events.append(_decode(fields[_FIELD]))
            except (KeyError, msgspec.DecodeError) as exc:
                # Skipped, not retried forever: the cursor moves past it with its batch.
                log.error("stream entry %s is not an event, skipped: %s", entry_id, exc)
        return events

    def done(self, count: int) -> None:
        """Move the saved cursor past the batches read so far, now handled and written: a
        crash replays, never loses."""
        if self._next != self.cursor:
            self.cursor = self._next
            self.client.set(self._cursor_key, self.cursor)
