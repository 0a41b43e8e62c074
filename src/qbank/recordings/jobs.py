"""The recording analysis job: picture findings and the contact sheet, off the event loop in a worker process."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from qbank.db import utcnow
from qbank.jobs.kinds import JobContext, JobFailed, JobKind, JobResult
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import submit
from qbank.lib.actors import Actor
from qbank.recordings.models import Recording
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

log = structlog.get_logger("qbank.recordings")
SHEETS_KIND = "contact-sheets"


@contextlib.contextmanager
def scratch_dir(settings: Settings) -> Iterator[Path]:
    base = settings.data_dir / "scratch"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        yield Path(tmp)


def quality_config(settings: Settings) -> videoaudit.QualityConfig:
    return msgspec.convert(settings.video_quality, videoaudit.QualityConfig)


def make_contact_sheet(path: Path, out: Path, every: float, start: datetime | None) -> Path:
    """Module-level so that it runs in a worker process (JobContext.isolated)."""
    return videoaudit.contact_sheet(path, out, every=every, start=start)


def contact_sheet_every(duration: float | None) -> float:
    """About 60 tiles over the recording, never closer than 10 s apart."""
    return max(10.0, round((duration or 600.0) / 60.0))


class AnalysisParams(msgspec.Struct, kw_only=True):
    """A recording analysis job: which recording."""

    recording_id: int


async def analyse_recording(ctx: JobContext, params: AnalysisParams) -> JobResult:
    """Download (digest checked), analyse the picture, make the contact sheet, record the findings."""
    recording_id = params.recording_id
    env = ctx.env
    async with env.session_maker() as db:
        row = await db.get(Recording, recording_id)
        if row is None:
            raise JobFailed(f"recording {recording_id} does not exist")
        key, start, duration = row.archive_key, row.claimed_start, row.duration
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
        status, reason, findings = "analysed", None, []
        try:
            report = await ctx.isolated(videoaudit.analyse, path, quality_config(env.settings))
            findings = [msgspec.to_builtins(f) for f in report.findings]
            duration = report.duration
        except videoaudit.VideoError as exc:
            status, reason = "corrupt", f"{exc.code}: {exc}"
        sheet_key: str | None = None
        if status == "analysed":
            await ctx.progress(0.8, "making the contact sheet")
            sheet = tmp / "sheet.jpg"
            every = contact_sheet_every(duration)
            await ctx.isolated(make_contact_sheet, path, sheet, every, start)
            stored = await ctx.blocking(lambda: archive.put(SHEETS_KIND, sheet, exam_date=local_day,
                                                            content_type="image/jpeg"))
            sheet_key = stored.key
    async with env.writing() as db:
        row = await db.get(Recording, recording_id)
        if row is not None:
            row.status, row.corrupt_reason, row.findings = status, reason, findings
            row.duration, row.contact_sheet_key, row.analysed_at = duration, sheet_key, utcnow()
    log.info("recording analysed", recording=recording_id, status=status, findings=len(findings))
    return {"recording_id": recording_id, "status": status, "findings": len(findings), "reason": reason}


RECORDING_ANALYSIS = JobKind("recording_analysis", AnalysisParams, analyse_recording)


async def start_analysis(db: AsyncSession, actor: Actor, row: Recording) -> JobOut:
    """Store the analysis job of a new recording in the caller's transaction."""
    job = await submit(db, actor, RECORDING_ANALYSIS, AnalysisParams(recording_id=row.id),
                       subject=f"recording:{row.id}")
    row.job_id = job.id
    await db.flush()
    return job
