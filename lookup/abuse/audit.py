"""The compliance decisions' audit trail: a hash chain with a head. Pure.

Each decision carries the hash of the one before and its own, over its
fields; the head (how many decisions, the last one's hash) moves with every
decision. An edit or insertion breaks the chain; a removal of the newest rows,
which the chain alone cannot show, no longer matches the head. A rewrite that
seals every later decision again, head included, is caught only by a head kept
outside the file (`check`'s `recorded`).
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


class ChainCheck(msgspec.Struct, frozen=True, kw_only=True):
    """What checking the audit trail found, for a reviewer: whether it is intact, and if
    not, where it breaks and why; its head, to be kept elsewhere and checked against later."""

    intact: bool
    decisions: int
    """Decisions in the trail."""
    head: str
    """The newest decision's hash (`GENESIS` for none)."""
    broken_at: int | None = None
    """The first decision that does not match its hash, or the recorded head's."""
    problem: str | None = None
    """Why it is not intact, in words."""


def check(
    decisions: Sequence[Decision],
    head: tuple[int, str] | None,
    recorded: tuple[int, str] | None = None,
) -> ChainCheck:
    """Whether the decisions, oldest first, are the whole unbroken chain `head` ends and,
    given a head `recorded` elsewhere earlier (how many decisions, the last one's hash),
    whether they still pass through it.

    Anyone who can write the compliance file can rewrite a decision and seal every later
    one again, head included: the chain alone then holds. A head kept outside the file
    does not move with it.
    """
    prev_hash = GENESIS
    for position, d in enumerate(decisions, start=1):
        # Sealed again from its fields after the one before: any difference breaks the chain.
        if d != seal(prev_hash, d.id, d.case_id, d.account, d.decision, d.actor, d.reason, d.ts):
            return ChainCheck(
                intact=False,
                decisions=len(decisions),
                head=decisions[-1].hash,
                broken_at=d.id,
                problem=f"decision {d.id} ({position} of {len(decisions)}) does not match its "
                "hash or the one before it: edited, inserted or reordered",
            )
        prev_hash = d.hash
    found = ChainCheck(intact=True, decisions=len(decisions), head=prev_hash)
    if head != (len(decisions), prev_hash):
        count = head[0] if head else 0
        return msgspec.structs.replace(
            found,
            intact=False,
            problem=f"the trail's head names {count} decisions, and {len(decisions)} are there: "
            + (
                "the newest were removed"
                if count > len(decisions)
                else "some were added behind the service's back, or the head edited"
            ),
        )
    if recorded is not None:
        count, recorded_hash = recorded
        within = 0 < count <= len(decisions)
        passes = (
            decisions[count - 1].hash == recorded_hash
            if within
            else count == 0 and recorded_hash == GENESIS
        )
        if not passes:
            return msgspec.structs.replace(
                found,
                intact=False,
                broken_at=decisions[count - 1].id if within else None,
                problem=f"the trail does not pass through the recorded head "
                f"{count}:{recorded_hash}: rewritten (or cut) since it was recorded",
            )
    return found


def intact(decisions: Sequence[Decision], head: tuple[int, str] | None) -> bool:
    """Whether the decisions, oldest first, are the whole unbroken chain `head` ends."""
    return check(decisions, head).intact
