"""Jobs: one small interface for long work, run inside the service or by SAQ workers through Redis.

A job row in the database is the one source of truth for status, progress and result, whichever runner runs it.
Domains declare their kinds (:class:`~qbank.jobs.kinds.JobKind`) and store jobs with :func:`submit`."""

from __future__ import annotations

import asyncio
import secrets
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable

import msgspec
import structlog
from litestar import Response
from litestar.background_tasks import BackgroundTask
from saq import Queue
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.db import utcnow
from qbank.jobs.kinds import JobContext, JobEnv, JobFailed, JobKind, JobLost, JobResult, P
from qbank.jobs.models import Job
from qbank.jobs.schemas import JobOut
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import not_found

log = structlog.get_logger("qbank.jobs")


async def claim(env: JobEnv, job_id: str) -> Job | None:
    """Take the queued job for this runner (a compare-and-set: of several runners handed the same job, one gets
    it); None when it is not queued (already taken, finished, or unknown)."""
    async with env.writing() as db:
        now = utcnow()
        taken = await db.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(
            status="running", started_at=now, runner=env.runner, attempts=Job.attempts + 1,
            lease_until=env.lease_until()))
        if getattr(taken, "rowcount", 0) != 1:
            return None
        return await db.get(Job, job_id)


async def execute(env: JobEnv, job_id: str) -> None:
    """Run one job to its end, recording status, progress, result or error."""
    job = await claim(env, job_id)
    if job is None:
        log.info("job not runnable here: not queued", job_id=job_id)
        return
    name, raw_params, raw_actor = job.kind, dict(job.params), job.actor
    log.info("job started", job_id=job_id, kind=name, attempt=job.attempts)
    result: JobResult | None = None
    error: dict[str, Any] | None = None
    try:
        kind = env.kinds.get(name)
        if kind is None:
            raise JobFailed(f"this process cannot run jobs of kind {name} (it knows {', '.join(env.kinds.names())})")
        try:
            params = msgspec.convert(raw_params, kind.params)
            actor = msgspec.convert(raw_actor or raw_params.get("actor"), Actor)  # before 0008: in the params
        except msgspec.ValidationError as exc:
            raise JobFailed(f"the job's stored parameters are not what {name} takes: {exc}") from exc
        result = await kind.handler(JobContext(job_id=job_id, env=env, actor=actor), params)
    except JobLost:
        log.warning("job taken back by another runner while this one ran it; this run's work is dropped",
                    job_id=job_id, kind=name)
        return
    except JobFailed as exc:
        error = exc.error
    except Exception as exc:  # a job's crash is recorded on the job, never lost
        log.exception("job crashed", job_id=job_id, kind=name)
        error = {"detail": f"the job failed: {type(exc).__name__}: {exc}",
                 "trace": traceback.format_exc(limit=5)}
    values: dict[str, Any] = {"status": "failed" if error else "succeeded", "result": result, "error": error,
                              "finished_at": utcnow(), "lease_until": None}
    if not error:
        values["progress"] = 1.0
    async with env.writing() as db:  # a handler that ended the job in its own storing() left nothing to do here
        await db.execute(update(Job).where(env.held(job_id)).values(**values))
    log.info("job finished", job_id=job_id, kind=name, status=values["status"])


@runtime_checkable  # Litestar checks a dependency's value against its declared type
class JobRunner(Protocol):
    async def enqueue(self, job_id: str, attempt: int = 0, again: int = 0) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class InProcessRunner:
    """The embedded default: jobs run as tasks of the service's own event loop, a few at a time."""

    def __init__(self, env: JobEnv, concurrency: int = 2) -> None:
        self.env = env
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, job_id: str, attempt: int = 0, again: int = 0) -> None:
        if job_id in self._tasks:  # already waiting for a slot or running here
            return
        task = asyncio.get_running_loop().create_task(self._run(job_id))
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            await execute(self.env, job_id)

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold every slot: jobs handed over meanwhile stay queued until the end (maintenance, tests)."""
        held = 0
        try:
            for _ in range(self._concurrency):
                await self._slots.acquire()
                held += 1
            yield
        finally:
            for _ in range(held):
                self._slots.release()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


class QueueRunner:
    """For more than one machine: jobs go through SAQ on Redis to `qbank worker` processes. A job handed over again
    after its runner died gets a new SAQ key (``id.attempt.again``): the dead worker's entry may still sit in
    Redis, where it would hide the job from SAQ's own duplicate check."""

    def __init__(self, queue: Queue, timeout_s: int = 6 * 3600) -> None:
        self.queue = queue
        self.timeout_s = timeout_s

    async def enqueue(self, job_id: str, attempt: int = 0, again: int = 0) -> None:
        key = job_id if attempt == 0 and again == 0 else f"{job_id}.{attempt}.{again}"
        await self.queue.enqueue("run_queued_job", job_id=job_id, key=key, timeout=self.timeout_s)

    async def ping(self) -> None:
        await self.queue.redis.ping()  # type: ignore[attr-defined]

    async def close(self) -> None:
        return None


def job_out(row: Job) -> JobOut:
    return JobOut(id=row.id, kind=row.kind, status=row.status, progress=row.progress,  # type: ignore[arg-type]
                  message=row.message, subject=row.subject, params=row.params, result=row.result, error=row.error,
                  created_by=row.created_by, created_at=row.created_at, started_at=row.started_at,
                  finished_at=row.finished_at, attempts=row.attempts or 0)


async def submit(db: AsyncSession, actor: Actor, kind: JobKind[P], params: P, subject: str = "") -> JobOut:
    """Store the job in the caller's transaction; hand it to the runner once that commits (:func:`accepted`)."""
    row = Job(id=secrets.token_hex(16), kind=kind.name, status="queued", params=msgspec.to_builtins(params),
              actor=msgspec.to_builtins(actor), subject=subject, created_by=actor.label, created_at=utcnow())
    db.add(row)
    await db.flush()
    log.info("job stored", job_id=row.id, kind=kind.name, by=actor.label)
    return job_out(row)


def accepted(runner: JobRunner, job: JobOut) -> Response[JobOut]:
    """202 with the job; the runner gets it after the response, i.e. after the request's commit."""
    return Response(job, status_code=202, background=BackgroundTask(runner.enqueue, job.id))


async def get_job(db: AsyncSession, actor: Actor, job_id: str) -> Job:
    """The job, for its creator or an admin; to anyone else it does not exist (404: job ids are not probed)."""
    row = await db.get(Job, job_id)
    if row is None or (actor.role != Role.admin and row.created_by != actor.label):
        raise not_found("job", job_id)
    return row
