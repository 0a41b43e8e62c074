from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.models import AuditEntry
from qbank.audit.schemas import AuditEntryOut, AuditPage, AuditVerification
from qbank.audit.services import count_entries, record, verify
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import accepted, submit
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
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if entity_type:
            query = query.where(AuditEntry.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditEntry.entity_id == entity_id)
        rows = (await db_session.scalars(query.limit(limit).offset(offset))).all()
        items = [AuditEntryOut(seq=r.seq, at=r.at, actor=r.actor, role=r.role, action=r.action,
                               entity_type=r.entity_type, entity_id=r.entity_id, before_digest=r.before_digest,
                               after_digest=r.after_digest, detail=r.detail, hash=r.hash) for r in rows]
        return AuditPage(items=items, total=await count_entries(db_session), limit=limit, offset=offset)

    @get("/verify", summary="Recompute the hash chain and name the first bad row")
    async def verify_chain(self, db_session: AsyncSession) -> AuditVerification:
        return await verify(db_session)

    @post("/verify-jobs", summary="Recompute the hash chain as a job (for long trails); poll GET /api/v1/jobs/{id}",
          status_code=202)
    async def verify_job(self, state: State, actor: Actor, db_session: AsyncSession) -> Response[JobOut]:
        job = await submit(db_session, actor, "audit_verify", {}, subject="audit")
        await record(db_session, actor, "job.submit", "job", job.id, after={"kind": job.kind})
        return accepted(state.job_runner, job)
