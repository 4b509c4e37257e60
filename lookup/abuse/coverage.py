"""The `block_coverage` rule: many new numbers of one allocation block, with misses.

Pure. Three bounds: the fast rule's tiers (a burst of a geographic block where
the account's attention is), which hold the block, the ceiling (more of a block
than a customer's list holds, wherever else the account looks), and the count
within the window, for blocks the account's attention is on, which flags at the
flag bound and suspends at the suspension bound. The strongest verdict wins: a
suspension, then a hold, then a flag. A fourth, `KnownBlocks`, reads the numbers
the account has over `known_seconds` (`ledger`), for scans too slow for the
window, and holds the block. Spread over keys or IPs of the account, the same
finding is a `distributed_scan`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Final, NamedTuple

from lookup.abuse.fastrule import FastRule
from lookup.abuse.focus import Focus
from lookup.abuse.holds import Hold
from lookup.abuse.policy import Kind, Policy, Verdict, allocation_size
from lookup.abuse.state import EVIDENCE_NUMBERS, AccountState, Block, Lookup, block_label, trail

KNOWN_TURNS: Final = "known_turns"
"""The `known` tier's flag for blocks taken in turns, and its slot apart (`Verdict.apart`)."""


def _kind(block: Block) -> Kind:
    """A block finding's reason code: spread over keys or IPs of the account, a
    `distributed_scan`."""
    spread = len(block.counts("key")) > 1 or len(block.counts("ip")) > 1
    return Kind.DISTRIBUTED_SCAN if spread else Kind.BLOCK_COVERAGE


def _seen(block: Block, start: int, size: int) -> dict[str, Any]:
    """What a block finding's evidence says of the block: its name, keys, IPs and lookups."""
    return {
        "block": block_label(start, size),
        "keys": sorted(block.counts("key")),
        "ips": sorted(block.counts("ip")),
        "lookups": trail(block.last(EVIDENCE_NUMBERS)),
    }


class _Bounds(NamedTuple):
    """The figures of one block size, as the rule reads them at every new number."""

    size: int
    flag_at: int
    suspend_at: int
    ceiling: int
    """`block_ceiling` of the size, in numbers: with the suspension's misses, it suspends."""
    fewest: int
    """Fewer numbers than every bound asks for: the block holds none."""


class BlockCoverage:
    """The block rule over one policy."""

    def __init__(self, policy: Policy, fast: FastRule, focus: Focus) -> None:
        self.policy = policy
        self._fast = fast
        self._focus = focus
        self._ceilings = tuple(
            math.ceil(policy.block_ceiling * size) for size in policy.block_sizes
        )
        # Fewer numbers than every bound of a size asks for (the chance excess only adds to
        # them) hold none: most lookups' blocks, which then cost no more reading.
        fewest_fast = min(tier.numbers for tier in fast.tiers)
        self._fewest = tuple(
            min(flag_at, ceiling, fewest_fast if size == policy.block_fast_size else ceiling)
            for size, flag_at, ceiling in zip(
                policy.block_sizes, policy.block_flag, self._ceilings, strict=True
            )
        )
        self._bounds = tuple(
            _Bounds(*bounds)
            for bounds in zip(
                policy.block_sizes,
                policy.block_flag,
                policy.block_suspend,
                self._ceilings,
                self._fewest,
                strict=True,
            )
        )

    def check(self, state: AccountState, lookup: Lookup) -> list[Verdict]:
        """Count the new number into its blocks of every size; a verdict per block held."""
        policy, blocks, number = self.policy, state.blocks, lookup.number
        # Into every block first: the focus test of a small block reads the enclosing one.
        placed = []
        crowded = False
        for bounds in self._bounds:
            size = bounds.size
            key = (size, number // size)
            block = blocks.get(key)
            if block is None:
                block = blocks[key] = Block(("key", "ip"))
            block.add(lookup)
            placed.append((bounds, block))
            crowded = crowded or len(block.members) >= bounds.fewest
        if not crowded:
            return []  # fewer numbers than any bound asks for: most lookups' blocks
        found: list[Verdict] = []
        recent = len(state.recent)
        for (size, flag_at, suspend_at, ceiling, fewest), block in placed:
            count = len(block.members)
            if count < fewest:
                continue
            by_chance = recent * size / policy.plan_numbers
            # Rounded up: even a small account's share of chance raises the bar by one, which
            # keeps a busy account's scattered callers clear (a floor suspended the 1M benchmark).
            excess = math.ceil(policy.block_excess * by_chance)
            fast = (
                self._fast_scan(state, block, excess, lookup)
                if size == policy.block_fast_size
                else None
            )
            counted = self._count(
                state,
                block,
                lookup,
                ceiling=ceiling + excess,
                flag_at=flag_at + excess,
                suspend_at=suspend_at + excess,
            )
            turning: list[tuple[int, int]] = []
            # The count's suspension before a fast tier's hold: a scan whose decoys keep a
            # tier holding its block (held already) would otherwise never reach it.
            if fast is not None and not (counted is not None and counted[0]):
                # Minutes of a few numbers: what a customer's first callers can look like,
                # so the block is held, not the account suspended (`holds`).
                strong, holds, (needed, tier, turning) = False, True, fast
            elif counted is not None:
                (strong, needed, tier), holds = counted, False
            else:
                continue
            # Blocks taking turns are held together, each on the evidence of all: held one
            # at a time, as each reached the tier, a scan had by then taken the first's
            # fifth or sixth listing (over 1 % of a sparse block).
            together = tuple(size_of * index for size_of, index in turning)
            # One kind for the blocks held together: each is the others' evidence, so one
            # cannot corroborate another (a key spread over one of them would suspend).
            group = [block, *(state.blocks[other] for other in turning)]
            spread = any(_kind(member) is Kind.DISTRIBUTED_SCAN for member in group)
            kind = Kind.DISTRIBUTED_SCAN if spread else Kind.BLOCK_COVERAGE
            verdict = partial(self._verdict, kind, by_chance, flag_at, needed, tier, strong, holds)
            found.append(verdict(block, size, lookup.number, together))
            for other in turning:
                first = other[0] * other[1]
                rest = (lookup.number, *(n for n in together if n != first))
                found.append(verdict(state.blocks[other], other[0], first, rest, held=first))
        return found

    def _verdict(
        self,
        kind: Kind,
        by_chance: float,
        flag_at: int,
        needed: int,
        tier: str,
        strong: bool,
        holds: bool,
        block: Block,
        size: int,
        number: int,
        together: tuple[int, ...],
        held: int | None = None,
    ) -> Verdict:
        """The verdict on a block of `size` holding `number`; `together`: a number in each
        block held with it (`held`: a number of the block, when not the lookup's)."""
        evidence = partial(
            self._evidence, block, size, number // size, by_chance, flag_at, needed, tier, together
        )
        return Verdict(kind, strong, evidence, holds, held=held, together=together)

    def _count(
        self,
        state: AccountState,
        block: Block,
        lookup: Lookup,
        *,
        ceiling: int,
        flag_at: int,
        suspend_at: int,
    ) -> tuple[bool, int, str] | None:
        """The ceiling's or the count's verdict on a block (the chance excess in the bounds):
        whether it suspends, the bound that held and its name; None when neither holds."""
        policy = self.policy
        count = len(block.members)
        if count >= ceiling and block.misses / count >= policy.block_suspend_miss_share:
            # More of a block than a customer's list holds, wherever else the account
            # looks: a scan taking turns between blocks behind decoys, or between more
            # than `block_turns`, which share the attention as a town's blocks do.
            return True, ceiling, "ceiling"
        if count < flag_at or block.misses / count < policy.block_flag_miss_share:
            return None
        span = block.span(flag_at)
        if span > policy.block_flag_burst_seconds:
            return None
        slow = span > policy.block_suspend_burst_seconds
        if not self._focus.held(
            state,
            block,
            flag_at,
            lookup,
            floor=policy.block_slow_focus_span if slow else policy.block_focus_span,
            share=policy.block_focus,
            strays=True,
            pair=policy.block_pair_focus,
            pair_span=policy.block_focus_span,
        ):
            return None
        strong = (
            count >= suspend_at
            and block.misses / count >= policy.block_suspend_miss_share
            and block.span(suspend_at) <= policy.block_suspend_burst_seconds
            and not self._fast.company_range(block.last(suspend_at))
            and self._going_on(state, lookup)
        )
        return strong, suspend_at, "count"

    def _going_on(self, state: AccountState, lookup: Lookup) -> bool:
        """Whether a scan goes on in the lookup's allocation block, when it is held for the
        account (and its lookups there refused): `held_block_suspend` new numbers of it
        since the hold, within `block_fast_seconds`. Refused, a customer's callers from the
        block come as they ring."""
        hold = Hold.of(lookup.number)
        held_at = state.held.get(hold)
        if held_at is None or hold in state.answered or not self.policy.held_block_suspend:
            return True
        since = max(held_at, lookup.t - self.policy.block_fast_seconds)
        block = state.blocks.get((hold.size, hold.first // hold.size))
        if block is None:  # a policy whose block sizes leave the allocation block out
            return True
        # All of them: a lookup that reached the monitor late sits after newer ones.
        fresh = sum(item.t > since for item in block.members.values())
        return fresh >= self.policy.held_block_suspend

    def _fast_scan(
        self, state: AccountState, block: Block, excess: int, lookup: Lookup
    ) -> tuple[int, str, list[tuple[int, int]]] | None:
        """How many new numbers of a geographic block came fast where the account's
        attention is (a scan, walked or shuffled), the name of the tier of the fast
        rule that holds, if one does, and the blocks that took turns with it (a tier for
        blocks taking turns holds only then: one block alone has tiers of its own)."""
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
                fast=True,
            ):
                if not tier.pair_span:
                    return needed, tier.name, []
                turning = self._focus.turning(state, block, needed, lookup, tier.seconds)
                # One block alone has tiers of its own; a mobile block's 1 % is dozens of
                # listings, and the fast rule's bounds are a geographic block's.
                if not turning or any(size != self.policy.block_fast_size for size, _ in turning):
                    continue
                if Hold.of(lookup.number) in state.held:
                    # Held already, with the blocks it took turns with then, or alone (a
                    # block taking turns with it now is held at its own evidence): its
                    # refused lookups are no new evidence against another block.
                    return needed, tier.name, []
                # A block held already was held on its own evidence: this one is a hold
                # beside it (`held_before`), not one with it.
                return (
                    needed,
                    tier.name,
                    [
                        other
                        for other in turning
                        if Hold(other[0], other[0] * other[1]) not in state.held
                        and other in state.blocks
                    ],
                )
        return None

    def _evidence(
        self,
        block: Block,
        size: int,
        start: int,
        by_chance: float,
        flag_at: int,
        needed: int,
        tier: str,
        together: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        return {
            "rule": {
                # Which bound held: `count` (flag_at / suspend_at below), `ceiling` (a share
                # of the block), or a fast tier (hold_at numbers within minutes).
                "tier": tier,
                "block_size": size,
                "distinct": len(block.members),
                "misses": block.misses,
                "expected_by_chance": round(by_chance, 3),
                "flag_at": flag_at,
                # A fast tier's bound holds the block; the others' suspend the account.
                "suspend_at" if tier in ("count", "ceiling") else "hold_at": needed,
                "window_seconds": self.policy.window_seconds,
            },
            **_seen(block, start, size),
            # The blocks held with this one on the same evidence: they took turns with it.
            **(
                {"taking_turns_with": [Hold.of(number).label for number in together]}
                if together
                else {}
            ),
        }


class KnownBlocks:
    """The `block_coverage` rule's `known` tier over one policy: an allocation block
    holding `block_known_hold` of the numbers the account has, with misses, where its
    attention is over `known_seconds`, is held; a tight cluster (a company's extensions, or
    a walk) only once it holds more than a company's range."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(self, state: AccountState, lookup: Lookup) -> list[Verdict]:
        """A hold of the lookup's allocation block, when the numbers the account has there
        are enough, missed enough, and most of those in blocks as busy."""
        policy, ledger, number = self.policy, state.ledger, lookup.number
        count, misses = ledger.tally(number)
        if count < policy.block_known_hold:
            return []  # most lookups' blocks
        size = allocation_size(number)
        # As the window's count: a busy account's numbers crowd a block now and then by chance.
        by_chance = len(ledger) * size / policy.plan_numbers
        needed = policy.block_known_hold + math.ceil(policy.block_excess * by_chance)
        if count < needed or misses / count < policy.block_suspend_miss_share:
            return []
        # Blocks holding a fraction of this one's count share the attention (a town's); the
        # decoys a scan spreads over the plan, a few numbers a block, do not ...
        least = math.ceil(count * policy.block_known_busy)
        busy = ledger.busy(least)
        block = state.blocks.get((size, number // size))
        if block is None:  # a policy whose block sizes leave the allocation block out
            return []
        tier = "known"
        if count < policy.block_known_focus * busy:
            # ... nor blocks the account has left: none of their numbers looked up since
            # this block's last few began (a scan moving on from block to block), or, when
            # the window holds fewer of its numbers (a town's late callers come seldom, as
            # most are known), within the window.
            recent = block.last(policy.block_known_recent)
            if len(recent) == policy.block_known_recent:
                since = recent[0].t
            else:
                since = lookup.t - policy.window_seconds
            busy = ledger.busy(least, since)
            if count < policy.block_known_focus * busy:
                # Blocks sharing the attention with next to nothing else: a scan taking turns
                # between them, or a town's callers with none from elsewhere (no mobile),
                # so only a flag, for compliance to judge.
                numbers = len(ledger)
                turns = busy >= policy.block_known_turns * numbers
                if not (turns and numbers >= policy.block_known_turns_span):
                    return []
                tier = KNOWN_TURNS
        # A company's direct-dial range, its extensions calling over weeks (half of them
        # unlisted), is all one block too, in any order: a tight cluster is a scan only
        # once it holds more numbers than such a range (a walk). A shuffled scan is wide.
        if count < policy.run_flag:  # (the spread read only then: a scan's block is large)
            members = block.members
            if max(members) - min(members) < policy.company_range_width:
                return []
        evidence = partial(
            self._evidence, block, tier, number, count, misses, busy, len(ledger), by_chance, needed
        )
        kind = _kind(block)
        if tier == KNOWN_TURNS:
            # Apart from the other rules: a town whose callers often miss would otherwise
            # be suspended on this flag and the miss test's together.
            return [Verdict(kind, strong=False, evidence=evidence, apart=KNOWN_TURNS)]
        return [Verdict(kind, strong=False, evidence=evidence, holds=True)]

    def _evidence(
        self,
        block: Block,
        tier: str,
        number: int,
        count: int,
        misses: int,
        busy: int,
        numbers: int,
        by_chance: float,
        needed: int,
    ) -> dict[str, Any]:
        size = allocation_size(number)
        return {
            "rule": {
                "tier": tier,
                "block_size": size,
                # The numbers the account has in the block (looked up within known_days),
                # of which the lookups below are those within the window.
                "distinct": count,
                "misses": misses,
                "in_busy_blocks": busy,
                "numbers": numbers,
                # A flag apart from the other rules (a warm restart reads it back so).
                **({"pattern": KNOWN_TURNS} if tier == KNOWN_TURNS else {}),
                "expected_by_chance": round(by_chance, 3),
                "hold_at": needed,
                "known_days": round(self.policy.known_seconds / 86400),
            },
            **_seen(block, number // size, size),
        }
