"""The internal compliance API (role `compliance`): flagged accounts, evidence, decisions.

Decisions are appended to a hash-chained audit trail that the API cannot edit
or delete; suspend and reinstate take effect on the account at once.
"""

from __future__ import annotations

import codecs
import re
import threading
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from lookup.abuse.audit import STATUS_AFTER, ChainCheck, Decision, DecisionKind, status_reason
from lookup.abuse.cases import CaseListing
from lookup.abuse.events import utc_now
from lookup.abuse.holds import holds_of, mark_held, standing
from lookup.api import openapi
from lookup.api.auth import role
from lookup.api.params import LARGEST_ID, check_query, check_whole_number, path_id
from lookup.api.services import Services
from lookup.errors import (
    AccountNotFound,
    AccountNotSuspended,
    AmbiguousBody,
    InvalidParameter,
    NotJson,
    OwnAccount,
    UnknownAccount,
    UnreadableBody,
)
from lookup.ingest.records import Reservation
from lookup.ingest.rules import PRIVACY_RANK
from lookup.ingest.warehouse import Warehouse
from lookup.jsonkeys import decode_object, repeated_key
from lookup.keys import ApiKey
from lookup.numbers import InvalidNumber, InvalidReason, e164, normalize, shown
from lookup.subjects import SubjectReport, report
from lookup.text import first_bidi_control, first_control, invisible
from lookup.timezones import in_utc, utc

# What each decision does to the account's status (warn leaves it as it is).


_BODY_PROBLEMS: Final = (
    "bad-request",
    "invalid-parameter",
    "body-too-large",
    "unsupported-media-type",
)
"""What a request with a JSON body may be refused for: not JSON (or a key given twice), a
field it cannot use, too long, declared as something else."""
DEFAULT_CASES: Final = 100
MAX_CASES: Final = 500
"""Cases a page of `GET /cases` holds by default, and at most (a year's closed cases are
thousands, each with its account's status to read)."""
_DECIDING: Final = threading.Lock()
"""One decision at a time: whether the account is suspended is read from the key store
and its new status written there after the audit trail's transaction, so two officers
reinstating at once would both be recorded. One process serves this API (the store's
owner), so a lock in it is enough."""
CASE_ID: Final = PathParameter(
    description="The case's id: a whole number in plain digits.",
    # Shown in the schema, not checked by Litestar: `path_id` says what is wrong.
    schema_extra={"pattern": "^(0|[1-9][0-9]{0,18})$"},
)
"""A case id as paths take it (as text: `path_id` reads it, refusing what `int` would
take for another id)."""


async def _one_json_object(request: Request[Any, Any, Any]) -> None:
    """Refuse a body declared as another media type, or giving a key twice, before the
    handler decodes it (the decoder would keep a repeated key's last value silently)."""
    declared, _, parameters = request.headers.get("content-type", "").partition(";")
    declared = declared.strip().lower()
    if declared and declared != "application/json" and not declared.endswith("+json"):
        raise NotJson(f"the body is declared as {declared!r}: send it as application/json")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            # Read as UTF-8 whatever it said: a reason in Latin-1 would be kept garbled.
            raise NotJson(f"the body is declared as {charset!r}: send it as UTF-8")
    body = await request.body()
    if body.startswith(codecs.BOM_UTF8):
        # The decoder's words for it: "invalid character (byte 0)".
        raise UnreadableBody(
            "the body starts with a byte-order mark (EF BB BF): send the JSON without one"
        )
    try:
        fields = decode_object(body)
    except (msgspec.DecodeError, RecursionError):
        return  # not an object: the handler's decoding says what is wrong with it
    repeated = repeated_key(body.decode(), len(fields))
    if repeated is not None:
        raise AmbiguousBody(
            f"the body gives {repeated[0]!r} more than once: which value holds cannot be told"
        )


_DECISION_PROBLEMS: Final = (
    "case-not-found",
    "case-closed",
    "not-current-case",
    "account-not-found",
    "account-not-suspended",
    "own-account",
)


class DecisionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A compliance officer's decision on a case."""

    decision: DecisionKind
    reason: str


class ErasureRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Why a subject's data is erased (the request's reference)."""

    reason: str


class SwarmedBlock(msgspec.Struct, frozen=True):
    """A block refused to new accounts: many of them split it (`block-swarmed`)."""

    block: str
    accounts_opened_after: datetime
    """It is refused to accounts first used after this, or not used yet."""
    until: datetime
    """... until this (or until an operator's `lookup keys swarms --end`)."""


class ComplianceController(Controller):
    """Review of accounts the abuse detectors flagged.

    Sync handlers in Litestar's thread pool: the compliance store and the key
    store block (DuckDB, SQLite, the monitor's lock), and must not stall the loop.
    """

    path = "/internal/v1"
    opt = role("compliance")
    tags = ["compliance"]  # noqa: RUF012

    @get(
        "/cases",
        summary="Flagged accounts and their cases",
        sync_to_thread=True,
        responses=openapi.problems("invalid-parameter"),
    )
    def cases(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[CaseListing, QueryParameter(description="open, closed or all")] = "open",
        limit: Annotated[
            int, QueryParameter(description=f"At most this many (1-{MAX_CASES}).")
        ] = DEFAULT_CASES,
        before: Annotated[
            int | None,
            QueryParameter(description="Only cases older than this id (the page's last)."),
        ] = None,
    ) -> Response[list[dict[str, Any]]]:
        """Cases, newest first, with the account's current status; a page at a time (a
        `Link` header with `rel="next"` names the next page)."""
        check_query(request, "status", "limit", "before")
        for name in ("limit", "before"):
            check_whole_number(name, request.query_params.get(name))
        if not 1 <= limit <= MAX_CASES:
            raise InvalidParameter("limit", f"limit must be 1 to {MAX_CASES}")
        services: Services = request.app.state.services
        if before is not None:
            before = min(before, LARGEST_ID)  # any id past the last: from the newest
        listed = None if status == "all" else status
        cases = services.store.cases.summaries(listed, limit=limit + 1, before=before)
        headers = {}
        if len(cases) > limit:
            cases = cases[:limit]
            query = {"limit": str(limit), "before": str(cases[-1]["id"]), "status": status}
            headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        cases = in_utc(cases, "opened_at", "closed_at", "last_finding_at")
        for case in cases:
            case["account_status"] = _standing(services, case["account"])
        return Response(cases, headers=headers)

    @get(
        "/cases/{case_id:str}",
        summary="A case's evidence",
        sync_to_thread=True,
        responses=openapi.problems("case-not-found", "invalid-parameter"),
    )
    def case(
        self, request: Request[Any, Any, Any], case_id: Annotated[str, CASE_ID]
    ) -> dict[str, Any]:
        """Findings with evidence, the account's lookups around them, blocks it covered."""
        check_query(request)
        number = path_id("case_id", case_id)
        services: Services = request.app.state.services
        _log_current(services)
        case = services.store.cases.get(number)
        findings = services.store.cases.findings(number)
        moments = [finding["ts"] for finding in findings] or [case.opened_at]
        # A closed case's evidence ends with it: the account's lookups since are no part.
        timeline = services.store.log.timeline(case.account, moments, until=case.closed_at)
        mark_held(timeline, findings, case.closed_at)
        opened = services.key_ring.account(case.account).opened
        return {
            "case": in_utc([msgspec.structs.asdict(case)], "opened_at", "closed_at")[0],
            "account_status": _standing(services, case.account),
            # How long the account has been in use: a swarm's accounts are new, a town's
            # new customers too, an established customer is not (None: not yet recorded).
            "account_opened": None if opened is None else utc(opened),
            # This case's holds standing now: lifted by reinstating or clearing the account
            # (which closes the case), as its throttle is. Not another case's: an officer
            # reading an old case must not take a later case's hold for one of its own.
            "held_blocks": sorted(
                hold.label
                for hold in services.key_ring.account(case.account).holds & holds_of(findings)
            )
            if case.closed_at is None
            else [],
            "findings": in_utc(findings, "ts"),
            # Every finding's own lookups, not only the first's: later findings of a case
            # may come hours or days after it.
            "timeline": in_utc(timeline, "ts"),
            "blocks": in_utc(
                services.store.log.blocks(
                    case.account, min(moments) - timedelta(days=7), case.closed_at
                ),
                "first",
                "last",
            ),
            "decisions": [_served(d) for d in services.store.decisions.trail(case_id=number)],
        }

    @post(
        "/cases/{case_id:str}/decisions",
        summary="Decide on a case",
        status_code=201,
        sync_to_thread=True,
        responses=openapi.problems(*_BODY_PROBLEMS, *_DECISION_PROBLEMS),
        before_request=_one_json_object,
    )
    def decide(
        self,
        request: Request[Any, Any, Any],
        case_id: Annotated[str, CASE_ID],
        data: JSONBody[DecisionRequest],
    ) -> Decision:
        """Record who decided what and why; suspend/reinstate/clear change the account."""
        check_query(request)
        number = path_id("case_id", case_id)
        services: Services = request.app.state.services
        reason = _reason(data.reason, "a decision needs a reason")
        actor = _actor(request)
        status = STATUS_AFTER[data.decision]
        with _DECIDING:
            account = services.store.cases.get(number).account
            if account == request.scope["user"].account:
                raise OwnAccount(f"case {number} is about your own account {account!r}")
            if status is not None and not services.key_ring.has(account):
                # Checked before the audit trail records a decision that could not take effect.
                raise AccountNotFound(
                    f"case {number}'s account {account!r} is not in the key store; "
                    "nothing was decided"
                )
            if (
                data.decision == "reinstate"
                and services.key_ring.account(account).status == "active"
            ):
                # Recorded, it would also wipe the detectors' evidence of a scan still building up.
                raise AccountNotSuspended(
                    f"account {account!r} is {_standing(services, account)}: nothing to "
                    "reinstate (clear closes a case); "
                    "nothing was recorded"
                )
            decision = services.store.decisions.decide(number, data.decision, actor, reason)
            change = None if status is None else (status, status_reason(decision))
            if data.decision in ("clear", "reinstate") and services.monitor is not None:
                # A fresh start: old evidence must not suspend the account again (this waits
                # for the monitor: for a restart's whole warm-up).
                services.monitor.forget(decision.account, change)
            elif change is not None:
                services.key_ring.set_status(decision.account, *change)
            services.store.decisions.carried_out(decision.id)
        return _served(decision)

    @get(
        "/swarms",
        summary="Blocks refused to new accounts",
        sync_to_thread=True,
        responses=openapi.problems("invalid-parameter"),
    )
    def swarms(self, request: Request[Any, Any, Any]) -> list[SwarmedBlock]:
        """The blocks a swarm of new accounts scanned, refused to new accounts now, the
        soonest to end first: why a new customer's lookups there get `block-swarmed`."""
        check_query(request)
        key_ring = request.app.state.services.key_ring
        key_ring.refresh()  # a monitor process, or the CLI, may have written one just now
        return [
            SwarmedBlock(swarm.hold.label, utc(swarm.opened_after), utc(swarm.until))
            for swarm in standing(key_ring.swarms.values(), utc_now())
        ]

    @get(
        "/accounts/{account:str}/decisions",
        summary="An account's audit trail",
        sync_to_thread=True,
        responses=openapi.problems("unknown-account", "invalid-parameter"),
    )
    def account_decisions(
        self, request: Request[Any, Any, Any], account: Annotated[str, PathParameter()]
    ) -> list[Decision]:
        """Every decision on the account, oldest first."""
        check_query(request)
        services: Services = request.app.state.services
        # As `--org` finds it: `Å` typed as an A and a combining ring is the `Å` of the account.
        account = services.key_ring.stored_name(account)
        trail = services.store.decisions.trail(account=account)
        if not trail and not services.key_ring.has(account):
            # An account that never was (a typo?): not the empty trail of one nobody decided on.
            raise UnknownAccount(
                f"no account {shown(account)!r} in the key store or the audit trail"
            )
        return [_served(decision) for decision in trail]

    @get(
        "/subjects/{number:str}",
        summary="Everything stored about a number",
        sync_to_thread=True,
        responses=openapi.problems("invalid-number", "invalid-parameter", "warehouse-busy"),
    )
    def subject(
        self,
        request: Request[Any, Any, Any],
        number: Annotated[str, PathParameter()],
        reason: Annotated[
            str,
            QueryParameter(description="The access request's reference (recorded with who)."),
        ] = "",
    ) -> SubjectReport:
        """A data subject's access request: each operator's record, its history, rejected
        rows, what customers are shown, who looked it up, cases quoting it. Recorded."""
        check_query(request, "reason")
        services: Services = request.app.state.services
        reason = _reason(
            reason, "an access request needs a reason (the request's reference): ?reason=..."
        )
        national = normalize(number)
        _log_current(services)
        with Warehouse(services.settings.warehouse_path, read_only=True) as warehouse:
            answer = report(national, warehouse, services.store, services.settings.snapshots_path)
        services.store.record_access(_actor(request), reason)
        return answer

    @get("/subjects/", include_in_schema=False, sync_to_thread=False)
    def subject_without_number(self) -> None:
        """`/subjects/` with the number left out: invalid, as a blank number is, not an
        unknown route (as `GET /v1/numbers/`)."""
        raise InvalidNumber("", InvalidReason.EMPTY)

    @get("/subjects/{number:str}/{rest:path}", include_in_schema=False, sync_to_thread=False)
    def subject_with_slash(
        self,
        number: Annotated[str, PathParameter()],
        rest: Annotated[str, PathParameter()],
    ) -> None:
        """A number written with a slash (`22/20 24 00`, `%2F` in the path): invalid, not
        an unknown route."""
        raise InvalidNumber(number + rest, InvalidReason.MALFORMED)

    @post(
        "/subjects/{number:str}/erasure",
        summary="Erase what may be erased about a number",
        status_code=200,
        sync_to_thread=True,
        responses=openapi.problems(*_BODY_PROBLEMS, "invalid-number", "warehouse-busy"),
        before_request=_one_json_object,
    )
    def erase(
        self,
        request: Request[Any, Any, Any],
        number: Annotated[str, PathParameter()],
        data: JSONBody[ErasureRequest],
    ) -> dict[str, Any]:
        """A data subject's erasure request: their number is anonymised in the lookup log
        and in findings (but in accounts under legal hold), the detectors quote it as erased
        from then on, and the text of rejected rows about it is blanked."""
        check_query(request)
        services: Services = request.app.state.services
        reason = _reason(data.reason, "an erasure needs a reason (the request's reference)")
        national = normalize(number)
        # First, as the step that may fail before anything is erased: the number's gathered
        # lookups are then erased (and counted) with the others.
        _log_current(services)
        with Warehouse(services.settings.warehouse_path) as warehouse:
            rejects = warehouse.log.erase_rejects(national)
            # What of the subscriber the records keep: a reserved record nothing, nor one a
            # reservation veiled (another operator's older record of a ported number).
            [(with_data,)] = warehouse.query(
                "SELECT count(*) FROM records WHERE number = ? AND reservation <> 'reserved' "
                f"AND coalesce(veiled, 0) < {PRIVACY_RANK[Reservation.RESERVED]}",
                [national],
            )
        number, actor = e164(national), _actor(request)
        monitor = services.monitor
        erasure = (
            monitor.erase(number, actor, reason)
            if monitor is not None
            else services.store.erase(number, actor, reason)
        )
        held = (
            # The request is recorded without the number: nothing can finish it later.
            {
                "held_note": "the lookups of the accounts in held_by_open_cases are kept as "
                "evidence while their cases are open; send this request again once they "
                "are closed to erase them"
            }
            if erasure.held_by
            else {}
        )
        return {
            "number": number,
            "lookups_erased": erasure.lookups,
            "held_by_open_cases": erasure.held_by,
            **held,
            "findings_erased": erasure.findings,
            "rejected_rows_erased": rejects,
            **_directory_answer(kept=bool(with_data)),
        }

    @get(
        "/audit/verify",
        summary="Check the audit trail",
        sync_to_thread=True,
        responses=openapi.problems("invalid-parameter"),
    )
    def verify(
        self,
        request: Request[Any, Any, Any],
        head: Annotated[
            str | None,
            QueryParameter(
                description="A head this check returned before, kept outside the service "
                "(COUNT:HASH): whether the trail still passes through it."
            ),
        ] = None,
    ) -> ChainCheck:
        """Whether the decision chain is intact, where it breaks if not, and its head."""
        check_query(request, "head")
        services: Services = request.app.state.services
        return services.store.decisions.verify(_recorded_head(head) if head is not None else None)


_HEAD: Final = re.compile(r"(0|[1-9][0-9]{0,18}):([0-9a-f]{64})")
"""A count as a BIGINT holds it (past 4,300 digits Python's `int` refuses one itself)."""


def _recorded_head(text: str) -> tuple[int, str]:
    """A head as `verify` returns it, given back to be checked against (COUNT:HASH)."""
    written = _HEAD.fullmatch(text.strip())
    if written is None:
        raise InvalidParameter(
            "head",
            f"head {shown(text)!r} must be COUNT:HASH, as this check returns them "
            "(decisions, then the 64 hex digits of head): 12:3f0c…",
        )
    return int(written[1]), written[2]


def _served(decision: Decision) -> Decision:
    """A decision as served: its time with the offset (the trail seals it as stored)."""
    return msgspec.structs.replace(decision, ts=utc(decision.ts))


MAX_REASON: Final = 2000
"""Characters a decision's or an erasure's reason may have."""


def _reason(text: str, missing: str) -> str:
    """A decision's or request's reason, which the audit trail requires."""
    reason = text.strip()
    if not reason:
        raise InvalidParameter("reason", missing)
    if len(reason) > MAX_REASON:
        # The trail keeps it for good and cannot be edited: a pasted log does not belong there.
        raise InvalidParameter(
            "reason", f"reason must be at most {MAX_REASON} characters (it has {len(reason)})"
        )
    # The audit trail's hash joins a decision's fields with a control character: one inside
    # a field would let an edit move text between fields unseen.
    bad = first_control(reason, allowed="\n\t")
    if bad is not None:
        raise InvalidParameter(
            "reason", f"reason must not contain control characters (U+{ord(bad):04X})"
        )
    # What the trail shows must be what it holds: a direction override (U+202E) displays
    # text in another order, and a reason of zero-width characters alone is none.
    bidi = first_bidi_control(reason)
    if bidi is not None:
        raise InvalidParameter(
            "reason", f"reason must not contain text direction controls (U+{ord(bidi):04X})"
        )
    if invisible(reason):
        raise InvalidParameter("reason", missing)
    return reason


def _directory_answer(*, kept: bool) -> dict[str, str]:
    """What an erasure leaves of the number's directory records (`kept`: some record holds
    the subscriber's data): `directory` (`kept` or `not_served`) for a program,
    `directory_note` saying it for a person. A reserved number answers as an unknown one:
    the subject access report is the one path that tells them apart, and an erasure is no
    access request (any number can be sent)."""
    if not kept:
        return {
            "directory": "not_served",
            "directory_note": "nothing of a subscriber of this number is served or kept (a "
            "reservation, where there is one, is kept: it is what honours it)",
        }
    return {
        "directory": "kept",
        "directory_note": "each operator delivers it every night; a subject leaves the "
        "directory by reserving with their operator",
    }


def _log_current(services: Services) -> None:
    """Write the lookups the monitor has gathered, before the lookup log is read or erased:
    they wait up to `LOOKUP_LOG_COMMIT_SECONDS` otherwise."""
    monitor = services.monitor
    # Without its lock first: while a warm-up holds it, nothing is gathered.
    if monitor is not None and monitor.unlogged:
        monitor.write_log()


def _standing(services: Services, name: str) -> str:
    """An account's status as a reviewer needs it: `ended` once the relationship ended,
    whatever a later decision set (its keys stay revoked)."""
    account = services.key_ring.account(name)
    return "ended" if account.ended_at is not None else account.status


def _actor(request: Request[Any, Any, Any]) -> str:
    """Who acted: the officer's account and key."""
    key: ApiKey = request.scope["user"]
    return f"{key.account}/{key.key_id}"
