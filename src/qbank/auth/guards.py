"""Bearer-token authentication: who is calling (roles and guards are in qbank.lib.actors)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.auth.services import find_actor
from qbank.lib.limits import FailureLimiter
from qbank.lib.proxies import client_address

PUBLIC_PATHS = ["^/health", "^/schema"]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Who is calling; failed authentications are counted per client address (:mod:`qbank.lib.limits`)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        state = connection.app.state
        limiter: FailureLimiter = state.limiters.authentication
        address = client_address(connection)
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        token = token.strip()
        wait = await limiter.retry_after(address)
        if wait is not None and not (token and await limiter.known_good(address, token)):
            raise limiter.refusal(wait, "failed authentications")
        if scheme.lower() != "bearer" or not token:
            await limiter.failed(address)
            raise NotAuthorizedException("a bearer token is required (Authorization: Bearer qb_…)")
        maker: async_sessionmaker[AsyncSession] = state.database.session_maker
        async with maker() as db:
            actor = await find_actor(db, state.settings.token_secret, token, state.token_cache)
        if actor is None:
            await limiter.failed(address)
            raise NotAuthorizedException("the bearer token is unknown or revoked")
        await limiter.succeeded(address, token)
        return AuthenticationResult(user=actor, auth=token)
