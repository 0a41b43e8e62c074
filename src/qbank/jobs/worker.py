"""SAQ (through litestar-saq) for jobs on worker machines: the queue the service enqueues to, and the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from saq import Queue
from saq.types import Context

from qbank.db import Database
from qbank.jobs.kinds import JobEnv, JobKinds
from qbank.jobs.services import execute
from qbank.lib.keys import trail_session_info
from qbank.settings import Settings
from qbank.storage import evidence_store

SaqHook = Callable[[Context], Awaitable[None]]


async def run_queued_job(ctx: Context, *, job_id: str) -> None:
    """The SAQ task: workers build their JobEnv at start-up (:func:`run_worker`)."""
    await execute(ctx["qbank_env"], job_id)  # type: ignore[typeddict-item]


def saq_config(settings: Settings, *, startup: SaqHook | None = None, shutdown: SaqHook | None = None) -> SAQConfig:
    return SAQConfig(queue_configs=[QueueConfig(
        dsn=settings.job_queue_url, name=settings.job_queue_name, tasks=[run_queued_job],
        concurrency=settings.job_concurrency, startup=startup, shutdown=shutdown, separate_process=False,
    )])


def service_queue(settings: Settings) -> Queue:
    """The queue the service enqueues jobs to."""
    queue: Queue = saq_config(settings).get_queues().get(settings.job_queue_name)
    return queue


async def run_worker(settings: Settings, kinds: JobKinds) -> None:
    """Run a worker until it is told to stop (SIGINT/SIGTERM): what `qbank worker` does."""
    stack = AsyncExitStack()

    async def startup(ctx: Context) -> None:
        database, engine = Database.open(settings.database_url, trail_session_info(settings))
        stack.push_async_callback(engine.dispose)
        store = await stack.enter_async_context(evidence_store(settings))
        ctx["qbank_env"] = JobEnv(  # type: ignore[typeddict-unknown-key]
            settings=settings, database=database, kinds=kinds, store=store)

    async def shutdown(ctx: Context) -> None:
        await stack.aclose()

    plugin = SAQPlugin(saq_config(settings, startup=startup, shutdown=shutdown))
    worker = plugin.get_workers()[settings.job_queue_name]
    await worker.start()
