"""`make eval-abuse`: run the detectors over a simulated month and score them per persona.

    python -m lookup.abuse.evaluate [--seed N]
    python -m lookup.abuse.evaluate --seeds 1-8     # one summary over several months

A suspended account's later requests are refused (as the API does), and so are
its lookups in a block held for it, and a new account's in a swarmed block (an
account opens at its first lookup, as the key store records it), so a scraper's
extraction counts only what it got before its suspension or the hold of its block.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import LookupEvent, national_number
from lookup.abuse.holds import Hold, Swarmed, held, hold_in, swarm_in, swarmed
from lookup.abuse.policy import DEFAULT_POLICY, Action, Policy
from lookup.abuse.simulate import Actor, Directory, standard_scenario


@dataclass
class AccountResult:
    """What happened to one simulated account."""

    actor: Actor
    findings: list[Finding] = field(default_factory=list)
    suspended_after: int | None = None
    """Events of the account seen when it was suspended (since scraping began, for scrapers)."""
    flagged_after: int | None = None
    """... and when its first finding fired."""
    seen: int = 0
    holds: set[Hold] = field(default_factory=set)
    """Blocks held for the account: its later lookups in them are refused."""
    held_after: int | None = None
    """Events of the account seen when its first block was held."""
    extracted: set[str] = field(default_factory=set)
    """Distinct listings obtained before suspension (before the flag, for a scraper the
    rules can only flag: what it had before compliance could know)."""
    searched: int = 0
    """Listings name searches returned to it before suspension (a scraper's)."""
    opened: datetime | None = None
    """When the account was opened: its first lookup or search."""
    swarm_refused: int = 0
    """Its lookups refused in a block swarmed while it was new (a customer's: the cost)."""

    def refused(self, event: LookupEvent, swarms: dict[Hold, Swarmed]) -> bool:
        """Whether the API refuses the lookup: its number is in a block held for the account,
        or swarmed while the account is new (the detectors still see it, as the API reports
        it to them)."""
        number = national_number(event.number)
        if number is None:
            return False
        if held(self.holds, number) is not None:  # the API's first refusal
            return True
        if swarms and swarmed(swarms, number, self.opened, event.ts) is not None:
            self.swarm_refused += 1
            return True
        return False

    @property
    def flagged(self) -> bool:
        """Whether any finding fired for the account."""
        return bool(self.findings)

    @property
    def caught_after(self) -> int | None:
        """Events until the action a scraper persona is scored on: its flag, for one the
        rules can only flag; else the suspension."""
        return self.flagged_after if self.actor.flag_only else self.suspended_after

    @property
    def stopped_after(self) -> int | None:
        """Events until a scraper stopped getting answers where it scanned: a block of it
        held, or the account suspended (a flag-only one's flag)."""
        if self.actor.flag_only:
            return self.flagged_after
        times = [t for t in (self.held_after, self.suspended_after) if t is not None]
        return min(times, default=None)


def run(
    actors: list[Actor], policy: Policy = DEFAULT_POLICY
) -> tuple[dict[str, AccountResult], float]:
    """Feed every event in time order through one engine; returns results and µs per event."""
    by_account: dict[str, AccountResult] = {}
    for actor in actors:
        by_account.setdefault(actor.account, AccountResult(actor))
    events: list[LookupEvent] = sorted(
        (event for actor in actors for event in actor.events), key=lambda e: e.ts
    )
    swarms: dict[Hold, Swarmed] = {}
    engine = Engine(policy)
    started = time.perf_counter()
    for event in events:
        result = by_account[event.account]
        if result.opened is None:
            result.opened = event.ts
        if result.suspended_after is not None:
            continue  # refused with 403: no answer, no event
        scraping = result.actor.scrape_from is not None and event.ts >= result.actor.scrape_from
        refused = (
            bool(result.holds or swarms)
            and event.endpoint != "search"
            and result.refused(event, swarms)
        )
        if scraping or not result.actor.scraper:
            result.seen += 1
            caught = result.actor.flag_only and result.flagged_after is not None
            if scraping and not caught and event.endpoint == "search":
                result.searched += event.listings or 0
            elif event.outcome == "hit" and scraping and not caught and not refused:
                result.extracted.add(event.number)
        for finding in engine.observe(event):
            target = by_account[finding.account]
            target.findings.append(finding)
            if target.flagged_after is None:
                target.flagged_after = target.seen
            if (swarm := swarm_in(finding.evidence)) is not None:
                swarms[swarm.hold] = swarm
            hold = hold_in(finding.evidence)
            if hold is not None:
                target.holds.add(hold)
                if target.held_after is None:
                    target.held_after = target.seen
            if finding.action == Action.SUSPEND and target.suspended_after is None:
                target.suspended_after = target.seen
    elapsed = time.perf_counter() - started
    return by_account, elapsed / max(len(events), 1) * 1e6


def _by_persona(results: dict[str, AccountResult]) -> dict[str, list[AccountResult]]:
    personas: dict[str, list[AccountResult]] = defaultdict(list)
    for result in results.values():
        personas[result.actor.persona].append(result)
    return personas


def block_share(group: list[AccountResult], directory: Directory) -> tuple[float, int] | None:
    """Share of its target block's listings a scraper persona extracted (of the one it took
    most from, when it works several), and the block size."""
    starts = group[0].actor.target_blocks
    if not group[0].actor.scraper or not starts:
        return None
    size = directory.block_size(starts[0])
    extracted = {int(n[3:]) for r in group for n in r.extracted}
    share = max(
        sum(start <= n < start + size for n in extracted)
        / max(directory.listings_in_block(start), 1)
        for start in starts
    )
    return share, size


def report(results: dict[str, AccountResult], directory: Directory) -> str:
    """The per-persona table `make eval-abuse` prints."""
    personas = _by_persona(results)
    lines = [
        f"{'persona':<20} {'kind':<7} {'accts':>5} {'susp':>5} {'held':>5} {'flag':>5} "
        f"{'recall':>7} {'FPR':>6} {'flag%':>6} {'med.events':>10} {'med.stop':>8} "
        f"{'extracted':>9} {'of block':>12}  kinds"
    ]
    for persona, group in sorted(
        personas.items(), key=lambda item: (item[1][0].actor.scraper, item[0])
    ):
        scraper = group[0].actor.scraper
        suspended = [r for r in group if r.suspended_after is not None]
        flagged = [r for r in group if r.flagged]
        kinds = sorted({f"{f.kind}:{f.action}" for r in group for f in r.findings})
        held = sum(r.held_after is not None for r in group)
        detect = [r.caught_after for r in group if r.caught_after is not None]
        stops = [r.stopped_after for r in group if r.stopped_after is not None]
        extracted = sum(len(r.extracted) + r.searched for r in group) if scraper else 0
        share = block_share(group, directory)
        of_block = f"{share[0]:.2%} of {share[1] // 1000}k" if share else ""
        # A dash where a figure does not apply: recall of legitimate personas, false
        # positives of scrapers, events to detection of what was never detected.
        recall = f"{len(detect) / len(group):.0%}" if scraper else "-"
        false_positive = f"{len(suspended) / len(group):.0%}" if not scraper else "-"
        median = f"{statistics.median(detect):.0f}" if detect else "-"
        stop = f"{statistics.median(stops):.0f}" if stops and scraper else "-"
        lines.append(
            f"{persona:<20} {'scraper' if scraper else 'legit':<7} {len(group):>5} "
            f"{len(suspended):>5} {held:>5} {len(flagged):>5} "
            f"{recall:>7} {false_positive:>6} "
            f"{len(flagged) / len(group):>6.1%} "
            f"{median:>10} {stop:>8} "
            f"{extracted if scraper else '':>9} {of_block:>12}  {', '.join(kinds)}"
        )
    return "\n".join(lines)


@dataclass
class PersonaSummary:
    """One persona over several simulated months."""

    scraper: bool
    flag_only: bool = False
    accounts: int = 0
    suspended: int = 0
    held: int = 0
    flagged: int = 0
    swarm_refused: int = 0
    """Accounts refused a lookup in a block swarmed while they were new."""
    detection: list[float] = field(default_factory=list)
    """Per month: median events until suspension (until the flag, for flag-only ones)."""
    stops: list[float] = field(default_factory=list)
    """Per month: median events until a block held or the account suspended."""
    shares: list[tuple[float, int]] = field(default_factory=list)
    """Per month: share of the target block extracted, and the block size."""
    searched: list[int] = field(default_factory=list)
    """Per month: the most listings name searches returned to one of its accounts."""


def _month(seed: int) -> dict[str, PersonaSummary]:
    directory, actors = standard_scenario(seed)
    results, _ = run(actors)
    summary: dict[str, PersonaSummary] = {}
    for persona, group in _by_persona(results).items():
        actor = group[0].actor
        line = summary[persona] = PersonaSummary(
            actor.scraper, actor.flag_only, accounts=len(group)
        )
        line.suspended = sum(r.suspended_after is not None for r in group)
        line.held = sum(r.held_after is not None for r in group)
        line.flagged = sum(r.flagged for r in group)
        line.swarm_refused = sum(r.swarm_refused > 0 for r in group)
        detect = [r.caught_after for r in group if r.caught_after is not None]
        line.detection = [statistics.median(detect)] if detect else []
        stops = [r.stopped_after for r in group if r.stopped_after is not None]
        line.stops = [statistics.median(stops)] if stops and actor.scraper else []
        share = block_share(group, directory)
        line.shares = [share] if share else []
        line.searched = [max(r.searched for r in group)] if actor.scraper else []
    return summary


def summarize(seeds: list[int], workers: int | None = None) -> str:
    """The table of `--seeds`: each persona over every month, simulated in parallel."""
    total: dict[str, PersonaSummary] = {}
    with ProcessPoolExecutor(workers) as pool:
        for month in pool.map(_month, seeds):
            for persona, line in month.items():
                into = total.setdefault(persona, PersonaSummary(line.scraper, line.flag_only))
                into.accounts += line.accounts
                into.suspended += line.suspended
                into.held += line.held
                into.flagged += line.flagged
                into.swarm_refused += line.swarm_refused
                into.detection += line.detection
                into.stops += line.stops
                into.shares += line.shares
                into.searched += line.searched
    lines = [
        f"seeds {', '.join(map(str, seeds))}: {len(seeds)} simulated months",
        f"{'persona':<20} {'kind':<7} {'accts':>5} {'susp':>5} {'held':>5} {'flag':>5} "
        f"{'med.events':>10} {'range':>9} {'med.stop':>8} {'of block: max':>13} "
        f"{'>= 1 % of a 1k block':>20} {'of a 10k block':>14}",
    ]

    def over(shares: list[tuple[float, int]], size: int) -> str:
        runs = [share for share, block in shares if block == size]
        return f"{sum(share >= 0.01 for share in runs)}/{len(runs)}"

    for persona, line in sorted(total.items(), key=lambda item: (item[1].scraper, item[0])):
        row = (
            f"{persona:<20} {'scraper' if line.scraper else 'legit':<7} {line.accounts:>5} "
            f"{line.suspended:>5} {line.held:>5} {line.flagged:>5}"
        )
        if line.detection:
            row += (
                f" {statistics.median(line.detection):>10.1f} "
                f"{f'{min(line.detection):.0f}-{max(line.detection):.0f}':>9}"
                f" {statistics.median(line.stops) if line.stops else 0:>8.1f}"
            )
        if line.shares:
            row += (
                f" {max(share for share, _ in line.shares):>13.2%} "
                f"{over(line.shares, 1_000):>20} {over(line.shares, 10_000):>14}"
            )
        elif any(line.searched):
            row += f" {max(line.searched):>13,} listings by name search, at most"
        lines.append(row)
    scrapers = [line for line in total.values() if line.scraper and not line.flag_only]
    flag_only = [line for line in total.values() if line.flag_only]
    legit = [line for line in total.values() if not line.scraper]
    shares = [share for line in scrapers for share in line.shares]
    lines.append(
        f"\nscraper accounts suspended: {sum(x.suspended for x in scrapers)}/"
        f"{sum(x.accounts for x in scrapers)}; flag-only scrapers (list washing) flagged: "
        f"{sum(x.flagged for x in flag_only)}/{sum(x.accounts for x in flag_only)}; "
        "legitimate suspended: "
        f"{sum(x.suspended for x in legit)}/{sum(x.accounts for x in legit)}, held a block: "
        f"{sum(x.held for x in legit)}, flagged: "
        f"{sum(x.flagged for x in legit)}, refused a swarmed block: "
        f"{sum(x.swarm_refused for x in legit)}; block scans extracting >= 1 % of their block: "
        f"{over(shares, 1_000)} on 1k blocks, {over(shares, 10_000)} on 10k blocks"
    )
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    """`1-8` or `1,3,5`."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-", 1))
            if first > last:
                raise ValueError(text)
            return list(range(first, last + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not like 1-8 or 1,3,5") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make eval-abuse`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", type=_seeds, help="several months, e.g. 1-8: one summary")
    args = parser.parse_args(argv)
    if args.seeds:
        print(summarize(args.seeds))
        return 0
    directory, actors = standard_scenario(args.seed)
    results, per_event = run(actors)
    legit = [r for r in results.values() if not r.actor.scraper]
    scrapers = [r for r in results.values() if r.actor.scraper and not r.actor.flag_only]
    flag_only = [r for r in results.values() if r.actor.flag_only]
    events = sum(len(a.events) for a in actors)
    print(
        f"simulated month: {len(results)} accounts, {events:,} events, seed {args.seed}; "
        f"detector cost {per_event:.1f} µs/event"
    )
    print(report(results, directory))
    caught = sum(r.suspended_after is not None for r in scrapers)
    wrongly = sum(r.suspended_after is not None for r in legit)
    held = sum(r.held_after is not None for r in legit)
    flagged = sum(r.flagged for r in legit)
    print(
        f"\nscrapers suspended: {caught}/{len(scrapers)}; flag-only scrapers (list washing) "
        f"flagged: {sum(r.flagged for r in flag_only)}/{len(flag_only)}; legitimate suspended: "
        f"{wrongly}/{len(legit)}, held a block: {held}/{len(legit)}, flagged: "
        f"{flagged}/{len(legit)}, refused a swarmed block: "
        f"{sum(r.swarm_refused > 0 for r in legit)}/{len(legit)}"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Piped into `head`: the reader has what it wanted. Point stdout at /dev/null so the
        # interpreter's last flush does not raise again (as the Python docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
