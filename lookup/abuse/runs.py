"""The `sequential_run` rule: new numbers each within a stride of one before them.

Pure. A walk through a range, in order or with a stride, as a scan takes it; a
company's direct-dial range calling in is a short run, and only a long one with
misses, fast, suspends.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from lookup.abuse.policy import Kind, Policy, Verdict
from lookup.abuse.state import AccountState, Lookup, Run, quoted, span, trail


class SequentialRuns:
    """The run rule over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(self, state: AccountState, lookup: Lookup) -> list[Verdict]:
        """Extend the run the new number continues (or start one); its verdict, if any."""
        policy = self.policy
        best: Run | None = None
        for run in state.runs:
            gap = abs(lookup.number - run.head)
            if 0 < gap <= policy.run_stride and (
                best is None or gap < abs(lookup.number - best.head)
            ):
                best = run
        if best is None:
            if len(state.runs) >= policy.run_heads:
                del state.runs[0]
            best = Run(head=lookup.number)
        else:
            state.runs.remove(best)
        # Least recently extended first: the one a new run replaces.
        state.runs.append(best)
        best.add(lookup)
        while lookup.t - best.items[0].t > policy.window_seconds:
            best.drop_oldest()
        length = len(best.items)
        if length < policy.run_flag or span(best.items, policy.run_flag) > (
            policy.block_flag_burst_seconds
        ):
            return []
        share = best.misses / length
        strong = (
            length >= policy.run_suspend
            and share >= policy.run_suspend_miss_share
            and span(best.items, policy.run_suspend) <= policy.block_suspend_burst_seconds
        )
        run, misses = best, best.misses

        def evidence() -> dict[str, Any]:
            # Built at once, before the run changes again (copied only then: it is long).
            items = list(run.items)
            return {
                "rule": {
                    "run_length": length,
                    "misses": misses,
                    "miss_share": round(share, 3),
                    "stride_max": policy.run_stride,
                    "flag_at": policy.run_flag,
                    "suspend_at": policy.run_suspend,
                    "suspend_miss_share": policy.run_suspend_miss_share,
                },
                "range": [
                    quoted(min(items, key=attrgetter("number"))),
                    quoted(max(items, key=attrgetter("number"))),
                ],
                "lookups": trail(items),
            }

        kind = Kind.DISTRIBUTED_SCAN if best.spread() else Kind.SEQUENTIAL_RUN
        return [Verdict(kind, strong, evidence)]
