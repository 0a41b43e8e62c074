from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.audit.anchors import AnchorBook
from qbank.audit.jobs import request_verify
from qbank.audit.schemas import AuditPage, AuditVerification
from qbank.audit.services import list_entries, verify
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.settings import Settings


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

    @get("/verify", summary="Check the trail against its anchors and anchor its head",
         description="Recomputes the keyed hash chain from the first entry and names the first bad row; then "
                     "compares the database with the signed anchors kept in the Object Lock bucket (rows removed or "
                     "rewritten before the last anchor), says how many entries are not anchored yet, and anchors "
                     "the head when the trail is sound (`anchored_now`).")
    async def verify_chain(self, db_session: AsyncSession, settings: Settings,
                           archive: RetentionArchive) -> AuditVerification:
        return await verify(db_session, AnchorBook(archive, settings))

    @post("/verify-jobs", summary="Recompute the hash chain as a job (for long trails); poll GET /api/v1/jobs/{id}",
          status_code=202)
    async def verify_job(self, actor: Actor, db_session: AsyncSession, job_runner: JobRunner) -> Response[JobOut]:
        return accepted(job_runner, await request_verify(db_session, actor))
