"""Streaming abuse detectors: a deterministic state machine per account and per IP.

Pure: no clock, no I/O. Time comes from the events, so the same code runs
behind the API and in `lookup abuse replay`, and tests drive it with a
controlled clock. Only first lookups of a number (within the window) move the
scan detectors: repeats are what customers do, and scrapers gain nothing by
mixing them in. Invalid numbers (typos) are counted as seen and nothing else.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import msgspec

from lookup.abuse.events import LookupEvent
from lookup.abuse.policy import DEFAULT_POLICY, SEVERITY, Kind, Policy

_EVIDENCE_NUMBERS: Final = 50


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One rule firing for an account, with what a reviewer needs to judge it."""

    account: str
    kind: str
    action: str
    ts: datetime
    """Time of the event that triggered it."""
    events_seen: int
    """Events of the account seen when it fired, that one included."""
    evidence: dict[str, Any]


@dataclass(slots=True)
class _Lookup:
    ts: datetime
    number: int
    outcome: str
    key: str
    ip: str
    account: str


def _e164(number: int) -> str:
    return f"+47{number:08d}"


def _trail(lookups: list[_Lookup]) -> list[dict[str, str]]:
    """The last lookups behind a finding, as a reviewer reads them."""
    return [
        {"ts": item.ts.isoformat(), "number": _e164(item.number), "outcome": item.outcome}
        for item in lookups[-_EVIDENCE_NUMBERS:]
    ]


@dataclass(slots=True)
class _Run:
    head: int
    updated: datetime
    items: list[_Lookup] = field(default_factory=list)
    misses: int = 0


@dataclass(slots=True)
class _AccountState:
    events_seen: int = 0
    recent: deque[_Lookup] = field(default_factory=deque)
    """First lookups within the window, oldest first."""
    recent_numbers: dict[int, datetime] = field(default_factory=dict)
    blocks: dict[tuple[int, int], dict[int, _Lookup]] = field(default_factory=dict)
    runs: list[_Run] = field(default_factory=list)
    sprt: float = 0.0
    sprt_trail: deque[_Lookup] = field(default_factory=lambda: deque(maxlen=_EVIDENCE_NUMBERS))
    velocity_bucket: int = -1
    velocity_count: int = 0
    velocity_misses: int = 0
    velocity_baseline: int = 0
    fired: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _IpState:
    blocks: dict[tuple[int, int], dict[int, _Lookup]] = field(default_factory=dict)
    fired: set[tuple[int, int, str]] = field(default_factory=set)


class Engine:
    """Feeds events through every detector and applies the policy."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._accounts: dict[str, _AccountState] = {}
        self._ips: dict[str, _IpState] = {}
        self._miss_step = math.log(policy.miss_scan / policy.miss_legit)
        self._hit_step = math.log((1 - policy.miss_scan) / (1 - policy.miss_legit))
        self._upper = math.log((1 - policy.sprt_beta) / policy.sprt_alpha)
        self._lower = math.log(policy.sprt_beta / (1 - policy.sprt_alpha))
        self._pruned_at: datetime | None = None

    def reset(self, account: str) -> None:
        """Forget an account's evidence (compliance cleared or reinstated it)."""
        self._accounts.pop(account, None)
        for ip_state in self._ips.values():
            ip_state.fired = {marker for marker in ip_state.fired if marker[2] != account}

    def _prune(self, now: datetime) -> None:
        """Drop what fell out of the window everywhere, once per hour of event time.

        Accounts prune themselves on each event; per-IP blocks and idle
        accounts would otherwise grow for as long as the server runs.
        """
        if self._pruned_at is not None and (now - self._pruned_at).total_seconds() < 3600:
            return
        self._pruned_at = now
        window = self.policy.window_seconds
        for address, ip_state in list(self._ips.items()):
            for block, members in list(ip_state.blocks.items()):
                for number, item in list(members.items()):
                    if (now - item.ts).total_seconds() > window:
                        del members[number]
                if not members:
                    del ip_state.blocks[block]
            if not ip_state.blocks:
                del self._ips[address]
        for name, state in list(self._accounts.items()):
            self._expire(state, now)
            state.blocks = {block: members for block, members in state.blocks.items() if members}
            if not state.recent and not state.fired:
                del self._accounts[name]

    def events_seen(self, account: str) -> int:
        """How many events of an account the engine has seen."""
        state = self._accounts.get(account)
        return state.events_seen if state else 0

    def observe(self, event: LookupEvent) -> list[Finding]:
        """Update the state with one event (in time order) and return new findings."""
        self._prune(event.ts)
        state = self._accounts.setdefault(event.account, _AccountState())
        state.events_seen += 1
        if event.outcome == "invalid" or not event.number.startswith("+47"):
            return []
        try:
            number = int(event.number[3:])
        except ValueError:
            return []
        lookup = _Lookup(event.ts, number, event.outcome, event.key, event.ip, event.account)
        self._expire(state, event.ts)
        if number in state.recent_numbers:
            state.recent_numbers[number] = event.ts
            return []
        state.recent_numbers[number] = event.ts
        state.recent.append(lookup)
        found: list[tuple[Kind, bool, dict[str, Any]]] = []
        found.extend(self._runs(state, lookup))
        found.extend(self._coverage(state, lookup))
        found.extend(self._miss_ratio(state, lookup))
        found.extend(self._velocity(state, lookup))
        findings = [
            finding
            for kind, strong, evidence in found
            if (finding := self._escalate(state, event, kind, strong, evidence)) is not None
        ]
        findings.extend(self._across_accounts(event, lookup))
        return findings

    def _escalate(
        self,
        state: _AccountState,
        event: LookupEvent,
        kind: Kind,
        strong: bool,
        evidence: dict[str, Any],
    ) -> Finding | None:
        """A finding only when it raises the severity reached for its kind."""
        others = sorted(k for k in state.fired if k != kind)
        action = self.policy.action(kind, strong=strong, corroborated=bool(others))
        if others and not strong:
            evidence = {**evidence, "corroborated_by": others}
        if SEVERITY[action] <= state.fired.get(kind, 0):
            return None
        state.fired[kind] = SEVERITY[action]
        return Finding(
            account=event.account,
            kind=kind,
            action=action,
            ts=event.ts,
            events_seen=state.events_seen,
            evidence=evidence,
        )

    def _expire(self, state: _AccountState, now: datetime) -> None:
        window = self.policy.window_seconds
        while state.recent and (now - state.recent[0].ts).total_seconds() > window:
            old = state.recent.popleft()
            if state.recent_numbers.get(old.number) == old.ts:
                del state.recent_numbers[old.number]
            for size in self.policy.block_sizes:
                members = state.blocks.get((size, old.number // size))
                if members is not None and members.get(old.number) is old:
                    del members[old.number]

    def _runs(
        self, state: _AccountState, lookup: _Lookup
    ) -> list[tuple[Kind, bool, dict[str, Any]]]:
        policy = self.policy
        best: _Run | None = None
        for run in state.runs:
            gap = abs(lookup.number - run.head)
            if 0 < gap <= policy.run_stride and (
                best is None or gap < abs(lookup.number - best.head)
            ):
                best = run
        if best is None:
            if len(state.runs) >= policy.run_heads:
                state.runs.remove(min(state.runs, key=lambda r: r.updated))
            best = _Run(head=lookup.number, updated=lookup.ts)
            state.runs.append(best)
        best.head, best.updated = lookup.number, lookup.ts
        best.items.append(lookup)
        best.misses += lookup.outcome == "miss"
        while (lookup.ts - best.items[0].ts).total_seconds() > policy.window_seconds:
            best.misses -= best.items.pop(0).outcome == "miss"
        length = len(best.items)
        if length < policy.run_flag or _span(best.items, policy.run_flag) > (
            policy.block_flag_burst_seconds
        ):
            return []
        share = best.misses / length
        strong = (
            length >= policy.run_suspend
            and share >= policy.run_suspend_miss_share
            and _span(best.items, policy.run_suspend) <= policy.block_suspend_burst_seconds
        )
        evidence = {
            "rule": {
                "run_length": length,
                "misses": best.misses,
                "miss_share": round(share, 3),
                "stride_max": policy.run_stride,
                "flag_at": policy.run_flag,
                "suspend_at": policy.run_suspend,
                "suspend_miss_share": policy.run_suspend_miss_share,
            },
            "range": [
                _e164(min(i.number for i in best.items)),
                _e164(max(i.number for i in best.items)),
            ],
            "lookups": _trail(best.items),
        }
        return [(_spread_kind(best.items, Kind.SEQUENTIAL_RUN), strong, evidence)]

    def _coverage(
        self, state: _AccountState, lookup: _Lookup
    ) -> list[tuple[Kind, bool, dict[str, Any]]]:
        policy = self.policy
        found = []
        recent = len(state.recent)
        for size, flag_at, suspend_at in zip(
            policy.block_sizes, policy.block_flag, policy.block_suspend, strict=True
        ):
            block = lookup.number // size
            members = state.blocks.setdefault((size, block), {})
            members[lookup.number] = lookup
            count = len(members)
            if count < flag_at:
                continue
            by_chance = recent * size / policy.plan_numbers
            excess = policy.block_excess * by_chance
            misses = sum(1 for item in members.values() if item.outcome == "miss")
            if count < flag_at + excess or misses / count < policy.block_flag_miss_share:
                continue
            items = sorted(members.values(), key=lambda item: item.ts)
            if _span(items, int(flag_at + excess)) > policy.block_flag_burst_seconds:
                continue
            needed = suspend_at + excess
            strong = (
                count >= needed
                and misses / count >= policy.block_suspend_miss_share
                and _span(items, math.ceil(needed)) <= policy.block_suspend_burst_seconds
            )
            evidence = {
                "rule": {
                    "block_size": size,
                    "distinct": count,
                    "misses": misses,
                    "expected_by_chance": round(by_chance, 3),
                    "flag_at": flag_at,
                    "suspend_at": round(needed, 1),
                    "window_seconds": policy.window_seconds,
                },
                "block": _e164(block * size) + f"..{size - 1:0{len(str(size - 1))}d}",
                "keys": sorted({item.key for item in items}),
                "ips": sorted({item.ip for item in items}),
                "lookups": _trail(items),
            }
            found.append((_spread_kind(items, Kind.BLOCK_COVERAGE), strong, evidence))
        return found

    def _miss_ratio(
        self, state: _AccountState, lookup: _Lookup
    ) -> list[tuple[Kind, bool, dict[str, Any]]]:
        state.sprt += self._miss_step if lookup.outcome == "miss" else self._hit_step
        state.sprt_trail.append(lookup)
        if state.sprt <= self._lower:
            # Threshold random walk: evidence of benign traffic ends the test; start anew.
            state.sprt = 0.0
            state.sprt_trail.clear()
            return []
        if state.sprt < self._upper:
            return []
        trail = list(state.sprt_trail)
        misses = sum(1 for item in trail if item.outcome == "miss")
        evidence = {
            "rule": {
                "log_likelihood_ratio": round(state.sprt, 3),
                "upper_bound": round(self._upper, 3),
                "suspend_at": round(self._upper * self.policy.sprt_suspend_factor, 3),
                "miss_legit": self.policy.miss_legit,
                "miss_scan": self.policy.miss_scan,
                "misses_in_trail": misses,
                "trail_length": len(trail),
            },
            "lookups": _trail(trail),
        }
        strong = state.sprt >= self._upper * self.policy.sprt_suspend_factor
        return [(Kind.MISS_RATIO, strong, evidence)]

    def _velocity(
        self, state: _AccountState, lookup: _Lookup
    ) -> list[tuple[Kind, bool, dict[str, Any]]]:
        policy = self.policy
        bucket = int(lookup.ts.timestamp() // policy.velocity_window_seconds)
        if bucket != state.velocity_bucket:
            state.velocity_baseline = max(state.velocity_baseline, state.velocity_count)
            state.velocity_bucket, state.velocity_count, state.velocity_misses = bucket, 0, 0
        state.velocity_count += 1
        state.velocity_misses += lookup.outcome == "miss"
        bound = max(policy.velocity_floor, policy.velocity_factor * state.velocity_baseline)
        share = state.velocity_misses / state.velocity_count
        if state.velocity_count < bound or share < policy.velocity_miss_share:
            return []
        evidence = {
            "rule": {
                "new_numbers_in_window": state.velocity_count,
                "window_seconds": policy.velocity_window_seconds,
                "account_busiest_past_window": state.velocity_baseline,
                "bound": bound,
                "miss_share": round(share, 3),
            },
            "lookups": _trail(list(state.recent)[-_EVIDENCE_NUMBERS:]),
        }
        return [(Kind.DISTINCT_VELOCITY, False, evidence)]

    def _across_accounts(self, event: LookupEvent, lookup: _Lookup) -> list[Finding]:
        """Blocks scanned by several accounts from one IP address."""
        policy = self.policy
        ip_state = self._ips.setdefault(lookup.ip, _IpState())
        findings = []
        for size, suspend_at in zip(policy.block_sizes, policy.block_suspend, strict=True):
            block = lookup.number // size
            members = ip_state.blocks.setdefault((size, block), {})
            current = members.get(lookup.number)
            if current is not None and (lookup.ts - current.ts).total_seconds() <= (
                policy.window_seconds
            ):
                continue
            members[lookup.number] = lookup
            if len(members) < suspend_at:
                continue
            live = [
                item
                for item in members.values()
                if (lookup.ts - item.ts).total_seconds() <= policy.window_seconds
            ]
            by_account: dict[str, list[_Lookup]] = {}
            for item in live:
                by_account.setdefault(item.account, []).append(item)
            named = {
                a: items
                for a, items in by_account.items()
                if len(items) >= policy.distributed_min_share
            }
            if len(live) < suspend_at or len(named) < policy.distributed_min_accounts:
                continue
            misses = sum(1 for item in live if item.outcome == "miss")
            strong = misses / len(live) >= policy.block_suspend_miss_share
            for account, items in sorted(named.items()):
                marker = (size, block, account)
                if marker in ip_state.fired:
                    continue
                ip_state.fired.add(marker)
                state = self._accounts.setdefault(account, _AccountState())
                finding = self._escalate(
                    state,
                    event
                    if account == event.account
                    else msgspec.structs.replace(event, account=account),
                    Kind.DISTRIBUTED_SCAN,
                    strong,
                    {
                        "rule": {
                            "ip": lookup.ip,
                            "block_size": size,
                            "distinct_from_ip": len(live),
                            "accounts": {a: len(v) for a, v in sorted(by_account.items())},
                            "misses": misses,
                            "suspend_at": suspend_at,
                        },
                        "block": _e164(block * size),
                        "lookups": _trail(sorted(items, key=lambda item: item.ts)),
                    },
                )
                if finding is not None:
                    findings.append(finding)
        return findings


def _span(items: list[_Lookup], last: int) -> float:
    """Seconds covered by the last `last` lookups (time-ordered)."""
    tail = items[-last:]
    return (tail[-1].ts - tail[0].ts).total_seconds()


def _spread_kind(items: list[_Lookup], kind: Kind) -> Kind:
    """A scan split over several keys or addresses of one account is a distributed scan."""
    keys = {item.key for item in items}
    ips = {item.ip for item in items}
    return Kind.DISTRIBUTED_SCAN if len(keys) > 1 or len(ips) > 1 else kind
