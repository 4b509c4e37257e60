"""`make eval-abuse`: run the detectors over a simulated month and score them per persona.

    python -m lookup.abuse.evaluate [--seed N]

A suspended account's later requests are refused (as the API does), so a
scraper's extraction counts only what it got before its suspension.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import LookupEvent
from lookup.abuse.policy import DEFAULT_POLICY, Action, Policy
from lookup.abuse.simulate import Actor, Directory, standard_scenario


@dataclass
class AccountResult:
    """What happened to one simulated account."""

    actor: Actor
    findings: list[Finding] = field(default_factory=list)
    suspended_after: int | None = None
    """Events of the account seen when it was suspended (since scraping began, for scrapers)."""
    seen: int = 0
    extracted: set[str] = field(default_factory=set)
    """Distinct listings obtained before suspension."""

    @property
    def flagged(self) -> bool:
        """Whether any finding fired for the account."""
        return bool(self.findings)


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
    engine = Engine(policy)
    started = time.perf_counter()
    for event in events:
        result = by_account[event.account]
        if result.suspended_after is not None:
            continue  # refused with 403: no answer, no event
        scraping = result.actor.scrape_from is not None and event.ts >= result.actor.scrape_from
        if scraping or not result.actor.scraper:
            result.seen += 1
            if event.outcome == "hit" and scraping:
                result.extracted.add(event.number)
        for finding in engine.observe(event):
            target = by_account[finding.account]
            target.findings.append(finding)
            if finding.action == Action.SUSPEND and target.suspended_after is None:
                target.suspended_after = target.seen
    elapsed = time.perf_counter() - started
    return by_account, elapsed / max(len(events), 1) * 1e6


def report(results: dict[str, AccountResult], directory: Directory) -> str:
    """The per-persona table `make eval-abuse` prints."""
    personas: dict[str, list[AccountResult]] = defaultdict(list)
    for result in results.values():
        personas[result.actor.persona].append(result)
    lines = [
        f"{'persona':<20} {'kind':<7} {'accts':>5} {'susp':>5} {'flag':>5} {'recall':>7} "
        f"{'FPR':>6} {'flag%':>6} {'med.events':>10} {'extracted':>9} {'of block':>12}  kinds"
    ]
    for persona, group in sorted(
        personas.items(), key=lambda item: (item[1][0].actor.scraper, item[0])
    ):
        scraper = group[0].actor.scraper
        suspended = [r for r in group if r.suspended_after is not None]
        flagged = [r for r in group if r.flagged]
        kinds = sorted({f"{f.kind}:{f.action}" for r in group for f in r.findings})
        detect = [r.suspended_after for r in suspended if r.suspended_after is not None]
        extracted = sum(len(r.extracted) for r in group) if scraper else 0
        block_share = ""
        if scraper and group[0].actor.target_block is not None:
            in_block = directory.listings_in_block(group[0].actor.target_block)
            size = directory.block_size(group[0].actor.target_block)
            start = group[0].actor.target_block
            mine = {n for r in group for n in r.extracted if start <= int(n[3:]) < start + size}
            block_share = f"{len(mine) / max(in_block, 1):.2%} of {size // 1000}k"
        lines.append(
            f"{persona:<20} {'scraper' if scraper else 'legit':<7} {len(group):>5} "
            f"{len(suspended):>5} {len(flagged):>5} "
            f"{(len(suspended) / len(group)) if scraper else float('nan'):>7.0%} "
            f"{(len(suspended) / len(group)) if not scraper else float('nan'):>6.0%} "
            f"{len(flagged) / len(group):>6.1%} "
            f"{statistics.median(detect) if detect else float('nan'):>10.0f} "
            f"{extracted if scraper else '':>9} {block_share:>12}  {', '.join(kinds)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make eval-abuse`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    directory, actors = standard_scenario(args.seed)
    results, per_event = run(actors)
    legit = [r for r in results.values() if not r.actor.scraper]
    scrapers = [r for r in results.values() if r.actor.scraper]
    events = sum(len(a.events) for a in actors)
    print(
        f"simulated month: {len(results)} accounts, {events:,} events, seed {args.seed}; "
        f"detector cost {per_event:.1f} µs/event"
    )
    print(report(results, directory))
    caught = sum(r.suspended_after is not None for r in scrapers)
    wrongly = sum(r.suspended_after is not None for r in legit)
    flagged = sum(r.flagged for r in legit)
    print(
        f"\nscrapers suspended: {caught}/{len(scrapers)}; legitimate suspended: "
        f"{wrongly}/{len(legit)}, flagged: {flagged}/{len(legit)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
