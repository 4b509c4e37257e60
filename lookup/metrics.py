"""Prometheus metrics: what the service counts, and where several processes' counts meet.

`lookup serve` always runs more than one process (the server and its monitor;
with `--workers`, the workers and the consumer). prometheus_client's
multiprocess mode keeps each process's values in files of one folder, and the
internal port's `/metrics` adds them up. The mode is chosen when
prometheus_client is first imported, so `lookup serve` names the folder before
it imports the app. Without it (tests, the app factory alone) each process
counts in memory.

Labels never name an account, a key or a number: the metrics are for operators,
who must not learn customers' traffic from them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

PREFIX: Final = "lookup"
UNROUTED: Final = "<unrouted>"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_COUNTED: Final = "lookup.counted"
"""Scope key RequestMetrics sets on the requests it counts."""
MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
"""Set by `lookup serve` to the folder of its processes' metric files."""


REQUESTS: Final = Counter(
    f"{PREFIX}_requests_total",
    "Requests answered, by app, route (its template, never the number), method and status",
    ["app_name", "method", "path", "status_code"],
)
REQUEST_SECONDS: Final = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from a request's arrival at the app to its last byte sent",
    ["app_name", "method", "path", "status_code"],
    buckets=[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
)


class RequestMetrics:
    """ASGI middleware counting and timing every request by route, method and status.

    Litestar's PrometheusMiddleware does the same at about 90 µs of CPU a request,
    half again what a whole lookup costs (it builds a Request, label dicts and four
    metric look-ups each time); this one keeps each label set's counters and reuses
    them, a few µs.
    """

    def __init__(self, app: ASGIApp, app_name: str) -> None:
        self.app = app
        self.app_name = app_name
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status, then count it."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        scope[_COUNTED] = True  # type: ignore[typeddict-unknown-key]
        try:
            await self.app(scope, receive, noting_status)
        finally:
            key = (scope["method"], scope.get("path_template", ""), status)
            series = self._series.get(key)
            if series is None:
                labels = (self.app_name, key[0], key[1], str(status))
                series = self._series[key] = (
                    REQUESTS.labels(*labels),
                    REQUEST_SECONDS.labels(*labels),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


def counted(app_name: str) -> DefineMiddleware:
    """The request metrics of one app (`public` or `internal`), outermost of its middleware."""
    return DefineMiddleware(RequestMetrics, app_name=app_name)


def count_unrouted(app_name: str) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook counting what the router answers itself, before any route's
    middleware runs: unknown paths (a client probing for them) and methods a route does not
    take. Their path label is `<unrouted>`: the path itself could hold a number."""

    # A coroutine: Litestar runs a plain function hook in a worker thread, for every message
    # of every request (that doubled the CPU a lookup costs).
    async def count(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start" and not scope.get(_COUNTED):
            # A client names any method it likes: a label per made-up one would not do.
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            REQUESTS.labels(app_name, method, UNROUTED, str(message["status"])).inc()

    return count


class MetricsController(PrometheusController):
    """`GET /metrics` (internal port): every process's metrics, in Prometheus's text format."""

    path = "/metrics"
    # No key (the OpenAPI module's NO_KEY; imported from there, it would load the API
    # before this module's multiprocess set-up).
    security = [{}]  # noqa: RUF012 (Litestar's attribute)


SNAPSHOT_LISTINGS: Final = Gauge(
    f"{PREFIX}_snapshot_listings",
    "Listings in the snapshot the server answers from",
    # The newest value, not the largest: a worker uvicorn replaced leaves its file behind
    # unmarked, and a newer snapshot may hold fewer listings than the one it served.
    multiprocess_mode="livemostrecent",
)
SNAPSHOT_PUBLISHED: Final = Gauge(
    f"{PREFIX}_snapshot_published_timestamp_seconds",
    "When the snapshot the server answers from was published (alert on its age)",
    multiprocess_mode="livemostrecent",
)
EVENTS_DROPPED: Final = Counter(
    f"{PREFIX}_events_dropped_total",
    "Lookup events given up on: queued while the monitor fell a million behind, held while "
    "it (or Redis) was down past that, or sent and never acknowledged past that",
)
MONITOR_RESTARTS: Final = Counter(
    f"{PREFIX}_monitor_restarts_total",
    "Restarts of the abuse monitor (or the stream consumer) after it died",
)
EVENTS_HANDLED: Final = Counter(
    f"{PREFIX}_abuse_events_total",
    "Lookup events the monitor ran through the detectors and wrote to the lookup log",
)
FINDINGS: Final = Counter(
    f"{PREFIX}_abuse_findings_total",
    "Findings of the detectors, by reason code and action",
    ["kind", "action"],
)
EVENT_LAG: Final = Gauge(
    f"{PREFIX}_abuse_lag_seconds",
    "Age of the oldest event of the monitor's last batch when it was handled",
    multiprocess_mode="livemax",
)
BATCH_SECONDS: Final = Histogram(
    f"{PREFIX}_abuse_batch_seconds",
    "Time the monitor took to detect, record, enforce and (when due) log one batch",
    buckets=[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
)
