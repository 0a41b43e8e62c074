"""The service's lifespans, in the order they start: the database engine (disposed last), the evidence store (its
leftovers swept), the job runner (lost jobs taken back, the domains' start-up checks, supervision), the
background anchoring of the audit trail, and the started heap frozen."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from qbank.audit.anchoring import Anchorer, keep_anchoring
from qbank.audit.anchors import AnchorBook
from qbank.db import Database
from qbank.jobs.kinds import JobEnv
from qbank.jobs.lease import cancel_task, release_held_jobs, supervise_jobs, take_back_lost_jobs
from qbank.jobs.services import InProcessRunner, JobRunner, QueueRunner
from qbank.jobs.worker import service_queue
from qbank.server.domains import STARTUP_CHECKS, job_kinds
from qbank.settings import Settings
from qbank.storage import evidence_store, sweep_leftovers

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def frozen_heap() -> Lifespan:
    """Last: what the started service holds (modules, mappers, routes, settings: about 240,000 objects) is moved
    out of the garbage collector's reach. A full collection walked them all, 120-150 ms during which no request
    was answered; it came every few seconds during an import."""
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app that stops inside a longer-lived process (tests) leaves its cycles collectable

    return lifespan


def disposing(engine: AsyncEngine) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    return lifespan


def evidence(settings: Settings) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with evidence_store(settings) as store:
            app.state.store = store
            await sweep_leftovers(settings, store)
            yield

    return lifespan


def jobs(settings: Settings, database: Database) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        env = JobEnv(settings=settings, database=database, kinds=job_kinds(), store=app.state.store)
        runner: JobRunner
        if settings.job_queue_url:
            queue = service_queue(settings)
            await queue.connect()
            runner = QueueRunner(queue)
        else:
            runner = InProcessRunner(env, settings.job_concurrency)
        app.state.job_runner = runner
        await take_back_lost_jobs(env, runner)  # first: the domains' checks see what is still really running
        for startup_check in STARTUP_CHECKS:  # e.g. re-queue recordings whose analysis was lost
            await startup_check(env, runner)
        supervision = asyncio.get_running_loop().create_task(supervise_jobs(env, runner))
        try:
            yield
        finally:
            await cancel_task(supervision)
            await runner.close()
            await release_held_jobs(env)
            if settings.job_queue_url:
                await queue.disconnect()

    return lifespan


def anchoring(settings: Settings, database: Database) -> Lifespan:
    """The trail's head, signed, outside the database (issue 15)."""
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with keep_anchoring(Anchorer(database, AnchorBook(app.state.store.archive, settings))):
            yield

    return lifespan
