from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.auth.models import ApiToken
from qbank.auth.schemas import TokenCreate, TokenCreated, TokenOut
from qbank.auth.services import create_token, revoke_token, token_out
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses


class TokenController(Controller):
    path = "/api/v1/tokens"
    tags = ["auth"]
    guards = [requires(Role.admin)]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Create a token (shown once)", responses=problem_responses(400))
    async def create(self, data: TokenCreate, db_session: AsyncSession, state: State, actor: Actor) -> TokenCreated:
        created, row = await create_token(db_session, state.settings.token_secret, data)
        await record(db_session, actor, "token.create", "token", row.id, after=token_out(row))
        return created

    @get("/", summary="List tokens")
    async def list_tokens(self, db_session: AsyncSession) -> list[TokenOut]:
        rows = (await db_session.scalars(select(ApiToken).order_by(ApiToken.id))).all()
        return [token_out(r) for r in rows]

    @post("/{token_id:int}/revoke", summary="Revoke a token", status_code=200,
          responses=problem_responses(404, 409))
    async def revoke(self, db_session: AsyncSession, actor: Actor,
                     token_id: int = Parameter(ge=1)) -> TokenOut:
        row = await revoke_token(db_session, token_id)
        out = token_out(row)
        await record(db_session, actor, "token.revoke", "token", row.id, after=out)
        return out
