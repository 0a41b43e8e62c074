"""``/health`` (liveness: the process answers) and ``/health/ready`` (readiness: the database, the object store
and, when jobs go through a queue, Redis each answer, with how long they took)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy import text

from qbank.db import Database
from qbank.jobs.services import JobRunner, QueueRunner
from qbank.storage import EvidenceStore

CHECK_TIMEOUT_S = 5.0


class Health(msgspec.Struct):
    status: str
    database: str


class Check(msgspec.Struct, kw_only=True):
    """One dependency: whether it answered, how long it took, and what went wrong."""

    status: Literal["ok", "down"]
    latency_ms: float
    detail: str = ""


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not ready"]
    database: Check
    s3: Check
    redis: Check | None = None  # only when jobs go through a queue (QBANK_JOB_QUEUE_URL)


@get("/health", summary="Liveness: the process answers (and reaches its database)", tags=["health"],
     security=[{}])  # public: no token
async def health(database: Database) -> Health:
    async with database.session_maker() as db:
        await db.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


async def check(probe: Callable[[], Awaitable[object]]) -> Check:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except Exception as exc:
        detail = f"no answer within {CHECK_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) else (
            f"{type(exc).__name__}: {exc}")
        return Check(status="down", latency_ms=round((time.perf_counter() - start) * 1000, 1), detail=detail[:300])
    return Check(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 1))


@get("/health/ready", tags=["health"], security=[{}],
     summary="Readiness: the database, S3 and (when configured) Redis answer",
     description="200 when every dependency answered, 503 when one did not; each with its status and latency. "
                 "A load balancer sends traffic to an instance only while it is ready.",
     responses={503: ResponseSpec(data_container=Readiness, description="a dependency did not answer")})
async def ready(database: Database, store: EvidenceStore, job_runner: JobRunner) -> Response[Readiness]:
    async def database_answers() -> None:
        async with database.session_maker() as db:
            await db.execute(text("SELECT 1"))

    checks = [check(database_answers), check(store.ping)]
    if isinstance(job_runner, QueueRunner):
        checks.append(check(job_runner.ping))
    results = await asyncio.gather(*checks)
    ok = all(c.status == "ok" for c in results)
    body = Readiness(status="ready" if ok else "not ready", database=results[0], s3=results[1],
                     redis=results[2] if len(results) > 2 else None)
    return Response(body, status_code=200 if ok else 503, headers={} if ok else {"Retry-After": "5"})
