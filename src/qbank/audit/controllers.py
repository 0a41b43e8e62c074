from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.jobs import request_verify
from qbank.audit.schemas import AuditPage, AuditVerification
from qbank.audit.services import list_entries, verify
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]
    guards = [requires(Role.admin)]
    responses = problem_responses(400, 401, 403)

    @get("/", summary="Read the audit trail, oldest first")
    async def list_entries(
        self, db_session: AsyncSession,
        limit: int = Parameter(default=100, ge=1, le=1000), offset: int = Parameter(default=0, ge=0),
        entity_type: str | None = None, entity_id: str | None = None,
    ) -> AuditPage:
        return await list_entries(db_session, limit, offset, entity_type, entity_id)

    @get("/verify", summary="Recompute the hash chain and name the first bad row")
    async def verify_chain(self, db_session: AsyncSession) -> AuditVerification:
        return await verify(db_session)

    @post("/verify-jobs", summary="Recompute the hash chain as a job (for long trails); poll GET /api/v1/jobs/{id}",
          status_code=202)
    async def verify_job(self, actor: Actor, db_session: AsyncSession, job_runner: JobRunner) -> Response[JobOut]:
        return accepted(job_runner, await request_verify(db_session, actor))
