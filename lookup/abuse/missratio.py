"""The `miss_ratio` rule: a sequential probability ratio test of misses among new numbers.

Pure. Threshold random walk (Jung et al., scan detection): each new number's
outcome moves a log-likelihood ratio of "scan" (H1: `miss_scan` misses) against
"customer" (H0: `miss_legit`); past the upper bound it flags, and below the
lower bound the test ends as benign and starts anew. Misses alone never
suspend (a CRM whose callers are often unlisted misses a lot too): the policy
suspends on this test only when another rule agrees.
"""

from __future__ import annotations

import math
from typing import Any

from lookup.abuse.policy import Kind, Policy, Verdict
from lookup.abuse.state import AccountState, Lookup, trail


class MissRatio:
    """The miss-ratio test over one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._miss_step = math.log(policy.miss_scan / policy.miss_legit)
        self._hit_step = math.log((1 - policy.miss_scan) / (1 - policy.miss_legit))
        self._upper = math.log((1 - policy.sprt_beta) / policy.sprt_alpha)
        self._lower = math.log(policy.sprt_beta / (1 - policy.sprt_alpha))

    def check(self, state: AccountState, lookup: Lookup) -> list[Verdict]:
        """Step the account's walk by the new number's outcome; a verdict past the bound."""
        state.sprt += self._miss_step if lookup.outcome == "miss" else self._hit_step
        state.sprt_trail.append(lookup)
        if state.sprt <= self._lower:
            # Evidence of benign traffic ends the test; start anew.
            state.sprt = 0.0
            state.sprt_trail.clear()
            return []
        if state.sprt < self._upper:
            return []
        score, walk = state.sprt, list(state.sprt_trail)

        def evidence() -> dict[str, Any]:
            return {
                "rule": {
                    "log_likelihood_ratio": round(score, 3),
                    "upper_bound": round(self._upper, 3),
                    "miss_legit": self.policy.miss_legit,
                    "miss_scan": self.policy.miss_scan,
                    "misses_in_trail": sum(1 for item in walk if item.outcome == "miss"),
                    "trail_length": len(walk),
                },
                "lookups": trail(walk),
            }

        return [Verdict(Kind.MISS_RATIO, False, evidence)]
