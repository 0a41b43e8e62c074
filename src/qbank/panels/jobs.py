"""The panel assignment job: its typed parameters, how it is requested, and the run itself."""

from __future__ import annotations

import asyncio

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild.panels as pp
from paperbuild.errors import InvalidInput
from qbank.audit.services import record
from qbank.jobs.kinds import JobContext, JobFailed, JobKind, JobResult
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError, bad_request
from qbank.panels.assignment import build_request, store_assignment
from qbank.panels.schemas import (
    AssignmentIn,
)
from qbank.sessions.models import ExamSession


# ----------------------------------------------------------------------------------------- assignment job
class AssignmentParams(msgspec.Struct, kw_only=True):
    """A panel assignment job: the sessions (sorted, distinct), the seed and the time limit."""

    sessions: list[int]
    seed: int
    time_limit_s: float


async def request_assignment(db: AsyncSession, actor: Actor, data: AssignmentIn) -> JobOut:
    ids = sorted(set(data.sessions))
    found = set((await db.scalars(select(ExamSession.id).where(ExamSession.id.in_(ids)))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise bad_request("sessions", f"session(s) {', '.join(map(str, missing))} do not exist", 404)
    params = AssignmentParams(sessions=ids, seed=data.seed, time_limit_s=data.time_limit_s)
    job = await submit(db, actor, PANEL_ASSIGNMENT, params, subject="sessions:" + ",".join(map(str, ids))[:100])
    await record(db, actor, "panels.assign_requested", "sessions", ",".join(map(str, ids))[:120],
                 after=msgspec.to_builtins(data), detail={"job": job.id})
    return job


async def run_assignment(ctx: JobContext, params: AssignmentParams) -> JobResult:
    env, actor, ids = ctx.env, ctx.actor, params.sessions
    await ctx.progress(0.02, "loading evaluators, supervisors and conflicts")
    async with env.session_maker() as db:
        try:
            built = await build_request(db, env.settings, ids, seed=params.seed, time_limit_s=params.time_limit_s)
        except ProblemError as exc:
            raise JobFailed(exc.detail, status=exc.status_code) from exc
    req = built.request
    await ctx.progress(0.1, f"assigning {len(req.rooms)} practical room(s) in {len(req.sessions)} session(s) "
                            f"from {len(req.evaluators)} evaluators")
    task = asyncio.ensure_future(ctx.blocking(pp.assign_panels, req))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        await ctx.progress(0.1 + 0.8 * min(1.0, (loop.time() - t0) / max(req.time_limit_s, 0.1)))
    try:
        result = task.result()
    except pp.PanelsInfeasible as exc:
        reasons = [msgspec.to_builtins(r) for r in exc.reasons]
        failure = JobFailed("no assignment holds every rule: " + "; ".join(r.message for r in exc.reasons[:5]),
                            reasons=reasons)
        async with ctx.storing() as db:  # the trail entry and the job's end, together and once
            await record(db, actor, "panels.assign_failed", "sessions", ",".join(map(str, ids))[:120],
                         after={"reasons": reasons}, detail={"job": ctx.job_id})
            ctx.ended(failure=failure)
        raise failure from exc
    except InvalidInput as exc:
        raise JobFailed(f"{exc.field}: {exc.reason}") from exc
    violations = pp.check_assignment(req, result.assignment)
    if violations:  # never store an assignment the checker refuses
        raise JobFailed("the solver's assignment failed the checker",
                        violations=[msgspec.to_builtins(v) for v in violations])
    await ctx.progress(0.92, "storing panels")
    done = {"sessions": ids, "status": result.status, "stats": msgspec.to_builtins(result.stats),
            "time_to_feasible_s": result.time_to_feasible_s, "wall_time_s": result.wall_time_s,
            "seed": result.seed, "panels": msgspec.to_builtins(result.assignment)}
    async with ctx.storing() as db:  # the panels, their trail entries and the job's end, together and once
        await store_assignment(db, actor, built, result.assignment, job_id=ctx.job_id)
        ctx.ended(done)
    return done


PANEL_ASSIGNMENT = JobKind("panel_assignment", AssignmentParams, run_assignment)
