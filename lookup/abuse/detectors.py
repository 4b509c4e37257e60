"""Streaming abuse detectors: a deterministic state machine per account and per IP.

Pure: no clock, no I/O. Time comes from the events, so the same code runs
behind the API and in `lookup abuse replay`, and tests drive it with a
controlled clock. Only new numbers (not looked up by the account in the
`known_seconds` before) move the scan detectors: repeats are what customers
do, and scrapers gain nothing by mixing them in. Invalid numbers (typos) are
counted as seen and nothing else.

The engine keeps the state, feeds each new number through the rules (`runs`,
`coverage`, `missratio`, `velocity`), the list-washing test and the address
rule (`crossaccount`), each name search through the search-harvest test
(`harvest`), and turns their verdicts into findings under the policy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from functools import partial
from itertools import chain, islice
from typing import Any

import msgspec

from lookup.abuse.coverage import KNOWN_TURNS, BlockCoverage, KnownBlocks
from lookup.abuse.crossaccount import AddressScans
from lookup.abuse.events import EPOCH, LookupEvent, national_number
from lookup.abuse.fastrule import FastRule
from lookup.abuse.focus import Focus
from lookup.abuse.harvest import SEARCH_HARVEST, Scales, Search, Searches, SearchHarvest
from lookup.abuse.holds import Hold
from lookup.abuse.missratio import MissRatio
from lookup.abuse.policy import DEFAULT_POLICY, SEVERITY, Action, Kind, Policy, Verdict
from lookup.abuse.runs import SequentialRuns
from lookup.abuse.state import EVIDENCE_NUMBERS, AccountState, Lookup, remembered, trail
from lookup.abuse.swarm import SWARM, Swarms
from lookup.abuse.velocity import Velocity
from lookup.abuse.washing import DAY_SECONDS, Clearance, Washing

WASHING = "list_washing"
"""The list-washing rule's slot among an account's fired rules: its findings are
`distinct_velocity` flags, which neither corroborate nor are corroborated by others."""
_KINDS = frozenset(Kind)


def _know(state: AccountState, number: int, t: float, outcome: str | None) -> bool:
    """Record a lookup of a number at `t` (kept oldest first), counted in the ledger with
    its `outcome` (None: not counted, its lookup is not evidence); whether it was new."""
    known = state.known
    last = known.get(number)
    if last is not None and t <= last:  # a late event from another worker is not newer
        return False
    known[number] = t
    if outcome is not None:
        state.ledger.enter(number, outcome == "miss", t, new=last is None)
    if last is not None:
        known.move_to_end(number)
        state.forget_at = 0.0  # the oldest may have moved
    # Another worker's batch can come late: what it knew goes in time order, behind the
    # numbers looked up after it, or it would be forgotten only after them.
    later = []
    for other in reversed(known):
        if other != number:
            if known[other] <= t:
                break
            later.append(other)
    if later:
        for other in reversed(later):
            known.move_to_end(other)
        state.forget_at = 0.0
    return last is None


def _search(event: LookupEvent) -> Search:
    """A search event as the search-harvest test counts it (an older server's says nothing
    of what its search returned: none counted)."""
    t = (event.ts - EPOCH).total_seconds()
    return Search(event.ts, t, event.key, event.ip, event.listings or 0, bool(event.full_page))


def _searches(state: AccountState) -> Searches:
    """An account's searches as the search-harvest test keeps them (made at its first)."""
    if state.searches is None:
        state.searches = Searches()
    return state.searches


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


def _hold(verdict: Verdict, number: int | None) -> Hold | None:
    """The block a verdict holds: its own (`Verdict.held`) or the lookup's number's."""
    if not verdict.holds or number is None:
        return None
    return Hold.of(verdict.held if verdict.held is not None else number)


class Engine:
    """Feeds events through every detector and applies the policy."""

    def __init__(
        self,
        policy: Policy = DEFAULT_POLICY,
        search_scales: Callable[[str], Scales | None] = lambda account: None,
    ) -> None:
        self.policy = policy
        self.search_scales = search_scales
        """Per account, how many times the default search plan its own allows (None: the
        default's): the search-harvest floors move as much. Replay knows no plans."""
        self._accounts: dict[str, AccountState] = {}
        self._fast = FastRule(policy)
        # In this order: a lookup's findings are listed as its rules are.
        self._rules = (
            SequentialRuns(policy).check,
            BlockCoverage(policy, self._fast, Focus(policy)).check,
            KnownBlocks(policy).check,
            MissRatio(policy).check,
            Velocity(policy).check,
        )
        self._addresses = AddressScans(policy, self._fast, self._knew, self._suspended)
        self._washing = Washing(policy)
        self._harvest = SearchHarvest(policy)
        self._swarms = Swarms(policy, self._has)
        self._pruned_at: float | None = None
        # Kept apart from the pruned state: a count never restarts (one int per account).
        self._events_seen: dict[str, int] = {}
        # Per erased number (national), each erasure: until when its lookups were made, and
        # the accounts it held. Kept a window long, for lookups that arrive late.
        self._erasures: dict[int, list[tuple[float, frozenset[str]]]] = {}

    def reset(self, account: str, *, washing_cleared: Clearance | None = None) -> None:
        """Forget an account's evidence (compliance cleared or reinstated it).

        The numbers it has stay known: its next list refresh is still repeats.
        `washing_cleared`: the list-washing flags compliance last cleared for it, which
        raise the rule's bar for a while.
        """
        state = self._accounts.pop(account, None)
        known = state.known if state is not None else OrderedDict[int, float]()
        searches = state.searches if state is not None else None
        if searches is not None:
            searches.restart()
        if known or washing_cleared or searches:
            self._accounts[account] = AccountState(
                known=known, washing_cleared=washing_cleared, searches=searches
            )
        self._addresses.forget(account)
        self._swarms.forget(account)

    def rearm(self, account: str) -> None:
        """Let every rule fire again for an account back on automatic enforcement, whose
        findings were only flags (on `review`): the evidence they fired on goes, as it
        must not suspend it now, but its history stays (the numbers it has, its velocity
        baseline, its list-washing days and flag), so it is judged by its own measure."""
        state = self._accounts.get(account)
        if state is None:
            return
        if state.searches is not None:
            state.searches.restart()
        self._accounts[account] = AccountState(
            known=state.known,
            seq=state.seq,
            velocity_bucket=state.velocity_bucket,
            velocity_peak=state.velocity_peak,
            velocity_baseline=state.velocity_baseline,
            velocity_past=state.velocity_past,
            days=state.days,
            washing_cleared=state.washing_cleared,
            searches=state.searches,
            fired={slot: fired for slot, fired in state.fired.items() if slot == WASHING},
            # The blocks held before it went on review stay held (in the key store too).
            held={b: at for b, at in state.held.items() if b not in state.answered},
        )
        # The address-level rule keeps its markers: the account's lookups stay in its
        # address's blocks, and would name it again at the next lookup there.

    def erase(self, number: str, until: datetime, held: Collection[str] = ()) -> int:
        """Quote a number (E.164) as erased in findings from now on (its data subject's
        request): its lookups made until `until` (every one remembered now, whatever its
        clock said), but those of the `held` accounts (legal hold). Detection goes on as
        before. Returns how many remembered lookups it hid."""
        national = national_number(number)
        if national is None:
            return 0
        keep = frozenset(held)
        self._erasures.setdefault(national, []).append(((until - EPOCH).total_seconds(), keep))
        sizes = self.policy.block_sizes
        everywhere = chain(
            (
                item
                for name, state in self._accounts.items()
                if name not in keep
                for item in remembered(state, national, sizes)
            ),
            self._addresses.lookups(national),
            self._swarms.lookups(national),
        )
        hidden: dict[int, Lookup] = {}
        for item in everywhere:
            if item.account not in keep:
                item.erased = True
                hidden[id(item)] = item
        return len(hidden)

    def _erased(self, lookup: Lookup) -> bool:
        """Whether an erasure covers a lookup that arrived after it."""
        return any(
            lookup.t <= until and lookup.account not in held
            for until, held in self._erasures.get(lookup.number, ())
        )

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
        self._swarms.prune(now)
        self._erasures = {
            number: kept
            for number, erasures in self._erasures.items()
            if (kept := [erasure for erasure in erasures if now - erasure[0] <= window])
        }
        for name, state in list(self._accounts.items()):
            self._expire(state, now)
            self._forget(state, now)
            state.fired = {
                kind: (severity, at)
                for kind, (severity, at) in state.fired.items()
                if now - at <= window
            }
            # An enforced hold lasts until compliance releases it (`reset`), however long
            # that takes: pruned, a customer's callers from the block were a scan going on.
            state.held = {
                block: at
                for block, at in state.held.items()
                if now - at <= window or block not in state.answered
            }
            state.answered &= state.held.keys()
            searches = state.searches
            if searches is not None:
                if now - searches.last > self.policy.known_seconds:
                    state.searches = searches = None
                else:
                    for tally in searches.tallies():
                        tally.expire(now)
            if not (state.known or state.fired or state.washing_cleared or state.held or searches):
                del self._accounts[name]

    def remember(self, account: str, number: str, ts: datetime, outcome: str | None = None) -> None:
        """Know that the account looked a number up at `ts` (a warm restart's older days;
        called in time order, before any event), answered with `outcome` (None: a lookup
        that is not evidence, as one from before compliance last cleared the account)."""
        national = national_number(number)
        if national is None:
            return
        state = self._accounts.setdefault(account, AccountState())
        _know(state, national, (ts - EPOCH).total_seconds(), outcome)

    def recall(
        self,
        account: str,
        kind: str,
        action: str,
        ts: datetime,
        pattern: str | None = None,
        hold: str | None = None,
        enforced: bool = True,
    ) -> None:
        """Know that a finding fired at `ts` (a warm restart's, recorded before it): the
        replayed window may not raise it again, and a rule must not fire twice for it.
        `hold`: the block it held; `enforced`: whether its action was taken."""
        slot = pattern if pattern in (WASHING, KNOWN_TURNS, SEARCH_HARVEST, SWARM) else kind
        state = self._accounts.setdefault(account, AccountState())
        t = (ts - EPOCH).total_seconds()
        state.fired[slot] = max(state.fired.get(slot, (0, 0.0)), (SEVERITY[Action(action)], t))
        if hold is not None:
            block = Hold.parse(hold)
            state.held[block] = t
            if not enforced:
                state.answered.add(block)

    def recall_hold(self, account: str, hold: str, ts: datetime) -> None:
        """Know that a block held at `ts`, before the window a warm restart replays, is held
        still (its case open): enforced, and not one held within the window."""
        state = self._accounts.setdefault(account, AccountState())
        state.held.setdefault(Hold.parse(hold), (ts - EPOCH).total_seconds())

    def answered(self, account: str, hold: Hold) -> None:
        """Know that a hold an account's finding named was not enforced (the account on
        `review`): its lookups in the block are answered, and judged as any others."""
        state = self._accounts.get(account)
        if state is not None and hold in state.held:
            state.answered.add(hold)

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
        if event.endpoint == "search":
            return self._searched(state, event)
        number = event.looked_up()
        if number is None:
            return []
        self._forget(state, t)
        new = _know(state, number, t, event.outcome)
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
        if self._erasures and self._erased(lookup):  # made before its erasure, arrived after
            lookup.erased = True
        state.recent.append(lookup)
        verdicts = (verdict for rule in self._rules for verdict in rule(state, lookup))
        findings = self._judged(state, event, verdicts, number)
        if washing is not None:
            findings.append(washing)
        findings.extend(self._across_accounts(event, lookup))
        findings.extend(self._swarmed(event, lookup))
        return findings

    def _judged(
        self,
        state: AccountState,
        event: LookupEvent,
        verdicts: Iterable[Verdict],
        number: int | None = None,
    ) -> list[Finding]:
        """The findings of an account's rules' verdicts on its event, in their order (each
        escalated before the next rule runs: a verdict's evidence reads the state as it
        was); `number`: the lookup's, whose block a verdict that `holds` holds."""
        return [
            finding
            for verdict in verdicts
            if (
                finding := self._escalate(
                    state,
                    event,
                    verdict.kind,
                    verdict.strong,
                    verdict.evidence,
                    apart=verdict.apart,
                    alone=verdict.alone,
                    hold=_hold(verdict, number),
                    together=frozenset(Hold.of(other) for other in verdict.together),
                )
            )
            is not None
        ]

    def _escalate(
        self,
        state: AccountState,
        event: LookupEvent,
        kind: Kind,
        strong: bool,
        evidence_of: Callable[[], dict[str, Any]],
        *,
        apart: str | None = None,
        alone: str | None = None,
        hold: Hold | None = None,
        together: frozenset[Hold] = frozenset(),
    ) -> Finding | None:
        """A finding only when it raises the severity reached for its kind, or holds a block
        not held yet (`hold`: the allocation block a block rule's verdict is about).

        Evidence is built only then: rules re-check on every event, and
        building it each time would make the cost grow with the evidence.
        `apart`: the slot of a rule that only flags, and neither corroborates
        another rule nor is corroborated (list washing); `alone`: the slot of one that
        acts as the policy says, but neither corroborates nor is corroborated either (the
        search-harvest test, whose evidence is of searches; the swarm rule's holds).
        `together`: the blocks held with `hold` on the same evidence (blocks taking turns).
        """
        now, window = (event.ts - EPOCH).total_seconds(), self.policy.window_seconds
        live = {k: severity for k, (severity, at) in state.fired.items() if now - at <= window}
        slot = apart or alone or kind
        others = [] if apart or alone else sorted(k for k in live if k != kind and k in _KINDS)
        turns = self._held_before(state, hold, now, together)
        action = (
            Action.FLAG
            if apart
            else self.policy.action(
                kind,
                strong=strong or bool(turns),
                corroborated=bool(others),
                holds=hold is not None,
            )
        )
        # A block rule's throttle holds its block: each block of a scan taking turns between
        # several is held at its own evidence (holding only the first, two blocks at once
        # gave up 6 % of the other before a suspension).
        held = hold if action is Action.THROTTLE else None  # suspended, it needs no hold
        if held is not None and held in state.held:
            return None  # held already (over a week ago, when the rule's own firing is gone)
        # A throttle holding a block not held yet is new, at the severity reached or not.
        if SEVERITY[action] <= live.get(slot, 0) and not (
            held is not None and live[slot] == SEVERITY[action]
        ):
            return None
        state.fired[slot] = (SEVERITY[action], now)
        evidence = evidence_of()
        if others and not strong:
            evidence = {**evidence, "corroborated_by": others}
        if turns:
            evidence = {**evidence, "held_before": turns}
        if held is not None:
            state.held[held] = now
            evidence = {**evidence, "hold": held.label}
        return Finding(
            account=event.account,
            kind=kind,
            action=action,
            ts=event.ts,
            events_seen=self._events_seen.get(event.account, 0),
            evidence=evidence,
        )

    def _held_before(
        self, state: AccountState, hold: Hold | None, now: float, together: frozenset[Hold]
    ) -> list[str]:
        """The other blocks held for the account within `hold_turns_seconds` of a new hold
        (a scan taking turns between blocks, which holding one block at a time let take
        over 1 % of a third: 4 of 29 three-block scans), or all of them once they were held
        at `hold_limit` moments within the window (a scan pausing between blocks; holds
        of one moment count once, as blocks held together do). Blocks held `together` with
        it at this lookup are one hold, not one before it; a block held already is no new
        hold (a scan going on into it meets the count's `held_block_suspend`)."""
        if hold is None or hold in state.held:
            return []
        policy = self.policy
        others = {
            block: at
            for block, at in state.held.items()
            # (`together` names only blocks not held before this lookup.)
            if block != hold and now - at <= policy.window_seconds and block not in together
        }
        turns = [block for block, at in others.items() if now - at <= policy.hold_turns_seconds]
        # Counted by moment: blocks taking turns, held together, were one scan's one hold.
        chosen = others if len(set(others.values())) >= policy.hold_limit else turns
        return sorted(Hold(*block).label for block in chosen)

    def _expire(self, state: AccountState, now: float) -> None:
        window = self.policy.window_seconds
        while state.recent and now - state.recent[0].t > window:
            old = state.recent.popleft()
            for size in self.policy.block_sizes:
                key = (size, old.number // size)
                block = state.blocks.get(key)
                if block is not None and block.members.get(old.number) is old:
                    block.remove(old)
                    # At once: an hourly sweep of every block cost more than the lookups.
                    if not block.members:
                        del state.blocks[key]

    def _forget(self, state: AccountState, now: float) -> None:
        if now < state.forget_at:
            return
        known, horizon = state.known, now - self.policy.known_seconds
        while known:
            number, last = next(iter(known.items()))
            if last >= horizon:
                state.forget_at = last + self.policy.known_seconds
                return
            del known[number]
            state.ledger.leave(number)
        state.forget_at = 0.0  # nothing left: the next number sets it

    def remember_search(self, event: LookupEvent) -> None:
        """Count a name search in its account's windows without judging it (a warm
        restart's, from before compliance last cleared the account: part of its measure,
        no evidence; `restart_searches` then empties the windows, as the clearance did)."""
        searches = _searches(self._accounts.setdefault(event.account, AccountState()))
        searches.add(_search(event), self.policy.search_baseline_lag_seconds)

    def restart_searches(self, account: str) -> None:
        """Empty an account's search windows, its measure kept (see `remember_search`)."""
        state = self._accounts.get(account)
        if state is not None and state.searches is not None:
            state.searches.restart()

    def _searched(self, state: AccountState, event: LookupEvent) -> list[Finding]:
        """The search-harvest test's findings on a name search."""
        verdicts = self._harvest.check(
            _searches(state), _search(event), self.search_scales(event.account)
        )
        return self._judged(state, event, verdicts)

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
        """Findings for the accounts an address's block scan names (only when the rule's
        suspension criteria hold)."""
        named = self._addresses.observe(lookup)
        return self._name(event, named, strong=True) if named else []

    def _swarmed(self, event: LookupEvent, lookup: Lookup) -> list[Finding]:
        """Holds of the lookup's block for the new accounts a swarm of it names."""
        named = self._swarms.observe(lookup)
        if not named:  # on every new number: nothing built for it
            return []
        return self._name(event, named, strong=False, hold=Hold.of(lookup.number), alone=SWARM)

    def _name(
        self,
        event: LookupEvent,
        named: Iterable[tuple[str, Callable[[], dict[str, Any]]]],
        *,
        strong: bool,
        hold: Hold | None = None,
        alone: str | None = None,
    ) -> list[Finding]:
        """`distributed_scan` findings of the accounts a rule across accounts named at
        another's lookup, each with its evidence (`alone`: see `_escalate`)."""
        findings = []
        for account, evidence in named:
            finding = self._escalate(
                self._accounts.setdefault(account, AccountState()),
                event
                if account == event.account
                else msgspec.structs.replace(event, account=account),
                Kind.DISTRIBUTED_SCAN,
                strong,
                evidence,
                alone=alone,
                hold=hold,
            )
            if finding is not None:
                findings.append(finding)
        return findings

    def _has(self, account: str) -> int:
        """How many numbers an account has (looked up within `known_seconds`, a restart's
        remembered ones too; a clearance keeps them)."""
        state = self._accounts.get(account)
        return len(state.known) if state is not None else 0

    def _suspended(self, account: str, now: float) -> bool:
        """Whether a finding suspended the account within the window before `now`."""
        state = self._accounts.get(account)
        if state is None:
            return False
        window, suspend = self.policy.window_seconds, SEVERITY[Action.SUSPEND]
        return any(s >= suspend and now - at <= window for s, at in state.fired.values())

    def _knew(self, account: str, key: tuple[int, int], burst: float) -> bool:
        """Whether the account's own lookups show it knew the block before the burst."""
        state = self._accounts.get(account)
        own = state.blocks.get(key) if state is not None else None
        return own is not None and self._fast.known(own, burst)
