"""The OpenAPI description: the bearer key scheme, and the problems each endpoint answers."""

from __future__ import annotations

from typing import Final

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Schema,
    SecurityScheme,
)

from lookup.api.problems import PROBLEM_JSON, PROBLEM_TYPES, TYPE_BASE
from lookup.api.schemas import Problem

KEY_SCHEME: Final = "apiKey"
NO_KEY: Final[list[dict[str, list[str]]]] = [{}]
"""An operation's `security` when it needs no API key (health checks, problem pages)."""
REFUSED: Final = (
    "missing-credentials",
    "invalid-key",
    "address-not-allowed",
    "missing-role",
    "account-suspended",
    "rate-limited",
    "rate-limits-unavailable",
)
"""What any request with a key may be refused for, before its handler runs."""


QUOTA_FIELDS: Final = {
    "RateLimit-Policy": "Every rate limit the request is held to, shortest window first "
    '(draft-ietf-httpapi-ratelimit-headers-10), e.g. `"key-1s";q=25;w=1, '
    '"account-60s";q=1500;w=60`.',
    "RateLimit": "The limit with least left after this request, and what it has left: "
    '`"account-60s";r=1499`.',
}
"""The fields of every answer to a request counted against its key's limits."""


def config(title: str, description: str | None = None) -> OpenAPIConfig:
    """The schema's settings: every operation takes `Authorization: Bearer <key>`."""
    scheme = SecurityScheme(
        type="http",
        scheme="bearer",
        description="An API key from `lookup keys create`, sent as `Authorization: Bearer <key>`.",
    )
    return OpenAPIConfig(
        title=title,
        version="1",
        description=description,
        components=Components(security_schemes={KEY_SCHEME: scheme}),
        security=[{KEY_SCHEME: []}],
    )


def problems(*slugs: str, keyed: bool = True) -> dict[int, ResponseSpec]:
    """The responses of these problem types, by status, each status naming its types; with
    those of `REFUSED` unless the operation needs no key (`keyed=False`)."""
    by_status: dict[int, list[str]] = {}
    for slug in (*slugs, *(REFUSED if keyed else ())):
        kind = PROBLEM_TYPES[slug]
        by_status.setdefault(kind.status, []).append(f"`{TYPE_BASE}{slug}`: {kind.description}")
    return {
        status: ResponseSpec(
            Problem, description=" ".join(kinds), media_type=PROBLEM_JSON, generate_examples=False
        )
        for status, kinds in sorted(by_status.items())
    }


def without_unused_400(app: Litestar) -> None:
    """Drop the 400 Litestar lists for every operation with parameters: a parameter it
    cannot read is answered 422 `invalid-parameter` here (a body, 400 `bad-request`, is
    declared where one is read). Run at startup, before the schema is first served."""
    for path in (app.openapi_schema.paths or {}).values():
        for operation in (path.get, path.head):
            if operation is not None and operation.responses:
                operation.responses.pop("400", None)


_UNCOUNTED: Final = frozenset({"401"})
"""Answers to a request with a key that was never counted (no key). A 403 or a 503 may
follow a counted request or not (a held block, or a warehouse busy: counted; a suspension,
or the counters unreachable: not), and the fields say which."""


def with_quota_fields(app: Litestar) -> None:
    """Name the rate-limit fields on every answer of an operation that takes a key that
    can follow a counted request (a success, a 404 or 422 its handler gave, a 429 with
    `Retry-After`, a 403 of a held block, a 503 of a busy warehouse). Run at startup."""
    fields = {
        name: OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description=text)
        for name, text in QUOTA_FIELDS.items()
    }
    retry = OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER),
        description="Seconds until the limit named in `RateLimit` lets a request through.",
    )
    swarm_over = OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER),
        description="On `/problems/block-swarmed`: seconds until the block is answered to "
        "new accounts again.",
    )
    for path in (app.openapi_schema.paths or {}).values():
        for operation in (path.get, path.head, path.post):
            if operation is None or operation.security == NO_KEY or not operation.responses:
                continue
            for status, response in operation.responses.items():
                if status in _UNCOUNTED or not isinstance(response, OpenAPIResponse):
                    continue
                more = (
                    {"Retry-After": retry}
                    if status == "429"
                    else {"Retry-After": swarm_over}
                    if "block-swarmed" in (response.description or "")
                    else {}
                )
                response.headers = {**(response.headers or {}), **fields, **more}
