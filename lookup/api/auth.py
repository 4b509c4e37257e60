"""Bearer API key authentication, per-endpoint roles, suspensions and rate limits.

One ASGI middleware does it all, in memory: it resolves the key from the key
ring, checks the role the route handler declares in `opt={"role": ...}`,
refuses suspended accounts and counts the request against its limits.
Litestar guards would do the role check but copy the handler on every
request, which costs more than the lookup itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lookup.abuse.ratelimit import Quota, RateLimitsUnavailable, least_left, merged_policies
from lookup.api.problems import handle
from lookup.errors import AccountSuspended, LookupServiceError, MissingCredentials, MissingRole
from lookup.networks import client_ip

if TYPE_CHECKING:
    from lookup.api.services import Services

log = logging.getLogger(__name__)
ROLE_OPT: Final = "role"


def role(name: str) -> dict[str, Any]:
    """Handler `opt` declaring the role a key needs, e.g. `@get(..., opt=role("lookup"))`."""
    return {ROLE_OPT: name}


def client_address(scope: Scope) -> str:
    """The client's IP address as the server saw it (an IPv4 client as IPv4)."""
    client = scope.get("client")
    return client_ip(client[0]) if client else ""


def _authorization(scope: Scope) -> str | None:
    found = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if found is not None:
                # Which key was meant cannot be told (a proxy adding its own, say), and
                # taking the first would answer with another key's rights.
                raise MissingCredentials(
                    "the Authorization header was sent more than once: send one key",
                    malformed=True,
                )
            found = value.decode("latin-1")
    return found


class ApiKeyMiddleware(ASGIMiddleware):
    """Sets `scope["user"]` to the request's `ApiKey`, refusing bad keys and missing roles.

    Handlers that declare no role (probes, the schema, problem pages) are public.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Authenticate from memory (no I/O), then check the handler's role."""
        needed = scope["route_handler"].opt.get(ROLE_OPT)
        if needed is None:
            await next_app(scope, receive, send)
            return
        services: Services = scope["litestar_app"].state.services
        ring = services.key_ring
        try:
            key = ring.authenticate(_authorization(scope), client_address(scope))
            if needed not in key.roles:
                raise MissingRole(needed)
            account = ring.account(key.account)
            if account.status == "suspended":
                # Every endpoint: a paused customer holding a compliance key must not read
                # other customers' cases, nor clear its own.
                raise AccountSuspended(
                    f"account {key.account} is paused pending review by compliance"
                )
            try:
                quota = services.limiter.hit(
                    key.key_id,
                    key.account,
                    plan=account.plan,
                    throttled=account.status == "throttled",
                )
            except RateLimitsUnavailable:
                # Compliance staff work on without the shared counters: a customer paused
                # by mistake must be reinstated even while Redis is down.
                if needed != "compliance":
                    raise
                log.warning("rate-limit storage down: compliance request let through")
                quota = None
        except LookupServiceError as exc:
            # Answered here, not raised: Litestar answers what a middleware raises outside
            # every middleware, where the request metrics would not see the refusal's status.
            request: Request[Any, Any, Any] = Request(scope, receive)
            refusal = handle(request, exc).to_asgi_response(None, request)
            await refusal(scope, receive, _answering(send, None))
            return
        scope["user"] = key
        scope["auth"] = key.key_id
        await next_app(scope, receive, _answering(send, quota))


_NO_STORE: Final = (b"cache-control", b"no-store")
"""On every answer to a key: a listing kept in a cache would outlive the subscriber's
reservation of the number (and a case, the compliance decision on it)."""


def _answering(send: Send, quota: Quota | None) -> Send:
    """`send`, adding to the answer `Cache-Control: no-store` and the request's
    `RateLimit-Policy` and `RateLimit` fields (when it was counted: not while the storage
    is down), whatever answers it (a listing, a 404, a problem the handler raised)."""
    fields = [_NO_STORE]
    if quota is not None:
        fields += [
            (b"ratelimit-policy", quota.policy.encode("latin-1")),
            (b"ratelimit", quota.remaining.encode("latin-1")),
        ]

    async def send_answer(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            # An answer that says a limit of the handler's own (a date-of-birth check, the
            # listings searches return) lists it beside the key's and account's, as the
            # request was held to them too; `RateLimit` names the one with least left (a
            # refusal, its own).
            own = any(name == b"ratelimit" for name, _ in headers)
            if own and quota is not None:
                headers = [
                    (name, _with_quota(name, value, quota, refused=message["status"] == 429))
                    for name, value in headers
                ]
            message["headers"] = headers + (fields[:1] if own else fields)
        await send(message)

    return send_answer


def _with_quota(name: bytes, value: bytes, quota: Quota, *, refused: bool) -> bytes:
    """A handler's own rate-limit field, with the key's and account's `quota` said too."""
    if name == b"ratelimit-policy":
        return merged_policies(quota.policy, value.decode("latin-1")).encode("latin-1")
    if name == b"ratelimit" and not refused:
        return least_left(value.decode("latin-1"), quota.remaining).encode("latin-1")
    return value
