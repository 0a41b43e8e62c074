"""Bearer-token authentication: who is calling (roles and guards are in qbank.lib.actors)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.auth.services import find_actor

PUBLIC_PATHS = ["^/health", "^/schema"]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("a bearer token is required (Authorization: Bearer qb_…)")
        state = connection.app.state
        maker: async_sessionmaker[AsyncSession] = state.database.session_maker
        async with maker() as db:
            actor = await find_actor(db, state.settings.token_secret, token.strip())
        if actor is None:
            raise NotAuthorizedException("the bearer token is unknown or revoked")
        return AuthenticationResult(user=actor, auth=token)
