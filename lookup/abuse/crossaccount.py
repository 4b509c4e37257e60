"""Blocks scanned by several accounts from one IP address (`distributed_scan`). Pure.

Each address keeps, per block, the distinct numbers looked up from it and by
which accounts. Counts are kept as lookups come and go (pruned hourly), so
each event costs the same however busy the address is. The engine turns what
this names into findings of each account.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Iterator
from functools import partial
from typing import Any

from lookup.abuse.fastrule import FastRule
from lookup.abuse.policy import Policy
from lookup.abuse.state import Block, IpState, Lookup, block_label, trail

Named = tuple[str, Callable[[], dict[str, Any]]]
"""An account an address's scan names (its suspension criteria held), and its evidence."""
KnewBlock = Callable[[str, tuple[int, int], float], bool]
"""Whether an account's own lookups show it knew a block (size, start) before a time."""
Stopped = Callable[[str, float], bool]
"""Whether a finding suspended an account within the window before a time."""


class AddressScans:
    """The per-address state of the cross-account rule."""

    def __init__(self, policy: Policy, fast: FastRule, knew: KnewBlock, stopped: Stopped) -> None:
        self.policy = policy
        self._fast = fast
        self._knew = knew
        self._stopped = stopped
        self._ips: dict[str, IpState] = {}
        self._gap = policy.distributed_gap_seconds

    def observe(self, lookup: Lookup) -> list[Named]:
        """Count a new number of an account at its address; the accounts a scan names."""
        policy = self.policy
        ip_state = self._ips.get(lookup.ip)
        if ip_state is None:  # not `setdefault`, which built one for every lookup
            ip_state = self._ips[lookup.ip] = IpState()
        ip_state.accounts[lookup.account] = lookup.t
        if len(ip_state.accounts) < policy.distributed_min_accounts:
            # One account behind the address: its own blocks already cover it.
            ip_state.lone.append(lookup)
            return []
        while ip_state.lone:
            earlier = ip_state.lone.popleft()
            if lookup.t - earlier.t <= policy.window_seconds:
                ip_state.recent.append(earlier)
                for size in policy.block_sizes:
                    self._into_block(ip_state, size, earlier)
        ip_state.recent.append(lookup)
        named: list[Named] = []
        for size, count_at in zip(policy.block_sizes, policy.block_suspend, strict=True):
            block_start = lookup.number // size
            block = self._into_block(ip_state, size, lookup)
            if block is None:
                continue
            if len(block.counts("account")) < policy.distributed_min_accounts:
                continue
            # A geographic block's 1 % is a handful of listings: a fast scan from one address
            # is stopped at the fast rule's count, as a small account's would be (the excess
            # of chance rounds up to one), naming the accounts with two of its numbers.
            fast = self._fast_named(block, (size, block_start), lookup.t)
            if fast is not None:
                suspend_at, accounts = fast
            else:
                suspend_at, accounts = count_at, self._named(block, lookup.t)
                if len(accounts) < policy.distributed_min_accounts:
                    continue
                if len(block.members) < suspend_at:
                    continue
            strong = fast is not None or (
                block.misses / len(block.members) >= policy.block_suspend_miss_share
                and block.span(suspend_at) <= policy.block_suspend_burst_seconds
            )
            if not strong:
                # Its suspension criteria only: short of them, it would flag an integrator's
                # customers whose callers share a town's block (each account's own rules
                # flag what they see of a scan).
                continue
            counts = block.counts("account")
            pending = [
                account
                for account in accounts
                if (marker := (size, block_start, account)) not in ip_state.fired
                # Judged apart with as many numbers: nothing of it is new since.
                and ip_state.apart.get(marker) != counts[account]
            ]
            if not pending:
                continue  # each named once per block and account
            # An account whose lookups of the block all came before the scan began is not
            # in it: a customer behind a SaaS integrator's address whose callers were in the
            # block before another account scanned it (or a relay's earlier stretch, which
            # its account's next lookups there join to the rest).
            before = came_before(block.members.values(), accounts, self._gap)
            for account in pending:
                marker = (size, block_start, account)
                if account in before:
                    ip_state.apart[marker] = counts[account]
                    continue
                ip_state.fired.add(marker)
                evidence = partial(
                    _evidence, block, lookup.ip, size, block_start, account, suspend_at
                )
                named.append((account, evidence))
        return named

    def forget(self, account: str) -> None:
        """Forget an account's part in its addresses' blocks, and that it was named
        (compliance cleared or reinstated it): another account's next lookups there must
        not name it again for what it did before."""
        for ip_state in self._ips.values():
            ip_state.fired = {marker for marker in ip_state.fired if marker[2] != account}
            ip_state.apart = {
                marker: count for marker, count in ip_state.apart.items() if marker[2] != account
            }
            ip_state.accounts.pop(account, None)
            ip_state.lone = deque(
                (item for item in ip_state.lone if item.account != account),
                maxlen=ip_state.lone.maxlen,
            )
            lost = self._remove(ip_state, account)
            if lost or any(item.account == account for item in ip_state.recent):
                self._replace(ip_state, account, lost)

    def _remove(self, ip_state: IpState, account: str) -> set[int]:
        """Take an account's lookups out of an address's blocks; the numbers it held."""
        lost: set[int] = set()
        for block in ip_state.blocks.values():
            if not block.counts("account").get(account):
                continue
            mine = [item for item in block.members.values() if item.account == account]
            for item in mine:
                block.remove(item)
                lost.add(item.number)
        return lost

    def _replace(self, ip_state: IpState, account: str, lost: set[int]) -> None:
        """Where a forgotten account had a number first, another account's first lookup of
        it since takes its place, in time order, as the fast rule reads a block; and the
        account's lookups leave the address's recent ones (a later forget must not bring
        them back)."""
        kept: deque[Lookup] = deque()
        stand_ins: dict[int, Lookup] = {}
        for item in ip_state.recent:
            if item.account == account:
                continue
            kept.append(item)
            if item.number in lost and item.number not in stand_ins:
                stand_ins[item.number] = item
        ip_state.recent = kept
        resort: set[tuple[int, int]] = set()
        for item in stand_ins.values():
            for size in self.policy.block_sizes:
                self._into_block(ip_state, size, item)  # the number's place is free now
                resort.add((size, item.number // size))
        # In the order the address's lookups came (several can share a second).
        placed = {id(item) for key in resort for item in ip_state.blocks[key].members.values()}
        order = {id(item): i for i, item in enumerate(kept) if id(item) in placed}
        for key in resort:
            block = ip_state.blocks[key]
            block.members = dict(sorted(block.members.items(), key=lambda pair: order[id(pair[1])]))
        for key, block in list(ip_state.blocks.items()):
            if not block.members:
                _drop(ip_state, key)

    def lookups(self, number: int) -> Iterator[Lookup]:
        """The lookups of a number the addresses remember (some more than once): in their
        blocks (as every one in `recent`) and among an only account's last ones."""
        sizes = self.policy.block_sizes
        for ip_state in self._ips.values():
            yield from (item for item in ip_state.lone if item.number == number)
            for size in sizes:
                block = ip_state.blocks.get((size, number // size))
                item = block.members.get(number) if block is not None else None
                if item is not None:
                    yield item

    def prune(self, now: float) -> None:
        """Drop what fell out of the window, and addresses left with nothing."""
        window, sizes = self.policy.window_seconds, self.policy.block_sizes
        for address, ip_state in list(self._ips.items()):
            recent = ip_state.recent
            while recent and now - recent[0].t > window:
                old = recent.popleft()
                for size in sizes:
                    key = (size, old.number // size)
                    block = ip_state.blocks.get(key)
                    # Not when a newer lookup of the number took its place, or it was forgotten.
                    if block is None or block.members.get(old.number) is not old:
                        continue
                    block.remove(old)
                    if not block.members:
                        _drop(ip_state, key)
            ip_state.accounts = {
                account: seen for account, seen in ip_state.accounts.items() if now - seen <= window
            }
            if not ip_state.blocks and not ip_state.accounts:
                del self._ips[address]

    def __contains__(self, address: str) -> bool:
        """Whether anything of the address is still kept."""
        return address in self._ips

    def _fast_named(
        self, block: Block, key: tuple[int, int], now: float
    ) -> tuple[int, list[str]] | None:
        """The fast rule's count and the accounts it names, when an ordered walk (naming
        every account that took a step) or a tier asking for a miss (naming the accounts
        with two or more of the burst's numbers) holds for an address's block, two or
        more accounts are named and none of them already knew the block (the address
        keeps only its lone account's last lookups)."""
        if key[0] != self.policy.block_fast_size:
            return None
        walk = self._fast.walk(block, 1)
        if walk is not None:
            # Every account that took a step of a walk is in it, one step or more.
            burst, share = walk, 1
        else:
            fast_at = self._fast.first_tier(block, 1)
            if fast_at is None:
                return None
            burst, share = block.last(fast_at), self.policy.distributed_min_share
        counts = Counter(item.account for item in burst)
        accounts = sorted(a for a, n in counts.items() if n >= share)
        if walk is None:
            missed = {item.account for item in burst if item.outcome == "miss"}
            accounts = self._after_a_stop(accounts, missed, now, burst)
        if len(accounts) < self.policy.distributed_min_accounts or any(
            self._knew(account, key, burst[0].t) for account in accounts
        ):
            return None
        return len(burst), accounts

    def _named(self, block: Block, now: float) -> list[str]:
        """Accounts with enough of an address's block to be named in its finding."""
        accounts = sorted(
            account
            for account, count in block.counts("account").items()
            if count >= self.policy.distributed_min_share
        )
        return self._after_a_stop(accounts, block.counts("missed_by"), now, block.members.values())

    def _after_a_stop(
        self, accounts: list[str], missed: Container[str], now: float, items: Iterable[Lookup]
    ) -> list[str]:
        """The accounts to name once one of them was suspended: it and those that met a
        miss of `items` since the suspended ones began their scan. The scan was stopped;
        who looks up the block after it is an accomplice going on with it, who meets misses
        soon, or a customer behind the same address ringing back its callers, listed
        numbers (a load generator's personas, an integrator's customers), whose misses
        before the scan began are none of it."""
        stopped = [account for account in accounts if self._stopped(account, now)]
        if not stopped:
            return accounts
        going_on = [account for account in accounts if account not in stopped and account in missed]
        if going_on:
            going_on = missed_since(items, stopped, going_on)
        return [account for account in accounts if account in stopped or account in going_on]

    def _into_block(self, ip_state: IpState, size: int, lookup: Lookup) -> Block | None:
        """Count a lookup in the address's block; None if the number was already in it."""
        key = (size, lookup.number // size)
        block = ip_state.blocks.get(key)
        if block is None:
            block = ip_state.blocks[key] = Block(("account", "missed_by"))
        current = block.members.get(lookup.number)
        if current is not None:
            if lookup.t - current.t <= self.policy.window_seconds:
                return None
            block.remove(current)
        block.add(lookup)
        return block


def came_before(items: Iterable[Lookup], accounts: list[str], gap: float) -> set[str]:
    """The accounts whose part of `items` ended before the scan began: before the first
    lookup of the account that began last, by more than `gap` seconds and twice that
    account's pace. Accounts taking turns, or relaying a block at its pace, are one scan;
    customers whose callers came days apart are each apart from it."""
    spans: dict[str, list[float]] = {account: [] for account in accounts}  # first, last, count
    for item in items:
        span = spans.get(item.account)
        if span is None:
            continue
        if span:
            span[0], span[1], span[2] = min(span[0], item.t), max(span[1], item.t), span[2] + 1
        else:
            span.extend((item.t, item.t, 1))
    parts = [span for span in spans.values() if span]
    if len(parts) < 2:
        return set()
    first, last, count = max(parts, key=lambda span: span[0])
    pace = (last - first) / (count - 1) if count > 1 else 0.0
    began = first - max(gap, 2 * pace)
    return {account for account, span in spans.items() if span and span[1] < began}


def missed_since(items: Iterable[Lookup], scanners: list[str], accounts: list[str]) -> list[str]:
    """Of `accounts`, those with a miss among `items` at or after the `scanners`' first."""
    items = list(items)
    began = min((item.t for item in items if item.account in scanners), default=0.0)
    met = {
        item.account
        for item in items
        if item.outcome == "miss" and item.t >= began and item.account in accounts
    }
    return [account for account in accounts if account in met]


def _drop(ip_state: IpState, key: tuple[int, int]) -> None:
    """Drop an address's emptied block, and which accounts it named."""
    del ip_state.blocks[key]
    ip_state.fired = {marker for marker in ip_state.fired if marker[:2] != key}
    ip_state.apart = {
        marker: count for marker, count in ip_state.apart.items() if marker[:2] != key
    }


def _evidence(
    block: Block, ip: str, size: int, start: int, account: str, suspend_at: int
) -> dict[str, Any]:
    mine = [item for item in block.members.values() if item.account == account]
    return {
        "rule": {
            "ip": ip,
            "block_size": size,
            "distinct_from_ip": len(block.members),
            "accounts": dict(sorted(block.counts("account").items())),
            "misses": block.misses,
            "suspend_at": suspend_at,
        },
        "block": block_label(start, size),
        "lookups": trail(mine),
    }
