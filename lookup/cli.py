"""The `lookup` command line (a contract: outside scripts rely on its shape).

Exit status 0 on success; otherwise non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO

from lookup.abuse.retention import RetentionError, check_months
from lookup.config import ConfigError, Settings, load_settings
from lookup.errors import KeyStoreError, LookupServiceError, WarehouseBusy
from lookup.fixtures.render import foreign_files
from lookup.ingest.report import render_report, render_status
from lookup.text import printable

if TYPE_CHECKING:
    from lookup.abuse.holds import Hold

log = logging.getLogger("lookup")


class UsageError(Exception):
    """A command line that cannot be carried out as given."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, as every other failure is."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with `lookup <command>: <message>` (`--help` shows the usage)."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        """Arguments no command takes are named by the command they were given to (argparse
        names the top one: `lookup: unrecognized arguments`, see `lookup --help`)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            words = [getattr(parsed, "command", None)]
            words.append(getattr(parsed, f"{words[0]}_command", None))
            prog = " ".join([self.prog, *(w for w in words if w)])
            self.exit(
                2, f"{prog}: unrecognized arguments: {' '.join(extras)} (see {prog} --help)\n"
            )
        return parsed

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        """An option taking one value may be given once: argparse keeps the last of several
        silently (`--roles lookup --roles search` made a key without `lookup`)."""
        if names and str(names[0]).startswith("-") and kwargs.get("action", "store") == "store":
            kwargs["action"] = _Once
        return super().add_argument(*names, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lookup",
        description="Norwegian number lookup: ingest, serve, keys, abuse, fixtures.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fixtures = commands.add_parser("fixtures", help="operator files for demos and tests")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    generate = fixture_commands.add_parser("generate", help="write generated operator files")
    generate.add_argument(
        "--listings", type=int, required=True, help="numbers to generate (at most 10,000,000)"
    )
    generate.add_argument(
        "--operators",
        type=int,
        default=3,
        help="operators delivering them (default 3, at most 100)",
    )
    generate.add_argument(
        "--seed", type=int, default=1, help="the same seed, the same files (default 1)"
    )
    generate.add_argument(
        "--out",
        type=_folder_path,
        required=True,
        help="a new or empty folder, or one it wrote before",
    )

    ingest = commands.add_parser(
        "ingest",
        help="apply operator files and publish a snapshot",
        description="`lookup ingest PATH...`, `--inbox DIR`, `--watch DIR`, or `status`.",
    )
    ingest.add_argument("paths", nargs="*", type=Path, help="files or folders, or 'status'")
    ingest.add_argument("--inbox", type=Path, help="apply every operator file in DIR")
    ingest.add_argument("--watch", type=Path, help="keep applying files as they arrive in DIR")
    ingest.add_argument(
        "--interval", type=_seconds, help="seconds between --watch scans (default 5)"
    )
    ingest.add_argument(
        "--force", action="store_true", help="apply files even past the reject/shrink bounds"
    )

    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=_port)
    serve.add_argument("--workers", type=int)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it once, last line")
    create.add_argument("--org", required=True, help="organization (account) name")
    create.add_argument("--roles", required=True, help="comma-separated: lookup,search,...")
    create.add_argument(
        "--allow", action="append", default=[], help="CIDR the key may be used from (repeatable)"
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id (or the whole key)")
    revoke.add_argument("key_id")
    plan = key_commands.add_parser("plan", help="set an account's rate limits")
    plan.add_argument("--org", required=True)
    plan.add_argument("--plan", required=True, help="e.g. '20/second;600/minute', or 'default'")
    plan.add_argument(
        "--search",
        action="store_true",
        help="the plan of the listings its name searches return, e.g. '5000/hour;30000/day'",
    )
    policy = key_commands.add_parser("policy", help="how abuse findings act on an account")
    policy.add_argument("--org", required=True)
    policy.add_argument(
        "--enforce",
        required=True,
        choices=("auto", "review"),
        help="auto: throttle/suspend as the policy says; review: findings only flag",
    )
    retention = key_commands.add_parser(
        "retention", help="how long the lookup log keeps an account's lookups"
    )
    retention.add_argument("--org", required=True)
    retention.add_argument("--months", required=True, help="3 to 120, or 'default'")
    end = key_commands.add_parser(
        "end", help="end a customer relationship: revoke its keys; its lookup log goes later"
    )
    end.add_argument("--org", required=True)
    allow = key_commands.add_parser("allow", help="bind all keys of an account to networks")
    allow.add_argument("--org", required=True)
    allow.add_argument("--cidr", action="append", default=[], help="repeatable; none: unbind")
    swarms = key_commands.add_parser(
        "swarms", help="blocks refused to new accounts (a swarm of them scanned it)"
    )
    swarms.add_argument(
        "--end", metavar="BLOCK", help="end one now: its label, +4722200000..999, or a number in it"
    )

    abuse = commands.add_parser("abuse", help="abuse detection")
    abuse_commands = abuse.add_subparsers(dest="abuse_command", required=True)
    replay = abuse_commands.add_parser("replay", help="run the detectors over an events file")
    replay.add_argument("events", type=Path, help="JSON Lines or Parquet, sorted by ts")
    replay.add_argument("--out", type=_findings_path, required=True, help="FINDINGS.jsonl to write")
    abuse_commands.add_parser(
        "consume",
        help="read the Redis event stream: detectors, compliance store, internal API",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lookup` command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    stdout = sys.stdout
    if stdout is None:  # closed (`>&-`): `print` writes nowhere, as a daemon's would
        return _answer(args)
    sys.stdout = _ReaderMayGo(stdout)
    try:
        return _answer(args)
    finally:
        sys.stdout = stdout


def _answer(args: argparse.Namespace) -> int:
    """Run the command; its exit status, a failure said in one line on stderr."""
    try:
        settings = load_settings(warn_misspelt=True)
        status = _run(args, settings)
        if sys.stdout is not None:
            sys.stdout.flush()  # a full disk under the output fails the command, said as any
        return status
    except (ConfigError, UsageError) as exc:
        print(f"lookup: {exc}", file=sys.stderr)
        return 2
    except LookupServiceError as exc:
        print(f"lookup: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A path the command could not use: which, and why, as the shell says it (ours
        # carry their own message and no file name).
        if exc.filename is None:
            print(f"lookup: {exc}", file=sys.stderr)
        else:
            print(f"lookup: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the contract: one line on stderr, never a traceback
        log.debug("unexpected failure", exc_info=exc)
        # One line, whatever the message holds (DuckDB's run to two: "Original error: ...").
        said = " ".join(str(exc).split())
        print(f"lookup: unexpected {type(exc).__name__}: {said}", file=sys.stderr)
        return 1


class _ReaderMayGo:
    """Standard output whose reader may go away (`lookup ingest DIR | head -1`): the rest
    of what is said is dropped, and the work done keeps its exit status (an ingest applied,
    then its report cut short, is no failure)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        """Write, or drop once the reader is gone."""
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        """Flush, or nothing once the reader is gone."""
        if not self.gone:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        """Write nothing more; a failure other than the reader going away (a full disk)
        is raised, for the command to say."""
        self.gone = True
        with suppress(OSError, ValueError):  # not a file (a test's capture)
            # What is buffered would fail again in Python's own flush at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        if not isinstance(exc, BrokenPipeError):
            raise exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "fixtures":
            return _fixtures(args)
        case "ingest":
            return _ingest(args, settings)
        case "serve":
            return _serve(args, settings)
        case "keys":
            return _keys(args, settings)
        case "abuse":
            return _abuse(args, settings)
    raise UsageError(f"unknown command {args.command}")


def _fixtures(args: argparse.Namespace) -> int:
    from lookup.fixtures.generator import generate  # noqa: PLC0415 (keeps startup light)

    if args.listings < 1 or args.operators < 1:
        raise UsageError("--listings and --operators must be at least 1")
    if args.listings > MAX_LISTINGS or args.operators > MAX_OPERATORS:
        # Held in memory while written: past these it grows until the machine runs out.
        raise UsageError(
            f"--listings must be at most {MAX_LISTINGS:,} and --operators at most "
            f"{MAX_OPERATORS} (Norway has some 20 million numbers in use, and fewer operators)"
        )
    if args.operators > args.listings:
        # Each operator's file holds one listing at least: the rest would be dropped unsaid.
        raise UsageError(
            f"--operators {args.operators} is more than --listings {args.listings}: "
            "each operator delivers one listing at least"
        )
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file: give the folder to write the files in")
    if args.out.is_symlink() and not args.out.exists():
        raise UsageError(
            f"--out {args.out} is a link to {args.out.readlink()}, which does not exist: "
            "give the folder to write the files in"
        )
    foreign = foreign_files(args.out)
    if foreign:
        # Overwritten or left beside the new files, an ingest of the folder would apply them.
        raise UsageError(
            f"--out {args.out} holds files these fixtures did not write "
            f"({printable(foreign[0])}{', ...' if len(foreign) > 1 else ''}): "
            "give an empty or new folder"
        )
    summary = generate(args.listings, args.operators, args.seed, args.out)
    print(
        f"{len(summary.files)} file(s) written to {args.out}: {summary.rows:,} rows, "
        f"{summary.listings:,} listings, {summary.rejects:,} rows planned to be rejected"
    )
    for name in summary.files:
        print(f"  {name}")
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from lookup.ingest.pipeline import IngestStopped, ingest  # noqa: PLC0415
    from lookup.ingest.warehouse import Warehouse  # noqa: PLC0415

    paths: list[Path] = list(args.paths)
    if args.interval is not None and args.watch is None:
        raise UsageError("--interval is the time between --watch scans: give --watch DIR")
    if args.watch is not None and (paths or args.inbox is not None):
        # Left unsaid, the other files would never be applied.
        raise UsageError(
            "--watch DIR takes no other files or --inbox: ingest them first, "
            "or put them in the watched folder"
        )
    if Path("status") in paths and not Path("status").exists():
        if len(paths) > 1 or args.inbox or args.watch or args.force:
            raise UsageError(
                "ingest status takes nothing else: no files, --inbox, --watch or --force"
            )
        if not settings.data_path.is_dir():
            # Not "nothing published yet": a mistyped LOOKUP_DATA_DIR would look like that.
            raise UsageError(
                f"no data dir at {settings.data_path.resolve()}: nothing was ingested there "
                "(LOOKUP_DATA_DIR names it)"
            )
        try:
            warehouse = Warehouse(settings.warehouse_path, read_only=True)
        except WarehouseBusy:
            print(render_status(settings, None))
            return 0
        with warehouse:
            print(render_status(settings, warehouse))
        return 0
    if args.watch is not None:
        from lookup.ingest.watcher import WATCH_INTERVAL, watch  # noqa: PLC0415

        if not args.watch.is_dir():
            raise UsageError(f"--watch needs a folder: {args.watch}")
        interval = WATCH_INTERVAL if args.interval is None else args.interval
        with _sigterm_unwinds(), _said_if_interrupted():
            watch(args.watch, interval, settings, force=args.force)
    if args.inbox is not None:
        if args.inbox.exists() and not args.inbox.is_dir():
            raise UsageError(f"--inbox needs a folder: {args.inbox}")
        paths.append(args.inbox)
    if not paths:
        raise UsageError("give files or folders to ingest, --inbox DIR, --watch DIR or status")
    try:
        with _sigterm_unwinds(), _said_if_interrupted():
            report = ingest(paths, settings, force=args.force)
    except IngestStopped as exc:
        if exc.report.files:
            print(render_report(exc.report, stopped=True))  # what went in before the stop
        raise
    print(render_report(report))
    failed = [f for f in report.files if f.batch.status not in ("applied", "duplicate")]
    if failed:
        print(
            f"lookup: {len(failed)} of {len(report.files)} file(s) not applied "
            f"({', '.join(f'{f.batch.file}: {f.batch.status} {f.batch.reason}' for f in failed)})",
            file=sys.stderr,
        )
        return 1
    return 0


MAX_LISTINGS: Final = 10_000_000
MAX_OPERATORS: Final = 100
"""Bounds of `lookup fixtures generate` (10 million listings take some 9 GB to write)."""


def _port(text: str) -> int:
    """A TCP port number (argparse names the option when it is not)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse names the option when it is not)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # `not 0 < value` catches NaN too; 0 would scan the folder without pause.
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


_metrics_lock: int | None = None
"""The open lock file of this run's metrics folder, held while `lookup serve` runs."""


def _count_metrics_in(folder: Path) -> None:
    """Have every process of this `lookup serve` keep its metrics in files of a folder of its
    own under `folder`, for the internal port's `/metrics` to add up (prometheus_client's
    multiprocess mode). Before the server's modules are imported: prometheus_client chooses
    its mode when first imported; the processes started later inherit the variable."""
    global _metrics_lock  # noqa: PLW0603 (held for the life of the process, by design)
    # A folder per run, its lock file beside it, locked while it runs: a second `serve` on
    # the same data dir (which fails on the compliance store's lock), in this pid namespace
    # or another container's, must not empty the running one's. The lock is taken before
    # the folder exists, so a folder whose lock is free or missing is a dead run's.
    folder.mkdir(parents=True, exist_ok=True)
    for run in folder.iterdir():
        if run.is_dir() and not run.is_symlink() and _unlocked(run.with_suffix(".lock")):
            shutil.rmtree(run, ignore_errors=True)
            run.with_suffix(".lock").unlink(missing_ok=True)
    fd, lock = tempfile.mkstemp(prefix="run-", suffix=".lock", dir=folder)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _metrics_lock = fd
    mine = Path(lock).with_suffix("")
    mine.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mine)


def _unlocked(lock: Path) -> bool:
    """Whether no process holds the lock file (or there is none)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock taken, if it was
    return True


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # noqa: PLC0415

    overrides = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = load_settings(**overrides)
    if settings.metrics:
        _count_metrics_in(settings.metrics_path)
    from lookup.api.server import preflight, serve_embedded, serve_workers  # noqa: PLC0415

    if settings.workers > 1 and not settings.distributed:
        raise UsageError(
            "--workers above 1 share rate limits, suspensions and events through Redis: "
            "set LOOKUP_REDIS_URL (e.g. redis://127.0.0.1:6379)"
        )
    preflight(settings)
    if settings.distributed:
        serve_workers(settings)
    else:
        asyncio.run(serve_embedded(settings))
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from lookup.abuse.events import utc_now  # noqa: PLC0415
    from lookup.abuse.holds import standing  # noqa: PLC0415
    from lookup.abuse.plans import parse_plan  # noqa: PLC0415
    from lookup.abuse.retention import AFTER_END  # noqa: PLC0415
    from lookup.keys import KeyStore, parse_networks, parse_roles  # noqa: PLC0415

    store = KeyStore(settings.keys_path)
    try:
        match args.keys_command:
            case "create":
                roles = parse_roles(args.roles)
                key, token = store.create(args.org, roles, parse_networks(args.allow))
                try:
                    print(
                        f"created key {key.key_id} for {key.account} "
                        f"(roles: {','.join(sorted(roles))})"
                    )
                    print("store it now: it is shown only once")
                    print(token, flush=True)
                    shown = not getattr(sys.stdout, "gone", False)
                except OSError as exc:  # a full disk, a closed file
                    shown, why = False, exc.strerror or str(exc)
                else:
                    why = "its reader went away"
                if not shown:
                    # A key no one has is a key no one can revoke by its secret.
                    store.revoke(key.key_id)
                    raise KeyStoreError(
                        f"the new key could not be written to standard output ({why}): "
                        f"key {key.key_id} was revoked at once; create another"
                    )
            case "revoke":
                print(f"revoked key {store.revoke(args.key_id)}")
            case "plan":
                plan = None if args.plan == "default" else args.plan
                if plan is not None:
                    parse_plan(plan, unit="listing" if args.search else "request")
                store.set_plan(args.org, plan, search=args.search)
                limits = "search limits" if args.search else "rate limits"
                print(f"{store.stored_name(args.org)}: {limits} {plan or 'default'}")
            case "policy":
                store.set_enforcement(args.org, args.enforce)
                print(f"{store.stored_name(args.org)}: abuse findings {args.enforce}")
            case "retention":
                months = None if args.months == "default" else _months(args.months)
                store.set_retention(args.org, months)
                kept = (
                    f"{months} months"
                    if months
                    # The server's own setting may differ from this environment's.
                    else "the service's default (LOOKUP_LOG_RETENTION_MONTHS: "
                    f"{settings.log_retention_months} months here)"
                )
                print(f"{store.stored_name(args.org)}: lookups kept {kept}")
            case "end":
                revoked, ended = store.end(args.org)
                print(
                    f"{store.stored_name(args.org)}: ended {ended:%Y-%m-%d %H:%M} UTC, "
                    f"{revoked} key(s) revoked; "
                    f"its lookup log is deleted from {ended + AFTER_END:%Y-%m-%d} "
                    "(not while a case is open on it)"
                )
            case "allow":
                networks = parse_networks(args.cidr)
                own = store.set_allow(args.org, networks)
                where = ", ".join(map(str, networks))
                said = f"keys usable from {where}" if where else "no account-wide allow-list"
                # A key created with --allow keeps its own list: the client must be in both.
                kept = f"; {own} key(s) keep their own allow-list" if own else ""
                print(f"{store.stored_name(args.org)}: {said}{kept}")
            case "swarms" if args.end is not None:
                stopped = store.end_swarm(_block(args.end))
                print(
                    f"{stopped.hold.label}: answered to new accounts again (it was until "
                    f"{stopped.until:%Y-%m-%d %H:%M} UTC)"
                )
            case "swarms":
                current = standing(store.swarms().values(), utc_now())
                for swarm in current:
                    print(
                        f"{swarm.hold.label}: refused to accounts first used after "
                        f"{swarm.opened_after:%Y-%m-%d %H:%M} UTC, or not yet, until "
                        f"{swarm.until:%Y-%m-%d %H:%M} UTC"
                    )
                if not current:
                    print("no block is refused to new accounts")
    finally:
        store.close()
    return 0


def _block(text: str) -> Hold:
    """`--end`'s block: a label as evidence and problem details write it, or any number
    in it as a lookup takes one."""
    from lookup.abuse.holds import Hold  # noqa: PLC0415
    from lookup.numbers import InvalidNumber, normalize  # noqa: PLC0415

    try:
        block = Hold.parse(text) if ".." in text else Hold.of(int(normalize(text)))
    except (ValueError, InvalidNumber) as exc:
        raise UsageError(
            f"--end takes a block like +4722200000..999 or a number in it: {exc}"
        ) from None
    if ".." in text and text != block.label:
        # `+470..9` or another system's digits would name some other block, or none.
        raise UsageError(f"--end: {text!r} is no block; did you mean {block.label}?")
    return block


def _months(text: str) -> int:
    """`--months` as `LOOKUP_LOG_RETENTION_MONTHS` reads it: ASCII digits alone (Python's
    int() took `1_2`, `+6`, ` 12 ` and Arabic-Indic digits), within the terms' bounds."""
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"--months must be a whole number of months or 'default', not {text!r}")
    try:
        return check_months(int(text))
    except RetentionError as exc:
        raise UsageError(f"--months: {exc}") from None


def _abuse(args: argparse.Namespace, settings: Settings) -> int:
    from lookup.abuse.replay import discard_findings, replay  # noqa: PLC0415

    if args.abuse_command == "consume":
        import asyncio  # noqa: PLC0415

        from lookup.api.server import serve_consumer  # noqa: PLC0415

        if not settings.distributed:
            raise UsageError("lookup abuse consume reads the stream at LOOKUP_REDIS_URL: set it")
        asyncio.run(serve_consumer(settings))
        return 0

    if args.events.is_dir():
        discard_findings(args.out)
        raise UsageError(f"{args.events} is a folder: give the events file itself")
    if not args.events.exists():  # a pipe exists: replay says why it cannot read one
        discard_findings(args.out)
        raise UsageError(f"no such events file: {args.events}")
    with _sigterm_unwinds():
        try:
            count = replay(args.events, args.out)
        except (KeyboardInterrupt, SystemExit):
            # Stopped, it exits 130 or 143 as any command does, but says why as a failure does.
            print("lookup: interrupted: no findings written", file=sys.stderr)
            raise
    print(f"{count} finding(s) written to {args.out}")
    return 0


class _Once(argparse.Action):
    """An option that may be given once: argparse keeps the last of several silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        given: set[str] = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{option_string} given twice: give it once")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def _named(kind: str, what: str) -> Callable[[str], Path]:
    """An argparse type for a path, refusing the empty one `Path` would take as the current
    folder (`kind`: "file" or "folder"; `what`: what to give instead)."""

    def path(text: str) -> Path:
        if not text:
            raise argparse.ArgumentTypeError(f"'' is not a {kind} name: give {what}")
        return Path(text)

    return path


_folder_path = _named("folder", "the folder to write in")
_findings_path = _named("file", "the findings file to write")


_SIGNALLED: list[int] = []
"""The signals `_sigterm_unwinds` stopped the command on."""


@contextmanager
def _said_if_interrupted() -> Iterator[None]:
    """Say in one line what an ingest stopped by a signal or Ctrl-C left (it exits 130 or
    143 as any command does)."""
    from lookup.ingest.pipeline import interrupted  # noqa: PLC0415

    try:
        yield
    except BaseException as exc:
        # DuckDB says a statement stopped for the signal its own way (a RuntimeError).
        if not isinstance(exc, KeyboardInterrupt | SystemExit) and not interrupted(exc):
            raise
        print(
            "lookup: ingest interrupted: a file is applied whole or not at all, and the last "
            "published snapshot stays served; run `lookup ingest` again to complete",
            file=sys.stderr,
        )
        if _SIGNALLED:
            raise SystemExit(128 + _SIGNALLED[-1]) from None
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise SystemExit(128 + signal.SIGINT) from None


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Let SIGTERM and SIGHUP unwind as Ctrl-C does, so an interrupted replay removes its
    temporary file and an interrupted ingest rolls its file back and says so."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, _frame: object) -> NoReturn:
        _SIGNALLED.append(signum)
        raise SystemExit(128 + signum)

    # A closed terminal (SIGHUP) stops it as SIGTERM does, unless it is ignored (`nohup`).
    stopping = [signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        stopping.append(signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
