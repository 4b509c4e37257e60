"""The `distinct_velocity` rule: too many new numbers in the last hour, with too many misses.

Pure. The bar is the account's own: a multiple of its busiest hour at least a
day ago (so a download never raises its own bar), never under a floor; and
only misses well above what customers get (a z-score against `miss_legit`)
make a burst of new numbers a bulk download rather than a list refresh.
"""

from __future__ import annotations

import math
from itertools import islice
from typing import Any

from lookup.abuse.policy import Kind, Policy, Verdict
from lookup.abuse.state import EVIDENCE_NUMBERS, AccountState, Lookup, trail


class Velocity:
    """The velocity rule over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(self, state: AccountState, lookup: Lookup) -> list[Verdict]:
        """Slide the account's window over the new number; a verdict when the bar is met."""
        policy = self.policy
        window = policy.velocity_window_seconds
        recent = state.velocity_recent
        recent.append(lookup)
        state.velocity_misses += lookup.outcome == "miss"
        while recent[0].t <= lookup.t - window:
            state.velocity_misses -= recent.popleft().outcome == "miss"
        count = len(recent)
        bucket = int(lookup.t // window)
        if bucket != state.velocity_bucket:
            if state.velocity_peak:
                state.velocity_past.append((state.velocity_bucket, state.velocity_peak))
            lag = policy.velocity_baseline_lag_seconds / window
            while state.velocity_past and bucket - state.velocity_past[0][0] > lag:
                state.velocity_baseline = max(
                    state.velocity_baseline, state.velocity_past.popleft()[1]
                )
            state.velocity_bucket, state.velocity_peak = bucket, 0
        state.velocity_peak = max(state.velocity_peak, count)
        bound = max(policy.velocity_floor, policy.velocity_factor * state.velocity_baseline)
        if count < bound:
            return []
        legit, misses = policy.miss_legit, state.velocity_misses
        z = (misses - count * legit) / math.sqrt(count * legit * (1 - legit))
        if z < policy.velocity_throttle_z:
            return []
        baseline, share = state.velocity_baseline, misses / count
        quoted = list(islice(reversed(recent), EVIDENCE_NUMBERS))[::-1]

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "new_numbers_in_window": count,
                    "window_seconds": policy.velocity_window_seconds,
                    "account_busiest_past_window": baseline,
                    "bound": bound,
                    "miss_share": round(share, 3),
                    "misses_z": round(z, 2),
                    "throttle_z": policy.velocity_throttle_z,
                    "suspend_z": policy.velocity_suspend_z,
                },
                "lookups": trail(quoted),
            }

        return [Verdict(Kind.DISTINCT_VELOCITY, z >= policy.velocity_suspend_z, evidence)]
