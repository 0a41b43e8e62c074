"""The recording analysis job: picture findings and the contact sheet, off the event loop in a worker process.

A run stores its findings together with the job's end (``JobContext.storing``), so a run that a dead runner left
unfinished and that runs again overwrites nothing twice; the contact sheet is content-addressed. Recordings whose
analysis was lost (its job failed or vanished) are re-queued at start (:func:`requeue_lost_analyses`), and an
admin can run an analysis again (:func:`reanalyse`)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from qbank.audit.services import record
from qbank.db import get_or_404, utcnow
from qbank.jobs.kinds import JobContext, JobEnv, JobFailed, JobKind, JobLost, JobResult
from qbank.jobs.lease import Enqueues
from qbank.jobs.models import Job
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import ProblemError, conflict, without_paths
from qbank.recordings.models import Recording
from qbank.recordings.schemas import stored_findings
from qbank.recordings.words import video_error_words
from qbank.sessions.models import ExamSession
from qbank.settings import Settings, video_quality_for
from qbank.storage import scratch_base

log = structlog.get_logger("qbank.recordings")
SHEETS_KIND = "contact-sheets"


@contextlib.contextmanager
def scratch_dir(settings: Settings) -> Iterator[Path]:
    base = scratch_base(settings)
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        yield Path(tmp)


def quality_config(settings: Settings, view: str) -> videoaudit.QualityConfig:
    return video_quality_for(settings.video_quality, view)


def make_contact_sheet(path: Path, out: Path, every: float, start: datetime | None) -> Path:
    """Module-level so that it runs in a worker process (JobContext.isolated)."""
    return videoaudit.contact_sheet(path, out, every=every, start=start)


def truncation_words(report: videoaudit.QualityReport) -> str:
    """Why an analysed file is corrupt: the engine's words on its "corrupt" stretch at the end."""
    details = [f.detail for f in report.findings if f.kind == "corrupt" and f.detail]
    return without_paths(f"{videoaudit.Truncated.code}: " + (details[-1] if details else "the file is cut short"))


def analyse_file(path: Path, config: videoaudit.QualityConfig) -> videoaudit.QualityReport | str:
    """Module-level so that it runs in a worker process (JobContext.isolated). A file that is not usable video
    comes back as why (in words, without paths), not as the engine's exception, which does not survive the trip
    between processes (its constructor takes more than its message)."""
    try:
        return videoaudit.analyse(path, config)
    except videoaudit.VideoError as exc:
        return video_error_words(exc)


def contact_sheet_every(duration: float | None) -> float:
    """About 60 tiles over the recording, never closer than 10 s apart."""
    return max(10.0, round((duration or 600.0) / 60.0))


class AnalysisParams(msgspec.Struct, kw_only=True):
    """A recording analysis job: which recording."""

    recording_id: int


async def analyse_recording(ctx: JobContext, params: AnalysisParams) -> JobResult:
    """Download (digest checked), analyse the picture, make the contact sheet, record the findings. A run that
    fails leaves the recording ``uploaded`` (waiting for an analysis), not ``analysing``."""
    try:
        return await _analyse(ctx, params.recording_id)
    except JobLost:
        raise  # another runner holds the job (and the recording) now
    except BaseException:
        async with ctx.env.writing() as db:
            await db.execute(update(Recording).where(Recording.id == params.recording_id,
                                                     Recording.status == "analysing",
                                                     Recording.job_id == ctx.job_id).values(status="uploaded"))
        raise


async def _analyse(ctx: JobContext, recording_id: int) -> JobResult:
    env = ctx.env
    async with env.session_maker() as db:
        row = await db.get(Recording, recording_id)
        if row is None:
            raise JobFailed(f"recording {recording_id} does not exist")
        key, start, duration, upload_reason = row.archive_key, row.claimed_start, row.duration, row.corrupt_reason
        view = row.view
        session = await db.get(ExamSession, row.session_id)
        assert session is not None
        local_day = session.starts_at.astimezone(env.settings.tz).date()
    async with env.writing() as db:
        row = await db.get(Recording, recording_id)
        if row is not None:
            row.status = "analysing"
    archive = env.evidence.archive
    with scratch_dir(env.settings) as tmp:
        path = tmp / "recording.mp4"
        await ctx.progress(0.05, "downloading from the archive (digest checked)")
        await ctx.blocking(archive.download, key, path)
        await ctx.progress(0.3, "analysing the picture")
        status, reason, findings, facts = "analysed", None, [], None
        report = await ctx.isolated(analyse_file, path, quality_config(env.settings, view))
        if isinstance(report, str):
            status, reason = "corrupt", report
        else:
            findings = stored_findings(report)
            duration = report.duration
            if report.truncated:  # placed over the span it claims: what decodes counts, the rest is "corrupt"
                status, reason = "corrupt", upload_reason or truncation_words(report)
                duration = max(report.claimed_duration or 0.0, report.duration)
                facts = {"decodable": report.decodable, "claimed_duration": report.claimed_duration}
        sheet_key: str | None = None
        if status == "analysed":
            await ctx.progress(0.8, "making the contact sheet")
            sheet = tmp / "sheet.jpg"
            every = contact_sheet_every(duration)
            await ctx.isolated(make_contact_sheet, path, sheet, every, start)
            stored = await ctx.blocking(lambda: archive.put(SHEETS_KIND, sheet, exam_date=local_day,
                                                            content_type="image/jpeg"))
            sheet_key = stored.key
    result = {"recording_id": recording_id, "status": status, "findings": len(findings), "reason": reason}
    async with ctx.storing() as db:  # the findings and the job's end, together and once
        row = await db.get(Recording, recording_id)
        if row is not None:
            row.status, row.corrupt_reason, row.findings = status, reason, findings
            if facts is not None:  # the probe's facts and what the analysis learnt of a truncated file
                row.probe = {**(row.probe or {}), **facts}
            row.duration, row.contact_sheet_key, row.analysed_at = duration, sheet_key, utcnow()
        ctx.ended(result)
    log.info("recording analysed", recording=recording_id, status=status, findings=len(findings))
    return result


RECORDING_ANALYSIS = JobKind("recording_analysis", AnalysisParams, analyse_recording)


async def start_analysis(db: AsyncSession, actor: Actor, row: Recording) -> JobOut:
    """Store the analysis job of a new recording in the caller's transaction."""
    job = await submit(db, actor, RECORDING_ANALYSIS, AnalysisParams(recording_id=row.id),
                       subject=f"recording:{row.id}")
    row.job_id = job.id
    await db.flush()
    return job


PENDING = ("uploaded", "analysing")
LIVE_JOB = ("queued", "running")
RECONCILER = Actor(token_id=0, name="reconciler", role=Role.admin)


async def analysis_live(db: AsyncSession, row: Recording) -> bool:
    """Whether the recording's analysis job is queued or running."""
    if row.job_id is None:
        return False
    return (await db.scalar(select(Job.status).where(Job.id == row.job_id))) in LIVE_JOB


async def restart_analysis(db: AsyncSession, actor: Actor, row: Recording) -> JobOut:
    """Store a new analysis job for ``row`` in the caller's transaction; the recording waits as ``uploaded``.
    The recording's job id is swapped by compare-and-set: 409 when another process restarted it first."""
    previous = row.job_id
    job = await submit(db, actor, RECORDING_ANALYSIS, AnalysisParams(recording_id=row.id),
                       subject=f"recording:{row.id}")
    swapped = await db.execute(update(Recording).where(
        Recording.id == row.id, Recording.job_id.is_not_distinct_from(previous)).values(
        job_id=job.id, status="uploaded"))
    if getattr(swapped, "rowcount", 0) != 1:
        raise conflict(f"the analysis of recording {row.id} was just restarted by another request")
    await db.refresh(row)
    return job


async def requeue_lost_analyses(env: JobEnv, runner: Enqueues) -> int:
    """At start: every recording still waiting for its analysis whose job is neither queued nor running (its
    runner died after the last attempt, or the job was never stored) gets a new analysis job."""
    async with env.session_maker() as db:
        rows = (await db.execute(
            select(Recording.id, Job.actor).outerjoin(Job, Job.id == Recording.job_id)
            .where(Recording.status.in_(PENDING), (Job.id.is_(None)) | (Job.status.not_in(LIVE_JOB))))).all()
    started: list[str] = []
    for recording_id, raw_actor in rows:
        actor = msgspec.convert(raw_actor, Actor) if raw_actor else RECONCILER
        try:
            async with env.writing() as db:
                row = await db.get(Recording, recording_id)
                if row is None or row.status not in PENDING or await analysis_live(db, row):
                    continue
                job = await restart_analysis(db, actor, row)
        except ProblemError:  # another process re-queued it first
            continue
        started.append(job.id)
        log.warning("re-queued the analysis of a recording whose analysis was lost", recording=recording_id,
                    job_id=job.id)
    for job_id in started:
        await runner.enqueue(job_id)
    return len(started)


async def reanalyse(db: AsyncSession, actor: Actor, recording_id: int) -> JobOut:
    """Run the analysis of a recording again (an admin's request): 409 while one is queued or running."""
    row = await get_or_404(db, Recording, recording_id, "recording")
    if await analysis_live(db, row):
        raise conflict(f"recording {recording_id} is being analysed (job {row.job_id}); wait for it to end",
                       job_id=row.job_id)
    before = {"status": row.status, "job_id": row.job_id}
    job = await restart_analysis(db, actor, row)
    await record(db, actor, "recording.reanalyse", "recording", row.id, before=before,
                 after={"status": row.status, "job_id": job.id})
    return job
