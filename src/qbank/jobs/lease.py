"""Who runs a job, and taking jobs back from runners that are gone.

Every process that runs jobs (the service's in-process runner, each `qbank worker`, the CLI) has one runner
identity (:mod:`qbank.jobs.identity`). Claiming a job records it with a lease (``QBANK_JOB_LEASE_S``);
the process renews the leases of its running jobs every third of that. A running job is *lost* when its lease
ran out, or at once when its runner was a process on this machine that no longer exists. Whoever notices (each
service and each worker looks at start and then every half lease) puts a lost job back in the queue, or marks it
failed after ``QBANK_JOB_ATTEMPTS`` runs; each of those changes is a compare-and-set on the job's runner, so only
one process takes a job back. Handlers store their results together with the job's end
(:meth:`~qbank.jobs.kinds.JobContext.storing`), so a job runs to its end exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

import structlog
from sqlalchemy import CursorResult, select, update

from qbank.db import utcnow
from qbank.jobs.identity import gone_from_here
from qbank.jobs.kinds import JobEnv
from qbank.jobs.models import Job

log = structlog.get_logger("qbank.jobs")


class Enqueues(Protocol):
    async def enqueue(self, job_id: str, attempt: int = 0, again: int = 0) -> None: ...


StartupCheck = Callable[[JobEnv, Enqueues], Awaitable[object]]  # a domain's reconciliation at start

def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


async def renew_leases(env: JobEnv) -> None:
    """Extend the lease of every job this process is running."""
    async with env.writing() as db:
        await db.execute(update(Job).where(Job.runner == env.runner, Job.status == "running")
                         .values(lease_until=utcnow() + timedelta(seconds=env.settings.job_lease_s)))


async def take_back_lost_jobs(env: JobEnv, runner: Enqueues) -> list[str]:
    """Put running jobs whose runner is gone back in the queue (or fail them after their last attempt); returns
    the ids of the jobs this process took back."""
    now = utcnow()
    async with env.session_maker() as db:
        rows = (await db.execute(select(Job.id, Job.runner, Job.attempts, Job.lease_until)
                                 .where(Job.status == "running"))).all()
    requeued: list[tuple[str, int]] = []
    taken: list[str] = []
    most = env.settings.job_attempts
    for job_id, holder, attempts, lease_until in rows:
        if holder == env.runner:
            continue
        if not (lease_until is None or lease_until < now or (holder and gone_from_here(holder))):
            continue
        who = holder or "a runner from before leases were kept"
        if attempts >= most:
            values = {"status": "failed", "finished_at": now, "lease_until": None,
                      "error": {"detail": f"the job was not finished: its runner ({who}) stopped while running it, "
                                          f"on the last of {most} attempts", "attempts": attempts}}
        else:
            values = {"status": "queued", "runner": None, "lease_until": None,
                      "message": f"re-queued: its runner ({who}) stopped during attempt {attempts} of {most}"}
        async with env.writing() as db:
            done = await db.execute(update(Job).where(Job.id == job_id, Job.status == "running",
                                                      Job.runner.is_not_distinct_from(holder)).values(**values))
        if _rowcount(done) != 1:
            continue  # another process took it back first, or its runner came back and finished it
        taken.append(job_id)
        log.warning("took back a job whose runner is gone", job_id=job_id, runner=holder, attempts=attempts,
                    outcome=values["status"])
        if values["status"] == "queued":
            requeued.append((job_id, attempts))
    for job_id, attempts in requeued:
        await runner.enqueue(job_id, attempts)
    return taken


async def enqueue_waiting_jobs(env: JobEnv, runner: Enqueues, older_than: timedelta) -> int:
    """Hand queued jobs older than ``older_than`` to the runner again: a process that stored a job and died before
    it handed it over leaves it queued, and so does a worker killed after it took a job from the queue but before
    it claimed it. A job already waiting in the runner is not queued twice (SAQ keys, the in-process runner's own
    list) — except once every ten leases (``again``), for a queue entry that a dead worker still holds; and a job
    runs once whoever gets it (the claim is a compare-and-set)."""
    now = utcnow()
    async with env.session_maker() as db:
        rows = (await db.execute(select(Job.id, Job.attempts, Job.created_at).where(
            Job.status == "queued", Job.created_at < now - older_than))).all()
    every = 10 * env.settings.job_lease_s
    for job_id, attempts, created_at in rows:
        await runner.enqueue(job_id, attempts, int((now - created_at).total_seconds() // every))
    return len(rows)


async def release_held_jobs(env: JobEnv) -> int:
    """At a graceful stop: hand the jobs this process was running back to the queue (the run does not count as an
    attempt), so the next runner starts them at once."""
    async with env.writing() as db:
        done = await db.execute(update(Job).where(Job.runner == env.runner, Job.status == "running").values(
            status="queued", runner=None, lease_until=None, attempts=Job.attempts - 1,
            message="handed back: its runner stopped"))
    return _rowcount(done)


async def supervise_jobs(env: JobEnv, runner: Enqueues | None) -> None:
    """Renew this process's leases; with a ``runner``, also take back lost jobs and hand waiting ones over again.
    Runs until cancelled; a database that does not answer is logged and tried again."""
    lease = env.settings.job_lease_s
    tick = max(1.0, lease / 3)
    first = True
    loop = asyncio.get_running_loop()
    last_check = float("-inf")
    while True:
        try:
            await renew_leases(env)
            if runner is not None and loop.time() - last_check >= lease / 2:
                last_check = loop.time()
                await take_back_lost_jobs(env, runner)
                await enqueue_waiting_jobs(env, runner, timedelta(0) if first else timedelta(seconds=lease))
                first = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down for a while: keep going
            log.warning("job supervision failed; trying again", error=f"{type(exc).__name__}: {exc}"[:300])
        await asyncio.sleep(tick)


async def cancel_task(task: asyncio.Future[None]) -> None:
    """Cancel a background task (e.g. :func:`supervise_jobs`) and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
