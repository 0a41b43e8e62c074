"""The session's video audit: coverage of every required camera view of every room over the exam window."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from qbank.db import utcnow
from qbank.jobs.models import Job
from qbank.lib.problems import without_paths
from qbank.recordings.jobs import PENDING
from qbank.recordings.models import Recording
from qbank.recordings.schemas import VideoAudit, split_findings
from qbank.recordings.services import decodable, room_label
from qbank.recordings.words import PHRASES, Lang, RecordingFacts, reasons_in_words
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
        if rec.status in PENDING:
            pending.append(rec.id)
            continue
        picture, whole = split_findings(rec.findings)
        corrupt = rec.status == "corrupt"
        va_recordings.append(videoaudit.Recording(
            id=str(rec.id), room=room_label(by_id[rec.room_id]), view=rec.view, start=rec.claimed_start,
            # a corrupt file whose length is unknown (0) is listed as unplaced by the engine, never skipped
            duration=rec.duration if rec.duration and rec.duration > 0 else 0.0,
            findings=picture, recording_findings=whole, corrupt=corrupt,
            corrupt_reason=without_paths(rec.corrupt_reason or "corrupt") if corrupt else "",
            decodable=decodable(rec)))
    return va_rooms, va_recordings, pending


async def session_video_audit(db: AsyncSession, settings: Settings, session: ExamSession,
                              lang: Lang = "en") -> VideoAudit:
    """The coverage of every required view of every room over the session window, from what is stored now; the
    reasons in ``lang`` (the API's are English)."""
    rooms = await session_rooms(db, session.id)
    recordings = list((await db.scalars(select(Recording).where(Recording.session_id == session.id)
                                        .order_by(Recording.id))).all())
    va_rooms, va_recordings, pending = coverage_input(rooms, recordings)
    report = videoaudit.coverage(session.starts_at, session.ends_at, va_rooms, va_recordings,
                                 gap_tolerance=settings.gap_tolerance_s)
    facts = {str(r.id): RecordingFacts(start=r.claimed_start, duration=r.duration) for r in recordings}
    reasons = reasons_in_words(report, facts, settings.tz, lang)
    if pending:
        reasons += await pending_in_words(db, [r for r in recordings if r.id in set(pending)], lang)
    return VideoAudit(session_id=session.id, passes=report.passes and not pending, reasons=reasons, pending=pending,
                      recordings=len(recordings), report=report, computed_at=utcnow())


async def pending_in_words(db: AsyncSession, pending: list[Recording], lang: Lang) -> list[str]:
    """Recordings not analysed yet: how many are being analysed, and each whose analysis failed or was lost (the
    next start re-queues those; an admin can run one again at once)."""
    say = PHRASES[lang]
    jobs = {j.id: j for j in (await db.scalars(select(Job).where(
        Job.id.in_([r.job_id for r in pending if r.job_id])))).all()}
    waiting, out = 0, []
    for rec in pending:
        job = jobs.get(rec.job_id or "")
        if job is not None and job.status in ("queued", "running"):
            waiting += 1
            continue
        why = without_paths(str((job.error or {}).get("detail", say["no_reason"]))) if job is not None \
            else say["lost_job"]
        out.append(say["lost"].format(recording=rec.id, why=why))
    if waiting:
        out.insert(0, say["waiting"].format(n=waiting))
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


def finding_rows(view: videoaudit.ViewCoverage, window: videoaudit.Interval, width: int) -> list[tuple[str, str]]:
    """One row per finding kind of the view (kinds are never merged): ▒ where that kind was found (× corrupt),
    blank elsewhere; the rows line up with :func:`timeline`."""
    total = (window.end - window.start).total_seconds()
    kinds = sorted({f.kind for f in view.findings})
    rows = []
    for kind in kinds:
        spans = [((f.start - window.start).total_seconds(), (f.end - window.start).total_seconds())
                 for f in view.findings if f.kind == kind]
        mark = "×" if kind == "corrupt" else "▒"
        cells = [mark if any(s < total * (i + 1) / width and e > total * i / width for s, e in spans) else " "
                 for i in range(width)]
        rows.append((kind, "".join(cells)))
    return rows
