"""Checking a long trail is long work: the same verification as a job with progress."""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.anchors import AnchorBook
from qbank.audit.services import count_entries, record, verify
from qbank.jobs.kinds import JobContext, JobKind, JobResult
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor


class AuditVerifyParams(msgspec.Struct, kw_only=True):
    """The chain check takes no parameters: it always checks the whole trail."""


async def verify_trail(ctx: JobContext, params: AuditVerifyParams) -> JobResult:
    async with ctx.env.session_maker() as db:
        total = max(await count_entries(db), 1)

        async def progress(done: int) -> None:
            await ctx.progress(done / total, f"{done} of {total} entries checked")

        book = AnchorBook(ctx.env.store.archive, ctx.env.settings) if ctx.env.store is not None else None
        outcome = await verify(db, book, progress=progress)
    result: JobResult = msgspec.to_builtins(outcome)
    return result


AUDIT_VERIFY = JobKind("audit_verify", AuditVerifyParams, verify_trail)


async def request_verify(db: AsyncSession, actor: Actor) -> JobOut:
    job = await submit(db, actor, AUDIT_VERIFY, AuditVerifyParams(), subject="audit")
    await record(db, actor, "job.submit", "job", job.id, after={"kind": job.kind})
    return job
