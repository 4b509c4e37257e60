"""The fast rule of the block detector: a burst of new numbers in one geographic block.

Pure. Its tiers, and the tests that clear a burst's look-alikes: a company's
direct-dial range calling in, and a block the account (or address) already knew.
Whether the account's attention is on the block is the caller's to judge.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

from lookup.abuse.policy import Policy
from lookup.abuse.state import Block, Lookup


class Tier(NamedTuple):
    """One tier of the fast rule for geographic blocks."""

    numbers: int
    """New numbers of the block, beyond the chance excess."""
    seconds: float
    misses: int
    focus: float
    """Share of the account's new numbers the block must have taken."""
    wide: bool = False
    """Whether the numbers must spread wider than a company's direct-dial range."""
    strays: bool = False
    """Whether numbers alone in their allocation block leave the focus out (decoys)."""
    listed: bool = False
    """Whether every one of the numbers must have been listed: the extraction itself."""
    everywhere: bool = False
    """Whether it holds for a mobile block's thousands and an address's blocks too, not
    only an account's geographic blocks: a mobile block's 1 % is dozens of listings, so
    only the tier that asks for a miss where the attention is need guess there; and an
    address cannot show one mind's attention (two customers behind one NAT are two)."""
    pair_span: int = 0
    """When more than zero: or the block and one other took all the account's new numbers,
    lone ones included, when they were at least this many (two blocks taking turns), or a
    few blocks did (`Focus.turning`); each of them is held with it."""
    name: str = ""
    """How a finding's evidence names the tier that held."""


class FastRule:
    """The fast rule's tiers over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # Fewer numbers or no miss where the account's attention is undivided (a quiet scan
        # of a dense block can give it no miss for 8 numbers), or divided only by decoys
        # alone in their blocks (`block_decoy_misses`); one fewer there when all were listed,
        # as the listings taken are what a scan is after.
        self.tiers = (
            Tier(policy.block_rapid_suspend, policy.block_rapid_seconds, 0, 1.0, name="rapid"),
            Tier(
                policy.block_undivided_suspend,
                policy.block_fast_seconds,
                0,
                1.0,
                wide=True,
                name="fast_undivided",
            ),
            Tier(
                policy.block_fast_suspend,
                policy.block_fast_seconds,
                policy.block_fast_misses,
                policy.block_focus,
                everywhere=True,
                name="fast",
            ),
            Tier(
                policy.block_pair_fast_suspend,
                policy.block_fast_seconds,
                policy.block_fast_misses,
                1.0,
                pair_span=policy.block_pair_fast_span,
                name="fast_two_blocks",
            ),
            Tier(
                policy.block_pair_rapid_suspend,
                policy.block_rapid_seconds,
                0,
                1.0,
                wide=True,
                pair_span=policy.block_pair_rapid_span,
                name="rapid_two_blocks",
            ),
            Tier(
                policy.block_decoy_suspend,
                policy.block_fast_seconds,
                policy.block_decoy_misses,
                1.0,
                wide=True,
                strays=True,
                name="fast_behind_decoys",
            ),
            Tier(
                policy.block_decoy_listed_suspend,
                policy.block_fast_seconds,
                0,
                1.0,
                wide=True,
                strays=True,
                listed=True,
                name="listed_behind_decoys",
            ),
        )

    def company_range(self, newest: list[Lookup]) -> bool:
        """A tight cluster of numbers met in no particular order: a company's extensions.

        A walk through a block goes in order; callers from a direct-dial range
        arrive as they call. Such a cluster is left to the run rule's longer bound.
        """
        # By request time: several workers' batches reach the monitor interleaved.
        tail = sorted(newest, key=lambda item: item.t)
        numbers = [item.number for item in tail]
        if max(numbers) - min(numbers) >= self.policy.company_range_width:
            return False
        rising = all(a < b for a, b in pairwise(numbers))
        falling = all(a > b for a, b in pairwise(numbers))
        return not (rising or falling)

    def walk(self, block: Block, excess: int) -> list[Lookup] | None:
        """The block's newest numbers, when they are an ordered walk: the rapid tier's
        count within its time, each a step of at most `run_stride` in one direction.

        For an address's block, which cannot show one mind's attention: customers'
        callers seldom arrive in the order of a walk, four of them within a minute
        (a company's extensions calling in would, one time in twelve).
        """
        needed = self.policy.block_rapid_suspend + excess
        if len(block.members) < needed:
            return None
        burst = block.last(needed)
        if burst[-1].t - burst[0].t > self.policy.block_rapid_seconds:
            return None
        steps = [b.number - a.number for a, b in pairwise(burst)]
        stride = self.policy.run_stride
        if all(0 < step <= stride for step in steps) or all(-stride <= step < 0 for step in steps):
            return burst
        return None

    def first_tier(self, block: Block, excess: int) -> int | None:
        """The count of the first tier holding `everywhere` that an address's block's
        newest numbers meet."""
        return next(
            (
                tier.numbers + excess
                for tier in self.tiers
                if tier.everywhere and self.holds(block, tier.numbers + excess, tier)
            ),
            None,
        )

    def holds(self, block: Block, needed: int, tier: Tier) -> bool:
        """The block's newest `needed` numbers came within the tier's time, with its misses
        among them (none, for a tier asking them `listed`), they are not a company's
        extensions calling in, and the block was new: few of its numbers were looked up
        before."""
        # The block's own counts first: they rule out most lookups without reading members.
        if len(block.members) < needed or block.misses < tier.misses:
            return False
        burst = block.last(needed)
        if tier.wide:
            numbers = [item.number for item in burst]
            if max(numbers) - min(numbers) < self.policy.company_range_width:
                return False
        # A block's lookups are hits or misses (an invalid number has no block): counted once.
        misses = sum(item.outcome == "miss" for item in burst)
        return (
            misses >= tier.misses
            and not (tier.listed and misses)
            and burst[-1].t - burst[0].t <= tier.seconds
            # A burst as wide as that is no tight cluster: no need to sort and measure again.
            and (tier.wide or not self.company_range(burst))
            and not self.known(block, burst[0].t)
        )

    def known(self, block: Block, burst: float) -> bool:
        """More than `block_fast_known` of the block's numbers came more than the fast rule's
        time before `burst`: a block the account (or address) already knew."""
        before = burst - self.policy.block_fast_seconds
        # Members are in time order: count from the oldest until the burst's time.
        for known, item in enumerate(block.members.values()):
            if item.t >= before:
                return False
            if known >= self.policy.block_fast_known:
                return True
        return False
