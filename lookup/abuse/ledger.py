"""The numbers an account has, counted per allocation block: what a scan too slow for the
window leaves.

Pure. The block rules count a block's new numbers within the window (a week); a scan
taking a number of one block every hour or so never crowds it there, yet in a month it
has most of the block. The ledger counts, per allocation block, the numbers the account
looked up within `known_seconds` and how many of them were last answered as misses, as
the numbers come and go from what the account has (`AccountState.known`). It is
evidence, not history: compliance clearing the account starts it afresh, while the
numbers stay known. The rule that reads it is `coverage.KnownBlocks`.
"""

from __future__ import annotations

from typing import Final

from lookup.abuse.policy import allocation_size


def _first(number: int) -> int:
    """The first number of its allocation block: a key no other block shares (mobile and
    geographic numbers begin with different digits)."""
    return number - number % allocation_size(number)


CROWDED: Final = 4
"""Blocks holding at least this many numbers are kept apart as well: the `known` tier
asks for blocks a quarter as busy as one of 16 or more, and most blocks of a busy
account hold one or two (read through them all, 50,000 took a millisecond a number)."""


class Ledger:
    """Per allocation block, the numbers counted and their misses, with how many blocks
    hold each count (which answers "how many numbers lie in blocks at least this busy"
    without reading every block).

    Only ints in its dicts: the cycle collector leaves them untracked (a list per block
    cost the monitor a third more of the collector's passes, `bench/detector_load.py`).
    """

    __slots__ = ("_counts", "_crowded", "_latest", "_misses", "_numbers", "_sizes")

    def __init__(self) -> None:
        self._numbers: dict[int, bool] = {}
        """Number counted -> whether its last answer was a miss."""
        self._counts: dict[int, int] = {}
        """Block (its first number) -> numbers counted in it, ..."""
        self._misses: dict[int, int] = {}
        """... and misses among them (blocks with none left out)."""
        self._sizes: dict[int, int] = {}
        """Numbers a block holds -> how many blocks hold that many."""
        self._latest: dict[int, float] = {}
        """Block -> when one of its numbers was last looked up (new, or again)."""
        self._crowded: dict[int, None] = {}
        """Blocks holding `CROWDED` numbers or more (a dict of ints: untracked)."""

    def __len__(self) -> int:
        return len(self._numbers)

    def tally(self, number: int) -> tuple[int, int]:
        """Numbers counted in the number's allocation block, and misses among them."""
        block = _first(number)
        return self._counts.get(block, 0), self._misses.get(block, 0)

    def count(self, number: int) -> int:
        """Numbers counted in the number's allocation block."""
        return self._counts.get(_first(number), 0)

    def enter(self, number: int, miss: bool, t: float, *, new: bool) -> None:
        """Count a lookup of a number: a `new` one (not known before), or a counted one
        answered again (its miss may have become a hit). A repeat of a number known from
        before the ledger started is not counted: it is not evidence."""
        before = self._numbers.get(number)
        if before is not None:
            block = _first(number)
            if before != miss:
                self._numbers[number] = miss
                self._miss(block, 1 if miss else -1)
            # A town block whose callers are all known still rings: it keeps its share of
            # the attention. A scan does not come back to the blocks it has left.
            self._latest[block] = max(t, self._latest[block])
            return
        if not new:
            return
        self._numbers[number] = miss
        block = _first(number)
        count = self._counts.get(block, 0)
        self._counts[block] = count + 1
        if count + 1 == CROWDED:
            self._crowded[block] = None
        # A late number from another worker does not make the block's newest older.
        self._latest[block] = max(t, self._latest.get(block, t))
        self._resize(count, count + 1)
        if miss:
            self._miss(block, 1)

    def leave(self, number: int) -> None:
        """Stop counting a number the account no longer has (not looked up for
        `known_seconds`); one never counted is ignored."""
        miss = self._numbers.pop(number, None)
        if miss is None:
            return
        block = _first(number)
        count = self._counts[block]
        if count == CROWDED:
            del self._crowded[block]
        if count == 1:
            del self._counts[block]
            del self._latest[block]
        else:
            self._counts[block] = count - 1
        self._resize(count, count - 1)
        if miss:
            self._miss(block, -1)

    def busy(self, least: int, since: float | None = None) -> int:
        """Numbers counted in blocks that hold at least `least` each (and, with `since`,
        had a number looked up since then)."""
        if since is None:
            return sum(size * blocks for size, blocks in self._sizes.items() if size >= least)
        counts, latest = self._counts, self._latest
        return sum(
            counts[block]
            for block in (self._crowded if least >= CROWDED else counts)
            if counts[block] >= least and latest[block] >= since
        )

    def _miss(self, block: int, change: int) -> None:
        misses = self._misses.get(block, 0) + change
        if misses:
            self._misses[block] = misses
        else:
            del self._misses[block]

    def _resize(self, old: int, new: int) -> None:
        sizes = self._sizes
        if old:
            sizes[old] -= 1
            if not sizes[old]:
                del sizes[old]
        if new:
            sizes[new] = sizes.get(new, 0) + 1
