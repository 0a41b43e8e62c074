"""Run one job in this process with a progress bar: what the CLI does for long work (assembly, assignments)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.db import Database, upgrade
from qbank.jobs.kinds import JobEnv, JobKind, JobKinds
from qbank.jobs.lease import cancel_task, supervise_jobs
from qbank.jobs.models import Job
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import execute
from qbank.lib.keys import trail_session_info
from qbank.lib.problems import ProblemError
from qbank.settings import Settings
from qbank.storage import evidence_store


def run_job_here(settings: Settings, kind: JobKind[Any], request: Callable[[AsyncSession], Awaitable[JobOut]],
                 label: str, with_store: bool = False) -> Job:
    """Store the job of ``kind`` that ``request`` makes (one transaction), run it here, show its progress; returns
    the finished row. A refusal before the job exists (a ProblemError) becomes a click error. ``with_store``: the
    job needs the evidence store (the service's local S3 server when one runs on this data dir)."""
    upgrade(settings.database_url)
    console = Console(stderr=True)

    async def go() -> Job:
        database, engine = Database.open(settings.database_url, trail_session_info(settings))
        maker = database.session_maker
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            store = await stack.enter_async_context(evidence_store(settings, attach=True)) if with_store else None
            async with maker() as db, db.begin():
                job = await request(db)
            env = JobEnv(settings=settings, database=database, kinds=JobKinds([kind]), store=store)
            leases = asyncio.ensure_future(supervise_jobs(env, None))  # a long run keeps its lease
            stack.push_async_callback(cancel_task, leases)
            task = asyncio.ensure_future(execute(env, job.id))
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TimeElapsedColumn(), console=console) as bar:
                tid = bar.add_task(label, total=1.0)
                while True:
                    done = task.done()
                    async with maker() as db:
                        row = await db.get(Job, job.id)
                    assert row is not None
                    bar.update(tid, completed=row.progress, description=row.message or label)
                    if done:
                        break
                    await asyncio.wait({task}, timeout=0.3)
            task.result()
            return row
        raise AssertionError("unreachable")  # pragma: no cover

    try:
        return asyncio.run(go())
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc

