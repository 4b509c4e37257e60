"""Settings: one typed object, read once from `LOOKUP_*` environment variables."""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import msgspec

from lookup.abuse.plans import DEFAULT_SEARCH_PLAN, PlanError, parse_plan
from lookup.abuse.retention import MAX_MONTHS, MIN_MONTHS
from lookup.networks import Network, listed_networks, network
from lookup.numbers import shown

log = logging.getLogger(__name__)
ENV_PREFIX = "LOOKUP_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
"""Rate-limit storages the service is installed for (`limits` knows more, with other clients)."""


class ConfigError(ValueError):
    """A `LOOKUP_*` variable that cannot be used as given."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of the service; each field is read from `LOOKUP_<FIELD>`."""

    data_dir: str = "./var"
    """Warehouse, snapshots and key store live here; two data dirs never share a file."""
    host: str = "127.0.0.1"
    """Address `lookup serve` binds to."""
    port: int = 8000
    """Port of the public API."""
    workers: int = 1
    """Server worker processes."""
    reject_ratio_max: float = 0.05
    """An operator file with a larger share of rejected rows is held back whole."""
    full_shrink_max: float = 0.10
    """A full file shrinking its operator's listings by more than this is held back whole."""
    ingest_max_bytes: int = 2**30
    """An operator file larger than this, as delivered or unpacked, is rejected unread: the
    largest operator's directory is a few hundred megabytes (reading one takes several
    times its size in memory), and a gzip bomb (a few MB unpacking to gigabytes) would
    otherwise take the machine's memory."""
    snapshot_poll_seconds: float = 0.5
    """How often a server checks for a newly published snapshot."""
    snapshots_kept: int = 3
    """Published snapshot files kept on disk (older ones are deleted at publish)."""
    key_refresh_seconds: float = 0.5
    """How often a server re-reads keys and account standing (revocations, suspensions)."""
    log_level: str = "info"
    """Log level of the server (debug, info, warning, error)."""
    internal_port: int = 8001
    """Port of the internal compliance API (served beside the public one)."""
    internal_host: str = "127.0.0.1"
    """Address the internal compliance API listens on (not `LOOKUP_HOST`'s: it is internal)."""
    plan_account: str = "50/second;1500/minute;50000/day"
    """Default rate limits of an account (all its keys together)."""
    plan_key: str = "25/second;1000/minute;40000/day"
    """Default rate limits of one key."""
    plan_verify: str = "3/day"
    """Date-of-birth checks (`?birth_date=`) allowed per account and number."""
    plan_search: str = DEFAULT_SEARCH_PLAN
    """Listings name searches may return to one account (each result counts): what a support
    desk reads, far from a bulk download by name. The search-harvest test's floors move
    with an account's own plan, not with this one."""
    throttle_factor: int = 10
    """A throttled account gets its limits divided by this."""
    ratelimit_storage: str = "memory://"
    """Where rate-limit counters live; `redis://127.0.0.1:6379` to share them between workers."""
    abuse_detection: bool = True
    """Run the abuse detectors on the lookup events (the lookup log is kept either way)."""
    forwarded_allow_ips: str = ""
    """Comma-separated IPs or CIDRs of reverse proxies whose `X-Forwarded-For` names the
    client (`*`: any); empty, the connection's own address is the client's. The address
    is what IP allow-lists and the abuse rules see, so a header no proxy vouches for must
    not set it."""
    abuse_allow_ips: str = ""
    """Comma-separated CIDRs whose traffic is never acted on (e.g. the operator's monitoring)."""
    redis_url: str = ""
    """Redis for several workers: the event stream and shared rate limits (empty: one process)."""
    event_flush_seconds: float = 0.1
    """How often queued lookup events are handed to the monitor and run through the detectors."""
    log_commit_seconds: float = 1.0
    """How long the monitor process gathers handled lookups into one write of the lookup log
    (0: one write per batch). Lookups that raise a finding are written at once, with it."""
    log_retention_months: int = 18
    """How long the lookup log keeps an account's lookups by default (3-120; per account with
    `lookup keys retention`)."""
    metrics: bool = True
    """Prometheus metrics: requests by route and status, and their durations, on both ports;
    every process's metrics at `/metrics` on the internal port."""
    keep_alive_seconds: float = 75
    """How long an idle client connection stays open. Longer than a load balancer's idle
    timeout (commonly 60 s): one that reuses a connection the server has just closed
    answers its client 502."""
    monitor_nice: int = 10
    """Scheduling niceness of the abuse monitor process (0-19): under full load the CPU goes
    to answering lookups first, and the monitor catches up in the quieter moments."""

    def __post_init__(self) -> None:
        if self.data_path.exists() and not self.data_path.is_dir():
            raise ConfigError(f"LOOKUP_DATA_DIR: {self.data_dir} is a file, not a folder")
        if not 0 <= self.reject_ratio_max <= 1:
            raise ConfigError("LOOKUP_REJECT_RATIO_MAX must be between 0 and 1")
        if not 0 <= self.full_shrink_max <= 1:
            raise ConfigError("LOOKUP_FULL_SHRINK_MAX must be between 0 and 1")
        if self.ingest_max_bytes < 1:
            raise ConfigError("LOOKUP_INGEST_MAX_BYTES must be at least 1")
        if self.workers < 1:
            raise ConfigError("LOOKUP_WORKERS (or --workers) must be at least 1")
        if self.snapshots_kept < 2:
            # The snapshot being served and the one replacing it must both exist.
            raise ConfigError("LOOKUP_SNAPSHOTS_KEPT must be at least 2")
        for name in ("port", "internal_port"):
            if not 1 <= getattr(self, name) <= 65535:
                raise ConfigError(f"LOOKUP_{name.upper()} must be a port number (1-65535)")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"LOOKUP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        for name in ("plan_account", "plan_key", "plan_verify", "plan_search"):
            try:
                # A search plan counts the listings searches return.
                unit = "listing" if name == "plan_search" else "request"
                parse_plan(getattr(self, name), unit=unit)
            except PlanError as exc:
                raise ConfigError(f"LOOKUP_{name.upper()}: {exc}") from None
        scheme = self.ratelimit_storage.partition("://")[0]
        if scheme not in STORAGE_SCHEMES or "://" not in self.ratelimit_storage:
            raise ConfigError(
                f"LOOKUP_RATELIMIT_STORAGE: {self.ratelimit_storage!r} is not one of "
                f"{', '.join(s + '://...' for s in STORAGE_SCHEMES)}"
            )
        try:
            listed_networks(self.abuse_allow_ips)
        except ValueError as exc:
            raise ConfigError(f"LOOKUP_ABUSE_ALLOW_IPS: {exc}") from None
        self._check_proxies()
        if self.throttle_factor < 1:
            raise ConfigError("LOOKUP_THROTTLE_FACTOR must be at least 1")
        if not MIN_MONTHS <= self.log_retention_months <= MAX_MONTHS:
            raise ConfigError(
                f"LOOKUP_LOG_RETENTION_MONTHS must be {MIN_MONTHS} to {MAX_MONTHS} "
                "(the terms' bounds)"
            )
        if not 0 <= self.log_commit_seconds <= MAX_LOG_COMMIT_SECONDS:
            # Far below the hour an erased number is kept to erase its late lookups.
            raise ConfigError(
                f"LOOKUP_LOG_COMMIT_SECONDS must be 0 to {MAX_LOG_COMMIT_SECONDS:g} seconds"
            )
        if not 0 <= self.monitor_nice <= 19:
            raise ConfigError("LOOKUP_MONITOR_NICE must be between 0 and 19")
        if self.redis_url:
            _check_redis("LOOKUP_REDIS_URL", self.redis_url)
        if scheme in ("redis", "rediss"):
            _check_redis("LOOKUP_RATELIMIT_STORAGE", self.ratelimit_storage)
        for name in (
            "snapshot_poll_seconds",
            "key_refresh_seconds",
            "event_flush_seconds",
            "keep_alive_seconds",
        ):
            value = getattr(self, name)
            # `not 0 < value` catches NaN too, which compares false with everything.
            if not 0 < value < math.inf:
                raise ConfigError(f"LOOKUP_{name.upper()} must be a positive number of seconds")

    def _check_proxies(self) -> None:
        """`forwarded_allow_ips` as uvicorn reads it: `*` alone, or addresses and networks
        without host bits (uvicorn would keep `10.0.0.5/24` as a name no address matches,
        and every client would look like the proxy)."""
        parts = [part.strip() for part in self.forwarded_allow_ips.split(",") if part.strip()]
        if "*" in parts and len(parts) > 1:
            raise ConfigError("LOOKUP_FORWARDED_ALLOW_IPS: '*' trusts any proxy; give it alone")
        for part in parts:
            if part == "*":
                continue
            try:
                network(part)
            except ValueError as exc:
                raise ConfigError(f"LOOKUP_FORWARDED_ALLOW_IPS: {exc}") from None

    @property
    def data_path(self) -> Path:
        """The data directory as a path."""
        return Path(self.data_dir)

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse, written only by ingest."""
        return self.data_path / "warehouse.duckdb"

    @property
    def snapshots_path(self) -> Path:
        """Folder of published snapshots and the CURRENT pointer."""
        return self.data_path / "snapshots"

    @property
    def distributed(self) -> bool:
        """Whether workers share state through Redis (else everything is in one process)."""
        return bool(self.redis_url)

    @property
    def abuse_allow_networks(self) -> tuple[Network, ...]:
        """The networks of `abuse_allow_ips` (checked when the settings were read)."""
        return listed_networks(self.abuse_allow_ips)

    @property
    def ratelimit_uri(self) -> str:
        """Rate-limit storage; with Redis configured, counters are shared there by default."""
        if self.distributed and self.ratelimit_storage == "memory://":
            return self.redis_url
        return self.ratelimit_storage

    @property
    def compliance_path(self) -> Path:
        """The compliance store: lookup log, findings, cases, decisions."""
        return self.data_path / "compliance.duckdb"

    @property
    def metrics_path(self) -> Path:
        """Where the processes of `lookup serve` keep their metrics (a locked folder per run)."""
        return self.data_path / "metrics"

    @property
    def keys_path(self) -> Path:
        """The account and API key store."""
        return self.data_path / "keys.sqlite3"


def setting_names() -> tuple[str, ...]:
    """Every environment variable the service reads."""
    return tuple(ENV_PREFIX + name.upper() for name in Settings.__struct_fields__)


def load_settings(
    environ: Mapping[str, str] | None = None, *, warn_misspelt: bool = False, **overrides: object
) -> Settings:
    """Read settings from the environment; keyword overrides win (used by the CLI).
    `warn_misspelt`: warn of a variable a letter or two from a setting (once a command)."""
    env = os.environ if environ is None else environ
    if warn_misspelt:
        _warn_misspelt(env)
    raw: dict[str, object] = {}
    for field in msgspec.structs.fields(Settings):
        value = env.get(ENV_PREFIX + field.name.upper())
        if value is None or value == "":
            continue
        if field.type is int and not _WHOLE.fullmatch(value.strip()):
            # msgspec's lax reading takes "1e3" and "8000.0" for whole numbers.
            raise ConfigError(
                f"{ENV_PREFIX}{field.name.upper()}: must be a whole number, not {shown(value)!r}"
            )
        raw[field.name] = value.lower() if field.name == "log_level" else value
    raw.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        # "Expected `int`, got `str` - at `$.port`" -> name the variable instead.
        message = str(exc)
        for name in Settings.__struct_fields__:
            if message.endswith(f"`$.{name}`"):
                said = message.rsplit(" - at", 1)[0]
                if said in _WORDS:  # a bool, a number: no secret to keep out of the message
                    said = f"{_WORDS[said]}, not {shown(str(raw.get(name)))!r}"
                message = f"{ENV_PREFIX}{name.upper()}: {said}"
        raise ConfigError(message) from exc


def _check_redis(setting: str, url: str) -> None:
    """A Redis URL as the Redis client reads it, refused before any process starts."""
    from redis.connection import parse_url  # noqa: PLC0415 (only with Redis configured)

    said = f"{setting}: {without_password(url)!r}"
    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigError(f"{said}: {exc}") from None
    parts = urlsplit(url)
    database = parts.path.strip("/") if parts.scheme in ("redis", "rediss") else ""
    if database and not database.isdigit():
        # The client reads such a path as no database at all: database 0, silently.
        raise ConfigError(
            f"{said}: the path names the database by its number "
            f"(redis://host:6379/0), not {database!r}"
        )


def without_password(url: str) -> str:
    """A URL as a message may quote it: its password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _warn_misspelt(env: Mapping[str, str]) -> None:
    """Warn of a `LOOKUP_*` variable a letter or two from a setting: left unread silently,
    the setting it was meant for keeps its default (other tools' names are left alone)."""
    names = setting_names()
    for given in sorted(env):
        if given.startswith(ENV_PREFIX) and given not in names:
            meant = difflib.get_close_matches(given, names, n=1, cutoff=0.85)
            if meant:
                log.warning("%s is no setting (did you mean %s?); ignored", given, meant[0])


_WHOLE: Final = re.compile(r"[+-]?\d+")
MAX_LOG_COMMIT_SECONDS: Final = 60.0
"""The longest `log_commit_seconds` allowed."""
_WORDS: Final = {
    "Expected `bool`, got `str`": "must be true or false (1 or 0)",
    "Expected `int`, got `str`": "must be a whole number",
    "Expected `float`, got `str`": "must be a number",
}
"""msgspec's words for a setting of the wrong form, as a variable's value is told."""
