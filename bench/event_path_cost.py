"""The event path's CPU per lookup, without HTTP, in its two parts.

The server's: what `Services.emit` does on the request path (build and queue the
event) and what its flush thread does every `LOOKUP_EVENT_FLUSH_SECONDS` (encode
the batch and send it down the pipe to a monitor process that acknowledges it).

The monitor's: what `serve_monitor` does with each batch off the pipe (decode,
detectors, cases, lookup log), side by side for ways of writing the lookup log.

The traffic is the worst case of `bench/abuse_overhead.sh`: one account looking up
fresh numbers (70 % hits) at RATE a second, which the server hands over every
`LOOKUP_EVENT_FLUSH_SECONDS` (0.1 s: batches of RATE / 10). Each variant runs in a
fresh compliance file; the variants take turns for ROUNDS rounds and the medians
are printed:

  per batch   the lookup log written with each batch (`LOOKUP_LOG_COMMIT_SECONDS=0`)
  gathered    written once a second of traffic, as the monitor does by default
              (`LOOKUP_LOG_COMMIT_SECONDS=1`: ten batches a write)

each with the detectors on and off (`LOOKUP_ABUSE_DETECTION`). CPU time is the
process's, every thread included (DuckDB's too).

Set either against the server's CPU per request (`bench/abuse_overhead.sh` prints it:
150-350 µs on the machines of 2026-11/12) to read what it costs in throughput.

Run from the repo root:  .venv/bin/python bench/event_path_cost.py [--rate 3000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from lookup.abuse.events import EventBuffer, LookupEvent
from lookup.abuse.monitor import AbuseMonitor
from lookup.abuse.state import tune_collector
from lookup.abuse.store import ComplianceStore
from lookup.abuse.stream import PipeBatch, PipeChannel, PipeSource
from lookup.api.services import Services
from lookup.config import Settings
from lookup.keyring import KeyRing
from lookup.keys import ApiKey, KeyStore

BATCHES_A_SECOND = 10
"""Batches a second of traffic makes at the default `LOOKUP_EVENT_FLUSH_SECONDS`."""


def traffic(rate: int, seconds: int, seed: int) -> list[bytes]:
    """The pipe's messages: one account's fresh numbers, RATE a second, in 0.1 s batches."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9)
    size = rate // BATCHES_A_SECOND
    encode = msgspec.json.Encoder().encode
    numbers = rng.sample(range(40_000_000, 99_999_999), rate * seconds)
    events = [
        LookupEvent(
            ts=start + timedelta(seconds=i / rate),
            account="bench",
            key="k-bench",
            ip="10.0.0.1",
            number=f"+47{number}",
            outcome="hit" if rng.random() < 0.7 else "miss",
        )
        for i, number in enumerate(numbers)
    ]
    return [
        encode(PipeBatch("bench", seq + 1, events[seq * size : (seq + 1) * size]))
        for seq in range(len(events) // size)
    ]


def _acknowledge(connection: Connection) -> None:
    """A monitor that reads every batch and acknowledges it at once (a process of its own:
    its CPU is not the server's)."""
    source = PipeSource(connection)
    while (batch := source.read(1.0)) is not None:
        source.done(len(batch))


def server_cost(numbers: list[str], rate: int) -> float:
    """CPU µs per event of the server's part: `Services.emit` for each lookup, and the flush
    thread's publish for each batch, into a real pipe."""
    size = rate // BATCHES_A_SECOND
    ours, theirs = multiprocessing.Pipe(duplex=True)
    monitor = multiprocessing.Process(target=_acknowledge, args=(theirs,), daemon=True)
    monitor.start()
    theirs.close()
    with tempfile.TemporaryDirectory() as folder:
        channel = PipeChannel(ours)
        services = Services(Settings(data_dir=folder), channel.send)
        publisher = services.publisher
        assert publisher is not None
        scope: dict[str, object] = {
            "user": ApiKey("k-bench", "bench", frozenset({"lookup"})),
            "client": ("10.0.0.1", 50000),
        }
        started = time.process_time()
        for index, number in enumerate(numbers, start=1):
            services.emit(scope, number, "hit")  # type: ignore[arg-type]
            if index % size == 0:
                publisher.publish()
        publisher.publish()
        spent = time.process_time() - started
        services.key_store.close()
    ours.close()
    monitor.join(timeout=10)
    return spent / len(numbers) * 1e6


def cost(messages: list[bytes], *, gathered: bool, detect: bool) -> float:
    """CPU µs per event of handling the messages as the monitor process does."""
    with tempfile.TemporaryDirectory() as folder:
        store = ComplianceStore(Path(folder) / "compliance.duckdb")
        monitor = AbuseMonitor(
            EventBuffer(),
            store,
            KeyRing(KeyStore(Path(folder) / "keys.sqlite")),
            detect=detect,
            # Gathered: written below once a second of traffic, as `write_log(due=True)`
            # does once LOOKUP_LOG_COMMIT_SECONDS have passed (no clock to wait for here).
            commit_seconds=float("inf") if gathered else 0.0,
        )
        decode = msgspec.json.Decoder(PipeBatch).decode
        events = 0
        started = time.process_time()
        for seq, message in enumerate(messages, start=1):
            batch = decode(message)
            monitor.submit(batch.events, (f"pipe:{batch.run}", str(batch.seq)))
            events += len(batch.events)
            if gathered and seq % BATCHES_A_SECOND == 0:
                monitor.write_log()
        monitor.write_log()
        spent = time.process_time() - started
        logged = store.file.rows("SELECT count(*) FROM lookup_log")[0][0]
        store.close()
    if logged != events:
        raise SystemExit(f"event_path_cost: {logged} lookups logged of {events}")
    return spent / events * 1e6


def main() -> None:
    """Print the medians of each variant, and the ratios that matter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=3000, help="lookups a second (default 3000)")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of traffic a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    messages = traffic(args.rate, args.seconds, args.seed)
    numbers = [
        event.number
        for message in messages
        for event in msgspec.json.decode(message, type=PipeBatch).events
    ]
    server = statistics.median(server_cost(numbers, args.rate) for _ in range(args.rounds))
    variants = {
        (gathered, detect): f"{'gathered' if gathered else 'per batch'}, detectors "
        f"{'on' if detect else 'off'}"
        for detect in (True, False)
        for gathered in (False, True)
    }
    runs: dict[tuple[bool, bool], list[float]] = {variant: [] for variant in variants}
    tune_collector()  # as a monitor process does (the server's part above keeps the defaults)
    print(
        f"{len(messages)} batches of {args.rate // BATCHES_A_SECOND} events "
        f"({args.rate}/s for {args.seconds} s, one account, fresh numbers), {args.rounds} rounds"
    )
    for _ in range(args.rounds):
        for gathered, detect in variants:
            runs[gathered, detect].append(cost(messages, gathered=gathered, detect=detect))
    median = {variant: statistics.median(values) for variant, values in runs.items()}
    print(f"server: build, queue, encode and pipe an event {server:6.1f} µs/event")
    print("monitor:")
    for variant, name in variants.items():
        rounds = " / ".join(f"{value:.1f}" for value in runs[variant])
        print(f"  {name:<28} {median[variant]:6.1f} µs/event  (rounds {rounds})")
    for detect in (True, False):
        before, after = median[False, detect], median[True, detect]
        print(
            f"gathering the writes, detectors {'on' if detect else 'off'}: "
            f"{before:.1f} -> {after:.1f} µs/event ({before / after:.1f}x); "
            f"one core keeps up with {1e6 / after:,.0f} events/s"
        )
    print(
        "the lookup log alone (gathered, detectors off): "
        f"{median[True, False]:.1f} µs/event, of which the pipe's decoding is part"
    )


if __name__ == "__main__":
    main()
