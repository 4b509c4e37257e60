"""The detectors' memory, per account and per address: lookups within the window, and the
numbers each account looked up within `known_seconds`. Pure (`tune_collector` aside, which
a monitor process calls once)."""

from __future__ import annotations

import gc
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Final

import msgspec

from lookup.abuse.harvest import Searches
from lookup.abuse.ledger import Ledger
from lookup.abuse.washing import Clearance, Day

EVIDENCE_NUMBERS: Final = 50
"""Lookups quoted in a finding's evidence, at most."""
LONE_LOOKUPS: Final = 8
"""Lookups an address keeps from its only account (more than a fast scan needs)."""


class Lookup(msgspec.Struct, gc=False):
    """A first lookup as the detectors keep it.

    Untracked by the cycle collector (`gc=False`: it holds only numbers, strings
    and a datetime): the monitor keeps hundreds of thousands within the window,
    and the collector's passes over them cost as much as the detectors' work.
    """

    ts: datetime
    t: float
    """`ts` as seconds since 1970 (naive UTC), for cheap arithmetic."""
    number: int
    outcome: str
    key: str
    ip: str
    account: str
    seq: int
    """Position among the account's first lookups: how many new numbers came before it."""
    erased: bool = False
    """Its number was erased on its data subject's request: evidence quotes it as `erased`."""

    @property
    def missed_by(self) -> str:
        """The account, if the number was a miss ("" for a hit): counted per block, it
        tells which accounts behind an address met the misses of a scan."""
        return self.account if self.outcome == "miss" else ""


def e164(number: int) -> str:
    """A national number in E.164, as the lookup log writes it: a short number (`02800`,
    five digits from a 0; no eight-digit number starts with one) keeps its five."""
    return f"+47{number:05d}" if number < 100_000 else f"+47{number:08d}"


def block_label(start: int, size: int) -> str:
    """A block as evidence names it: its first number and the last digits of its last,
    `+4721279000..999`."""
    return e164(start * size) + f"..{size - 1:0{len(str(size - 1))}d}"


ERASED: Final = "erased"
"""What evidence (as the lookup log) quotes in place of an erased number."""


def quoted(item: Lookup) -> str:
    """A lookup's number as evidence quotes it."""
    return ERASED if item.erased else e164(item.number)


def trail(lookups: Sequence[Lookup]) -> list[dict[str, str]]:
    """The last lookups behind a finding, as a reviewer reads them."""
    return [
        {"ts": item.ts.isoformat(), "number": quoted(item), "outcome": item.outcome}
        for item in lookups[-EVIDENCE_NUMBERS:]
    ]


FULL_COLLECTION_EVERY: Final = 100
"""Middle-generation collections between two full ones of the cycle collector in a monitor
process (Python's default: 10)."""


def tune_collector() -> None:
    """Spare a monitor process most of the cycle collector's full passes.

    The detectors' memory holds millions of references within the window. Their
    lookups and blocks are untracked, but each full pass still walks the containers
    holding them, and the default thresholds ran one every few seconds under load:
    a quarter of the detectors' CPU (`bench/detector_load.py --collector default`).
    That memory holds no cycles; the younger generations go on collecting the
    short-lived ones other code makes. Measured on CPython 3.11, whose collector has
    three generations; one with an incremental collector (two generations, scanning
    the old one in increments) reads no third threshold, and this changes nothing.
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


@dataclass(slots=True, eq=False)
class Run:
    head: int
    items: deque[Lookup] = field(default_factory=deque)
    misses: int = 0
    tally: tuple[dict[str, int], dict[str, int]] | None = None
    """Lookups of `items` per key and per IP, once asked for (`spread`), then kept as they
    come and go: a scan's run grows to thousands within the window, and counting them
    afresh at each made a replay of one long walk quadratic; a customer's short runs are
    never asked."""

    def add(self, item: Lookup) -> None:
        """Extend the run by a lookup."""
        self.head = item.number
        self.items.append(item)
        self.misses += item.outcome == "miss"
        if self.tally is not None:
            for counts, value in zip(self.tally, (item.key, item.ip), strict=True):
                counts[value] = counts.get(value, 0) + 1

    def drop_oldest(self) -> None:
        """Forget the run's oldest lookup."""
        item = self.items.popleft()
        self.misses -= item.outcome == "miss"
        if self.tally is not None:
            for counts, value in zip(self.tally, (item.key, item.ip), strict=True):
                counts[value] -= 1
                if not counts[value]:
                    del counts[value]

    def spread(self) -> bool:
        """Whether the run's lookups came through more than one key or IP."""
        if self.tally is None:
            self.tally = (
                dict(Counter(item.key for item in self.items)),
                dict(Counter(item.ip for item in self.items)),
            )
        keys, ips = self.tally
        return len(keys) > 1 or len(ips) > 1


class Block(msgspec.Struct, gc=False, eq=False):
    """Distinct numbers of one block within the window, in time order, with running counts.

    `by` names the two lookup attributes counted per value: keys and IPs for an
    account's blocks (a scan split over them), accounts and the accounts that
    missed for an IP's blocks. Untracked by the cycle collector, as `Lookup` is:
    it holds lookups and counts, never itself, and there are hundreds of
    thousands (each count is a dict of its own: one holding both would be
    tracked again).
    """

    by: tuple[str, str]
    members: dict[int, Lookup] = {}
    misses: int = 0
    first: dict[str, int] = {}
    """Members per value of `by[0]`, ..."""
    second: dict[str, int] = {}
    """... and of `by[1]`."""

    def counts(self, name: str) -> dict[str, int]:
        """Members per value of one of the `by` attributes."""
        if name == self.by[0]:
            return self.first
        if name == self.by[1]:
            return self.second
        raise KeyError(name)

    def add(self, item: Lookup) -> None:
        self.members[item.number] = item
        if item.outcome == "miss":
            self.misses += 1
        # Written out: a loop over the two cost a tenth of the detectors' time.
        first, second = self.by
        counts, value = self.first, getattr(item, first)
        counts[value] = counts.get(value, 0) + 1
        counts, value = self.second, getattr(item, second)
        counts[value] = counts.get(value, 0) + 1

    def remove(self, item: Lookup) -> None:
        del self.members[item.number]
        self.misses -= item.outcome == "miss"
        for counts, name in ((self.first, self.by[0]), (self.second, self.by[1])):
            value = getattr(item, name)
            counts[value] -= 1
            if not counts[value]:
                del counts[value]

    def last(self, count: int) -> list[Lookup]:
        """The newest `count` members, oldest first (members are kept in time order)."""
        tail = list(islice(reversed(self.members.values()), count))
        tail.reverse()
        return tail

    def span(self, count: int) -> float:
        """Seconds covered by the newest `count` members."""
        tail = self.last(count)
        return tail[-1].t - tail[0].t if tail else 0.0


@dataclass(slots=True)
class AccountState:
    recent: deque[Lookup] = field(default_factory=deque)
    """First lookups within the window, oldest first."""
    known: OrderedDict[int, float] = field(default_factory=OrderedDict)
    """Numbers looked up within `known_seconds`, with their last lookup, oldest first."""
    forget_at: float = 0.0
    """Never later than when the oldest of `known` is due to be forgotten (its last lookup
    plus `known_seconds`), and 0 when that is not known (`known` empty, or its oldest moved):
    `known` is read again only once an event reaches it."""
    seq: int = 0
    """First lookups seen so far (never restarts while the state lives)."""
    ledger: Ledger = field(default_factory=Ledger)
    """The numbers of `known` counted per allocation block since the account's evidence
    last started afresh (compliance cleared it, or it came back from `review`)."""
    blocks: dict[tuple[int, int], Block] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    sprt: float = 0.0
    sprt_trail: deque[Lookup] = field(default_factory=lambda: deque(maxlen=EVIDENCE_NUMBERS))
    velocity_recent: deque[Lookup] = field(default_factory=deque)
    """First lookups of the last velocity window (a sliding window: a download that
    straddles a clock hour is not cut in two)."""
    velocity_misses: int = 0
    velocity_bucket: int = -1
    """The clock hour of the last first lookup, ..."""
    velocity_peak: int = 0
    """... and the most first lookups the sliding window held during it."""
    velocity_baseline: int = 0
    """Busiest window among those older than the baseline lag."""
    velocity_past: deque[tuple[int, int]] = field(default_factory=deque)
    """Ended clock hours (bucket, peak) not yet old enough for the baseline."""
    days: deque[Day] = field(default_factory=deque)
    """Lookups per day of the list-washing rule's span, oldest first."""
    washing_cleared: Clearance | None = None
    """The list-washing flags compliance last cleared, which raise the rule's bar."""
    fired: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Per reason code (and `WASHING`): the severity reached and when (it lapses after the
    window)."""
    held: dict[tuple[int, int], float] = field(default_factory=dict)
    """Allocation blocks (`holds.Hold`: size, first number) findings held, and when: kept
    until compliance releases them (`Engine.reset`), those not enforced only a window."""
    answered: set[tuple[int, int]] = field(default_factory=set)
    """... of which those not enforced (the account on `review`): its lookups there are
    answered, as anywhere else."""
    searches: Searches | None = None
    """Its name searches within the search-harvest test's windows (None: none lately)."""


def remembered(state: AccountState, number: int, sizes: Sequence[int]) -> Iterator[Lookup]:
    """The lookups of a number an account's state remembers (some more than once): in its
    blocks (every lookup within the window is, as in `recent`), and what the miss-ratio
    trail and the runs may keep longer."""
    for size in sizes:
        block = state.blocks.get((size, number // size))
        item = block.members.get(number) if block is not None else None
        if item is not None:
            yield item
    yield from (item for item in state.sprt_trail if item.number == number)
    yield from (item for run in state.runs for item in run.items if item.number == number)


@dataclass(slots=True)
class IpState:
    accounts: dict[str, float] = field(default_factory=dict)
    """Accounts seen from the address, with their last lookup."""
    lone: deque[Lookup] = field(default_factory=lambda: deque(maxlen=LONE_LOOKUPS))
    """The last first lookups while only one account used the address: counted in its
    blocks once a second account appears, so a scan split over accounts is seen whole."""
    blocks: dict[tuple[int, int], Block] = field(default_factory=dict)
    recent: deque[Lookup] = field(default_factory=deque)
    """The lookups counted into the blocks, oldest first: what the hourly prune expires
    (without reading every block)."""
    fired: set[tuple[int, int, str]] = field(default_factory=set)
    """(block size, block, account) named in a finding."""
    apart: dict[tuple[int, int, str], int] = field(default_factory=dict)
    """(block size, block, account) found apart from the block's scan (its lookups came
    before it), with how many numbers of the block it had then: judged again only once
    it has more."""


def span(items: deque[Lookup], last: int) -> float:
    """Seconds covered by the last `last` lookups (time-ordered)."""
    first = items[-min(last, len(items))]
    return items[-1].t - first.t
