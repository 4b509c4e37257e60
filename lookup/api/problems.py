"""RFC 9457 problem details: one body shape, one mapping from errors to HTTP.

Every error response of the service is built by `problem()`; `handle()` is the
single place where an exception becomes a status code and a problem type.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, Final, NamedTuple

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_405_METHOD_NOT_ALLOWED, HTTP_413_REQUEST_ENTITY_TOO_LARGE

from lookup.abuse.audit import DECISIONS
from lookup.abuse.cases import CASE_LISTINGS, CaseNotFound
from lookup.abuse.decisions import CaseClosed, NotCurrentCase
from lookup.abuse.events import utc_now
from lookup.abuse.ratelimit import RateLimited, RateLimitsUnavailable
from lookup.api.params import WHOLE_NUMBER, check_query
from lookup.errors import (
    AccountNotFound,
    AccountNotSuspended,
    AccountSuspended,
    AddressNotAllowed,
    AmbiguousBody,
    BlockHeld,
    BlockSwarmed,
    InvalidKey,
    InvalidParameter,
    MissingCredentials,
    MissingRole,
    NotJson,
    OwnAccount,
    SnapshotUnavailable,
    UnknownAccount,
    UnreadableBody,
    WarehouseBusy,
)
from lookup.numbers import InvalidNumber, shown

log = logging.getLogger(__name__)
PROBLEM_JSON: Final = "application/problem+json"
_MISSING: Final = re.compile(r"Missing required (\w+) parameter '([^']+)'")
"""Litestar's message for a missing parameter, which it names in no field of its own."""
MAX_BODY: Final = 65_536
"""Bytes a request body may have (a decision or an erasure request is a few hundred)."""
TYPE_BASE: Final = "/problems/"


class ProblemType(msgspec.Struct, frozen=True):
    """A stable problem type: its status and title never change."""

    slug: str
    status: int
    title: str
    description: str


PROBLEM_TYPES: Final = {
    p.slug: p
    for p in (
        ProblemType(
            "invalid-number",
            422,
            "Invalid phone number",
            "The number is not a valid Norwegian number; `reason` says why.",
        ),
        ProblemType(
            "invalid-parameter",
            422,
            "Invalid parameter",
            "A query parameter has a value the endpoint cannot use.",
        ),
        ProblemType(
            "number-not-found",
            404,
            "Number not found",
            "There is no listing to show for this number.",
        ),
        ProblemType(
            "missing-credentials",
            401,
            "Missing credentials",
            "Send your API key as `Authorization: Bearer <key>`.",
        ),
        ProblemType("invalid-key", 401, "Invalid API key", "The key is unknown or revoked."),
        ProblemType(
            "address-not-allowed",
            403,
            "Address not allowed",
            "The key is bound to an IP allow-list that excludes this client.",
        ),
        ProblemType(
            "missing-role", 403, "Missing role", "The key lacks the role this endpoint requires."
        ),
        ProblemType(
            "account-suspended",
            403,
            "Account paused pending review",
            "Automated abuse detection or compliance paused this account until "
            "compliance staff have reviewed it. Contact support.",
        ),
        ProblemType(
            "block-held",
            403,
            "Number block held pending review",
            "Automated abuse detection saw lookups in this number block that may be a scan, "
            "and holds the account's lookups in it (`block`) until compliance staff have "
            "reviewed them. Lookups elsewhere are answered. Contact support.",
        ),
        ProblemType(
            "block-swarmed",
            403,
            "Number block closed to new accounts",
            "Many new accounts, each on an address of its own, have been looking up a few "
            "numbers each of this number block (`block`), as a scan split between accounts "
            "would: until `until` (see Retry-After), its numbers are refused to accounts "
            "that began to be used shortly before that began, or since. Lookups elsewhere are "
            "answered.",
        ),
        ProblemType(
            "own-account",
            403,
            "Decision on your own account",
            "A case is decided by an officer of another account than the one it is about. "
            "Nothing was recorded.",
        ),
        ProblemType(
            "rate-limited",
            429,
            "Too many requests",
            "A rate limit of the key or account was reached; see Retry-After.",
        ),
        ProblemType("case-not-found", 404, "Case not found", "No compliance case with that id."),
        ProblemType(
            "case-closed", 409, "Case closed", "The case is closed; only 'reinstate' applies to it."
        ),
        ProblemType(
            "warehouse-busy",
            503,
            "Warehouse busy",
            "An ingest is writing the warehouse; retry once it has finished (minutes).",
        ),
        ProblemType(
            "not-current-case",
            409,
            "Not the account's current case",
            "The account has a newer case; decisions go on that one (`current_case`), so an "
            "open case's findings are never overruled from an older one. Nothing was recorded.",
        ),
        ProblemType(
            "account-not-found",
            409,
            "Account not found",
            "The case's account is not in the key store, so its status cannot change; "
            "nothing was decided.",
        ),
        ProblemType(
            "account-not-suspended",
            409,
            "Account not suspended",
            "Reinstatement lifts a suspension or a throttle, and the account has neither; "
            "`clear` closes a case. Nothing was recorded.",
        ),
        ProblemType(
            "unknown-account",
            404,
            "Unknown account",
            "No account of that name is in the key store or the audit trail.",
        ),
        ProblemType("not-found", 404, "Not found", "No such resource."),
        ProblemType(
            "method-not-allowed",
            405,
            "Method not allowed",
            "The resource does not support this HTTP method.",
        ),
        ProblemType("bad-request", 400, "Bad request", "The request could not be understood."),
        ProblemType(
            "unsupported-media-type",
            415,
            "Unsupported media type",
            "The request body must be JSON, sent as `Content-Type: application/json`.",
        ),
        ProblemType(
            "body-too-large",
            413,
            "Request body too large",
            f"The request body is over {MAX_BODY:,} bytes; no request of this API needs one.",
        ),
        ProblemType(
            "snapshot-unavailable",
            503,
            "Directory not available",
            "No published snapshot is loaded yet; retry shortly.",
        ),
        ProblemType(
            "rate-limits-unavailable",
            503,
            "Rate limits unavailable",
            "The shared rate-limit storage cannot be reached; retry shortly.",
        ),
        ProblemType(
            "internal-error",
            500,
            "Internal error",
            "The service failed; the error has been logged.",
        ),
    )
}

_encoder = msgspec.json.Encoder()


def problem_body(slug: str, detail: str, **extensions: Any) -> bytes:
    """Encoded problem document of a registered type."""
    kind = PROBLEM_TYPES[slug]
    body = {
        "type": TYPE_BASE + slug,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        **extensions,
    }
    return _encoder.encode(body)


def problem(
    slug: str, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
) -> Response[bytes]:
    """A problem details response of a registered type."""
    return Response(
        problem_body(slug, detail, **extensions),
        status_code=PROBLEM_TYPES[slug].status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Map any exception to a problem response; the only such mapping in the service."""
    match exc:
        case InvalidNumber():
            return problem("invalid-number", str(exc), reason=str(exc.reason))
        case MissingCredentials():
            # RFC 6750 3.1: no error code when no key was sent at all.
            challenge = 'Bearer realm="lookup"' + (
                ', error="invalid_request"' if exc.malformed else ""
            )
            return problem("missing-credentials", str(exc), headers={"WWW-Authenticate": challenge})
        case InvalidKey():
            challenge = 'Bearer realm="lookup", error="invalid_token"'
            return problem("invalid-key", str(exc), headers={"WWW-Authenticate": challenge})
        case AddressNotAllowed():
            return problem("address-not-allowed", str(exc))
        case AccountSuspended():
            return problem("account-suspended", str(exc))
        case BlockHeld():
            return problem("block-held", str(exc), block=exc.block)
        case BlockSwarmed():
            wait = max(1, math.ceil((exc.until - utc_now()).total_seconds()))
            return problem(
                "block-swarmed",
                str(exc),
                headers={"Retry-After": str(wait)},
                block=exc.block,
                until=f"{exc.until.isoformat(timespec='seconds')}Z",
            )
        case OwnAccount():
            return problem("own-account", str(exc))
        case RateLimited():
            said = {"throttled": True} if exc.throttled else {}
            return problem(
                "rate-limited",
                str(exc),
                headers=exc.headers(),
                scope=exc.scope,
                limit=exc.limit,
                **said,
            )
        case RateLimitsUnavailable():
            return problem(
                "rate-limits-unavailable", "try again shortly", headers={"Retry-After": "1"}
            )
        case CaseNotFound():
            return problem("case-not-found", str(exc))
        case WarehouseBusy():
            return problem("warehouse-busy", str(exc), headers={"Retry-After": "60"})
        case NotCurrentCase():
            return problem("not-current-case", str(exc), current_case=exc.current)
        case CaseClosed():
            return problem("case-closed", str(exc))
        case AccountNotFound():
            return problem("account-not-found", str(exc))
        case AccountNotSuspended():
            return problem("account-not-suspended", str(exc))
        case UnknownAccount():
            return problem("unknown-account", str(exc))
        case MissingRole():
            return problem("missing-role", str(exc), role=exc.role)
        case AmbiguousBody() | UnreadableBody():
            return problem("bad-request", str(exc))
        case NotJson():
            return problem("unsupported-media-type", str(exc))
        case InvalidParameter():
            return problem("invalid-parameter", str(exc), parameter=exc.parameter)
        case SnapshotUnavailable():
            return problem("snapshot-unavailable", str(exc), headers={"Retry-After": "5"})
        case ValidationException():
            errors = exc.extra if isinstance(exc.extra, list) else []
            missing = _MISSING.match(exc.detail or "")
            if missing is not None:
                # A misspelt parameter (`nmae`) is the reason the one it meant is missing.
                taken = request.route_handler.opt.get("query")
                if taken is not None:
                    try:
                        check_query(request, *taken)
                    except InvalidParameter as unknown:
                        return handle(request, unknown)
                where, name = missing.groups()
                detail = f"{where} parameter {name!r} is required"
                return problem("invalid-parameter", detail, parameter=name)
            named = _parameter(errors)
            extensions: dict[str, Any] = {"parameter": named} if named else {}
            # Litestar's own error list is not passed on: its messages are msgspec's
            # internals (`'data'` for a missing body), the detail says it in the API's words.
            return problem("invalid-parameter", _invalid(exc.detail, errors), **extensions)
        case HTTPException() if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            return problem("body-too-large", f"the request body is over {MAX_BODY:,} bytes")
        case NotFoundException():
            return problem("not-found", f"no resource at {shown(request.url.path, limit=200)}")
        case HTTPException() if exc.status_code == HTTP_405_METHOD_NOT_ALLOWED:
            # Litestar builds the header from a set: sorted, the message reads the same.
            allow = (exc.headers or {}).get("allow", "")
            allowed = ", ".join(sorted(m.strip() for m in allow.split(",") if m.strip()))
            detail = f"{request.method} is not allowed on {request.url.path}"
            return problem(
                "method-not-allowed",
                f"{detail}; allowed: {allowed}" if allowed else detail,
                headers=exc.headers,
            )
        case HTTPException() if exc.status_code < 500:
            return problem("bad-request", _unreadable(exc.detail))
        case RecursionError() if request.method in ("POST", "PUT", "PATCH"):
            # msgspec decodes nesting by recursion: a body of a thousand `[` ends here.
            return problem("bad-request", "JSON is malformed: nested too deeply")
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem("internal-error", "the service failed to answer; the error has been logged")


def _unreadable(detail: str) -> str:
    """A body msgspec could not read, said as the other JSON errors are: its bare
    "Input data was truncated" also stands for an invalid escape (a lone surrogate)."""
    if detail == "Input data was truncated":
        return "JSON is malformed: it ends before it is complete, or holds an invalid escape"
    return detail


_BODY_FIELD: Final = re.compile(r"field `([^`]+)`|at `\$\.([A-Za-z_]\w*)")
"""The field msgspec names in a body's error ("missing required field `reason`")."""


class _FirstError(NamedTuple):
    """The first error Litestar's validation lists: where, which field, what."""

    source: object
    """`query`, `path`, `body`... (an enum for parameters, read as its value)."""
    key: Any
    message: Any


def _first_error(errors: list[Any]) -> _FirstError | None:
    first = errors[0] if errors and isinstance(errors[0], dict) else None
    if first is None:
        return None
    source = getattr(first.get("source"), "value", first.get("source"))
    return _FirstError(source, first.get("key"), first.get("message"))


def _parameter(errors: list[Any]) -> str | None:
    """The parameter or body field a validation error is about, as every other
    `invalid-parameter` problem names it."""
    first = _first_error(errors)
    if first is None:
        return None
    if first.key and (first.source != "body" or first.key != "data"):
        return str(first.key)
    if first.source != "body":
        return None
    # The body as a whole ("data"): the field is in msgspec's message, if anywhere.
    found = _BODY_FIELD.search(str(first.message or ""))
    return (found[1] or found[2]) if found else None


_CHOICES: Final = {"decision": DECISIONS, "status": CASE_LISTINGS}
"""The values of the API's enumerations, by field: msgspec's message leaves them out."""


def _invalid(detail: str, errors: list[Any]) -> str:
    """What Litestar's validation found, said of the first field it names."""
    first = _first_error(errors)
    if first is None:
        return detail
    source, key, message = first
    if source == "body" and message == f"'{key}'":
        return "a JSON body is required"  # msgspec had no body to decode
    if source == "body" and key == "data":
        return f"body: {message}"
    if message in ("Expected `int`, got `str`", "Expected `int | null`, got `str`"):
        # msgspec's words for "05" or "ten": the text was not a plain whole number.
        message = WHOLE_NUMBER
    if isinstance(message, str) and message.startswith("Invalid enum value") and key in _CHOICES:
        message = f"{message}: one of {', '.join(_CHOICES[key])}"
    return f"{source} {'field' if source == 'body' else 'parameter'} {key!r}: {message}"


def problem_type_page(slug: str) -> Response[bytes]:
    """Documentation of a problem type, served at its `type` URI."""
    kind = PROBLEM_TYPES.get(slug)
    if kind is None:
        return problem("not-found", f"no problem type {shown(slug)!r}")
    return Response(_encoder.encode(kind), media_type=MediaType.JSON)
