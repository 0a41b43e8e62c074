from __future__ import annotations

from litestar import Controller, get
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.jobs.schemas import JobOut
from qbank.jobs.services import get_job, job_out
from qbank.lib.actors import Actor
from qbank.lib.problems import problem_responses


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]
    responses = problem_responses(400, 401, 403, 404)

    @get("/{job_id:str}", summary="A job's status, progress and result (its creator or an admin)")
    async def read(self, job_id: str, db_session: AsyncSession, actor: Actor) -> JobOut:
        return job_out(await get_job(db_session, actor, job_id))
