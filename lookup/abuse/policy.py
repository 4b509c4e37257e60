"""Abuse policy: the thresholds of each rule and the action a finding leads to.

A false suspension stops a paying customer's caller ID, so rules flag (or, for
block rules, hold the one block) on thinner evidence and suspend only on evidence
that legitimate traffic does not produce: long runs or dense coverage *with
misses*, or a miss-ratio test far past its bound.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

import msgspec


def allocation_size(number: int) -> int:
    """Size of the block a national number was allocated in: 10,000 mobile, 1,000 else."""
    # Norway's plan: mobile numbers start with 4 or 9; the rest are geographic or service.
    return 10_000 if number // 10_000_000 in (4, 9) else 1_000


class Action(StrEnum):
    """What a finding does to the account, in increasing severity."""

    FLAG = "flag"
    THROTTLE = "throttle"
    SUSPEND = "suspend"


SEVERITY = {Action.FLAG: 1, Action.THROTTLE: 2, Action.SUSPEND: 3}


class Kind(StrEnum):
    """Reason codes of findings."""

    SEQUENTIAL_RUN = "sequential_run"
    BLOCK_COVERAGE = "block_coverage"
    MISS_RATIO = "miss_ratio"
    DISTINCT_VELOCITY = "distinct_velocity"
    DISTRIBUTED_SCAN = "distributed_scan"


class Verdict(NamedTuple):
    """A rule's verdict on a lookup."""

    kind: Kind
    strong: bool
    """Whether the rule's suspension criteria held."""
    evidence: Callable[[], dict[str, Any]]
    """Builds its evidence (only when the finding raises the severity), called before the
    account's state changes again: it may read that state rather than copy it."""
    holds: bool = False
    """Short of `strong`: thin evidence of a scan of the lookup's block, which a new
    customer's first callers can give too, so it holds the block (`holds`)."""
    apart: str | None = None
    """A slot of its own among the account's fired rules: the finding only flags, and
    neither corroborates another rule nor is corroborated (what a customer can look like
    as well, as list washing)."""
    alone: str | None = None
    """A slot of its own as well, but the finding acts as the policy says (the
    search-harvest test: its evidence is of searches, the other rules' of numbers)."""
    held: int | None = None
    """A national number in the block a verdict that `holds` holds, when not the
    lookup's: a block that took turns with the lookup's."""
    together: tuple[int, ...] = ()
    """A national number in each other block held on the same evidence at the same
    lookup: one hold of blocks taking turns, not a scan moving on to another block."""


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """Every threshold of the detectors; the defaults are the service's default policy."""

    window_seconds: float = 7 * 86400
    """How long a looked-up number counts towards block coverage."""
    known_seconds: float = 35 * 86400
    """A number the account looked up within this long (of its last lookup) is one it has:
    looking it up again is a repeat, which moves no scan rule. Longer than the window, so
    a weekly or monthly refresh of a customer list is all repeats after the first (with
    only the window, half of a weekly refresh was new again, and a town's share crowding
    one block for a moment in it suspended a three-block local business now and then)."""

    run_stride: int = 16
    """Numbers at most this far apart continue a run (catches strided walks)."""
    run_heads: int = 4
    """Runs followed at once, so interleaved traffic does not hide a walk."""
    run_flag: int = 24
    """Run length that flags (a company's direct-dial range is rarely longer than 20)."""
    run_suspend: int = 30
    run_suspend_miss_share: float = 0.2
    """A run suspends only with this share of misses: a direct-dial range is all hits."""

    block_sizes: tuple[int, ...] = (1_000, 10_000)
    """Block sizes watched (numbering blocks are 10,000 mobile, 1,000 geographic)."""
    block_flag: tuple[int, ...] = (8, 40)
    """Distinct numbers in one block (per size) that flag, when some of them missed."""
    block_suspend: tuple[int, ...] = (9, 60)
    """... and that suspend, when the excess and miss criteria hold too."""
    plan_numbers: int = 20_000_000
    """Numbers in use in Norway, roughly: how thinly scattered lookups spread over blocks."""
    block_excess: float = 10.0
    """A block suspends only above `block_suspend` plus this multiple of what the account's
    own volume would put in one block by chance (big customers have more per block)."""
    block_ceiling: float = 0.5
    """Share of a block's numbers (plus the chance excess) that suspends in the window
    with the suspension's misses, whatever the focus: more than a customer's list holds
    (a local business with 1,500 customers, 80 % of them in three town blocks, has a
    third of each). The bound on a scan taking turns between blocks behind decoys, or
    between more than `block_turns`, which divide its attention as a town's blocks do
    (one of 11 scans of three or four geographic blocks, none of its misses unusual, took
    a whole block before `block_turns`) ..."""
    block_flag_burst_seconds: float = 86400
    """The last `block_flag` numbers of a block must fall within this span to flag..."""
    block_suspend_burst_seconds: float = 6 * 3600
    """... and the last `block_suspend` within this one to suspend: customers' callers
    from one block (a company's direct-dial range) arrive over days, a walk in hours."""
    block_fast_size: int = 1_000
    """Block size of the fast rule: a geographic block, whose 1 % is a handful of listings."""
    block_fast_suspend: int = 5
    """Distinct numbers (plus the chance excess) of such a block that hold it on their own
    (the fast rule's tiers hold the allocation block rather than suspend: `holds`), ..."""
    block_fast_seconds: float = 1200
    """... when they came within this time (a scan at 90 s a lookup takes 9 minutes; a new
    local business's first morning brought 6 callers from its town's block in 35), ..."""
    block_fast_misses: int = 1
    """... with this many misses among them (a scanner cannot skip the unlisted numbers; a
    dense block can give it few, so no share is asked: focus keeps customers clear), or
    none, and `block_undivided_suspend` numbers, when the account looked up nothing else
    then nor in the `block_fast_seconds` before and the numbers spread wider than
    `company_range_width` (the first 8 of a dense block were all listed for a scan at 90 s
    a lookup), ..."""
    block_undivided_suspend: int = 4
    """Distinct numbers (plus the chance excess) of such a block that hold it so, undivided:
    a sparse block's 1 % is four or five listings, and a scan at 90 s a lookup, held at its
    6th number with 5, took 1.03 % of one (1 of 96 simulated months; at its 5th, none over
    1 %, and no customer more held, flagged or suspended, first refreshes included) ..."""
    company_range_width: int = 200
    """... unless they are a tight cluster narrower than this met in no particular order: a
    company's direct-dial range calling in (a walk goes in order, a shuffled scan is wide) ..."""
    block_fast_known: int = 3
    """... or the account had looked up more than this many of the block's numbers (in the
    window, over `block_fast_seconds` before them): a local business's town blocks fill with
    its callers over days, and six of them can call in one Monday morning's first minutes; a
    scan starts on a block new to the account (one of a known block is left to the count)."""
    block_rapid_suspend: int = 3
    """Distinct numbers (plus the chance excess) of such a block that hold it with no miss
    among them when they came within `block_rapid_seconds` and the account looked up nothing
    else since (nor over `block_fast_seconds` before), the rest of the fast rule holding:
    the first numbers of a sparse block can all be listed, and four are 1 % of its listings
    already ..."""
    block_rapid_seconds: float = 60
    """... a pace at which no customer's callers crowd one block (a local business's first
    list refresh did, 4 of its first 5 numbers in one town block: hence nothing else)."""
    block_decoy_suspend: int = 5
    """Distinct numbers (plus the chance excess) of a geographic block that hold it within
    `block_fast_seconds`, spread wider than `company_range_width`, when every other new
    number of the account since them (and in the `block_fast_seconds` before) is alone in
    its allocation block: a scan hiding behind decoys from anywhere in the plan, which halve
    its focus (stopped at the block's 10th number by the slow rule, 9 of 18 such scans got
    over 1 % of the block), ..."""
    block_decoy_misses: int = 0
    """... with this many misses among them. Two kept the first seconds of a new local
    business's first bulk refresh clear (its other town blocks' numbers are alone at
    first), but a dense block giving a scan one miss in its first numbers left it to the
    slow rule (3 of 96 simulated months' decoy scans took 1.7-2.1 % of a block; with none
    asked, 1 took 1.01 %); the price, a block held in 1.5 % of six-block towns' first
    months (0.5 % with two), 4.5 % of four-block towns' (3.5 %), none more suspended."""
    block_decoy_listed_suspend: int = 4
    """... or this many (plus the chance excess), the rest as for `block_decoy_suspend`,
    when every one of them was listed: held at its 6th number, a decoy scan whose first
    six were all listed had six listings, 1.01 % of a block of 597 (1 of 96 simulated
    months), where one with a miss among its first five has five at most. A customer's
    callers are often unlisted (a third): of the 4 customers in 96 simulated months whose
    town block a 5th number would hold, misses or not (3 local businesses' first
    refreshes, and one's first callers), none had five listed."""
    block_focus: float = 0.7
    """Share of the account's new numbers that must fall in the number's allocation block
    for the block rules to fire: a scan works one block at a time; a local business's
    callers spread over its town's blocks (a quarter each for a three-block town) ..."""
    block_pair_focus: float = 1.0
    """... or that the block and the one other block the account looked up most then must
    take together, for the slow rule: a scan working two blocks at once, taking turns,
    gives each half its attention (with 0.7 alone it was never stopped, and 76 % of a
    block was taken); a town's three blocks leave the busiest two a third short ..."""
    block_pair_fast_span: int = 10
    """... and for the fast rule, the block and one other taking all of them, lone ones
    included, when they were at least this many: two blocks taking turns are stopped at
    a block's 5th number, not its 10th (13 of 17 such scans took over 1 % of a block
    at the 10th); a town's callers from elsewhere keep all but one more in 200
    three-block towns' first refreshes clear of it (14 let 2 of 11 scans past 1 %, at no
    cost) ..."""
    block_pair_fast_suspend: int = 4
    """Distinct numbers (plus the chance excess) of a geographic block that hold it, with
    `block_fast_misses` among them within `block_fast_seconds`, when it and the blocks it
    took turns with (`block_pair_fast_span`, `block_turns_each`) took all the account's
    new numbers: each of those blocks is held with it, on the same evidence. Held one at
    a time at a block's 6th number, as each reached it, two- and three-block scans had
    by then taken the first block's 5th or 6th listing: 1.05–1.15 % of a sparse block in
    4 of 96 simulated months; at the 5th, all together, none over 1 %, and no customer
    of theirs more held, flagged or suspended (a first refresh: `block_turns_each`) ..."""
    block_pair_rapid_suspend: int = 3
    """... or, with no miss asked, this many (plus the chance excess) spread wider than
    `company_range_width` within `block_rapid_seconds`, when it and one other block took
    all of at least `block_pair_rapid_span`, the other two or more within the minute as
    well (`Focus.turning`): a dense block's first five can all be listed,
    and a pair within a minute is no customer's callers (a first refresh of a one- or
    two-block town's customers, at a machine's pace, is stopped by the tiers for one
    block already) ..."""
    block_pair_rapid_span: int = 8
    """... in all (four a block, taking turns): a pair's 9th lookup took a block's 5th
    listing (1.15 % of one with 435) ..."""
    block_turns: int = 16
    """... or that the block and the `block_turns` - 1 others the account looked up most then,
    each with two numbers at least, must take of all its new numbers, strays alone in their
    blocks included: a scan taking turns between 3 to 16 blocks (stopped only at
    `block_ceiling` before, half a block), which a town's blocks would match but for the
    callers from elsewhere, alone in theirs (let the busiest blocks take one each, and a
    three-block town's first refresh was suspended four times as often with 12), ..."""
    block_turns_each: int = 5
    """... over at least this many new numbers a block (15 for three blocks, 20 for four),
    for the fast rule (its numbers within minutes) and up to `block_turns_few` blocks: a
    scan taking turns between them is stopped at a block's fifth number, all its blocks
    held together, under 1 % of a sparse geographic block's listings (at 16 and 21,
    before a block's sixth, three-block scans took 1.07 and 1.12 % in 2 of 96 simulated
    months, a first block's first five all listed); the price, a town's callers, four in
    five from its blocks in the simulation, all from them 16 in a row in 2.8 % of first
    refreshes (21: 0.9 %), and three town blocks held in 7.0 % of first refreshes
    (`bench/first_refresh.py`; 3.0 % at 16; 8.0 % with `block_decoy_listed_suspend`),
    though suspended no more often ..."""
    block_turns_few: int = 4
    """... (more blocks, or the slow rule, ask for `block_turns_span`: a business of six
    town blocks had its first refresh's first 31 numbers all from them in one of 48
    simulated months, and one of three its first day's 36 callers) ..."""
    block_turns_span: int = 60
    """... and otherwise at least this many: a town's callers all come from them 60 in a
    row once in a million ..."""
    block_focus_span: int = 20
    """... counted over all the account's new numbers of the `block_fast_seconds` before the
    block's numbers began (a first bulk refresh of a customer list crowding two town blocks
    put 14 of 20 numbers in a row in one of them by chance; over its minutes it is 40 %)
    and, but for the fast rule, at least its last this many (for the fast rule only those
    minutes: an account's honest past would otherwise shield a scan that follows it) ..."""
    block_slow_focus_span: int = 30
    """... or this many, when the block's last `block_flag` numbers took longer than
    `block_suspend_burst_seconds` (they can only flag then): over a day, a local business's
    callers, a third to each of its town's three blocks, put 13 of the 17 not alone in
    their blocks in one of them now and then (9 of 48 such businesses flagged in a month
    with 20, 3 with this, 2 of those by the fast rule; every scan of `make eval-abuse` was
    stopped as before) ..."""
    block_focus_limit: int = 200
    """... reading at most this many (a bulk job's minutes hold thousands)."""
    hold_turns_seconds: float = 1200
    """A block rule's evidence that would hold a block suspends instead when another block
    was held for the account within this long: a scan taking turns between blocks (a new
    local business's first callers held one town block, in 2 of 4,320 simulated
    customer-months, never two)."""
    hold_limit: int = 2
    """... and when this many other blocks were held for it within `window_seconds`,
    however far apart: a scan resting over `hold_turns_seconds` between blocks was given
    a hold for each, 30 over 120 lookups, and never suspended."""
    held_block_suspend: int = 5
    """In a block held for the account (enforced: one on `review` is answered there), the
    count's suspension bound asks for this many of the allocation block's new numbers
    since the hold within `block_fast_seconds` as well (0: not): a scan
    going on into its held block at a scan's pace. A new local business's callers from
    its town block, held on its first morning, went on coming as they rang (4 over the
    next 2.5 hours), and the count suspended it (1 of 4,320 simulated customer-months);
    with this, none, and every scraper still suspended, as many lookups in."""
    block_known_hold: int = 16
    """An allocation block holding this many of the numbers the account has (looked up
    within `known_seconds`, the chance excess added), `block_suspend_miss_share` of them
    last answered as misses, where the account's attention is, is held (the `known`
    tier): a scan too slow for the window's bounds. Before it, a number of one block
    every 45 minutes took 89 % of it in 28 days, one every 200 minutes 4.6 % in a week,
    one behind a repeat and a decoy pair 98 % in 14 days (`bench/evasions.py`); now
    1.0-2.1 %, about 8 listings of a dense block's 500. Fewer held local businesses'
    town blocks in their first days, when a few callers crowd one by chance. Read with
    the window's block of the allocation size (its evidence): a policy whose
    `block_sizes` leave one out has no `known` tier for it ..."""
    block_known_focus: float = 0.8
    """... (that share of the numbers the account has in blocks at least `block_known_busy`
    as busy, those it has left aside): 0.7 as the window's rules held a block in 6.5 % of
    simulated two-block towns' months of new callers (12 a day, four in five from the
    town; 0.5 % before the tier), 0.8 in 1 %, and three-block towns' in none of 200 ..."""
    block_known_busy: float = 0.25
    """... counting as sharing the attention only the blocks that hold at least this share
    of the block's count: the decoys a scan spreads over the plan, a few numbers a block,
    do not; a town's blocks do ..."""
    block_known_recent: int = 16
    """... and that had a number looked up (new, or again) since the first of the block's
    last this many within the window (or within the window, when it holds fewer): a scan
    moving on from block to block has left the blocks before, while a town's blocks each
    get their callers all along (without repeats and the window, a three-block town whose
    callers from two blocks were all known had the third held, 1 of 96 simulated months)."""
    block_known_turns: float = 0.99
    """Short of that focus, the blocks sharing the attention holding this share of all the
    numbers the account has, over at least `block_known_turns_span`, flag (the tier
    `known_turns`): a scan taking turns between blocks with nothing else between them
    (three blocks at paces 3:1:1 took 54 % of one in 28 days; 300 blocks slowly 5 % of
    each in a week). Only a flag: a town's callers from elsewhere (a fifth in the
    simulation; most ring from mobiles) keep it clear, but at 0.95 a town with one caller
    in ten from elsewhere had a block held in 15 % of simulated months ..."""
    block_known_turns_span: int = 100
    block_flag_miss_share: float = 0.1
    """A block looked up without misses is a customer's own numbers (a direct-dial range)."""
    block_suspend_miss_share: float = 0.2

    miss_legit: float = 0.35
    """Miss probability of legitimate lookups (H0 of the sequential probability ratio test)."""
    miss_scan: float = 0.6
    """Miss probability of a scan (H1). Nearer H0 the test restarts less often but a busy
    customer's repeated tests cross the bound by chance (seen at 0.5 within 400,000 lookups)."""
    sprt_alpha: float = 1e-4
    sprt_beta: float = 1e-2

    velocity_window_seconds: float = 3600
    """The sliding window new numbers are counted over."""
    velocity_floor: int = 60
    """New numbers per window below which velocity never fires (fewer are too few for the
    miss test; a big customer's first day, with no history yet, brings 300 an hour) ..."""
    velocity_factor: float = 6.0
    """... and the multiple of the account's own busiest past window it must exceed ..."""
    velocity_baseline_lag_seconds: float = 86400
    """... counting only windows this long ago: a bulk download must not raise its own bar."""
    velocity_throttle_z: float = 3.0
    """Throttles when the window's misses exceed `miss_legit` by this many standard
    deviations (tested on every new number, so the bar stands well above chance: customers'
    first days, with no history to compare with, reached 2.64 over 32 simulated months, and
    between 2.8 and 3.0 over 96 (a large CRM's, seeds 33 and 89); refresh jobs miss as often
    as callers) ..."""
    velocity_suspend_z: float = 3.3
    """... and suspends at this many (one-sided p < 0.0005 for one test; a random sample of
    the plan, half of it unlisted, gets there after about 100 numbers, often sooner): a
    bulk download of numbers the customer does not have. At 3.0 a random sample was stopped
    sooner (median 76 lookups over 96 months, against 89) with no customer suspended in
    them, but with customers' first days reaching 2.8 the margin is under 0.2; at 2.8 two
    large CRMs were suspended."""

    washing_daily_new: int = 200
    """New numbers in a UTC day (numbers the account had not looked up within
    `known_seconds`) from which the day counts towards list washing, ..."""
    washing_new_share: float = 0.8
    """... when they were at least this share of its lookups: a customer's callers are
    mostly repeats after its first day (a busy CRM's 1,500 calls a day from 4,000
    customers were 60 % new on its first), a list washer's never are; ..."""
    washing_days: int = 3
    """... and such days, at least this many of the `washing_span_days` before the current
    one (each judged once it is over: a nightly import of sign-ups is all new until the
    callers ring), flag: one day like that is a new customer's first list refresh, or a
    campaign's import."""
    washing_span_days: int = 7
    washing_cleared_factor: float = 2.0
    """Once compliance has cleared an account's list-washing flag (cleared it with no
    warning or suspension on the case), a day counts only with more new numbers than this
    multiple of the busiest day that counted towards the flag: a customer with a huge base
    looks the same every week, and was flagged again three such days after each
    clearance; ..."""
    washing_cleared_days: int = 30
    """... for this many days after the clearance: a cleared first refresh of 40,000
    numbers a day would otherwise keep the rule off for good."""

    search_hour_floor: int = 2000
    """Listings name searches returned to an account within an hour (a sliding window) below
    which the search-harvest test never fires: the default search plan's whole hour, 40
    full pages of 50. The harness's desk of 15 agents has 1,450-1,650 in its busiest hour
    (its first 09:00), 60-72 % of them from full pages; ..."""
    search_day_floor: int = 6000
    """... within a day (the plan allows 10,000; the desk takes 4,600-5,000), which
    suspends ..."""
    search_week_floor: int = 15000
    """... and within a week (the desk takes 20,700-22,100), which suspends too: a download
    that dilutes its full pages under `search_pages_share`, paced under the day's floor, is
    stopped within a week; ..."""
    search_factor: float = 4.0
    """... each never under this multiple of the account's own busiest such window that
    ended at least `search_baseline_lag_seconds`, and its own length, before (a desk that
    always takes this many is judged by its own measure, and a download does not raise
    its own bar) ..."""
    search_baseline_lag_seconds: float = 86400
    search_full_share: float = 0.75
    """... and only when full pages (more matched than the search returned) brought at
    least this share of those listings: a bulk download by name asks broad questions and
    takes every page whole; staff looking for one person mostly get a few answers (the
    desk above, a quarter of whose searches fill the page, gets 60-72 % of its listings
    from full pages in its busiest hour, 62-77 % in its busiest day)."""
    search_plan_scale_most: float = 10.0
    """The most an account's own search plan moves the floors (times): a plan of no limit
    in effect, given to an internal desk, must not take its stolen key out of the test."""
    search_pages_floor: int = 2000
    search_pages_share: float = 0.9
    """Listings within a day, and their share from full pages, from which the test
    suspends whatever the account's measure: a download taking page after page (a full
    page of 50 every six minutes of business hours stays under every other floor). The
    harness's desks reach 0.79 of a busy hour, 0.77 of a day, at most."""

    distributed_min_accounts: int = 2
    distributed_min_share: int = 2
    """Numbers an account must contribute to a scanned block (to the fast rule's burst, when
    that holds) to be named in the finding (three accounts sharing a fast scan of a
    geographic block have two each when it suspends)."""
    distributed_gap_seconds: float = 60
    """An account whose lookups of an address's block all came before the scan began (the
    first lookup of the account that began last), by more than this many seconds and twice
    that account's pace, is not named: a customer behind a SaaS integrator's address whose
    callers were in the block minutes or days before another account scanned it was
    suspended with it. Accounts taking turns, or relaying the block at its pace, are one
    scan."""

    swarm_tiny: int = 3
    """New numbers of one allocation block an account may have looked up to count towards
    a swarm of that block (a block split between accounts issued for it, each on an
    address of its own); ..."""
    swarm_small: int = 8
    """... and numbers in all (within `known_seconds`): a new account's first few. Numbers
    elsewhere do not take it out (a decoy before its share of the block did), while a
    customer with a month's callers is no account issued for a block; ..."""
    swarm_accounts: int = 6
    swarm_numbers: int = 12
    swarm_misses: float = 0.2
    """... such accounts, the numbers they hold in it, and the share of misses among them,
    from which the block is swarmed: each of them, and each like them after, has it held.
    A customer's first numbers spread over the plan; six new customers whose first few
    numbers all lie in one block within a day, a fifth of them unlisted, do not happen by
    chance (a town's integrator taking on its first customers one by one could)."""
    swarm_seconds: float = 86400
    """How long an account's first numbers count towards a swarm, and a block stays
    swarmed once found."""
    swarm_young_seconds: float = 7 * 86400
    """While a block stays swarmed, the API refuses it to accounts opened within this long
    before it was found, or not yet (from their first lookup, before it is answered): a
    swarm's later accounts are issued for it, so each would otherwise take its first number
    before its hold. An account opens at its first lookup or search, not when its key was
    made: one made long ago and kept unused is new. An established customer is older; a
    new customer whose callers come from a block under a swarm waits until the swarm's day
    is over."""

    def __post_init__(self) -> None:
        # The rules read these together and rely on them: a negative chance excess would
        # lower every bound (the block rule skips blocks below the bounds without it).
        if not len(self.block_sizes) == len(self.block_flag) == len(self.block_suspend):
            raise ValueError("block_sizes, block_flag and block_suspend must be as long")
        if self.block_excess < 0 or self.plan_numbers <= 0:
            raise ValueError("block_excess must be at least 0 and plan_numbers above 0")
        if min(self.block_known_hold, self.block_known_recent, self.block_known_turns_span) < 1:
            raise ValueError("block_known_hold, _recent and _turns_span must be at least 1")
        if not (0 < self.block_known_busy <= 1 and 0 < self.block_known_turns <= 1):
            raise ValueError("block_known_busy and block_known_turns must be in (0, 1]")

    def allocation_size(self, number: int) -> int:
        """Size of the block a national number was allocated in: 10,000 mobile, 1,000 else."""
        return allocation_size(number)

    def action(
        self, kind: Kind, *, strong: bool, corroborated: bool = False, holds: bool = False
    ) -> Action:
        """The action of a finding.

        `strong`: the rule's own suspension criteria held. `corroborated`: a
        different rule already fired for the account; two independent rules
        agreeing is strong evidence. `holds`: short of those, the rule holds
        the block (a throttle, which holds it as well as slowing the account).
        """
        if kind is Kind.MISS_RATIO:
            # Misses alone also describe a CRM whose callers are often unlisted: this
            # test suspends only when another rule agrees.
            strong = False
        if strong or corroborated:
            return Action.SUSPEND
        if holds or kind is Kind.DISTINCT_VELOCITY:
            return Action.THROTTLE
        return Action.FLAG


DEFAULT_POLICY = Policy()
