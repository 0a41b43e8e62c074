from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.jobs.schemas import JobOut
from qbank.jobs.services import get_job, job_out
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import problem_responses


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]
    responses = problem_responses(400, 401, 403, 404)

    @get("/{job_id:str}", summary="A job's status, progress and result (its creator or an admin)")
    async def read(self, job_id: str, db_session: AsyncSession, actor: Actor) -> JobOut:
        row = await get_job(db_session, job_id)
        if actor.role != Role.admin and row.created_by != actor.label:
            raise PermissionDeniedException("only the job's creator or an admin may read it")
        return job_out(row)
