"""SAQ (through litestar-saq) for jobs on worker machines: the queue the service enqueues to, and the worker."""

from __future__ import annotations

from typing import Any

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from sqlalchemy.ext.asyncio import async_sessionmaker

from qbank.jobs.services import JobEnv, run_queued_job
from qbank.settings import Settings


def saq_config(settings: Settings, *, startup: Any = None, shutdown: Any = None) -> SAQConfig:
    return SAQConfig(queue_configs=[QueueConfig(
        dsn=settings.job_queue_url, name=settings.job_queue_name, tasks=[run_queued_job],  # type: ignore[list-item]
        concurrency=settings.job_concurrency, startup=startup, shutdown=shutdown, separate_process=False,
    )])


def service_queue(settings: Settings) -> Any:
    """The queue the service enqueues jobs to."""
    return saq_config(settings).get_queues().get(settings.job_queue_name)


async def run_worker(settings: Settings) -> None:
    """Run a worker until it is told to stop (SIGINT/SIGTERM): what `qbank worker` does."""
    from contextlib import AsyncExitStack

    from qbank.db import create_engine
    from qbank.jobs.services import load_job_kinds
    from qbank.storage import evidence_store

    stack = AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        load_job_kinds()
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        store = await stack.enter_async_context(evidence_store(settings))
        ctx["qbank_env"] = JobEnv(settings=settings, session_maker=async_sessionmaker(engine, expire_on_commit=False),
                                  store=store)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    plugin = SAQPlugin(saq_config(settings, startup=startup, shutdown=shutdown))
    worker = plugin.get_workers()[settings.job_queue_name]
    await worker.start()
