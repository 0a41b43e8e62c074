from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.auth.schemas import TokenCreate, TokenCreated, TokenOut
from qbank.auth.services import issue_token, list_tokens, withdraw_token
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.settings import Settings


class TokenController(Controller):
    path = "/api/v1/tokens"
    tags = ["auth"]
    guards = [requires(Role.admin)]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Create a token (shown once)", responses=problem_responses(400))
    async def create(self, data: TokenCreate, db_session: AsyncSession, settings: Settings,
                     actor: Actor) -> TokenCreated:
        return await issue_token(db_session, actor, settings.token_secret, data)

    @get("/", summary="List tokens")
    async def list_tokens(self, db_session: AsyncSession) -> list[TokenOut]:
        return await list_tokens(db_session)

    @post("/{token_id:int}/revoke", summary="Revoke a token", status_code=200,
          responses=problem_responses(404, 409))
    async def revoke(self, db_session: AsyncSession, actor: Actor, state: State,
                     token_id: int = Parameter(ge=1)) -> TokenOut:
        out = await withdraw_token(db_session, actor, token_id)
        state.token_cache.forget(token_id)  # at once here; other instances within the cache's lifetime
        return out
