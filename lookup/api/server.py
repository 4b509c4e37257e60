"""Running the service: the public API in front, the abuse monitor in a process of its own.

`lookup serve` (one worker) starts the monitor as a child process fed through
a pipe; with several workers the monitor is `lookup abuse consume`, fed
through a Redis Stream. Either way the detectors and the compliance store live
beside the request path, not on it, and the monitor serves the internal API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from multiprocessing.connection import Connection
from typing import Any, Final

import redis
import uvicorn
from litestar import Litestar
from prometheus_client import multiprocess

from lookup.abuse.events import LookupEvent, utc_now
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.state import tune_collector
from lookup.abuse.storefile import StoreFile
from lookup.abuse.stream import EventSource, PipeChannel, PipeSource, RedisSource, stream_key
from lookup.api.app import create_app, create_internal_app
from lookup.api.services import Services
from lookup.config import ConfigError, Settings, without_password
from lookup.errors import LookupServiceError
from lookup.metrics import EVENTS_DROPPED, MONITOR_RESTARTS, MULTIPROCESS_VARIABLE

log = logging.getLogger(__name__)


class MonitorUnavailable(LookupServiceError):
    """The abuse monitor of `lookup serve` cannot start."""


class PortUnavailable(LookupServiceError):
    """`lookup serve` cannot listen on its public port."""


def preflight(settings: Settings) -> None:
    """Refuse to start, in one line and before any process or log, what would fail later:
    a port another service holds, or a compliance store another service has open."""
    if settings.port == settings.internal_port and _may_overlap(
        settings.host, settings.internal_host
    ):
        raise PortUnavailable(
            f"LOOKUP_PORT (or --port) and LOOKUP_INTERNAL_PORT are both {settings.port}: "
            "the public and the internal API each need a port of their own"
        )
    for host, port in (
        (settings.host, settings.port),
        (settings.internal_host, settings.internal_port),
    ):
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )[0]
        except (OSError, UnicodeError) as exc:  # a name no DNS label can be: "a..b"
            raise PortUnavailable(
                f"cannot listen on {host}:{port}: {host!r} does not resolve to an address "
                f"({getattr(exc, 'strerror', None) or exc})"
            ) from None
        try:
            with socket.socket(family, kind, proto) as probe:
                # As uvicorn binds: a port in TIME_WAIT after a restart is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            cause = (
                f"{host} is no address of this machine"
                if exc.errno == errno.EADDRNOTAVAIL
                else "is another service using the port?"
            )
            raise PortUnavailable(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): {cause}"
            ) from None
    for setting, url in (
        ("LOOKUP_REDIS_URL", settings.redis_url),
        ("LOOKUP_RATELIMIT_STORAGE", settings.ratelimit_storage),
    ):
        _check_database(setting, url)
    StoreFile(settings.compliance_path).close()  # raises StoreInUse, naming the holder


def _check_database(setting: str, url: str) -> None:
    """Refuse a Redis database its server does not have: every request with a key would
    get 503 until the setting changed. A server that does not answer now may later, and
    the service waits for it (`/readyz` says so meanwhile)."""
    if not url.startswith(("redis://", "rediss://")):
        return
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.ResponseError as exc:
        if "DB index" in str(exc):
            raise ConfigError(
                f"{setting}: {without_password(url)!r}: the Redis server has no such "
                f"database ({exc}; they are numbered from 0, `databases` in redis.conf)"
            ) from None
    except redis.RedisError:
        pass
    finally:
        client.close()


_WILDCARDS: Final = frozenset({"0.0.0.0", "::", ""})
"""Listening addresses that take every address of the machine."""


def _may_overlap(host: str, other: str) -> bool:
    """Whether two listening addresses clash on one port: the same, or either all of them."""
    return host == other or host in _WILDCARDS or other in _WILDCARDS


OUTAGE_LOG_SECONDS: Final = 60.0
"""How often a consumer says its event stream is still unavailable."""
RETENTION_SWEEP_SECONDS: Final = 3600.0
"""How often the monitor deletes lookups past their retention (and once at start)."""


def trusted_proxies(setting: str) -> str:
    """`LOOKUP_FORWARDED_ALLOW_IPS` for uvicorn, each IPv4 entry also in its IPv4-mapped
    form: a proxy reaching a dual-stack socket (`--host ::`) over IPv4 is seen as
    `::ffff:a.b.c.d`, which uvicorn never matches with `a.b.c.d`, and its clients all
    looked like the proxy (to allow-lists and to the abuse rules)."""
    entries = [part.strip() for part in setting.split(",") if part.strip()]
    mapped = []
    for entry in entries:
        try:
            found = ipaddress.ip_network(entry)
        except ValueError:
            continue  # `*`, checked with the settings
        if found.version == 4:
            mapped.append(f"::ffff:{found.network_address}/{96 + found.prefixlen}")
    return ",".join([*entries, *mapped])


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every server of ours is run with, one worker or several."""
    return {
        "log_level": settings.log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        # Only a proxy the settings name may say who the client is.
        "proxy_headers": bool(settings.forwarded_allow_ips.strip()),
        "forwarded_allow_ips": trusted_proxies(settings.forwarded_allow_ips) or None,
        "timeout_keep_alive": math.ceil(settings.keep_alive_seconds),
    }


def _server(
    app: Litestar,
    settings: Settings,
    port: int,
    *,
    host: str | None = None,
    handle_signals: bool = True,
) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(app, host=host or settings.host, port=port, **_uvicorn_options(settings))
    )
    if not handle_signals:
        # uvicorn re-raises a caught signal when it stops, killing the process before
        # it can wait for its monitor; the caller stops the server itself instead.
        setattr(server, "capture_signals", contextlib.nullcontext)  # noqa: B010
    return server


CONSUMER_DRAIN_SECONDS: Final = 10.0
"""How long a stopping consumer reads on while events keep coming (workers still running)."""
CONSUMER_REDIS_TIMEOUT: Final = 5.0
"""Seconds a consumer's Redis call may take (a stream read waits 0.5 s for events)."""
CONSUMER_STOP_SECONDS: Final = 45
"""How long `serve --workers` waits for its consumer to stop: a warm-up, then the drain."""


async def serve_monitor(settings: Settings, source: EventSource) -> None:
    """The monitor: read events until the source closes; serve the internal API meanwhile."""
    services = Services(settings, lookups=False)
    monitor = services.monitor
    assert monitor is not None
    internal = _server(
        create_internal_app(services, lifespan=True),
        settings,
        settings.internal_port,
        # Not `LOOKUP_HOST`: a public API on 0.0.0.0 must not take the compliance API along.
        host=settings.internal_host,
        # The monitor stops its API itself, once done with the store the API's shutdown
        # closes (a stop during the warm-up broke the replay reading it).
        handle_signals=False,
    )
    stopping = asyncio.Event()
    if not isinstance(source, PipeSource):
        # A consumer stops on SIGTERM or Ctrl-C, after reading the stream to its end: the
        # workers of `serve --workers` stop first, so their last events are all there.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
    source.resume(services.store.delivered)
    serving = asyncio.create_task(internal.serve())
    while not internal.started and not serving.done():
        await asyncio.sleep(0.05)
    # Before `lookup serve` answers anyone: a block swarmed now is refused to accounts whose
    # first lookup the key store lacks.
    try:
        if opened := await asyncio.to_thread(monitor.record_openings):
            log.info("recorded the first logged lookup of %d accounts", opened)
    except Exception:  # each account's next lookup is recorded, the next start tries again
        log.exception("cannot record the accounts' first logged lookups")
    if internal.started:
        source.announce()
    started = time.perf_counter()
    replayed = await asyncio.to_thread(monitor.warm, utc_now())
    log.info(
        "abuse detectors warmed with %d logged lookups in %.1f s",
        replayed,
        time.perf_counter() - started,
    )
    # The first sweep after the first read: a restarted monitor reads first what the server
    # sends again, whose lookups of a number erased meanwhile the sweep's `late_erasures`
    # must still catch.
    swept, read = -math.inf, False
    drain_until = math.inf
    outage: float | None = None  # when the stream became unavailable
    said = -math.inf  # when that was last logged
    while True:
        if read and time.monotonic() - swept >= RETENTION_SWEEP_SECONDS:
            swept = time.monotonic()
            await _sweep(monitor, settings)
        try:
            batch = await asyncio.to_thread(source.read, 0.5)
            read = True
            if batch is None:  # the server closed the pipe: it has stopped
                break
            if batch:
                await asyncio.to_thread(monitor.submit, batch, source.mark)
            else:
                await asyncio.to_thread(monitor.write_log, due=True)
            if not monitor.unlogged:
                source.done(len(batch))
            if outage is not None:
                if said >= outage:  # said unavailable: said back (a flap within a minute is not)
                    log.warning(
                        "event stream available again after %.0f s", time.monotonic() - outage
                    )
                outage = None
        except redis.RedisError as exc:
            if stopping.is_set():
                break  # what is in the stream waits there for the next consumer
            # Retried every second, said once a minute: an outage of an hour was 3,600 lines.
            outage = time.monotonic() if outage is None else outage
            if time.monotonic() - said >= OUTAGE_LOG_SECONDS:
                said = time.monotonic()
                log.error(
                    "event stream unavailable for %.0f s: %s; retrying every second",
                    said - outage,
                    exc,
                )
            # What was read before the outage is written meanwhile, not after it.
            await asyncio.to_thread(monitor.write_log, due=True)
            await asyncio.sleep(1)
            continue
        if serving.done() and not isinstance(source, PipeSource):
            break  # its API failed (the port lost): a consumer does not run without it
        if stopping.is_set():
            if not batch:
                break  # the stream read to its end
            drain_until = min(drain_until, time.monotonic() + CONSUMER_DRAIN_SECONDS)
            if time.monotonic() > drain_until:
                # Workers still sending (a consumer stopped on its own): they wait in the
                # stream for the next consumer, which logs them.
                log.warning("stopping with events left in the stream; the next consumer reads them")
                break
    if monitor.unlogged:
        await asyncio.to_thread(monitor.write_log)
        with contextlib.suppress(redis.RedisError):  # the store's mark says how far, too
            source.done(0)
    internal.should_exit = True
    await serving


async def _sweep(monitor: AbuseMonitor, settings: Settings) -> None:
    """Delete the lookups past their retention (a failure waits for the next sweep)."""
    try:
        swept = await asyncio.to_thread(monitor.sweep, utc_now(), settings.log_retention_months)
    except Exception:  # the log must not stop the detectors; the next sweep tries again
        log.exception("the lookup log's retention sweep failed")
    else:
        if swept.lookups or swept.findings:
            log.info(
                "lookup log: %d lookups past their retention deleted, their numbers expired "
                "in %d findings",
                *swept,
            )


def _monitor_process(settings: Settings, connection: Connection) -> None:
    """Entry point of the child process that `lookup serve` starts.

    It ignores Ctrl-C (which the terminal sends to the whole process group) and
    stops when its server closes the pipe, after handling the last events.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    _as_monitor(settings)
    try:
        asyncio.run(serve_monitor(settings, PipeSource(connection)))
    except LookupServiceError as exc:
        # One line, as the command's own errors: `serve` adds what it means for the service.
        print(f"lookup monitor: {exc}", file=sys.stderr)
        sys.exit(1)


def _as_monitor(settings: Settings) -> None:
    """Make this process a monitor's: the serving processes have the CPU first (call once:
    `os.nice` adds up), and the cycle collector spares its state (`tune_collector`)."""
    os.nice(settings.monitor_nice)
    tune_collector()


class _Restarts:
    """A supervised process's restarts, and how long to wait before looking at it again:
    a second while it runs, doubling up to 30 s while it keeps dying (say, its port taken
    or Redis down), so a crash loop does not spin."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.delay = 1.0

    def running(self) -> None:
        """It was alive when looked at."""
        self.delay = 1.0

    def died(self, pid: int | None, code: int | None) -> None:
        """It had exited, with `code`: about to be restarted."""
        self.count += 1
        MONITOR_RESTARTS.inc()
        if pid is not None and os.environ.get(MULTIPROCESS_VARIABLE):
            # Its live gauges (the monitor's lag) must not outlive it in `/metrics`.
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        log.error(
            "the %s stopped (exit %s); restarting it (restart %d)", self.what, code, self.count
        )
        self.delay = min(self.delay * 2, 30.0)


class _MonitorChild:
    """The monitor process of `lookup serve`, restarted if it dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.restarts = _Restarts("abuse monitor")
        self.channel = PipeChannel(self._start(), on_drop=EVENTS_DROPPED.inc)

    def _start(self) -> Connection:
        """Start a monitor child; returns the server's end of its pipe."""
        ours, theirs = self.context.Pipe(duplex=True)  # batches one way, acknowledgements back
        self.process = self.context.Process(
            target=_monitor_process,
            args=(self.settings, theirs),
            name="lookup-monitor",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        return ours

    def send(self, events: list[LookupEvent]) -> None:
        """Hand a batch to the child (raises TransportError while it is down)."""
        self.channel.send(events)

    async def supervise(self) -> None:
        """Restart the child when it dies, backing off while it keeps dying."""
        while True:
            await asyncio.sleep(self.restarts.delay)
            if self.process.is_alive():
                self.restarts.running()
                continue
            self.restarts.died(self.process.pid, self.process.exitcode)
            self.channel.connection.close()
            # What the dead monitor had not committed goes to the new one.
            self.channel.reconnect(self._start())

    async def started(self, timeout: float = 30.0) -> None:
        """Wait for the first monitor to say it listens; raise if it exits first (its port
        taken, its compliance store locked): a service that would crash-loop its monitor
        must not start serving with detection and the lookup log off."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.channel.up:
                return
            if not self.process.is_alive():
                raise MonitorUnavailable(
                    f"the abuse monitor could not start (exit {self.process.exitcode}; "
                    "its error is above): is another service using internal port "
                    f"{self.settings.internal_port} or its data dir?"
                )
            await asyncio.sleep(0.1)
        log.warning("the abuse monitor has not started after %gs; serving anyway", timeout)

    async def stop(self) -> None:
        """Close the pipe (the child then handles what is left) and wait for it."""
        self.channel.connection.close()
        await asyncio.to_thread(self.process.join, 15)
        if self.process.is_alive():
            # It ignores SIGTERM (and the terminal's Ctrl-C), so as to finish its last
            # events; one that has not in 15 s is stuck.
            log.error("the abuse monitor did not stop in 15 s; killing it")
            self.process.kill()


async def serve_embedded(settings: Settings) -> None:
    """One worker: the public API here, the monitor and internal API in a child process."""
    child = _MonitorChild(settings)
    await child.started()
    services = Services(settings, child.send)
    server = _server(create_app(settings, services), settings, settings.port, handle_signals=False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.handle_exit, signum, None)
    supervisor = asyncio.create_task(child.supervise())
    try:
        await server.serve()
    except SystemExit:
        if server.started:
            raise
        # uvicorn logged why (the port taken, most often) and exits; say it in one line.
        raise PortUnavailable(
            f"cannot listen on {settings.host}:{settings.port} (the error is above): "
            "is another service using the port?"
        ) from None
    finally:
        supervisor.cancel()
        await child.stop()  # after the app's shutdown flushed the last events


async def serve_consumer(settings: Settings) -> None:
    """`lookup abuse consume`: the monitor for several workers, fed by the Redis Stream."""
    # Bounded (above the stream read's own wait): a Redis that accepts and never answers
    # must not keep a consumer from stopping.
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=CONSUMER_REDIS_TIMEOUT,
        socket_connect_timeout=CONSUMER_REDIS_TIMEOUT,
    )
    _as_monitor(settings)
    await serve_monitor(settings, RedisSource(client, stream_key(settings)))


class _Consumer:
    """`lookup abuse consume` beside the workers, restarted if it dies (as `_MonitorChild`):
    without it the workers would serve on with detection and the lookup log off."""

    def __init__(self, env: dict[str, str], settings: Settings) -> None:
        self.env = env
        self.health = f"http://{_dialable(settings.internal_host)}:{settings.internal_port}/healthz"
        self.restarts = _Restarts("abuse consumer")
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one process started at a time, by either thread
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        # A session of its own: the terminal's Ctrl-C stops the workers, and this stops the
        # consumer once they have, their last events in the stream.
        return subprocess.Popen(
            [sys.executable, "-m", "lookup.cli", "abuse", "consume"],
            env=self.env,
            start_new_session=True,
        )

    def supervise(self) -> None:
        """Restart the consumer when it exits, backing off while it keeps exiting (Redis
        down at start, say: the stream keeps the events meanwhile)."""
        while not self._stopping.wait(self.restarts.delay):
            with self._lock:
                code = self.process.poll()
                if code is None:
                    self.restarts.running()
                    continue
                if self._stopping.is_set():
                    return  # `stop` starts the one that drains the stream
                self.restarts.died(self.process.pid, code)
                self.process = self._start()

    def stop(self) -> None:
        """Stop supervising, then the consumer, once it reads the stream to its end. One
        that died, or was restarted so lately that it may not handle SIGTERM yet (it would
        die of it), is started or waited for first: the workers' last events are in the
        stream, and must reach the log now, not at the next start."""
        with self._lock:
            self._stopping.set()
            if self.process.poll() is not None:
                self.process = self._start()
        if not self._answers(within=CONSUMER_STOP_SECONDS):
            log.error("the abuse consumer did not come up; its events wait in the stream")
        self.process.terminate()
        try:
            # A warm-up under way (seconds under load) ends first, then the stream is read
            # to its end.
            self.process.wait(timeout=CONSUMER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("the abuse consumer did not stop in %d s; killing it", CONSUMER_STOP_SECONDS)
            self.process.kill()

    def _answers(self, within: float) -> bool:
        """Wait until the consumer's internal API answers (its signal handling is set up by
        then); False if it exits or does not within the time."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with _DIRECT.open(self.health, timeout=1) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False


_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""An opener that reaches the consumer directly, whatever `http_proxy` says."""


def _dialable(host: str) -> str:
    """An address to reach a server listening on `host` (a wildcard is reached on loopback)."""
    if host in _WILDCARDS:
        return "[::1]" if host == "::" else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def serve_workers(settings: Settings) -> None:
    """Several worker processes behind one port, plus the consumer process beside them."""
    names = ("host", "port", "workers", "redis_url", "data_dir")
    env = {
        **os.environ,
        **{f"LOOKUP_{name.upper()}": str(getattr(settings, name)) for name in names},
    }
    os.environ.update(env)
    consumer = _Consumer(env, settings)
    threading.Thread(target=consumer.supervise, name="consumer-supervisor", daemon=True).start()
    try:
        uvicorn.run(
            "lookup.api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            **_uvicorn_options(settings),
        )
    finally:
        consumer.stop()
