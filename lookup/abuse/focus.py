"""Where an account's attention is: the test that tells a block scan from a customer's callers.

Pure. A scan works through one allocation block at a time, or a few taking turns
with nothing else between them; a customer's callers (and its list refreshes)
spread over its town's blocks and beyond.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from itertools import islice

from lookup.abuse.policy import Policy
from lookup.abuse.state import AccountState, Block, Lookup


class Focus:
    """The block rules' focus test over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def held(
        self,
        state: AccountState,
        block: Block,
        last: int,
        lookup: Lookup,
        *,
        floor: int,
        share: float,
        strays: bool,
        pair: float | None = None,
        pair_span: int = 0,
        fast: bool = False,
    ) -> bool:
        """Whether the number's allocation block took `share` of the account's new numbers
        since the first of the block's newest `last`, or of those of the
        `block_fast_seconds` before it (at most `block_focus_limit`), or of its last
        `floor`, whichever began first; or, with `pair`, whether it and the one other
        block that took most of them took that share of them together, when they were
        at least `pair_span`, or it and the `block_turns` - 1 others that took
        most, two numbers each at least, took that share of all of them, when they were at
        least `turns_span` of their number (`fast`: for the fast rule);
        with `strays`, numbers alone in their allocation block do not count."""
        policy = self.policy
        first, stray = self._stretch(state, block, last, floor=floor, strays=strays)
        key = self._key(lookup.number)
        allocation = state.blocks.get(key, block)
        counted = lookup.seq - first + 1 - stray
        needed = math.ceil(share * counted)
        # Newest first, stopping at the first older lookup or once enough were counted.
        for count, item in enumerate(reversed(allocation.members.values()), 1):
            if item.seq < first:
                break
            if count >= needed:
                return True
        # Two blocks taking turns: each has half the attention. Only over a stretch long
        # enough that a town's three blocks do not leave one out by chance.
        if not pair or counted < pair_span:
            return False
        spare = lookup.seq - first + 1 - math.ceil(pair * counted)
        if self._pair(state, key, first, spare):
            return True
        # Three or more blocks taking turns share the attention as a town's blocks do; what
        # tells them apart is that nothing else comes between them, strays included (most
        # of a business's callers ring from mobiles, and a fifth of a simulated town's live
        # elsewhere), over a stretch long enough that a town's blocks do not take it by chance.
        total = lookup.seq - first + 1
        if total < self.turns_span(3, fast=fast):
            return False
        blocks = self._crowded(
            state, key, first, total - math.ceil(pair * total), others=policy.block_turns - 1
        )
        return blocks is not None and total >= self.turns_span(blocks, fast=fast)

    def turning(
        self, state: AccountState, block: Block, last: int, lookup: Lookup, seconds: float
    ) -> list[tuple[int, int]]:
        """The other allocation blocks holding two or more of the account's new numbers
        of the last `seconds` within the fast rule's stretch of the block's newest `last`
        (`held` without `floor` or strays): when a tier asking for blocks taking turns
        held, the blocks it took turns with (a number alone in its block, or only before
        the tier's time, takes no turn), in order."""
        first, _ = self._stretch(state, block, last, floor=0, strays=False)
        since = lookup.t - seconds
        taken = Counter(self._others(state, self._key(lookup.number), first, since=since))
        return sorted(other for other, count in taken.items() if count > 1)

    def _key(self, number: int) -> tuple[int, int]:
        """The account state's key of a number's allocation block: its size and index."""
        size = self.policy.allocation_size(number)
        return size, number // size

    def _stretch(
        self, state: AccountState, block: Block, last: int, *, floor: int, strays: bool
    ) -> tuple[int, int]:
        """Where the stretch of the block's newest `last` begins (the sequence number of
        its first lookup), and how many of its numbers are alone in their allocation block
        (counted only with `strays`)."""
        policy = self.policy
        start = block.last(last)[0]
        # Over a stretch long enough that a customer's callers do not crowd one block by
        # chance: all it looked up in the minutes before (a bulk refresh spreads over its
        # customers' blocks), and for slower rules its last numbers whenever they came.
        first = start.seq
        oldest = start.t - policy.block_fast_seconds
        settled = False
        # A number alone in its allocation block is no one's attention: the decoys a scan
        # spreads over the plan to hide in (a customer's scattered callers too). Only for the
        # slow rule and the fast rule's decoy tier: a first refresh's numbers are all alone
        # at first. Counted in the same walk back that finds where the stretch starts.
        stray = 0
        for index, item in enumerate(islice(reversed(state.recent), policy.block_focus_limit)):
            if settled or (index >= floor and item.t < oldest):
                if not strays or item.seq < first:
                    break
                settled = True
            elif item.seq < first:  # newest first: each is the oldest yet
                first = item.seq
            if strays:
                other = state.blocks.get(self._key(item.number))
                stray += other is not None and len(other.members) == 1
        return first, stray

    def turns_span(self, blocks: int, *, fast: bool) -> int:
        """How many new numbers `blocks` blocks (three at least) taking turns must hold
        before they are a scan: for the fast rule and up to `block_turns_few` blocks,
        `block_turns_each` a block; else `block_turns_span`."""
        policy = self.policy
        if fast and blocks <= policy.block_turns_few:
            return policy.block_turns_each * max(blocks, 3)
        return policy.block_turns_span

    def _others(
        self, state: AccountState, key: tuple[int, int], first: int, since: float = -math.inf
    ) -> Iterator[tuple[int, int]]:
        """The allocation blocks of the account's new numbers since `first` (and the time
        `since`), newest first, but for those of the block `key` (at most
        `block_focus_limit` read)."""
        for item in islice(reversed(state.recent), self.policy.block_focus_limit):
            if item.seq < first:
                return
            if item.t < since:
                continue  # (a late batch's lookup sits among newer ones)
            block = self._key(item.number)
            if block != key:
                yield block

    def _pair(self, state: AccountState, key: tuple[int, int], first: int, spare: int) -> bool:
        """Whether at most `spare` of the account's new numbers since `first` fall outside
        the block `key` and the one other block that took most of them."""
        taken: dict[tuple[int, int], int] = {}
        top = outside = 0
        for block in self._others(state, key, first):
            count = taken[block] = taken.get(block, 0) + 1
            if count > top:
                top = count
            else:
                # Never shrinks as the walk goes on: an account whose attention is spread
                # is told apart within a few numbers.
                outside += 1
                if outside > spare:
                    return False
        return True

    def _crowded(
        self, state: AccountState, key: tuple[int, int], first: int, spare: int, *, others: int
    ) -> int | None:
        """How many blocks take the account's new numbers since `first`, when at most
        `spare` fall outside the block `key` and the `others` other blocks that took most
        of them, each of those at least two (a number alone in its block takes no turn: the
        busiest blocks would otherwise take in a town's callers from elsewhere, one each);
        None when more fall outside."""
        taken: dict[tuple[int, int], int] = {}
        seen = 0
        for block in self._others(state, key, first):
            taken[block] = taken.get(block, 0) + 1
            seen += 1
            # Each block beyond the busiest holds at least one number outside them.
            if len(taken) - others > spare:
                return None
        kept = sorted((count for count in taken.values() if count > 1), reverse=True)
        if seen - sum(kept[:others]) > spare:
            return None
        return 1 + len(kept[:others])
