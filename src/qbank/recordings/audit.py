"""The session's video audit: coverage of every required camera view of every room over the exam window."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from qbank.db import utcnow
from qbank.jobs.models import Job
from qbank.lib.problems import without_paths
from qbank.recordings.models import Recording
from qbank.recordings.schemas import VideoAudit
from qbank.recordings.services import room_label
from qbank.sessions.models import ExamSession, Room
from qbank.sessions.services import session_rooms
from qbank.settings import Settings


def coverage_input(rooms: list[Room], recordings: list[Recording]) -> tuple[list[videoaudit.Room],
                                                                            list[videoaudit.Recording], list[int]]:
    by_id = {r.id: r for r in rooms}
    va_rooms = [videoaudit.Room(id=room_label(r), kind=r.kind, views=list(r.camera_views))  # type: ignore[arg-type]
                for r in rooms]
    va_recordings: list[videoaudit.Recording] = []
    pending: list[int] = []
    for rec in recordings:
        if rec.status in ("uploaded", "analysing"):
            pending.append(rec.id)
            continue
        # a corrupt file whose length is unknown (0) is listed as unplaced by the engine, never skipped
        duration = rec.duration if rec.duration and rec.duration > 0 else 0.0
        whole = [f for f in rec.findings if f["kind"] in videoaudit.RECORDING_FINDING_KINDS]
        va_recordings.append(videoaudit.Recording(
            id=str(rec.id), room=room_label(by_id[rec.room_id]), view=rec.view, start=rec.claimed_start,
            duration=duration, corrupt=rec.status == "corrupt",
            findings=[msgspec.convert(f, videoaudit.Finding) for f in rec.findings if f not in whole],
            recording_findings=[msgspec.convert(f, videoaudit.RecordingFinding, strict=False) for f in whole],
            corrupt_reason=(rec.corrupt_reason or "corrupt") if rec.status == "corrupt" else ""))
    return va_rooms, va_recordings, pending


def reasons_in_words(report: videoaudit.CoverageReport, settings: Settings) -> list[str]:
    tz = settings.tz

    def span(i: videoaudit.Interval) -> str:
        a, b = i.start.astimezone(tz), i.end.astimezone(tz)
        return f"{a:%H:%M:%S}–{b:%H:%M:%S} ({(b - a).total_seconds():.0f} s)"

    out: list[str] = []
    for room in report.rooms:
        for view in room.views:
            if view.passes:
                continue
            parts = [f"gap {span(g)}" for g in view.gaps]
            parts += [f"{u.reason or 'unusable'} {span(u)}" for u in view.unusable]
            if not view.covered:
                parts = ["no recording"]
            out.append(f"{room.room} {view.view}: " + "; ".join(parts))
    return out


async def session_video_audit(db: AsyncSession, settings: Settings, session: ExamSession) -> VideoAudit:
    """The coverage of every required view of every room over the session window, from what is stored now."""
    rooms = await session_rooms(db, session.id)
    recordings = list((await db.scalars(select(Recording).where(Recording.session_id == session.id)
                                        .order_by(Recording.id))).all())
    va_rooms, va_recordings, pending = coverage_input(rooms, recordings)
    report = videoaudit.coverage(session.starts_at, session.ends_at, va_rooms, va_recordings,
                                 gap_tolerance=settings.gap_tolerance_s)
    reasons = reasons_in_words(report, settings)
    if pending:
        reasons += await pending_in_words(db, [r for r in recordings if r.id in set(pending)])
    return VideoAudit(session_id=session.id, passes=report.passes and not pending, reasons=reasons, pending=pending,
                      recordings=len(recordings), report=report, computed_at=utcnow())


async def pending_in_words(db: AsyncSession, pending: list[Recording]) -> list[str]:
    """Recordings not analysed yet: how many are being analysed, and each whose analysis failed or was lost (the
    next start re-queues those; an admin can run one again at once)."""
    jobs = {j.id: j for j in (await db.scalars(select(Job).where(
        Job.id.in_([r.job_id for r in pending if r.job_id])))).all()}
    waiting, out = 0, []
    for rec in pending:
        job = jobs.get(rec.job_id or "")
        if job is not None and job.status in ("queued", "running"):
            waiting += 1
            continue
        why = without_paths(str((job.error or {}).get("detail", "no reason recorded"))) if job is not None \
            else "its job was lost"
        out.append(f"recording {rec.id}: its analysis did not finish ({why}); run it again with "
                   f"POST /api/v1/recordings/{rec.id}/analysis")
    if waiting:
        out.insert(0, f"{waiting} recording(s) still being analysed")
    return out


def timeline(view: videoaudit.ViewCoverage, window: videoaudit.Interval, width: int) -> str:
    """One character per slice of the window: █ usable, ▒ unusable, · gap, blank not recorded (within tolerance)."""
    total = (window.end - window.start).total_seconds()

    def hits(spans: list[videoaudit.Interval], a: float, b: float) -> bool:
        return any((s.start - window.start).total_seconds() < b and (s.end - window.start).total_seconds() > a
                   for s in spans)

    cells = []
    for i in range(width):
        a, b = total * i / width, total * (i + 1) / width
        if hits(view.unusable, a, b):
            cells.append("▒")
        elif hits(view.gaps, a, b):
            cells.append("·")
        elif hits(view.usable, a, b):
            cells.append("█")
        else:
            cells.append(" ")
    return "".join(cells)
