"""The paper assembly job: its typed parameters, how it is requested, and the run itself."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild as pb
from qbank.audit.services import record
from qbank.jobs.kinds import JobContext, JobFailed, JobKind, JobResult
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError
from qbank.papers.assembly import (
    check_assembly,
    engine_layout,
    explanation_rows,
    load_bank,
    store_assembled,
    store_failed,
)
from qbank.papers.models import Paper
from qbank.papers.schemas import AssemblyIn
from qbank.papers.services import session_seats
from qbank.sessions.models import ExamSession


class AssemblyParams(msgspec.Struct, kw_only=True):
    """A paper assembly job: the session and the request exactly as it was sent."""

    session_id: int
    request: AssemblyIn


async def request_assembly(db: AsyncSession, actor: Actor, session: ExamSession, data: AssemblyIn) -> JobOut:
    """Check the request, store the job (kind ``paper_assembly``) in the caller's transaction, record it."""
    layout, forms = await check_assembly(db, session, data)
    job = await submit(db, actor, PAPER_ASSEMBLY, AssemblyParams(session_id=session.id, request=data),
                       subject=f"session:{session.id}")
    await record(db, actor, "paper.assemble_requested", "session", session.id, after=msgspec.to_builtins(data),
                 detail={"job": job.id, "forms": forms, "layout": layout.id})
    return job


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
    """Why a finished run made no paper: the explanation rows and a one-line summary."""
    rows = explanation_rows(result.explanation)
    summary = result.explanation.summary if result.explanation else "no paper could be found"
    if not rows:
        rows = [{"group": 0, "kind": "time", "key": "time_limit_s", "demand": None, "supply": None,
                 "message": f"no paper was found within {limit_s:g} s; give it more time"}]
    return rows, f"no paper can be made ({result.status.value}): {summary}"


async def assemble_paper(ctx: JobContext, params: AssemblyParams) -> JobResult:
    """Build the pool, run paperbuild in a worker thread, store the paper (or the explanation rows)."""
    env, actor, data, session_id = ctx.env, ctx.actor, params.request, params.session_id
    await ctx.progress(0.02, "loading the bank")
    async with env.session_maker() as db:
        session = await db.get(ExamSession, session_id)
        if session is None:
            raise JobFailed(f"session {session_id} does not exist")
        try:
            layout_row, n_forms = await check_assembly(db, session, data)
        except ProblemError as exc:
            raise JobFailed(exc.detail, status=exc.status_code) from exc
        bank = await load_bank(db, session)
        seats = await session_seats(db, session_id)
    layout = engine_layout(layout_row)
    request = pb.AssemblyRequest(forms=n_forms, max_shared=data.max_shared, max_item_use=data.max_item_use,
                                 seed=data.seed, time_limit=data.time_limit_s)
    run = pb.assemble_per_candidate if data.mode == "per_candidate" else pb.assemble
    await ctx.progress(0.1, f"assembling {n_forms} form(s) from {len(bank.records)} approved items")
    rows: list[dict[str, Any]] = []
    result: pb.AssemblyResult | None = None
    detail = ""
    try:
        pool = pb.ItemPool.from_records(bank.records)
        result = await solve_with_progress(ctx, lambda: run(pool, bank.blueprint, layout, request), data.time_limit_s)
        if not result.forms:
            rows, detail = no_paper_rows(result, data.time_limit_s)
    except pb.InvalidInput as exc:
        rows = [{"group": 0, "kind": "input", "key": exc.field, "message": exc.reason, "demand": None,
                 "supply": None}]
        detail = f"no paper can be made: {exc.field}: {exc.reason}"
    await ctx.progress(0.92, "storing the paper")
    async with ctx.storing() as db:  # the paper, its trail entries and the job's end: together, and once
        paper = Paper(session_id=session_id, layout_id=layout_row.id, blueprint_id=bank.blueprint_row.id,
                      mode=data.mode, request={**msgspec.to_builtins(data), "forms": n_forms},
                      delivery_seed=secrets.token_hex(32), job_id=ctx.job_id, created_by=actor.label,
                      status="failed", report={}, explanation=None)
        if rows or result is None:
            await store_failed(db, actor, paper, rows, detail, result.status.value if result else "invalid", bank)
            failure = JobFailed(detail, paper_id=paper.id, explanation=rows)
            ctx.ended(failure=failure)
        else:
            await store_assembled(db, actor, paper, result, layout, bank, seats, n_forms)
            done = {"paper_id": paper.id, "status": result.status.value, "forms": len(result.forms),
                    "wall_time_s": round(result.stats.wall_time, 3),
                    "max_pairwise_shared": result.max_pairwise_shared, "max_item_use": result.max_item_use}
            ctx.ended(done)
    if rows or result is None:
        raise failure
    return done


PAPER_ASSEMBLY = JobKind("paper_assembly", AssemblyParams, assemble_paper)
