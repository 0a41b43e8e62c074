"""Recordings: streamed upload into the retention archive, analysis as a job, the session's video audit."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import evidence
import videoaudit
from qbank.auth.schemas import Actor, Role
from qbank.db import get_or_404, utcnow
from qbank.jobs.services import JobContext, JobFailed, job_kind
from qbank.lib.problems import ProblemError, bad_request
from qbank.lib.uploads import Spooled, spool_upload
from qbank.recordings.models import Recording
from qbank.recordings.schemas import RecordingOut, VideoAudit, finding_out
from qbank.sessions.models import ExamSession, Room
from qbank.sessions.services import session_rooms
from qbank.settings import Settings

log = structlog.get_logger("qbank.recordings")
RECORDINGS_KIND = "recordings"
SHEETS_KIND = "contact-sheets"
BLOCK = 1 << 20  # what the receiving side hands the upload thread at a time
STREAMED_PART = 8 << 20  # smaller parts for uploads that stream through: less held in memory


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def room_label(room: Room) -> str:
    return f"{room.site_code}/{room.code}"


def recording_out(row: Recording, room: Room, already_stored: bool = False) -> RecordingOut:
    return RecordingOut(
        id=row.id, session_id=row.session_id, room=room_label(room), view=row.view, claimed_start=row.claimed_start,
        sha256=row.sha256, size=row.size, status=row.status,  # type: ignore[arg-type]
        corrupt_reason=row.corrupt_reason, duration=row.duration,
        findings=[finding_out(f) for f in row.findings], retain_until=row.retain_until,
        has_contact_sheet=row.contact_sheet_key is not None, job_id=row.job_id, uploaded_by=row.uploaded_by,
        created_at=row.created_at, analysed_at=row.analysed_at, already_stored=already_stored)


async def find_room(db: AsyncSession, actor: Actor, session: ExamSession, room_ref: str, view: str) -> Room:
    """The session's room named ``site/code`` with that camera view; a site only for its own rooms."""
    site, _, code = room_ref.partition("/")
    if not code:
        raise bad_request("room", f"name the room as site/code, e.g. CD-01/T101 (got {room_ref!r})")
    if actor.role == Role.site and site != actor.site:
        raise PermissionDeniedException(f"site {actor.site} may not upload for site {site}")
    room = await db.scalar(select(Room).where(Room.session_id == session.id, Room.site_code == site,
                                              Room.code == code))
    if room is None:
        raise bad_request("room", f"room {room_ref} is not in session {session.id}")
    if view not in room.camera_views:
        views = ", ".join(room.camera_views)
        raise bad_request("view", f"room {room_ref} has no camera view {view!r} (it has {views})")
    return room


def check_claimed_start(settings: Settings, session: ExamSession, start: datetime) -> None:
    if start.tzinfo is None:
        raise bad_request("start", "give the time zone, e.g. 2026-12-03T09:00:00+08:00")
    slack = timedelta(minutes=settings.recording_start_slack_minutes)
    if not session.starts_at - slack <= start <= session.ends_at:
        tz = settings.tz
        raise bad_request("start", (
            f"claimed start {start.astimezone(tz).isoformat()} is far outside the exam window "
            f"{session.starts_at.astimezone(tz).isoformat()} – {session.ends_at.astimezone(tz).isoformat()} "
            f"(a recording may start up to {settings.recording_start_slack_minutes} min early)"))


def probe_upload(path: Path, claimed_start: datetime,
                 settings: Settings) -> tuple[videoaudit.VideoInfo | None, str | None]:
    """The probe of an uploaded file and, when it is truncated, why it is kept as corrupt; refuses what is not
    video (415) or is empty (400). Blocking."""
    if path.stat().st_size == 0:
        raise bad_request("file", "the file is empty (0 bytes)")
    try:
        return videoaudit.probe(path, claimed_start=claimed_start, timeout=settings.probe_timeout_s), None
    except (videoaudit.Truncated, videoaudit.ProbeTimeout) as exc:
        return None, f"{exc.code}: {exc}"  # kept as evidence, marked corrupt, never dropped
    except videoaudit.VideoError as exc:
        raise ProblemError(415 if isinstance(exc, videoaudit.NotAVideo) else 400,
                           f"file: not a usable video ({exc.code}): {exc}", extra={"code": exc.code}) from exc


class _BodyReader(io.RawIOBase):
    """The request body as a blocking stream for the archive's upload thread."""

    def __init__(self, receive: MemoryObjectReceiveStream[bytes]) -> None:
        super().__init__()
        self._receive = receive
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            try:
                self._buf = anyio.from_thread.run(self._receive.receive)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return b""
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


async def stream_through(body: AsyncIterator[bytes], settings: Settings, archive: Any, claimed_sha256: str,
                         claimed_start: datetime, put_args: dict[str, Any],
                         ) -> tuple[Spooled, Any, videoaudit.VideoInfo | None, str | None]:
    """Receive the body and upload it to the archive at the same time (its key is the claimed SHA-256); the
    upload completes only once the bytes match the claim and the probe accepts the spooled copy."""
    send, receive = anyio.create_memory_object_stream[bytes](4)
    outcome: dict[str, Any] = {}

    def before_commit() -> None:  # in the upload thread, after the last byte matched the claimed digest
        outcome["probe"] = probe_upload(outcome["spooled"].path, claimed_start, settings)

    async def upload() -> None:
        try:
            outcome["stored"] = await anyio.to_thread.run_sync(lambda: archive.put(
                RECORDINGS_KIND, _BodyReader(receive), sha256=claimed_sha256, before_commit=before_commit,
                part_size=STREAMED_PART, **put_args))
        except Exception as exc:  # reported once the body is in, so the client always gets its answer
            outcome["error"] = exc
        finally:
            receive.close()

    pending = bytearray()

    async def forward(block: bytes) -> None:
        with contextlib.suppress(anyio.BrokenResourceError):  # the upload already ended: keep spooling
            await send.send(block)

    async def tee(chunk: bytes) -> None:
        # hand the upload thread blocks of 1 MiB, not the server's small chunks: one thread hop per block
        pending.extend(chunk)
        if len(pending) >= BLOCK:
            block = bytes(pending)
            pending.clear()
            await forward(block)

    async with anyio.create_task_group() as tg:
        tg.start_soon(upload)
        try:
            # one SHA-256 pass, the archive's: it checks the bytes against the claim before completing
            outcome["spooled"] = await spool_upload(body, settings.data_dir / "spool", settings.max_recording_bytes,
                                                    "recording (QBANK_MAX_RECORDING_BYTES)", tee=tee, hashing=False)
            if pending:
                await forward(bytes(pending))
        except Exception as exc:  # raised below, not from inside the task group (which would wrap it)
            outcome["body_error"] = exc
        finally:
            send.close()  # the end of the body (or a failure): the upload thread checks the digest and stops
    if "body_error" in outcome:
        raise outcome["body_error"]
    spooled: Spooled = outcome["spooled"]
    error = outcome.get("error")
    stored = outcome.get("stored")
    if error is None and stored is not None and stored.already_stored:
        # the archive had the claimed bytes and read nothing: check what was received against the claim here
        actual = await anyio.to_thread.run_sync(file_sha256, spooled.path)
        if actual != claimed_sha256:
            error = evidence.SourceChanged(f"SHA-256 {actual} != {claimed_sha256}")
    if error is not None:
        spooled.path.unlink(missing_ok=True)
        if isinstance(error, evidence.SourceChanged):
            raise bad_request("X-Content-SHA256", f"the body's bytes do not have the claimed SHA-256 "
                                                  f"{claimed_sha256}; nothing was stored")
        raise error
    spooled = dataclasses.replace(spooled, sha256=claimed_sha256)  # verified by the archive (or just above)
    probed: tuple[videoaudit.VideoInfo | None, str | None] | None = outcome.get("probe")
    if probed is None:  # the archive had these bytes already, so the upload did not probe them
        probed = await anyio.to_thread.run_sync(probe_upload, spooled.path, claimed_start, settings)
    return spooled, outcome["stored"], probed[0], probed[1]


async def upload_recording(db: AsyncSession, actor: Actor, settings: Settings, store: Any, session: ExamSession,
                           room: Room, view: str, claimed_start: datetime, body: AsyncIterator[bytes],
                           claimed_sha256: str | None = None) -> tuple[Recording, bool]:
    """Store the file (or recognise it), probe it; returns the row and whether it was already stored.

    With ``claimed_sha256`` the body goes to the archive while it arrives; without, it is spooled first."""
    local_day = session.starts_at.astimezone(settings.tz).date()
    put_args = {"exam_date": local_day, "content_type": "video/mp4",
                "metadata": {"session": str(session.id), "room": room_label(room), "view": view}}
    known = claimed_sha256 is not None and await db.scalar(select(Recording.id).where(
        Recording.room_id == room.id, Recording.view == view, Recording.sha256 == claimed_sha256))
    if claimed_sha256 is not None and not known:
        spooled, stored, info, corrupt = await stream_through(body, settings, store.archive, claimed_sha256,
                                                              claimed_start, put_args)
        spooled.path.unlink(missing_ok=True)
    else:
        spooled = await spool_upload(body, settings.data_dir / "spool", settings.max_recording_bytes,
                                     "recording (QBANK_MAX_RECORDING_BYTES)")
        try:
            if claimed_sha256 is not None and spooled.sha256 != claimed_sha256:
                raise bad_request("X-Content-SHA256", f"the body's bytes do not have the claimed SHA-256 "
                                                      f"{claimed_sha256}; nothing was stored")
            existing = await db.scalar(select(Recording).where(
                Recording.room_id == room.id, Recording.view == view, Recording.sha256 == spooled.sha256))
            if existing is not None:
                return existing, True
            info, corrupt = await anyio.to_thread.run_sync(probe_upload, spooled.path, claimed_start, settings)
            stored = await anyio.to_thread.run_sync(lambda: store.archive.put(
                RECORDINGS_KIND, spooled.path, size=spooled.size, sha256=spooled.sha256, **put_args))
        finally:
            spooled.path.unlink(missing_ok=True)
    row = Recording(
        session_id=session.id, room_id=room.id, view=view, claimed_start=claimed_start.astimezone(UTC),
        sha256=spooled.sha256, size=spooled.size, archive_key=stored.key, retain_until=stored.retain_until,
        status="corrupt" if corrupt else "uploaded", corrupt_reason=corrupt,
        duration=info.duration if info else None, probe=msgspec.to_builtins(info) if info else None,
        findings=[], uploaded_by=actor.label, created_at=utcnow())
    db.add(row)
    await db.flush()
    return row, False


async def get_recording(db: AsyncSession, actor: Actor, recording_id: int) -> tuple[Recording, Room]:
    """A recording this caller may see: supervisors and admins all, a site only its own rooms'."""
    row = await get_or_404(db, Recording, recording_id, "recording")
    room = await db.get(Room, row.room_id)
    assert room is not None
    if actor.role == Role.site and room.site_code != actor.site:
        raise PermissionDeniedException(f"site {actor.site} may not see recordings of site {room.site_code}")
    if actor.role not in (Role.site, Role.supervisor, Role.admin):
        raise PermissionDeniedException("only supervisors, admins and the recording's site see footage")
    return row, room


@contextlib.contextmanager
def scratch_dir(settings: Settings) -> Any:
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


@job_kind("recording_analysis")
async def analyse_recording(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Download (digest checked), analyse the picture, make the contact sheet, record the findings."""
    recording_id = int(params["recording_id"])
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
    archive = env.store.archive
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
        duration = rec.duration if rec.duration and rec.duration > 0 else None
        if duration is None:  # corrupt before we learnt its length: nothing usable, nothing to place
            continue
        va_recordings.append(videoaudit.Recording(
            id=str(rec.id), room=room_label(by_id[rec.room_id]), view=rec.view, start=rec.claimed_start,
            duration=duration, findings=[msgspec.convert(f, videoaudit.Finding) for f in rec.findings],
            corrupt=rec.status == "corrupt"))
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
        reasons.append(f"{len(pending)} recording(s) still being analysed")
    return VideoAudit(session_id=session.id, passes=report.passes and not pending, reasons=reasons, pending=pending,
                      recordings=len(recordings), report=report, computed_at=utcnow())


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
