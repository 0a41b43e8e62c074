"""Jobs: one small interface for long work, run inside the service or by SAQ workers through Redis.

A job kind is an async function ``handler(ctx, params) -> result`` registered with :func:`job_kind`. The job row
in the database is the one source of truth for status, progress and result, whichever runner runs it."""

from __future__ import annotations

import asyncio
import secrets
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio.to_process
import anyio.to_thread
import structlog
from litestar import Response
from litestar.background_tasks import BackgroundTask
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.db import WriteGate, get_or_404, utcnow
from qbank.jobs.models import Job
from qbank.jobs.schemas import JobOut
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError
from qbank.settings import Settings

log = structlog.get_logger("qbank.jobs")
T = TypeVar("T")


@dataclass
class JobEnv:
    """What a job needs from the service: settings, database, evidence store."""

    settings: Settings
    session_maker: async_sessionmaker[AsyncSession]
    store: Any = None
    gate: WriteGate | None = None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A short writing transaction, through the write gate."""
        gate = self.gate or WriteGate(self.settings.database_url)
        self.gate = gate
        async with gate.hold(), self.session_maker() as db, db.begin():
            yield db


@dataclass
class JobContext:
    job_id: str
    env: JobEnv
    _last: float = field(default=-1.0)

    async def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0–1); cheap to call often: writes only when it moved by ≥ 1 % or says something."""
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction - self._last < 0.01 and not message:
            return
        self._last = fraction
        values: dict[str, Any] = {"progress": fraction}
        if message:
            values["message"] = message
        async with self.env.writing() as db:
            await db.execute(update(Job).where(Job.id == self.job_id).values(**values))

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (a solver, ffmpeg) in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def isolated(self, fn: Callable[..., T], *args: Any) -> T:
        """Run heavy work in a worker process: the memory it takes (decoded video) goes back to the system
        instead of staying in the service. ``fn`` and its arguments must pickle (module-level functions)."""
        return await anyio.to_process.run_sync(fn, *args, cancellable=True)


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[dict[str, Any]]]
JOB_KINDS: dict[str, Handler] = {}


def job_kind(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        JOB_KINDS[name] = handler
        return handler

    return register


class JobFailed(Exception):
    """A job's own clear failure: its ``detail`` (and optional rows) become the job's error."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


def load_job_kinds() -> None:
    """Import the modules that register job kinds (the service and every worker call this)."""
    import qbank.audit.jobs
    import qbank.panels.services
    import qbank.papers.services
    import qbank.recordings.services  # noqa: F401


async def execute(env: JobEnv, job_id: str) -> None:
    """Run one job to its end, recording status, progress, result or error."""
    load_job_kinds()
    async with env.writing() as db:
        job = await db.get(Job, job_id)
        if job is None or job.status != "queued":
            log.warning("job not runnable", job_id=job_id, status=None if job is None else job.status)
            return
        job.status, job.started_at = "running", utcnow()
        kind, params = job.kind, dict(job.params)
    log.info("job started", job_id=job_id, kind=kind)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    try:
        handler = JOB_KINDS[kind]
        result = await handler(JobContext(job_id=job_id, env=env), params)
    except JobFailed as exc:
        error = {"detail": exc.detail, **exc.extra}
    except Exception as exc:  # a job's crash is recorded on the job, never lost
        log.exception("job crashed", job_id=job_id, kind=kind)
        error = {"detail": f"the job failed: {type(exc).__name__}: {exc}",
                 "trace": traceback.format_exc(limit=5)}
    async with env.writing() as db:
        job = await db.get(Job, job_id)
        if job is not None:
            job.status = "failed" if error else "succeeded"
            job.result, job.error, job.finished_at = result, error, utcnow()
            if not error:
                job.progress = 1.0
    log.info("job finished", job_id=job_id, kind=kind, status="failed" if error else "succeeded")


class JobRunner(Protocol):
    async def enqueue(self, job_id: str) -> None: ...

    async def close(self) -> None: ...


class InProcessRunner:
    """The embedded default: jobs run as tasks of the service's own event loop, a few at a time."""

    def __init__(self, env: JobEnv, concurrency: int = 2) -> None:
        self.env = env
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            await execute(self.env, job_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class QueueRunner:
    """For more than one machine: jobs go through SAQ on Redis to `qbank worker` processes."""

    def __init__(self, queue: Any, timeout_s: int = 6 * 3600) -> None:
        self.queue = queue
        self.timeout_s = timeout_s

    async def enqueue(self, job_id: str) -> None:
        await self.queue.enqueue("run_queued_job", job_id=job_id, key=job_id, timeout=self.timeout_s)

    async def close(self) -> None:
        return None


async def run_queued_job(ctx: dict[str, Any], *, job_id: str) -> None:
    """The SAQ task: workers build their JobEnv at start-up (see qbank.jobs.worker)."""
    await execute(ctx["qbank_env"], job_id)


def job_out(row: Job) -> JobOut:
    return JobOut(id=row.id, kind=row.kind, status=row.status, progress=row.progress,  # type: ignore[arg-type]
                  message=row.message, subject=row.subject, params=row.params, result=row.result, error=row.error,
                  created_by=row.created_by, created_at=row.created_at, started_at=row.started_at,
                  finished_at=row.finished_at)


async def submit(db: AsyncSession, actor: Actor, kind: str, params: dict[str, Any], subject: str = "") -> JobOut:
    """Store the job in the caller's transaction; hand it to the runner once that commits (:func:`accepted`)."""
    load_job_kinds()
    if kind not in JOB_KINDS:
        raise ProblemError(400, f"unknown job kind {kind}")
    row = Job(id=secrets.token_hex(16), kind=kind, status="queued", params=params, subject=subject,
              created_by=actor.label, created_at=utcnow())
    db.add(row)
    await db.flush()
    log.info("job stored", job_id=row.id, kind=kind, by=actor.label)
    return job_out(row)


def accepted(runner: JobRunner, job: JobOut) -> Response[JobOut]:
    """202 with the job; the runner gets it after the response, i.e. after the request's commit."""
    return Response(job, status_code=202, background=BackgroundTask(runner.enqueue, job.id))


async def get_job(db: AsyncSession, job_id: str) -> Job:
    row = await get_or_404(db, Job, job_id, "job")
    return row
