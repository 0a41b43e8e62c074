"""An import as a job: ``POST /api/v1/imports`` (and ``qbank import``) store the file and its SHA-256 and answer
with the job; a runner reads the stored bytes back, checks their digest, parses and checks them off the event loop
(small files in a thread, larger ones in a worker process), then writes every item in one transaction with the
job's end.

Progress: ``rows parsed`` and ``rows checked`` once the file is read and checked, ``items_written`` in the result
(the write is one transaction: nothing of it is visible before its end). A refused file ends the job failed with
the first ``ERRORS_SHOWN`` problems and their total; the full list is kept as a report
(``GET /api/v1/imports/{job_id}/report``)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import secrets
import time
from typing import Any, NoReturn

import msgspec
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive, StoreUnavailable
from qbank.audit.services import record
from qbank.blueprints.services import require_level
from qbank.imports.models import ImportUpload
from qbank.imports.points import parse_point_map
from qbank.imports.safety import Limits, check_size
from qbank.imports.services import (
    Refused,
    carries_media,
    check_inputs,
    finish_check,
    read_and_check,
    read_and_check_packed,
    unpack_staged,
    write_import,
)
from qbank.jobs.kinds import JobContext, JobFailed, JobKind, JobResult
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import get_job, submit
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import FieldError, ProblemError, not_found
from qbank.settings import Settings

ERRORS_SHOWN = 200  # problems listed in the job's error; the report has them all
ISOLATE_FROM = 512 * 1024  # files larger than this are read in a worker process


class ImportParams(msgspec.Struct, kw_only=True):
    upload: str  # the ImportUpload row holding the file
    sha256: str  # the file's digest when it was uploaded: checked before it is parsed
    occupation_code: str
    level: int
    format: str | None = None
    point: str | None = None


async def request_import(db: AsyncSession, actor: Actor, settings: Settings, content: bytes, occupation: str,
                         level: int, *, fmt: str | None = None, filename: str | None = None,
                         file_point: str | None = None, point_map: bytes | None = None) -> JobOut:
    """Store the file and the import job in the caller's transaction. What is refused at once: the caller's
    occupation, an unknown level, the size, an unreadable point map; everything about the file's content is the
    job's."""
    check_occupation(actor, occupation)
    await require_level(db, occupation, level)
    check_size(content, Limits.of(settings))
    if point_map is not None:
        parse_point_map(point_map)
    sha = hashlib.sha256(content).hexdigest()
    upload = ImportUpload(id=secrets.token_hex(16), sha256=sha, size=len(content), filename=filename, data=content,
                          point_map=point_map, created_by=actor.label)
    db.add(upload)
    job = await submit(db, actor, ITEM_IMPORT, ImportParams(upload=upload.id, sha256=sha, occupation_code=occupation,
                                                            level=level, format=fmt, point=file_point),
                       subject=f"import {occupation} L{level}")
    await record(db, actor, "job.submit", "job", job.id, after={"kind": job.kind, "sha256": sha},
                 detail={"filename": filename, "size": len(content), "occupation": occupation, "level": level})
    return job


def report_csv(errors: list[FieldError]) -> bytes:
    """Every problem as CSV (where, problem), UTF-8 with a BOM so that Excel reads the Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["where", "problem"])
    writer.writerows((e.field, e.reason) for e in errors)
    return "\ufeff".encode() + out.getvalue().encode()


async def import_report(db: AsyncSession, actor: Actor, job_id: str) -> bytes:
    """The full list of a refused import's problems, for who asked for the import (or an admin)."""
    job = await get_job(db, actor, job_id)
    upload = await db.get(ImportUpload, str(job.params.get("upload", ""))) if job.kind == ITEM_IMPORT.name else None
    if upload is None or upload.report is None:
        raise not_found("report of import job", job_id)
    return gzip.decompress(upload.report)


async def _refuse(ctx: JobContext, params: ImportParams, exc: ProblemError) -> NoReturn:
    """End the job failed with the first problems and their count; keep the full list as the report."""
    errors = exc.errors
    extra: dict[str, Any] = {"status": exc.status_code, "problems": len(errors),
                             "errors": msgspec.to_builtins(errors[:ERRORS_SHOWN])}
    if exc.problem_extra:
        extra["extra"] = exc.problem_extra  # as the problem body names it
    if errors:
        extra["report"] = f"/api/v1/imports/{ctx.job_id}/report"
    failure = JobFailed(exc.detail, **extra)
    async with ctx.storing() as db:  # the report and the job's end, together
        await db.execute(update(ImportUpload).where(ImportUpload.id == params.upload).values(
            data=None, report=gzip.compress(report_csv(errors)) if errors else None, problems=len(errors)))
        ctx.ended(failure=failure)
    raise failure


async def run_import(ctx: JobContext, params: ImportParams) -> JobResult:
    settings = ctx.env.settings
    limits = Limits.of(settings)
    try:
        async with ctx.env.session_maker() as db:
            upload = await db.get(ImportUpload, params.upload)
            if upload is None or upload.data is None:
                raise JobFailed("the uploaded file is no longer stored: nothing was imported; upload it again",
                                status=410)
            data, point_map, filename = upload.data, upload.point_map, upload.filename
            actual = hashlib.sha256(data).hexdigest()
            if actual != params.sha256:
                raise JobFailed(f"the stored file is not the one uploaded (its SHA-256 is {actual}, the upload's "
                                f"was {params.sha256}): nothing was imported; upload the file again", status=409)
            await require_level(db, params.occupation_code, params.level)
            inputs = await check_inputs(
                db, params.occupation_code, params.level, file_point=params.point,
                rules=parse_point_map(point_map) if point_map is not None else None,
                media_limit=settings.max_upload_bytes)
        await ctx.progress(0.02, f"reading {filename or 'the file'}")
        # A worker process for big files (the service keeps its cores and its memory); a thread for small ones,
        # whose parse is shorter than a worker process's start.
        started = time.perf_counter()
        if len(data) > ISOLATE_FROM:
            packed = await ctx.isolated(read_and_check_packed, data, params.format, limits, inputs)
            staged = await unpack_staged(packed)
        else:
            staged = await ctx.blocking(read_and_check, data, params.format, limits, inputs)
        read_s = time.perf_counter() - started
        if isinstance(staged, Refused):
            raise staged.problem()
        rows = len(staged.parsed.positions)
        await ctx.progress(0.5, f"{rows} rows parsed, {rows} rows checked")
        archive: RetentionArchive | None = None
        if carries_media(staged.parsed):
            try:
                archive = ctx.env.evidence.available()
            except StoreUnavailable as exc:
                raise JobFailed("the file carries media and the evidence store does not answer: nothing was "
                                "imported; try again later", status=503) from exc
        async with ctx.env.session_maker() as db:
            checked = await finish_check(db, archive, staged, inputs)
        await ctx.progress(0.6, f"{rows} rows parsed, {rows} rows checked; writing {len(checked.items)} items")
        started = time.perf_counter()
        async with ctx.storing() as db:  # the items, their trail and the job's end: one transaction, stored once
            out = await write_import(db, ctx.actor, archive, checked, params.occupation_code, params.level,
                                     params.sha256, filename)
            await db.execute(update(ImportUpload).where(ImportUpload.id == params.upload).values(data=None))
            result: JobResult = {**msgspec.to_builtins(out), "items_written": out.count, "seconds": {
                "read_and_check": round(read_s, 3), "write": round(time.perf_counter() - started, 3)}}
            ctx.ended(result)
        return result
    except ProblemError as exc:
        await _refuse(ctx, params, exc)


ITEM_IMPORT = JobKind("item_import", ImportParams, run_import)
