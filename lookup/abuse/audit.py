"""The compliance decisions' audit trail: a hash chain with a head. Pure.

Each decision carries the hash of the one before and its own, over its
fields; the head (how many decisions, the last one's hash) moves with every
decision. An edit or insertion breaks the chain; a removal of the newest rows,
which the chain alone cannot show, no longer matches the head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal, get_args

import msgspec

DecisionKind = Literal["clear", "warn", "suspend", "reinstate"]
DECISIONS: Final[tuple[str, ...]] = get_args(DecisionKind)
STATUS_AFTER: Final[dict[str, str | None]] = {
    "clear": "active",
    "reinstate": "active",
    "suspend": "suspended",
    "warn": None,
}
"""The account's status a decision sets (a warning leaves it as it is)."""
GENESIS: Final = "0" * 64
"""The hash the first decision is chained from."""


class Decision(msgspec.Struct, frozen=True):
    """One compliance decision, as kept in the audit trail."""

    id: int
    case_id: int
    account: str
    decision: str
    actor: str
    reason: str
    ts: datetime
    prev_hash: str
    hash: str


def status_reason(decision: Decision) -> str:
    """The status reason a decision leaves on the account."""
    return f"case {decision.case_id}: {decision.decision} by {decision.actor}"


def seal(
    prev_hash: str,
    decision_id: int,
    case_id: int,
    account: str,
    decision: str,
    actor: str,
    reason: str,
    ts: datetime,
) -> Decision:
    """The decision chained after `prev_hash`, its hash computed."""
    fields = (decision_id, case_id, account, decision, actor, reason, ts)
    return Decision(*fields, prev_hash, _hash(prev_hash, fields))


def _hash(prev_hash: str, fields: Sequence[object]) -> str:
    text = "\x1f".join(
        [prev_hash, *(v.isoformat() if isinstance(v, datetime) else str(v) for v in fields)]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def intact(decisions: Sequence[Decision], head: tuple[int, str] | None) -> bool:
    """Whether the decisions, oldest first, are the whole unbroken chain `head` ends."""
    prev_hash = GENESIS
    for d in decisions:
        # Sealed again from its fields after the one before: any difference breaks the chain.
        if d != seal(prev_hash, d.id, d.case_id, d.account, d.decision, d.actor, d.reason, d.ts):
            return False
        prev_hash = d.hash
    return head == (len(decisions), prev_hash)
