"""What a job kind is: a name, a typed parameter Struct and a handler; what a running job gets (its context).

Each domain declares its kinds in its own ``jobs.py``; the composition root (:mod:`qbank.server`) hands the list to
the runners. This package names no domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import anyio.to_process
import anyio.to_thread
import msgspec
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.db import Database, utcnow
from qbank.jobs.identity import runner_identity
from qbank.jobs.models import Job
from qbank.lib.actors import Actor
from qbank.settings import Settings
from qbank.storage import EvidenceStore

T = TypeVar("T")
P = TypeVar("P", bound=msgspec.Struct)
JobResult = dict[str, Any]


class JobFailed(Exception):
    """A job's own clear failure: its ``detail`` (and optional rows) become the job's error."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def error(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


class JobLost(Exception):
    """This runner no longer holds the job (its lease ran out and another process took it back): whatever this
    run made is not stored."""


@dataclass(frozen=True)
class JobKind(Generic[P]):
    """One kind of long work. ``params`` is the Struct its parameters are stored as (and read back over the API)."""

    name: str
    params: type[P]
    handler: Callable[[JobContext, P], Awaitable[JobResult]]


class JobKinds:
    """The kinds a runner can run, by name (made once by the composition root)."""

    def __init__(self, kinds: Iterable[JobKind[Any]]) -> None:
        self._by_name: dict[str, JobKind[Any]] = {}
        for kind in kinds:
            if kind.name in self._by_name:
                raise ValueError(f"two job kinds are named {kind.name}")
            self._by_name[kind.name] = kind

    def get(self, name: str) -> JobKind[Any] | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)


@dataclass
class JobEnv:
    """What a job needs from the service: settings, database, evidence store, the kinds it may run, and this
    process's runner identity (:mod:`qbank.jobs.lease`)."""

    settings: Settings
    database: Database
    kinds: JobKinds
    store: EvidenceStore | None = None
    runner: str = field(default_factory=runner_identity)

    def lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.job_lease_s)

    @property
    def session_maker(self) -> async_sessionmaker[AsyncSession]:
        return self.database.session_maker

    def writing(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A short writing transaction, through the write gate."""
        return self.database.writing()

    @property
    def evidence(self) -> EvidenceStore:
        """The evidence store; jobs that touch evidence run only where one is configured."""
        if self.store is None:
            raise JobFailed("this process has no evidence store configured")
        return self.store

    def held(self, job_id: str) -> Any:
        """The condition that this runner still holds the running job ``job_id``."""
        return (Job.id == job_id) & (Job.status == "running") & (Job.runner == self.runner)


@dataclass
class JobContext:
    """A running job: who asked for it, where it runs, and how it reports progress."""

    job_id: str
    env: JobEnv
    actor: Actor
    _last: float = field(default=-1.0)
    _outcome: dict[str, Any] | None = field(default=None)

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
            await db.execute(update(Job).where(self.env.held(self.job_id)).values(**values))

    @asynccontextmanager
    async def storing(self) -> AsyncIterator[AsyncSession]:
        """The job's final writing transaction: what it stores and its end (:meth:`ended`, called inside) are
        committed together, and only while this runner still holds the job (else :class:`JobLost`, nothing
        stored). So a job that a runner's death sent back to the queue never stores its effects twice."""
        async with self.env.writing() as db:
            held = await db.execute(update(Job).where(self.env.held(self.job_id))
                                    .values(lease_until=self.env.lease_until()))
            if getattr(held, "rowcount", 0) != 1:
                raise JobLost(f"job {self.job_id} is no longer held by this runner")
            self._outcome = None
            yield db
            if self._outcome is not None:
                await db.execute(update(Job).where(Job.id == self.job_id).values(**self._outcome))

    def ended(self, result: JobResult | None = None, failure: JobFailed | None = None) -> None:
        """Inside :meth:`storing`: the job ends with ``result`` (or ``failure``) in that same transaction."""
        values: dict[str, Any] = {"finished_at": utcnow(), "lease_until": None}
        if failure is not None:
            values.update(status="failed", error=failure.error, result=None)
        else:
            values.update(status="succeeded", result=result, error=None, progress=1.0)
        self._outcome = values

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (a solver, ffmpeg) in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def isolated(self, fn: Callable[..., T], *args: Any) -> T:
        """Run heavy work in a worker process: the memory it takes (decoded video) goes back to the system
        instead of staying in the service. ``fn`` and its arguments must pickle (module-level functions)."""
        return await anyio.to_process.run_sync(fn, *args, cancellable=True)
