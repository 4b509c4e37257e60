"""Streaming abuse detectors: a deterministic state machine per account and per IP.

Pure: no clock, no I/O. Time comes from the events, so the same code runs
behind the API and in `lookup abuse replay`, and tests drive it with a
controlled clock. Only new numbers (not looked up by the account in the
`known_seconds` before) move the scan detectors: repeats are what customers
do, and scrapers gain nothing by mixing them in. Invalid numbers (typos) are
counted as seen and nothing else.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

import msgspec

from lookup.abuse.crossaccount import AddressScans
from lookup.abuse.events import EPOCH, LookupEvent, national_number
from lookup.abuse.fastrule import FastRule
from lookup.abuse.focus import Focus
from lookup.abuse.policy import DEFAULT_POLICY, SEVERITY, Action, Kind, Policy
from lookup.abuse.state import (
    EVIDENCE_NUMBERS,
    AccountState,
    Block,
    Lookup,
    Run,
    block_label,
    e164,
    span,
    trail,
)
from lookup.abuse.washing import DAY_SECONDS, Clearance, Washing

# A rule's verdict: kind, whether its suspension criteria held, and how to build its evidence.
_Found = tuple[Kind, bool, Callable[[], dict[str, Any]]]

WASHING = "list_washing"
"""The list-washing rule's slot among an account's fired rules: its findings are
`distinct_velocity` flags, which neither corroborate nor are corroborated by others."""
_KINDS = frozenset(Kind)


def _know(known: OrderedDict[int, float], number: int, t: float) -> bool:
    """Record a lookup of a number at `t` (kept oldest first); whether it was new."""
    last = known.get(number)
    if last is None:
        known[number] = t
        return True
    if t > last:  # a late event from another worker is not newer
        known[number] = t
        known.move_to_end(number)
    return False


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


class Engine:
    """Feeds events through every detector and applies the policy."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._accounts: dict[str, AccountState] = {}
        self._miss_step = math.log(policy.miss_scan / policy.miss_legit)
        self._hit_step = math.log((1 - policy.miss_scan) / (1 - policy.miss_legit))
        self._upper = math.log((1 - policy.sprt_beta) / policy.sprt_alpha)
        self._lower = math.log(policy.sprt_beta / (1 - policy.sprt_alpha))
        self._fast = FastRule(policy)
        self._focus = Focus(policy)
        self._ceilings = tuple(
            math.ceil(policy.block_ceiling * size) for size in policy.block_sizes
        )
        self._addresses = AddressScans(policy, self._fast, self._knew)
        self._washing = Washing(policy)
        self._pruned_at: float | None = None
        # Kept apart from the pruned state: a count never restarts (one int per account).
        self._events_seen: dict[str, int] = {}

    def reset(self, account: str, *, washing_cleared: Clearance | None = None) -> None:
        """Forget an account's evidence (compliance cleared or reinstated it).

        The numbers it has stay known: its next list refresh is still repeats.
        `washing_cleared`: the list-washing flags compliance last cleared for it, which
        raise the rule's bar for a while.
        """
        state = self._accounts.pop(account, None)
        known = state.known if state is not None else OrderedDict[int, float]()
        if known or washing_cleared:
            self._accounts[account] = AccountState(known=known, washing_cleared=washing_cleared)
        self._addresses.forget(account)

    def rearm(self, account: str) -> None:
        """Let every rule fire again for an account back on automatic enforcement, whose
        findings were only flags (on `review`): the evidence they fired on goes, as it
        must not suspend it now, but its history stays (the numbers it has, its velocity
        baseline, its list-washing days and flag), so it is judged by its own measure."""
        state = self._accounts.get(account)
        if state is None:
            return
        self._accounts[account] = AccountState(
            known=state.known,
            seq=state.seq,
            velocity_bucket=state.velocity_bucket,
            velocity_peak=state.velocity_peak,
            velocity_baseline=state.velocity_baseline,
            velocity_past=state.velocity_past,
            days=state.days,
            washing_cleared=state.washing_cleared,
            fired={slot: fired for slot, fired in state.fired.items() if slot == WASHING},
        )
        # The address-level rule keeps its markers: the account's lookups stay in its
        # address's blocks, and would name it again at the next lookup there.

    def _prune(self, now: float) -> None:
        """Drop what fell out of the window everywhere, once per hour of event time.

        Accounts prune themselves on each event; per-IP blocks and idle
        accounts would otherwise grow for as long as the server runs.
        """
        if self._pruned_at is not None and now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        window = self.policy.window_seconds
        self._addresses.prune(now)
        for name, state in list(self._accounts.items()):
            self._expire(state, now)
            self._forget(state, now)
            state.blocks = {key: block for key, block in state.blocks.items() if block.members}
            state.fired = {
                kind: (severity, at)
                for kind, (severity, at) in state.fired.items()
                if now - at <= window
            }
            if not state.known and not state.fired and not state.washing_cleared:
                del self._accounts[name]

    def remember(self, account: str, number: str, ts: datetime) -> None:
        """Know that the account looked a number up at `ts` (a warm restart's older days;
        called in time order, before any event)."""
        national = national_number(number)
        if national is None:
            return
        state = self._accounts.setdefault(account, AccountState())
        _know(state.known, national, (ts - EPOCH).total_seconds())

    def recall(
        self, account: str, kind: str, action: str, ts: datetime, pattern: str | None = None
    ) -> None:
        """Know that a finding fired at `ts` (a warm restart's, recorded before it): the
        replayed window may not raise it again, and a rule must not fire twice for it."""
        slot = WASHING if pattern == WASHING else kind
        state = self._accounts.setdefault(account, AccountState())
        state.fired[slot] = max(
            state.fired.get(slot, (0, 0.0)),
            (SEVERITY[Action(action)], (ts - EPOCH).total_seconds()),
        )

    def events_seen(self, account: str) -> int:
        """How many events of an account the engine has seen."""
        return self._events_seen.get(account, 0)

    def observe(self, event: LookupEvent) -> list[Finding]:
        """Update the state with one event (in time order) and return new findings."""
        t = (event.ts - EPOCH).total_seconds()
        self._prune(t)
        state = self._accounts.get(event.account)
        if state is None:
            state = self._accounts[event.account] = AccountState()
        self._events_seen[event.account] = self._events_seen.get(event.account, 0) + 1
        number = event.looked_up()
        if number is None:
            return []
        self._forget(state, t)
        new = _know(state.known, number, t)
        washing = (
            self._list_washing(state, event)
            if self._washing.count(state.days, t, new=new, hit=event.outcome == "hit")
            else None
        )
        if not new:
            # A number the customer has: looking it up again moves none of the scan rules.
            return [washing] if washing else []
        self._expire(state, t)
        state.seq += 1
        lookup = Lookup(
            event.ts, t, number, event.outcome, event.key, event.ip, event.account, state.seq
        )
        state.recent.append(lookup)
        found: list[_Found] = []
        found.extend(self._runs(state, lookup))
        found.extend(self._coverage(state, lookup))
        found.extend(self._miss_ratio(state, lookup))
        found.extend(self._velocity(state, lookup))
        findings = [
            finding
            for kind, strong, evidence in found
            if (finding := self._escalate(state, event, kind, strong, evidence)) is not None
        ]
        if washing is not None:
            findings.append(washing)
        findings.extend(self._across_accounts(event, lookup))
        return findings

    def _escalate(
        self,
        state: AccountState,
        event: LookupEvent,
        kind: Kind,
        strong: bool,
        evidence_of: Callable[[], dict[str, Any]],
        *,
        apart: str | None = None,
    ) -> Finding | None:
        """A finding only when it raises the severity reached for its kind.

        Evidence is built only then: rules re-check on every event, and
        building it each time would make the cost grow with the evidence.
        `apart`: the slot of a rule that only flags, and neither corroborates
        another rule nor is corroborated (list washing).
        """
        now, window = (event.ts - EPOCH).total_seconds(), self.policy.window_seconds
        live = {k: severity for k, (severity, at) in state.fired.items() if now - at <= window}
        slot = apart or kind
        others = [] if apart else sorted(k for k in live if k != kind and k in _KINDS)
        action = (
            Action.FLAG
            if apart
            else self.policy.action(kind, strong=strong, corroborated=bool(others))
        )
        if SEVERITY[action] <= live.get(slot, 0):
            return None
        state.fired[slot] = (SEVERITY[action], now)
        evidence = evidence_of()
        if others and not strong:
            evidence = {**evidence, "corroborated_by": others}
        return Finding(
            account=event.account,
            kind=kind,
            action=action,
            ts=event.ts,
            events_seen=self._events_seen.get(event.account, 0),
            evidence=evidence,
        )

    def _expire(self, state: AccountState, now: float) -> None:
        window = self.policy.window_seconds
        while state.recent and now - state.recent[0].t > window:
            old = state.recent.popleft()
            for size in self.policy.block_sizes:
                block = state.blocks.get((size, old.number // size))
                if block is not None and block.members.get(old.number) is old:
                    block.remove(old)

    def _forget(self, state: AccountState, now: float) -> None:
        known, horizon = state.known, now - self.policy.known_seconds
        while known:
            number, last = next(iter(known.items()))
            if last >= horizon:
                return
            del known[number]

    def _runs(self, state: AccountState, lookup: Lookup) -> list[_Found]:
        policy = self.policy
        best: Run | None = None
        for run in state.runs:
            gap = abs(lookup.number - run.head)
            if 0 < gap <= policy.run_stride and (
                best is None or gap < abs(lookup.number - best.head)
            ):
                best = run
        if best is None:
            if len(state.runs) >= policy.run_heads:
                del state.runs[0]
            best = Run(head=lookup.number)
        else:
            state.runs.remove(best)
        # Least recently extended first: the one a new run replaces.
        state.runs.append(best)
        best.head = lookup.number
        best.items.append(lookup)
        best.misses += lookup.outcome == "miss"
        while lookup.t - best.items[0].t > policy.window_seconds:
            best.misses -= best.items.popleft().outcome == "miss"
        length = len(best.items)
        if length < policy.run_flag or span(best.items, policy.run_flag) > (
            policy.block_flag_burst_seconds
        ):
            return []
        share = best.misses / length
        strong = (
            length >= policy.run_suspend
            and share >= policy.run_suspend_miss_share
            and span(best.items, policy.run_suspend) <= policy.block_suspend_burst_seconds
        )
        items = list(best.items)

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "run_length": length,
                    "misses": best.misses,
                    "miss_share": round(share, 3),
                    "stride_max": policy.run_stride,
                    "flag_at": policy.run_flag,
                    "suspend_at": policy.run_suspend,
                    "suspend_miss_share": policy.run_suspend_miss_share,
                },
                "range": [e164(min(i.number for i in items)), e164(max(i.number for i in items))],
                "lookups": trail(items),
            }

        spread = len({i.key for i in items}) > 1 or len({i.ip for i in items}) > 1
        kind = Kind.DISTRIBUTED_SCAN if spread else Kind.SEQUENTIAL_RUN
        return [(kind, strong, evidence)]

    def _coverage(self, state: AccountState, lookup: Lookup) -> list[_Found]:
        policy = self.policy
        found: list[_Found] = []
        recent = len(state.recent)
        # Into every block first: the focus test of a small block reads the enclosing one.
        blocks = []
        for size in policy.block_sizes:
            key = (size, lookup.number // size)
            block = state.blocks.get(key)
            if block is None:
                block = state.blocks[key] = Block("key", "ip")
            block.add(lookup)
            blocks.append(block)
        for size, flag_at, suspend_at, ceiling, block in zip(
            policy.block_sizes,
            policy.block_flag,
            policy.block_suspend,
            self._ceilings,
            blocks,
            strict=True,
        ):
            count = len(block.members)
            by_chance = recent * size / policy.plan_numbers
            # Rounded up: even a small account's share of chance raises the bar by one, which
            # keeps a busy account's scattered callers clear (a floor suspended the 1M benchmark).
            excess = math.ceil(policy.block_excess * by_chance)
            fast = (
                self._fast_scan(state, block, excess, lookup)
                if size == policy.block_fast_size
                else None
            )
            tier = "count"
            if fast is not None:
                strong, (needed, tier) = True, fast
            elif (
                count >= ceiling + excess
                and block.misses / count >= policy.block_suspend_miss_share
            ):
                # More of a block than a customer's list holds, wherever else the account
                # looks: a scan taking turns between blocks behind decoys, or between more
                # than `block_turns`, which share the attention as a town's blocks do.
                strong, needed, tier = True, ceiling + excess, "ceiling"
            else:
                if count < flag_at + excess or block.misses / count < policy.block_flag_miss_share:
                    continue
                if block.span(flag_at + excess) > policy.block_flag_burst_seconds:
                    continue
                if not self._focus.held(
                    state,
                    block,
                    flag_at + excess,
                    lookup,
                    floor=policy.block_focus_span,
                    share=policy.block_focus,
                    strays=True,
                    pair=policy.block_pair_focus,
                    pair_span=policy.block_focus_span,
                ):
                    continue
                needed = suspend_at + excess
                strong = (
                    count >= needed
                    and block.misses / count >= policy.block_suspend_miss_share
                    and block.span(needed) <= policy.block_suspend_burst_seconds
                    and not self._fast.company_range(block.last(needed))
                )
            spread = len(block.counts["key"]) > 1 or len(block.counts["ip"]) > 1
            found.append(
                (
                    Kind.DISTRIBUTED_SCAN if spread else Kind.BLOCK_COVERAGE,
                    strong,
                    partial(
                        self._coverage_evidence,
                        block,
                        size,
                        lookup.number // size,
                        by_chance,
                        flag_at,
                        needed,
                        tier,
                    ),
                )
            )
        return found

    def _fast_scan(
        self, state: AccountState, block: Block, excess: int, lookup: Lookup
    ) -> tuple[int, str] | None:
        """How many new numbers of a geographic block came fast where the account's
        attention is (a scan, walked or shuffled), and the name of the tier of the fast
        rule that holds, if one does."""
        geographic = self.policy.allocation_size(lookup.number) == self.policy.block_fast_size
        for tier in self._fast.tiers:
            if not (tier.everywhere or geographic):
                continue
            needed = tier.numbers + excess
            if self._fast.holds(block, needed, tier) and self._focus.held(
                state,
                block,
                needed,
                lookup,
                floor=0,
                share=tier.focus,
                strays=tier.strays,
                pair=1.0 if tier.pair_span else None,
                pair_span=tier.pair_span,
            ):
                return needed, tier.name
        return None

    def _coverage_evidence(
        self,
        block: Block,
        size: int,
        start: int,
        by_chance: float,
        flag_at: int,
        needed: int,
        tier: str,
    ) -> dict[str, Any]:
        return {
            "rule": {
                # Which bound held: `count` (flag_at / suspend_at below), `ceiling` (a share
                # of the block), or a fast tier (suspend_at numbers within minutes).
                "tier": tier,
                "block_size": size,
                "distinct": len(block.members),
                "misses": block.misses,
                "expected_by_chance": round(by_chance, 3),
                "flag_at": flag_at,
                "suspend_at": needed,
                "window_seconds": self.policy.window_seconds,
            },
            "block": block_label(start, size),
            "keys": sorted(block.counts["key"]),
            "ips": sorted(block.counts["ip"]),
            "lookups": trail(block.last(EVIDENCE_NUMBERS)),
        }

    def _miss_ratio(self, state: AccountState, lookup: Lookup) -> list[_Found]:
        state.sprt += self._miss_step if lookup.outcome == "miss" else self._hit_step
        state.sprt_trail.append(lookup)
        if state.sprt <= self._lower:
            # Threshold random walk: evidence of benign traffic ends the test; start anew.
            state.sprt = 0.0
            state.sprt_trail.clear()
            return []
        if state.sprt < self._upper:
            return []
        score, walk = state.sprt, list(state.sprt_trail)

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "log_likelihood_ratio": round(score, 3),
                    "upper_bound": round(self._upper, 3),
                    "suspend_at": round(self._upper * self.policy.sprt_suspend_factor, 3),
                    "miss_legit": self.policy.miss_legit,
                    "miss_scan": self.policy.miss_scan,
                    "misses_in_trail": sum(1 for item in walk if item.outcome == "miss"),
                    "trail_length": len(walk),
                },
                "lookups": trail(walk),
            }

        strong = score >= self._upper * self.policy.sprt_suspend_factor
        return [(Kind.MISS_RATIO, strong, evidence)]

    def _velocity(self, state: AccountState, lookup: Lookup) -> list[_Found]:
        policy = self.policy
        window = policy.velocity_window_seconds
        recent = state.velocity_recent
        recent.append(lookup)
        state.velocity_misses += lookup.outcome == "miss"
        while recent[0].t <= lookup.t - window:
            state.velocity_misses -= recent.popleft().outcome == "miss"
        count = len(recent)
        bucket = int(lookup.t // window)
        if bucket != state.velocity_bucket:
            if state.velocity_peak:
                state.velocity_past.append((state.velocity_bucket, state.velocity_peak))
            lag = policy.velocity_baseline_lag_seconds / window
            while state.velocity_past and bucket - state.velocity_past[0][0] > lag:
                state.velocity_baseline = max(
                    state.velocity_baseline, state.velocity_past.popleft()[1]
                )
            state.velocity_bucket, state.velocity_peak = bucket, 0
        state.velocity_peak = max(state.velocity_peak, count)
        bound = max(policy.velocity_floor, policy.velocity_factor * state.velocity_baseline)
        if count < bound:
            return []
        legit, misses = policy.miss_legit, state.velocity_misses
        z = (misses - count * legit) / math.sqrt(count * legit * (1 - legit))
        if z < policy.velocity_throttle_z:
            return []
        baseline, share = state.velocity_baseline, misses / count
        quoted = list(islice(reversed(recent), EVIDENCE_NUMBERS))[::-1]

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "new_numbers_in_window": count,
                    "window_seconds": policy.velocity_window_seconds,
                    "account_busiest_past_window": baseline,
                    "bound": bound,
                    "miss_share": round(share, 3),
                    "misses_z": round(z, 2),
                    "throttle_z": policy.velocity_throttle_z,
                    "suspend_z": policy.velocity_suspend_z,
                },
                "lookups": trail(quoted),
            }

        return [(Kind.DISTINCT_VELOCITY, z >= policy.velocity_suspend_z, evidence)]

    def _list_washing(self, state: AccountState, event: LookupEvent) -> Finding | None:
        """A flag, at the first lookup of a day, when new numbers made most of the account's
        lookups on enough of the days before: the first time in the window (it lapses as
        other rules' findings do)."""
        if not self._washing.holds(state.days, state.washing_cleared):
            return None
        return self._escalate(
            state,
            event,
            Kind.DISTINCT_VELOCITY,
            False,
            partial(self._washing_evidence, state),
            apart=WASHING,
        )

    def _washing_evidence(self, state: AccountState) -> dict[str, Any]:
        """The list-washing flag's figures: each finished day's counts, its last numbers."""
        policy = self.policy
        today = state.days[-1].day
        held = self._washing.holding(today, state.washing_cleared)
        return {
            "rule": {
                "pattern": WASHING,
                "daily_new_at_least": self._washing.bar(today, held),
                "cleared_busiest_day_new": held.busiest if held else 0,
                "new_share_at_least": policy.washing_new_share,
                "days_needed": policy.washing_days,
                "within_days": policy.washing_span_days,
                "known_days": round(policy.known_seconds / DAY_SECONDS),
            },
            "days": [
                {
                    "day": (EPOCH + timedelta(days=day.day)).date().isoformat(),
                    "lookups": day.lookups,
                    "new": day.new,
                    "new_hits": day.new_hits,
                }
                for day in islice(state.days, len(state.days) - 1)
            ],
            "lookups": trail(list(islice(reversed(state.recent), EVIDENCE_NUMBERS))[::-1]),
        }

    def _across_accounts(self, event: LookupEvent, lookup: Lookup) -> list[Finding]:
        """Findings for the accounts an address's block scan names."""
        findings = []
        for account, strong, evidence in self._addresses.observe(lookup):
            finding = self._escalate(
                self._accounts.setdefault(account, AccountState()),
                event
                if account == event.account
                else msgspec.structs.replace(event, account=account),
                Kind.DISTRIBUTED_SCAN,
                strong,
                evidence,
            )
            if finding is not None:
                findings.append(finding)
        return findings

    def _knew(self, account: str, key: tuple[int, int], burst: float) -> bool:
        """Whether the account's own lookups show it knew the block before the burst."""
        state = self._accounts.get(account)
        own = state.blocks.get(key) if state is not None else None
        return own is not None and self._fast.known(own, burst)
