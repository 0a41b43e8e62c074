from __future__ import annotations

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.banks.schemas import BankHealth
from qbank.banks.services import bank_health
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses


class BankController(Controller):
    path = "/api/v1/banks"
    tags = ["banks"]
    guards = [requires(Role.admin, Role.author, Role.reviewer)]
    responses = problem_responses(400, 401, 403)

    @get("/{occupation:str}/{level:int}/health", summary="Bank health against §17(二) and the paper layouts",
         description="Approved theory items vs 1,200 and practical papers vs 10, items per appraisal point, "
         "papers with no shared item each layout could fill, X/Y/Z shares, facility histogram, near duplicates "
         "and usage. Only approved items count. Authors and reviewers see only their occupations.",
         responses=problem_responses(404))
    async def health(
        self, db_session: AsyncSession, actor: Actor,
        occupation: str = Parameter(description="occupation code"),
        level: int = Parameter(ge=1, le=5, description="level 1–5"),
        layout_id: int | None = Parameter(default=None, ge=1, description="only this layout (default: every "
                                          "layout of the level)"),
    ) -> BankHealth:
        return await bank_health(db_session, actor, occupation, level, layout_id)
