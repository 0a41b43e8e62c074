"""Bearer-token authentication and role guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.auth.schemas import Actor, Role
from qbank.auth.services import find_actor

PUBLIC_PATHS = ["^/health", "^/schema"]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("a bearer token is required (Authorization: Bearer qb_…)")
        state = connection.app.state
        maker: async_sessionmaker[AsyncSession] = state.session_maker
        async with maker() as db:
            actor = await find_actor(db, state.settings.token_secret, token.strip())
        if actor is None:
            raise NotAuthorizedException("the bearer token is unknown or revoked")
        return AuthenticationResult(user=actor, auth=token)


def requires(*roles: Role) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    allowed = set(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        actor: Actor = connection.user
        if actor.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDeniedException(f"a {actor.role.value} token may not do this; it needs: {names}")

    guard.__name__ = "requires_" + "_".join(sorted(r.value for r in allowed))
    return guard


def check_occupation(actor: Actor, occupation: str) -> None:
    if not actor.may_touch(occupation):
        raise PermissionDeniedException(f"this token is not scoped to occupation {occupation}")


def provide_actor(request: Any) -> Actor:
    actor: Actor = request.user
    return actor
