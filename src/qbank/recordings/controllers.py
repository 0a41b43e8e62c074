from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.db import utcnow
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted, submit
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import not_found, problem_responses
from qbank.recordings import services as svc
from qbank.recordings.models import Recording
from qbank.recordings.schemas import RecordingLink, RecordingOut, VideoAudit
from qbank.sessions.controllers import check_session_access
from qbank.sessions.models import Room

FOOTAGE_READERS = requires(Role.admin, Role.supervisor, Role.site)
UPLOAD_DOC = (
    "Send the file itself as the request body (`Content-Type: video/mp4` or `application/octet-stream`); it is "
    "streamed to disk while its SHA-256 is computed, probed, and stored in the retention archive (≥ 5 years). "
    "Analysis runs as a job: poll `GET /api/v1/jobs/{job_id}`. The same bytes again are recognised (200). "
    "A truncated file is stored and marked corrupt; a file that is not video is refused (415). "
    "Send `X-Content-SHA256` (the file's SHA-256, hex) and the body goes to the archive while it arrives, "
    "instead of after it: faster for large files; the upload completes only if the bytes match it.")


async def start_analysis(db: AsyncSession, actor: Actor, row: Recording) -> JobOut:
    job = await submit(db, actor, "recording_analysis", {"recording_id": row.id}, subject=f"recording:{row.id}")
    row.job_id = job.id
    await db.flush()
    return job


class RecordingController(Controller):
    tags = ["recordings"]
    responses = problem_responses(400, 401, 403, 404)

    @post("/api/v1/sessions/{session_id:int}/recordings", guards=[requires(Role.site, Role.admin)],
          summary="Upload a room recording (streamed)", description=UPLOAD_DOC, request_max_body_size=None,
          responses=problem_responses(413, 415), status_code=201)
    async def upload(
        self, session_id: int, request: Request[Any, Any, Any], db_session: AsyncSession, actor: Actor, state: State,
        room: str = Parameter(description="site/room code", examples=[]),
        view: str = Parameter(description="camera view", max_length=30),
        start: datetime = Parameter(description="claimed start, with its time zone"),
        content_sha256: str | None = Parameter(header="X-Content-SHA256", default=None, pattern=r"^[0-9a-f]{64}$",
                                               description="the file's SHA-256 (hex), to stream it straight through"),
    ) -> Response[RecordingOut]:
        session = await check_session_access(db_session, actor, session_id)
        target = await svc.find_room(db_session, actor, session, room, view)
        svc.check_claimed_start(state.settings, session, start)
        row, already = await svc.upload_recording(db_session, actor, state.settings, state.store, session, target,
                                                  view, start, request.stream(), content_sha256)
        if already:
            return Response(svc.recording_out(row, target, already_stored=True), status_code=200)
        runner: JobRunner = state.job_runner
        job = await start_analysis(db_session, actor, row) if row.status != "corrupt" else None
        out = svc.recording_out(row, target)
        await record(db_session, actor, "recording.upload", "recording", row.id, after=out,
                     detail={"sha256": row.sha256, "size": row.size, "corrupt": row.corrupt_reason})
        if job is None:
            return Response(out, status_code=201)
        response = accepted(runner, job)
        return Response(out, status_code=201, background=response.background)

    @get("/api/v1/sessions/{session_id:int}/recordings", guards=[FOOTAGE_READERS],
         summary="The recordings of a session (a site sees its own rooms')")
    async def list_recordings(self, session_id: int, db_session: AsyncSession, actor: Actor) -> list[RecordingOut]:
        await check_session_access(db_session, actor, session_id)
        query = select(Recording, Room).join(Room, Room.id == Recording.room_id).where(
            Recording.session_id == session_id).order_by(Recording.id)
        if actor.role == Role.site:
            query = query.where(Room.site_code == actor.site)
        return [svc.recording_out(rec, room) for rec, room in (await db_session.execute(query)).all()]

    @get("/api/v1/recordings/{recording_id:int}", guards=[FOOTAGE_READERS], summary="One recording")
    async def read(self, recording_id: int, db_session: AsyncSession, actor: Actor) -> RecordingOut:
        row, room = await svc.get_recording(db_session, actor, recording_id)
        return svc.recording_out(row, room)

    @get("/api/v1/recordings/{recording_id:int}/link", guards=[FOOTAGE_READERS],
         summary="A short-lived link that plays the recording (range requests work); each link is in the trail")
    async def link(self, recording_id: int, db_session: AsyncSession, actor: Actor, state: State,
                   minutes: int = Parameter(default=30, ge=1, le=720)) -> RecordingLink:
        row, _ = await svc.get_recording(db_session, actor, recording_id)
        expires = timedelta(minutes=minutes)
        archive = state.store.archive
        url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(row.archive_key, expires))
        await record(db_session, actor, "recording.link", "recording", row.id, detail={"minutes": minutes})
        return RecordingLink(recording_id=row.id, url=url, expires_at=utcnow() + expires)

    @get("/api/v1/recordings/{recording_id:int}/contact-sheet", guards=[FOOTAGE_READERS],
         summary="A short-lived link to the recording's contact sheet (JPEG grid, one frame every N s)")
    async def contact_sheet(self, recording_id: int, db_session: AsyncSession, actor: Actor,
                            state: State) -> RecordingLink:
        row, _ = await svc.get_recording(db_session, actor, recording_id)
        key = row.contact_sheet_key
        if key is None:
            raise not_found("contact sheet of recording", f"{recording_id} (yet: status {row.status})")
        expires = timedelta(minutes=30)
        archive = state.store.archive
        url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(key, expires))
        return RecordingLink(recording_id=row.id, url=url, expires_at=utcnow() + expires)

    @get("/api/v1/sessions/{session_id:int}/video-audit", guards=[FOOTAGE_READERS],
         summary="Coverage of every required camera view of every room over the exam window, with a verdict")
    async def video_audit(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State) -> VideoAudit:
        session = await check_session_access(db_session, actor, session_id)
        return await svc.session_video_audit(db_session, state.settings, session)
