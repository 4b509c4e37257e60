"""Bearer API key authentication and role guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)

from lookup.errors import MissingRole
from lookup.keys import ApiKey, KeyRing

# Paths anyone may call: probes, the API description and problem type pages.
PUBLIC_PATHS = ["^/healthz$", "^/readyz$", "^/schema", "^/problems/"]


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's IP address as the server saw it."""
    return connection.client.host if connection.client else ""


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    """Resolves `Authorization: Bearer <key>` to the key's account and roles."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Authenticate from the in-memory key ring; no I/O."""
        ring: KeyRing = connection.app.state.key_ring
        key = ring.authenticate(connection.headers.get("authorization"), client_address(connection))
        return AuthenticationResult(user=key, auth=key.key_id)


def requires(role: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A guard admitting only keys that carry `role`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key: ApiKey = connection.user
        if role not in key.roles:
            raise MissingRole(role)

    guard.__name__ = f"requires_{role}"
    return guard
