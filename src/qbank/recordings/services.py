"""Recordings of exam rooms: upload into the retention archive (spooled, or streamed through with a claimed
digest), who may see which recording, play links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec
import structlog
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from evidence import ArchivedObject, ObjectNotFound, RetentionArchive
from qbank.audit.services import record, record_apart
from qbank.db import Database, get_or_404, utcnow
from qbank.jobs.schemas import JobOut
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import ProblemError, bad_request, conflict, not_found, without_paths
from qbank.lib.uploads import spool_upload
from qbank.recordings.jobs import PENDING, analysis_live, restart_analysis, start_analysis
from qbank.recordings.models import Recording
from qbank.recordings.schemas import (
    FindingOut,
    RecordingFindingOut,
    RecordingLink,
    RecordingOut,
    split_findings,
)
from qbank.recordings.streaming import stream_through
from qbank.recordings.words import video_error_words
from qbank.sessions.models import ExamSession, Room
from qbank.settings import Settings

log = structlog.get_logger("qbank.recordings")
RECORDINGS_KIND = "recordings"



def decodable(row: Recording) -> float | None:
    """A corrupt recording's seconds that decode, as its analysis found (None: nothing decodes or not analysed)."""
    value = (row.probe or {}).get("decodable") if row.status == "corrupt" else None
    return float(value) if isinstance(value, int | float) else None


def room_label(room: Room) -> str:
    return f"{room.site_code}/{room.code}"


def recording_out(row: Recording, room: Room, already_stored: bool = False) -> RecordingOut:
    picture, whole = split_findings(row.findings)
    return RecordingOut(
        id=row.id, session_id=row.session_id, room=room_label(room), view=row.view, claimed_start=row.claimed_start,
        sha256=row.sha256, size=row.size, status=row.status,  # type: ignore[arg-type]
        corrupt_reason=without_paths(row.corrupt_reason) if row.corrupt_reason else None, duration=row.duration,
        findings=[msgspec.convert(f, FindingOut, from_attributes=True) for f in picture],
        recording_findings=[msgspec.convert(f, RecordingFindingOut, from_attributes=True) for f in whole],
        decodable=decodable(row), retain_until=row.retain_until,
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


def check_same_start(settings: Settings, stored: Recording, claimed_start: datetime) -> None:
    """The same bytes again must claim the same start: a recording has one start, so another one is refused (409)
    rather than answered with the stored start as if nothing differed."""
    if stored.claimed_start != claimed_start:
        tz = settings.tz
        raise conflict(
            f"these bytes are already stored as recording {stored.id} with claimed start "
            f"{stored.claimed_start.astimezone(tz).isoformat()}, not {claimed_start.astimezone(tz).isoformat()}; "
            "nothing was changed (a recording has one start)",
            recording_id=stored.id, stored_start=stored.claimed_start.astimezone(tz).isoformat())


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


def probe_upload(path: Path, claimed_start: datetime,
                 settings: Settings) -> tuple[videoaudit.VideoInfo | None, str | None]:
    """The probe of an uploaded file and, when it is truncated, why it is kept as corrupt; refuses what is not
    video (415) or is empty (400). Blocking."""
    if path.stat().st_size == 0:
        raise bad_request("file", "the file is empty (0 bytes)")
    try:
        return videoaudit.probe(path, claimed_start=claimed_start, timeout=settings.probe_timeout_s), None
    except (videoaudit.Truncated, videoaudit.ProbeTimeout) as exc:
        return None, video_error_words(exc)  # kept as evidence, marked corrupt, never dropped
    except videoaudit.VideoError as exc:
        raise ProblemError(415 if isinstance(exc, videoaudit.NotAVideo) else 400,
                           f"file: not a usable video ({video_error_words(exc)})", extra={"code": exc.code}) from exc


def status_after_probe(corrupt: str | None) -> str:
    """A truncated file is analysed like any other (the part that decodes counts, the rest is "corrupt" on the
    timeline) and ends ``corrupt``; a file the probe could not read at all is ``corrupt`` at once."""
    if corrupt is None or corrupt.startswith(f"{videoaudit.Truncated.code}:"):
        return "uploaded"
    return "corrupt"


async def upload_recording(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                           session: ExamSession,
                           room: Room, view: str, claimed_start: datetime, body: AsyncIterator[bytes],
                           claimed_sha256: str | None = None) -> tuple[Recording, bool]:
    """Store the file (or recognise it), probe it; returns the row and whether it was already stored.

    With ``claimed_sha256`` the body goes to the archive while it arrives; without, it is spooled first."""
    put_args = archive_labels(settings, session, room, view)
    known = claimed_sha256 is not None and await db.scalar(select(Recording.id).where(
        Recording.room_id == room.id, Recording.view == view, Recording.sha256 == claimed_sha256))
    if claimed_sha256 is not None and not known:
        spooled, stored, info, corrupt = await stream_through(
            body, settings, archive, RECORDINGS_KIND, claimed_sha256,
            lambda path: probe_upload(path, claimed_start, settings), put_args)
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
                check_same_start(settings, existing, claimed_start)
                return existing, True
            info, corrupt = await anyio.to_thread.run_sync(probe_upload, spooled.path, claimed_start, settings)
            stored = await anyio.to_thread.run_sync(lambda: archive.put(
                RECORDINGS_KIND, spooled.path, size=spooled.size, sha256=spooled.sha256, **put_args))
        finally:
            spooled.path.unlink(missing_ok=True)
    return await add_recording(db, actor, session, room, view, claimed_start, stored, info, corrupt), False


RECORDING_TYPE = "video/mp4"  # how recordings are stored, and what their play links say they are


def archive_labels(settings: Settings, session: ExamSession, room: Room, view: str) -> dict[str, Any]:
    """How a recording is deposited: retained from its exam's (local) day, labelled with where it was filmed."""
    return {"exam_date": session.starts_at.astimezone(settings.tz).date(), "content_type": RECORDING_TYPE,
            "metadata": {"session": str(session.id), "room": room_label(room), "view": view}}


async def add_recording(db: AsyncSession, actor: Actor, session: ExamSession, room: Room, view: str,
                        claimed_start: datetime, stored: ArchivedObject, info: videoaudit.VideoInfo | None,
                        corrupt: str | None) -> Recording:
    """The row of a recording just stored in the archive and probed."""
    row = Recording(
        session_id=session.id, room_id=room.id, view=view, claimed_start=claimed_start.astimezone(UTC),
        sha256=stored.sha256, size=stored.size, archive_key=stored.key, retain_until=stored.retain_until,
        status=status_after_probe(corrupt), corrupt_reason=corrupt,
        duration=info.duration if info else None, probe=msgspec.to_builtins(info) if info else None,
        findings=[], uploaded_by=actor.label, created_at=utcnow())
    db.add(row)
    await db.flush()
    return row


class Received(msgspec.Struct, kw_only=True):
    """An upload's outcome: the recording, its analysis job (none when corrupt or already stored)."""

    recording: RecordingOut
    job: JobOut | None
    already_stored: bool


async def receive_recording(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                            session: ExamSession, room_ref: str, view: str, claimed_start: datetime,
                            body: AsyncIterator[bytes], claimed_sha256: str | None) -> Received:
    """Check where and when the recording claims to be, store it, start its analysis, record the upload."""
    target = await find_room(db, actor, session, room_ref, view)
    check_claimed_start(settings, session, claimed_start)
    row, already = await upload_recording(db, actor, settings, archive, session, target, view, claimed_start, body,
                                          claimed_sha256)
    return await received(db, actor, target, row, already)


async def received(db: AsyncSession, actor: Actor, target: Room, row: Recording, already: bool) -> Received:
    """After an upload (streamed or straight to storage): start the analysis, record the upload; the same bytes
    again restart an analysis that was lost."""
    if already:  # the same bytes again: if their analysis was lost, it starts again
        job = None
        if row.status in PENDING and not await analysis_live(db, row):
            job = await restart_analysis(db, actor, row)
        return Received(recording=recording_out(row, target, already_stored=True), job=job, already_stored=True)
    job = await start_analysis(db, actor, row) if row.status != "corrupt" else None
    out = recording_out(row, target)
    await record(db, actor, "recording.upload", "recording", row.id, after=out,
                 detail={"sha256": row.sha256, "size": row.size, "corrupt": row.corrupt_reason})
    return Received(recording=out, job=job, already_stored=False)


async def list_recordings(db: AsyncSession, actor: Actor, session_id: int) -> list[RecordingOut]:
    """The recordings of a session; a site sees its own rooms'."""
    query = select(Recording, Room).join(Room, Room.id == Recording.room_id).where(
        Recording.session_id == session_id).order_by(Recording.id)
    if actor.role == Role.site:
        query = query.where(Room.site_code == actor.site)
    return [recording_out(rec, room) for rec, room in (await db.execute(query)).all()]


async def play_link(db: AsyncSession, database: Database, actor: Actor, archive: RetentionArchive,
                    recording_id: int, minutes: int) -> RecordingLink:
    """A presigned link that plays the recording; each link is a play in the trail. The archive confirms that it
    holds the recording first: no link and no play for what it cannot serve."""
    row, _ = await get_recording(db, actor, recording_id)
    row_id, key = row.id, row.archive_key
    await db.rollback()  # read only: give the connection back before the trail write (a GET is not gated)
    expires = timedelta(minutes=minutes)
    url = await confirmed_link(archive, key, expires, f"recording {row_id}", RECORDING_TYPE)
    await record_apart(database, actor, "recording.link", "recording", row_id, {"minutes": minutes})
    return RecordingLink(recording_id=row_id, url=url, expires_at=utcnow() + expires)


async def contact_sheet_link(db: AsyncSession, actor: Actor, archive: RetentionArchive,
                             recording_id: int) -> RecordingLink:
    row, _ = await get_recording(db, actor, recording_id)
    key = row.contact_sheet_key
    if key is None:
        raise not_found("contact sheet of recording", f"{recording_id} (yet: status {row.status})")
    expires = timedelta(minutes=30)
    url = await confirmed_link(archive, key, expires, f"the contact sheet of recording {row.id}")
    return RecordingLink(recording_id=row.id, url=url, expires_at=utcnow() + expires)


async def confirmed_link(archive: RetentionArchive, key: str, expires: timedelta, what: str,
                         content_type: str | None = None) -> str:
    """A presigned link to an object the archive confirms it holds, answered as ``content_type`` when given; 404
    naming ``what`` when it does not hold it (a store that does not answer raises StoreUnavailable: 503)."""
    try:
        return await anyio.to_thread.run_sync(lambda: archive.presigned_get(key, expires, confirm=True,
                                                                            content_type=content_type))
    except ObjectNotFound as exc:
        raise ProblemError(404, f"the archive does not hold the file of {what}") from exc
