"""The live side of abuse detection: events in, findings stored, accounts acted on.

`AbuseMonitor.process()` drains the request path's event buffer, runs the same
`Engine` that `lookup abuse replay` runs, records findings in cases, enforces
their actions and writes the lookup log. It runs off the request path, every
`LOOKUP_EVENT_FLUSH_SECONDS`; the monitor process gathers the lookups of
`LOOKUP_LOG_COMMIT_SECONDS` into one write of the log (`AbuseMonitor.unlogged`).
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from operator import attrgetter
from typing import Final

from lookup.abuse.audit import STATUS_AFTER, Decision, status_reason
from lookup.abuse.cases import OpenHold
from lookup.abuse.detectors import Engine, Finding
from lookup.abuse.events import EPOCH, EventBuffer, LookupEvent, utc_now
from lookup.abuse.harvest import WINDOWS, Scales
from lookup.abuse.holds import Hold, hold_in, swarm_in
from lookup.abuse.lookuplog import CLOCK_MARGIN
from lookup.abuse.plans import DEFAULT_SEARCH_PLAN, PlanError, plan_scales
from lookup.abuse.policy import Action
from lookup.abuse.retention import AccountTerms, plan_sweep
from lookup.abuse.store import ComplianceStore, Erasure, Swept
from lookup.abuse.stream import Mark
from lookup.abuse.washing import Clearance, Washing
from lookup.errors import KeyStoreError
from lookup.keyring import KeyRing
from lookup.metrics import BATCH_SECONDS, EVENT_LAG, EVENTS_HANDLED, FINDINGS
from lookup.networks import Network

log = logging.getLogger(__name__)
UNWRITTEN_MAX: Final = 100_000
"""Lookups kept for a lookup log that keeps failing to be written, at most (as a server keeps
for a monitor that is down)."""
OPENING_RETRY_SECONDS: Final = 60.0
"""How long the monitor waits to record first lookups again after the key store refused
them: each try may wait out SQLite's busy timeout (10 s) on a locked store."""
GATHER_MAX: Final = 20_000
"""Lookups the monitor holds unwritten at most, whatever `commit_seconds` says: a server
keeps 100,000 unacknowledged ones, and one write of 20,000 already costs its rows
alone."""


def _reason(case_id: int | None, kind: str, action: str) -> str:
    """The status reason an automatic action leaves on the account."""
    if case_id is None:
        return f"{kind} ({action}); its case could not be recorded"
    return f"case {case_id}: {kind} ({action})"


class AbuseMonitor:
    """Consumes lookup events: log, detect, record, enforce."""

    def __init__(
        self,
        buffer: EventBuffer,
        store: ComplianceStore,
        key_ring: KeyRing,
        *,
        engine: Engine | None = None,
        allow: tuple[Network, ...] = (),
        detect: bool = True,
        commit_seconds: float = 0.0,
        search_plan: str | None = None,
    ) -> None:
        self.buffer = buffer
        self.store = store
        self.key_ring = key_ring
        self.engine = engine or Engine()
        if search_plan is not None:
            # The search-harvest floors move with an account's own search plan: compliance
            # gave it to a desk that reads more. `LOOKUP_PLAN_SEARCH` (`search_plan`) is a
            # limit for everyone, and a generous one must not silence the test.
            self.engine.search_scales = partial(self._search_scales, search_plan)
        self.allow = allow
        self.detect = detect
        self._lock = threading.Lock()
        self._reviewed: set[str] = set()
        """Accounts whose last findings were only flags, as they were on `review`."""
        self.commit_seconds = commit_seconds
        """How long handled lookups may wait to be written to the lookup log together
        (0: with each batch). Each write is a transaction of the compliance file, whose
        fixed cost (milliseconds) outweighed the rows of a tenth of a second's batch."""
        self._gathered: list[LookupEvent] = []
        self._gathered_mark: Mark | None = None
        self._gathered_since = 0.0
        self._opened: dict[str, datetime] = {}
        """Accounts' first lookups as the key store has them."""
        self._opening: dict[str, datetime] = {}
        """First lookups not recorded in the key store yet (its write failed)."""
        self._opening_retry = 0.0
        """When to try recording them again (`time.monotonic`)."""

    def _allowed(self, ip: str) -> bool:
        if not self.allow:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    @property
    def unlogged(self) -> int:
        """Lookups handled but not yet written to the lookup log (nor acknowledged: their
        sender keeps them until then)."""
        return len(self._gathered)

    def write_log(self, *, due: bool = False) -> int:
        """Write the gathered lookups to the lookup log now (`due`: only once they have
        waited `commit_seconds`); how many went."""
        with self._lock:
            count = len(self._gathered)
            if not count or (due and not self._due()):
                return 0
            self._write([], [])
            return count

    def _due(self) -> bool:
        """Whether the gathered lookups have waited `commit_seconds`."""
        return time.monotonic() - self._gathered_since >= self.commit_seconds

    def _write(self, findings: list[Finding], enforced: list[bool]) -> list[int]:
        """Commit the gathered lookups with a batch's findings; the findings' case ids."""
        case_ids = self.store.commit(self._gathered, findings, enforced, self._gathered_mark)
        EVENTS_HANDLED.inc(len(self._gathered))
        self._gathered, self._gathered_mark = [], None
        return case_ids

    def _write_gathered(self) -> None:
        """Write what is gathered before evidence is reset (unwritten, a crash would have the
        server send it again to the restarted monitor, which would count it afresh) or a
        number erased (its lookups among them are erased with the rest)."""
        if self._gathered:
            self._write([], [])

    def process(self, mark: Mark | None = None) -> list[Finding]:
        """Handle every queued event; returns the new findings. `mark`: where they end in
        their channel, committed when they are written."""
        with self._lock:  # one consumer at a time: the engine's state is not shared
            return self._handle(self.buffer.drain(), mark)

    def _handle(self, events: list[LookupEvent], mark: Mark | None) -> list[Finding]:
        """Log and judge a batch of events (the lock held)."""
        if not events:
            return []
        started = time.perf_counter()
        self._restart_reviewed()
        # Several workers' batches reach the stream one after another, not in request
        # order; the detectors read time from the events, in order.
        events.sort(key=attrgetter("ts"))
        findings = (
            [
                finding
                for event in events
                if not self._allowed(event.ip)
                for finding in self._observe(event)
            ]
            if self.detect
            else []
        )
        # Whether each finding is to be acted on, as the account's policy stood when it
        # was found: a restart carries out only those (`resume`).
        enforced = [self.key_ring.account(f.account).enforcement != "review" for f in findings]
        for finding, act in zip(findings, enforced, strict=True):
            (self._reviewed.discard if act else self._reviewed.add)(finding.account)
            if not act and (hold := hold_in(finding.evidence)) is not None:
                self.engine.answered(finding.account, hold)
        self._open(events)
        if not self._gathered:
            self._gathered_since = time.monotonic()
        self._gathered.extend(events)
        self._gathered_mark = mark or self._gathered_mark
        case_ids: list[int] = []
        try:
            # The batch's lookups and its findings land together or not at all, with
            # every lookup gathered before them (a case's timeline reads them).
            if findings or len(self._gathered) >= GATHER_MAX or self._due():
                case_ids = self._write(findings, enforced)
        except Exception:
            # The engine has moved on and will not find them again: act on them
            # without a case before the failure stops this batch.
            for finding in findings:
                self._enforce(
                    finding.account,
                    finding.action,
                    _reason(None, finding.kind, finding.action),
                    hold=hold_in(finding.evidence),
                )
                self._swarm(finding)
            # Kept for the next write; a process that goes on failing (one that serves
            # too: the monitor process stops on it) gives up the oldest, counted.
            if len(self._gathered) > UNWRITTEN_MAX:
                self.buffer.drop(len(self._gathered) - UNWRITTEN_MAX)
                del self._gathered[: len(self._gathered) - UNWRITTEN_MAX]
            raise
        for finding, case_id in zip(findings, case_ids, strict=True):
            self._enforce(
                finding.account,
                finding.action,
                _reason(case_id, finding.kind, finding.action),
                hold=hold_in(finding.evidence),
            )
            self._swarm(finding)
            FINDINGS.labels(finding.kind, finding.action).inc()
        EVENT_LAG.set((utc_now() - events[0].ts).total_seconds())
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return findings

    def _restart_reviewed(self) -> None:
        """Rearm the rules of accounts put back on `auto` since findings only flagged them:
        a rule that fired does not fire again within its window, so a scan by an account
        taken off `review` would never be acted on. The evidence they fired on goes (it
        was judged on review); its history stays (`Engine.rearm`)."""
        for name in sorted(self._reviewed):
            try:
                back = self.key_ring.account(name).enforcement != "review"
            except KeyStoreError:  # an account deleted meanwhile
                back = True
            if back:
                self._reviewed.discard(name)
                self._write_gathered()
                self.engine.rearm(name)
                log.info("%s is back on automatic enforcement: its rules may fire again", name)

    def _observe(self, event: LookupEvent) -> list[Finding]:
        try:
            return self.engine.observe(event)
        except Exception:
            # A fault in a detector costs this event's findings, not the batch's others
            # (already counted as raised) nor the lookup log's rows.
            log.exception("the detectors failed on a lookup by %s", event.account)
            return []

    def warm(self, now: datetime) -> int:
        """Rebuild the detectors' memory from the lookup log; how many lookups it replayed.

        A restarted monitor would otherwise start empty: a scan under way would
        begin again from nothing, and a customer's next refresh would be new
        numbers. The last window's lookups are replayed; before it, only which
        numbers each account has (one row per number). An account's lookups from
        before compliance last cleared or reinstated it are not evidence again,
        as `forget` dropped them; its numbers stay known, as `forget` keeps them,
        and so does the list-washing bar its cleared cases raised.
        The replay's findings are dropped: each batch's were recorded with it. What
        open cases asked for and their accounts do not show is carried out (`resume`).
        """
        if not self.detect:
            return 0
        policy = self.engine.policy
        since = now - timedelta(seconds=policy.window_seconds)
        fresh = self.store.decisions.fresh_starts()

        # Searches from before an account's fresh start are its measure, not evidence: they
        # are counted, and its windows start afresh before its first event after it.
        restarting: set[str] = set()

        def observe_quietly(event: LookupEvent) -> None:
            if self._allowed(event.ip):
                return
            start = fresh.get(event.account)
            if start is None or event.ts > start:
                if event.account in restarting:
                    restarting.discard(event.account)
                    self.engine.restart_searches(event.account)
                self._observe(event)
            elif event.looked_up() is not None:
                self.engine.remember(event.account, event.number, event.ts)
            elif event.endpoint == "search":
                self.engine.remember_search(event)
                restarting.add(event.account)

        with self._lock:
            # Lookups made before an erasure may still arrive (sent again to this monitor).
            for number, erased_at, hold in self.store.log.late_erasures():
                self.engine.erase(number, erased_at + CLOCK_MARGIN, hold)
            # Before the numbers: a reset keeps the numbers an account has, not its ledger.
            for account, cleared in self._clearances(now).items():
                self.engine.reset(account, washing_cleared=cleared)
            # A number an account had when compliance cleared it, and has had since, is not
            # evidence (the ledger's), as the live monitor counted it.
            had = self.store.log.had_at(fresh, policy.known_seconds, since)
            # From the known days before the window's first lookup: what it had then.
            for account, number, last, outcome in self.store.log.last_lookups(
                since - timedelta(seconds=policy.known_seconds), since
            ):
                counted = None if (account, number) in had else outcome
                self.engine.remember(account, number, last, counted)
            replayed = self.store.log.replay(since, observe_quietly)
            for account in restarting:
                self.engine.restart_searches(account)
            # The replay starts in the middle of the evidence of some findings (a washing
            # flag's days, a scan's first numbers): their rules must still know they fired.
            for (
                account,
                kind,
                action,
                ts,
                pattern,
                enforced,
                held,
            ) in self.store.cases.findings_since(since):
                start = fresh.get(account)
                if start is None or ts > start:
                    self.engine.recall(account, kind, action, ts, pattern, held, enforced)
                    (self._reviewed.discard if enforced else self._reviewed.add)(account)
            # A hold stands until compliance closes its case, however long ago it was found.
            holds = self.store.cases.open_holds()
            for _, account, _, _, block, ts in holds:
                start = fresh.get(account)
                if start is None or ts > start:
                    self.engine.recall_hold(account, block, ts)
            self.resume(holds)
            return replayed

    def sweep(self, now: datetime, default_months: int) -> Swept:
        """Delete the lookups the retention terms say are due, and their numbers from the
        findings of the same time."""
        terms = [
            AccountTerms(account.name, account.retention_months, account.ended_at)
            for account in self.key_ring.accounts()
        ]
        return self.store.sweep(plan_sweep(now, default_months, terms))

    def forget(self, account: str, status: tuple[str, str] | None = None) -> None:
        """Reset the detectors' evidence on an account after compliance cleared it (the
        decision recorded, its case closed) and give it `status` (status, reason) in the
        same step: a batch between the two would act on the evidence just cleared, or
        hold a block that the new status then releases."""
        cleared = self._clearances(utc_now(), account).get(account)
        with self._lock:
            self._write_gathered()
            self.engine.reset(account, washing_cleared=cleared)
            if status is not None:
                self.key_ring.set_status(account, *status)

    def erase(self, number: str, actor: str, reason: str) -> Erasure:
        """A data subject's erasure request (`ComplianceStore.erase`); the detectors quote
        the number as erased from then on. Under the lock: no finding raised meanwhile
        reaches the file quoting it."""
        with self._lock:
            self._write_gathered()
            erasure = self.store.erase(number, actor, reason)
            self.engine.erase(number, erasure.at + CLOCK_MARGIN, erasure.hold)
        return erasure

    def _clearances(self, now: datetime, account: str | None = None) -> dict[str, Clearance]:
        """Per account (or for one), what its last clearance of list-washing flags within
        `washing_cleared_days` of `now` allows the rule."""
        washing = Washing(self.engine.policy)
        since = now - timedelta(days=self.engine.policy.washing_cleared_days)
        clearances = {}
        for name, (at, flags) in self.store.decisions.cleared_washing(since, account).items():
            clearance = washing.clearance(flags, (at - EPOCH).total_seconds())
            if clearance is not None:
                clearances[name] = clearance
        return clearances

    def submit(
        self, events: list[LookupEvent], mark: tuple[str, str] | None = None
    ) -> list[Finding]:
        """Queue events and process them, with whatever was queued before; their findings.

        Under the lock from queueing on: a periodic flush in between would handle them, and
        this call answer that they raised none."""
        with self._lock:
            for event in events:
                self.buffer.emit(event)
            return self._handle(self.buffer.drain(), mark)

    def resume(self, holds: list[OpenHold] | None = None) -> int:
        """Carry out what open cases' findings, and compliance's last decisions, asked for
        and the account does not show yet; how many accounts it changed.

        The findings are recorded before their action is taken, in another store:
        a monitor that died between the two left a case whose account was never
        paused. Only compliance's clear and reinstate set an account active again,
        and both close the case, so an open case's action still stands; findings
        recorded while the account was on `review` were never to be acted on.
        `holds`: the open cases' holds, when the caller has just read them.
        """
        changed = {
            account
            for case_id, account, kind, action in self.store.cases.open_actions()
            if self._enforce(account, action, _reason(case_id, kind, action), again=True)
        }
        changed.update(
            account
            for case_id, account, kind, action, block, _ in (
                self.store.cases.open_holds() if holds is None else holds
            )
            if self._enforce(
                account,
                action,
                _reason(case_id, kind, action),
                hold=Hold.parse(block),
                again=True,
            )
        )
        return len(changed) + sum(map(self._settle, self.store.decisions.pending()))

    def _settle(self, decision: Decision) -> bool:
        """Give the account the status a decision set that the key store was never given
        (a server died between recording it and telling the key store); whether the
        account's status changed.

        Only the last decision on the account's newest case: a finding since then opened
        a new case, or acted through `open_actions` within the same one, first.
        """
        status = STATUS_AFTER[decision.decision]
        name, reason = decision.account, status_reason(decision)
        changed = False
        try:
            if status is not None and self.key_ring.account(name).status != status:
                self.key_ring.set_status(name, status, reason)
                log.warning("carried out on %s what compliance decided: %s", name, reason)
                changed = True
        except KeyStoreError as exc:  # an account deleted meanwhile
            log.error("cannot carry out %s on %s: %s", decision.decision, name, exc)
            return False
        self.store.decisions.carried_out(decision.id)
        return changed

    def _search_scales(self, default: str, account: str) -> Scales | None:
        """How many times its default the account's own search plan allows, by window: the
        default being `LOOKUP_PLAN_SEARCH`, or the one the floors were set for when that
        allows more (None: it has none, or one that cannot be used, which the default
        stands in for, as it does in the limits)."""
        own = self.key_ring.account(account).search_plan
        try:
            return (
                None
                if own is None
                else plan_scales(
                    own,
                    (default, DEFAULT_SEARCH_PLAN),
                    WINDOWS,
                    self.engine.policy.search_plan_scale_most,
                )
            )
        except PlanError:
            return None

    def _open(self, events: list[LookupEvent]) -> None:
        """Record in the key store the first lookup of each account that had none (a
        swarmed block is refused to accounts first used after it began, less a week)."""
        opened, opening = self._opened, self._opening
        for event in events:
            name, at = event.account, event.ts
            known = opened.get(name)
            if known is None and (known := self.key_ring.account(name).opened) is not None:
                opened[name] = known
            if known is not None and at >= known:
                continue  # all but an account's first (or one another worker sent late)
            pending = opening.get(name)
            if pending is None or at < pending:
                opening[name] = at
        if opening and time.monotonic() >= self._opening_retry:
            self._record_opening()

    def _record_opening(self) -> None:
        try:
            self.key_ring.opened(self._opening)
        except (KeyStoreError, sqlite3.Error) as exc:  # a locked or full key store: a later
            # batch tries again, with these times
            self._opening_retry = time.monotonic() + OPENING_RETRY_SECONDS
            log.error(
                "cannot record %d accounts' first lookups (again in %.0f s): %s",
                len(self._opening),
                OPENING_RETRY_SECONDS,
                exc,
            )
            return
        for name, first in self._opening.items():
            known = self._opened.get(name)
            self._opened[name] = first if known is None else min(known, first)
        self._opening = {}

    def record_openings(self) -> int:
        """Give the key store the first logged lookup of each account it has none for (one
        that looked up before the store kept them); how many it had none for."""
        unopened = [account.name for account in self.key_ring.accounts() if account.opened is None]
        firsts = self.store.log.first_lookups(unopened) if unopened else {}
        if firsts:
            with self._lock:
                for name, first in firsts.items():
                    self._opening[name] = min(first, self._opening.get(name, first))
                self._record_opening()
        return len(firsts)

    def _swarm(self, finding: Finding) -> None:
        """Refuse the block a swarm finding names to new accounts (a block's matter, not
        the account's: whatever its policy), after its case is written."""
        swarm = swarm_in(finding.evidence)
        if swarm is None:
            return
        try:
            if self.key_ring.swarm(swarm):
                log.warning(
                    "refusing %s to accounts first used after %s, or not yet, until %s: a "
                    "swarm of new accounts",
                    swarm.hold.label,
                    f"{swarm.opened_after:%Y-%m-%d %H:%M} UTC",
                    f"{swarm.until:%Y-%m-%d %H:%M} UTC",
                )
        except (KeyStoreError, sqlite3.Error) as exc:  # a locked or full key store: the
            # findings stand, and the swarm's next finding tries again
            log.error("cannot refuse %s to new accounts: %s", swarm.hold.label, exc)

    def _enforce(
        self, name: str, action: str, reason: str, *, hold: Hold | None = None, again: bool = False
    ) -> bool:
        """Take a finding's action on the account, unless it already stands; whether the
        account's status or held blocks changed. `hold`: the block the finding holds.
        `again`: a recorded finding a restart carries out, said only when it changes
        something (not as a new flag)."""
        try:
            account = self.key_ring.account(name)
            if account.enforcement == "review":
                # The account's policy: compliance decides every action by hand.
                if not again:
                    log.warning("flagged %s for review (no automatic action): %s", name, reason)
                return False
            held = False
            if hold is not None and self.key_ring.hold(name, hold):
                held = True
                log.warning("held %s for %s pending review: %s", hold.label, name, reason)
            if action == Action.SUSPEND and account.status != "suspended":
                self.key_ring.set_status(name, "suspended", reason)
                log.warning("suspended %s pending review: %s", name, reason)
                return True
            if action == Action.THROTTLE and account.status == "active":
                self.key_ring.set_status(name, "throttled", reason)
                log.warning("throttled %s: %s", name, reason)
                return True
            if not again and not held:
                # Recorded on its case; the action already stands (a suspended account's
                # later findings), or it is a flag.
                standing = "" if action == Action.FLAG else f" (already {account.status})"
                log.info("flagged %s: %s%s", name, reason, standing)
            return held
        except KeyStoreError as exc:  # an account deleted meanwhile: the case still stands
            log.error("cannot act on %s: %s", name, exc)
        return False
