"""SAQ (through litestar-saq) for jobs on worker machines: the queue the service enqueues to, and the worker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from saq import Queue
from saq.types import Context

from qbank.db import Database
from qbank.jobs.kinds import JobEnv, JobKinds
from qbank.jobs.lease import StartupCheck, cancel_task, release_held_jobs, supervise_jobs, take_back_lost_jobs
from qbank.jobs.services import QueueRunner, execute
from qbank.lib.keys import trail_session_info
from qbank.settings import Settings
from qbank.storage import evidence_store, sweep_leftovers

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


async def run_worker(settings: Settings, kinds: JobKinds, startup_checks: Sequence[StartupCheck] = ()) -> None:
    """Run a worker until it is told to stop (SIGINT/SIGTERM): what `qbank worker` does. At start it removes
    leftovers and runs the composition root's ``startup_checks`` (e.g. re-queue stuck analyses); while it runs it
    renews its jobs' leases and takes back jobs whose runner is gone (:mod:`qbank.jobs.lease`)."""
    stack = AsyncExitStack()

    async def startup(ctx: Context) -> None:
        database, engine = Database.open(settings.database_url, trail_session_info(settings))
        stack.push_async_callback(engine.dispose)
        store = await stack.enter_async_context(evidence_store(settings, attach=True))
        env = JobEnv(settings=settings, database=database, kinds=kinds, store=store)
        ctx["qbank_env"] = env  # type: ignore[typeddict-unknown-key]
        runner = QueueRunner(ctx["worker"].queue)
        await sweep_leftovers(settings, store)
        await take_back_lost_jobs(env, runner)
        for check in startup_checks:
            await check(env, runner)
        supervision = asyncio.get_running_loop().create_task(supervise_jobs(env, runner))
        stack.push_async_callback(release_held_jobs, env)
        stack.push_async_callback(cancel_task, supervision)

    async def shutdown(ctx: Context) -> None:
        await stack.aclose()

    plugin = SAQPlugin(saq_config(settings, startup=startup, shutdown=shutdown))
    worker = plugin.get_workers()[settings.job_queue_name]
    await worker.start()

