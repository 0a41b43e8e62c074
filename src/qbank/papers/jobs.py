"""The paper assembly job: its typed parameters, how it is requested, and the run itself."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild as pb
from qbank.audit.services import record
from qbank.jobs.kinds import JobContext, JobFailed, JobKind, JobResult
from qbank.jobs.models import Job
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError, conflict
from qbank.papers.assembly import (
    check_assembly,
    engine_layout,
    explanation_rows,
    load_bank,
    service_row,
    store_assembled,
    store_failed,
    store_partial,
)
from qbank.papers.models import Paper, PaperForm
from qbank.papers.schemas import AssemblyIn, ContinueIn, PaperOut
from qbank.papers.services import paper_in_force, paper_out, session_paper, session_seats, why_not_complete
from qbank.sessions.models import ExamSession


class AssemblyParams(msgspec.Struct, kw_only=True):
    """A paper assembly job: the session and the request exactly as it was sent."""

    session_id: int
    request: AssemblyIn


class ContinueParams(msgspec.Struct, kw_only=True):
    """Continuing a partial paper: the session, the paper, and the request exactly as it was sent."""

    session_id: int
    paper_id: int
    request: ContinueIn


async def request_assembly(db: AsyncSession, actor: Actor, session: ExamSession, data: AssemblyIn) -> JobOut:
    """Check the request, store the job (kind ``paper_assembly``) in the caller's transaction, record it."""
    layout, forms = await check_assembly(db, session, data)
    job = await submit(db, actor, PAPER_ASSEMBLY, AssemblyParams(session_id=session.id, request=data),
                       subject=f"session:{session.id}")
    await record(db, actor, "paper.assemble_requested", "session", session.id, after=msgspec.to_builtins(data),
                 detail={"job": job.id, "forms": forms, "layout": layout.id})
    return job


async def continuable(db: AsyncSession, session: ExamSession, paper_id: int, job_id: str | None = None) -> Paper:
    """The paper, when it is the session's partial paper in force and no other run of it (than ``job_id``) is
    waiting."""
    paper = await session_paper(db, session.id, paper_id)
    if paper.status != "partial":
        what = "complete: there is nothing to continue" if paper.status == "assembled" else why_not_complete(paper)
        raise conflict(f"paper {paper.id} is {paper.status}; only a partial paper can be continued"
                       + ("" if paper.status == "partial" else f" ({what})"), paper_status=paper.status)
    latest = await paper_in_force(db, session.id)
    if latest is None or latest.id != paper.id:
        raise conflict(f"paper {paper.id} was replaced by a later assembly of session {session.id}")
    running = await db.scalar(select(Job.id).where(Job.subject == f"paper:{paper.id}", Job.id != (job_id or ""),
                                                   Job.status.in_(("queued", "running"))).limit(1))
    if running is not None:
        raise conflict(f"paper {paper.id} is being continued already (job {running})", job_id=running)
    return paper


async def request_continue(db: AsyncSession, actor: Actor, session: ExamSession, paper_id: int,
                           data: ContinueIn) -> JobOut:
    """Continue a partial paper (kind ``paper_continue``): the forms made are kept, the missing ones made."""
    paper = await continuable(db, session, paper_id)
    job = await submit(db, actor, PAPER_CONTINUE, ContinueParams(session_id=session.id, paper_id=paper.id,
                                                                 request=data), subject=f"paper:{paper.id}")
    await record(db, actor, "paper.continue_requested", "paper", paper.id, after=msgspec.to_builtins(data),
                 detail={"job": job.id, "session": session.id})
    return job


async def discard_paper(db: AsyncSession, actor: Actor, session: ExamSession, paper_id: int) -> PaperOut:
    """Set a partial or failed paper aside: it is no longer the session's paper in force."""
    paper = await session_paper(db, session.id, paper_id)
    if paper.status not in ("partial", "failed"):
        raise conflict(f"paper {paper.id} is {paper.status}; only a partial or failed paper can be discarded",
                       paper_status=paper.status)
    running = await db.scalar(select(Job.id).where(Job.subject == f"paper:{paper.id}",
                                                   Job.status.in_(("queued", "running"))).limit(1))
    if running is not None:
        raise conflict(f"paper {paper.id} is being continued (job {running}); wait for it to end", job_id=running)
    before = paper.status
    paper.status = "discarded"
    await db.flush()
    await record(db, actor, "paper.discard", "paper", paper.id, before={"status": before},
                 after={"status": "discarded"}, detail={"session": session.id})
    return await paper_out(db, paper)


async def solve_with_progress(ctx: JobContext, fn: Callable[[], pb.AssemblyResult], limit: float,
                              ) -> pb.AssemblyResult:
    task = asyncio.ensure_future(ctx.blocking(fn))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        await ctx.progress(0.1 + 0.8 * min(1.0, (loop.time() - t0) / max(limit, 0.1)))
    return task.result()


def no_paper_rows(result: pb.AssemblyResult, limit_s: float) -> tuple[list[dict[str, Any]], str]:
    """Why a finished run made no form: the explanation rows and a one-line summary."""
    rows = explanation_rows(result.explanation)
    summary = result.explanation.summary if result.explanation else "no paper could be found"
    if not rows:
        rows = [service_row("time", "time_limit_s", f"no form was found within {limit_s:g} s; give it more time",
                            f"在 {limit_s:g} 秒内没有组成任何一份试卷；请给更长的时限")]
    return rows, f"no paper can be made ({result.status.value}): {summary}"


async def assemble_paper(ctx: JobContext, params: AssemblyParams) -> JobResult:
    """A new paper: build the pool, run paperbuild in a worker thread, store what it made."""
    return await run_assembly(ctx, params.session_id, params.request, None)


async def continue_paper(ctx: JobContext, params: ContinueParams) -> JobResult:
    """A partial paper's missing forms: the same request and seed with the time asked for, its forms kept."""
    async with ctx.env.session_maker() as db:
        paper = await db.get(Paper, params.paper_id)
        if paper is None or paper.status != "partial":
            raise JobFailed(f"paper {params.paper_id} is not partial any more", paper_id=params.paper_id)
        request = msgspec.convert(paper.request, AssemblyIn)
    request = msgspec.structs.replace(request, time_limit_s=params.request.time_limit_s)
    return await run_assembly(ctx, params.session_id, request, params.paper_id)


async def run_assembly(ctx: JobContext, session_id: int, data: AssemblyIn, paper_id: int | None) -> JobResult:
    """Run paperbuild (continuing paper ``paper_id`` when given) and store the paper: assembled when every form
    was made, partial with the forms made, or failed with the explanation rows."""
    env, actor = ctx.env, ctx.actor
    await ctx.progress(0.02, "loading the bank")
    made: list[list[int]] = []
    async with env.session_maker() as db:
        session = await db.get(ExamSession, session_id)
        if session is None:
            raise JobFailed(f"session {session_id} does not exist")
        try:
            layout_row, n_forms = await check_assembly(db, session, data)
            if paper_id is not None:
                await continuable(db, session, paper_id, ctx.job_id)
        except ProblemError as exc:
            raise JobFailed(exc.detail, status=exc.status_code) from exc
        bank = await load_bank(db, session)
        seats = await session_seats(db, session_id)
        if paper_id is not None:
            forms = (await db.scalars(select(PaperForm).where(PaperForm.paper_id == paper_id)
                                      .order_by(PaperForm.form_index))).all()
            made = [[int(e["version_id"]) for e in f.items] for f in forms]
    layout = engine_layout(layout_row)
    request = pb.AssemblyRequest(forms=n_forms, max_shared=data.max_shared, max_item_use=data.max_item_use,
                                 seed=data.seed, time_limit=data.time_limit_s)
    run = pb.assemble_per_candidate if data.mode == "per_candidate" else pb.assemble
    await ctx.progress(0.1, f"assembling {n_forms - len(made)} form(s) from {len(bank.records)} approved items")
    rows: list[dict[str, Any]] = []
    result: pb.AssemblyResult | None = None
    detail = ""
    try:
        pool = pb.ItemPool.from_records(bank.records)
        result = await solve_with_progress(
            ctx, lambda: run(pool, bank.blueprint, layout, request, made=made), data.time_limit_s)
        if not result.complete and not result.partial_forms:
            rows, detail = no_paper_rows(result, data.time_limit_s)
    except pb.InvalidInput as exc:
        rows = [service_row("input", f, r, r) for f, r in exc.problems]
        detail = f"no paper can be made: {exc.field}: {exc.reason}"
    await ctx.progress(0.92, "storing the paper")
    failure: JobFailed | None = None
    done: JobResult = {}
    async with ctx.storing() as db:  # the paper, its trail entries and the job's end: together, and once
        if paper_id is not None:
            paper = await db.get(Paper, paper_id)
            assert paper is not None
            paper.job_id = ctx.job_id
        else:
            paper = Paper(session_id=session_id, layout_id=layout_row.id, blueprint_id=bank.blueprint_row.id,
                          mode=data.mode, request={**msgspec.to_builtins(data), "forms": n_forms},
                          delivery_seed=secrets.token_hex(32), job_id=ctx.job_id, created_by=actor.label,
                          status="failed", report={}, explanation=None)
        if result is None or (rows and paper_id is not None):  # a continuation that cannot run keeps its forms
            if paper_id is None:
                await store_failed(db, actor, paper, rows, detail, "invalid", bank)
            failure = JobFailed(detail, paper_id=paper.id, explanation=rows)
        elif rows:
            await store_failed(db, actor, paper, rows, detail, result.status.value, bank)
            failure = JobFailed(detail, paper_id=paper.id, explanation=rows)
        elif not result.complete:
            await store_partial(db, actor, paper, result, layout, bank)
            assert result.shortfall is not None
            failure = JobFailed(f"partial paper: {result.shortfall.message_en}", paper_id=paper.id,
                                paper_status="partial", shortfall=msgspec.to_builtins(result.shortfall),
                                explanation=explanation_rows(result.explanation))
        else:
            await store_assembled(db, actor, paper, result, layout, bank, seats, n_forms)
            done = {"paper_id": paper.id, "status": result.status.value, "forms": len(result.forms),
                    "continued_from": result.continued_from, "wall_time_s": round(result.stats.wall_time, 3),
                    "max_pairwise_shared": result.max_pairwise_shared, "max_item_use": result.max_item_use}
        if failure is not None:
            ctx.ended(failure=failure)
        else:
            ctx.ended(done)
    if failure is not None:
        raise failure
    return done


PAPER_ASSEMBLY = JobKind("paper_assembly", AssemblyParams, assemble_paper)
PAPER_CONTINUE = JobKind("paper_continue", ContinueParams, continue_paper)
