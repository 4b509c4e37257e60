"""Blocks split between new accounts on addresses of their own (`distributed_scan`). Pure.

An account issued to take a few numbers of one block, from an address of its own,
shows nothing by itself: three numbers are a new customer's first callers, and no
address is shared with another account (accounts sharing one are the address rule's,
`crossaccount`). Many such accounts in one block are a scan split between them:
customers' first numbers spread over the plan. So, per allocation block, the rule
keeps the accounts that have no numbers but a few (at most `swarm_small`, of the
numbers they looked up within `known_seconds`, a restart's remembered ones
included), at most `swarm_tiny` of them in the block, the first within
`swarm_seconds` (numbers elsewhere do not hide one: a decoy or two before its share
of the block took the block whole when they did). Once such accounts on
`swarm_accounts` different addresses hold `swarm_numbers` distinct numbers of it,
a fifth or more of them misses, the block is swarmed: each of them has it held, and
so does each account like them that comes to it while it stays swarmed. The engine
turns what this names into findings, which stand apart from the other rules' (a
hold, no corroboration either way). Their evidence names whom the API refuses the
block meanwhile (`swarmed`: accounts opened, by their first lookup or search, within
`swarm_young_seconds` before it was found or since, refused from their first lookup
there): an account issued for the scan would otherwise take its first number before
its hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lookup.abuse.policy import Policy, allocation_size
from lookup.abuse.state import EVIDENCE_NUMBERS, Lookup, block_label, trail

SWARM = "swarm"
"""The rule's `rule.pattern` in evidence."""
Seen = Callable[[str], int]
"""How many numbers an account has (looked up within `known_seconds`)."""


@dataclass(slots=True)
class Swarm:
    """One allocation block's new accounts."""

    members: dict[str, list[Lookup]] = field(default_factory=dict)
    """Per account whose every new number lay in the block: those lookups, oldest first."""
    swarmed: Lookup | None = None
    """The lookup at which it was found swarmed."""

    def swarmed_within(self, now: float, window: float) -> bool:
        """Whether it was found swarmed within the window before `now`."""
        return self.swarmed is not None and now - self.swarmed.t <= window


class Swarms:
    """The per-block state of the swarm rule."""

    def __init__(self, policy: Policy, seen: Seen) -> None:
        self.policy = policy
        self._seen = seen
        self._blocks: dict[tuple[int, int], Swarm] = {}
        self._cleared: set[str] = set()
        """Accounts compliance cleared or reinstated: customers it knows, however few
        their numbers (dropped once they have more)."""

    def observe(self, lookup: Lookup) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        """Count an account's new number; the accounts to hold its block for, with the
        evidence (all the swarm's when it is found, the newcomer's after)."""
        policy, account = self.policy, lookup.account
        if account in self._cleared or self._seen(account) > policy.swarm_small:
            return []  # a customer with numbers of its own, no account issued for a block
        size = allocation_size(lookup.number)
        key = (size, lookup.number // size)
        swarm = self._blocks.get(key)
        if swarm is None:
            swarm = self._blocks[key] = Swarm()
        swarm.members.setdefault(account, []).append(lookup)
        members = self._members(swarm, lookup.t)
        if account not in members:
            return []
        if swarm.swarmed_within(lookup.t, policy.swarm_seconds):
            return [(account, self._evidence(key, swarm, members))]
        # Distinct numbers and addresses: a SaaS integrator's customers trying its two test
        # numbers from its one address are no scan of the block.
        numbers = {item.number: item for items in members.values() for item in items}
        addresses = {item.ip for items in members.values() for item in items}
        misses = sum(item.outcome == "miss" for item in numbers.values())
        if (
            min(len(members), len(addresses)) < policy.swarm_accounts
            or len(numbers) < policy.swarm_numbers
            or misses < policy.swarm_misses * len(numbers)
        ):
            return []
        swarm.swarmed = lookup
        evidence = self._evidence(key, swarm, members)
        return [(name, evidence) for name in sorted(members)]

    def _members(self, swarm: Swarm, now: float) -> dict[str, list[Lookup]]:
        """The block's accounts that are still new ones with a few of its numbers, their
        first within the window."""
        policy, window = self.policy, self.policy.swarm_seconds
        return {
            name: items
            for name, items in swarm.members.items()
            if now - items[0].t <= window
            and len(items) <= policy.swarm_tiny
            and self._seen(name) <= policy.swarm_small
        }

    def _evidence(
        self, key: tuple[int, int], swarm: Swarm, members: dict[str, list[Lookup]]
    ) -> Callable[[], dict[str, Any]]:
        """The finding's figures, the block, its accounts, their addresses and lookups."""
        policy = self.policy
        lookups = sorted((item for items in members.values() for item in items), key=_time)
        # Counted as the rule counts them: a number two accounts looked up is one number.
        numbers = {item.number: item for item in lookups}
        swarmed = swarm.swarmed

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "pattern": SWARM,
                    "accounts": len(members),
                    "addresses": len({item.ip for item in lookups}),
                    "accounts_at_least": policy.swarm_accounts,
                    "numbers": len(numbers),
                    "numbers_at_least": policy.swarm_numbers,
                    "misses": sum(item.outcome == "miss" for item in numbers.values()),
                    "each_account_numbers_at_most": policy.swarm_tiny,
                    "each_account_all_numbers_at_most": policy.swarm_small,
                    "window_seconds": round(policy.swarm_seconds),
                    "swarmed_at": swarmed.ts.isoformat() if swarmed is not None else None,
                },
                "block": block_label(*reversed(key)),
                "swarmed": _refused(policy, swarmed),
                "accounts": sorted(members)[:EVIDENCE_NUMBERS],
                "ips": sorted({item.ip for item in lookups})[:EVIDENCE_NUMBERS],
                "lookups": trail(lookups),
            }

        return evidence

    def forget(self, account: str) -> None:
        """Forget an account's part in its block, and take it for a customer from now on
        (compliance cleared or reinstated it)."""
        self._cleared.add(account)
        for swarm in self._blocks.values():
            swarm.members.pop(account, None)

    def lookups(self, number: int) -> Iterator[Lookup]:
        """The lookups of a number the blocks remember."""
        size = allocation_size(number)
        swarm = self._blocks.get((size, number // size))
        if swarm is not None:
            for items in swarm.members.values():
                yield from (item for item in items if item.number == number)

    def prune(self, now: float) -> None:
        """Drop the blocks and accounts that fell out of the window."""
        window = self.policy.swarm_seconds
        self._cleared = {
            name for name in self._cleared if self._seen(name) <= self.policy.swarm_small
        }
        for key, swarm in list(self._blocks.items()):
            swarm.members = {
                name: items
                for name, items in swarm.members.items()
                if now - items[0].t <= window and self._seen(name) <= self.policy.swarm_small
            }
            if not swarm.members and not swarm.swarmed_within(now, window):
                del self._blocks[key]


def _refused(policy: Policy, swarmed: Lookup | None) -> dict[str, str] | None:
    """Whom the API refuses the swarmed block, and until when (`holds.Swarmed`)."""
    if swarmed is None:
        return None
    return {
        "accounts_opened_after": (
            swarmed.ts - timedelta(seconds=policy.swarm_young_seconds)
        ).isoformat(),
        "until": (swarmed.ts + timedelta(seconds=policy.swarm_seconds)).isoformat(),
    }


def _time(item: Lookup) -> float:
    return item.t
