from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.db import Database
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.recordings import direct
from qbank.recordings import services as svc
from qbank.recordings.audit import session_video_audit
from qbank.recordings.jobs import reanalyse
from qbank.recordings.schemas import DirectUploadIn, DirectUploadOut, RecordingLink, RecordingOut, VideoAudit
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

FOOTAGE_READERS = requires(Role.admin, Role.supervisor, Role.site)
UPLOAD_DOC = (
    "Send the file itself as the request body (`Content-Type: video/mp4` or `application/octet-stream`); it is "
    "streamed to disk while its SHA-256 is computed, probed, and stored in the retention archive (≥ 5 years). "
    "Analysis runs as a job: poll `GET /api/v1/jobs/{job_id}`. The same bytes again are recognised (200; "
    "an analysis that was lost starts again); the same bytes with another claimed start are refused (409, naming the "
    "stored start). "
    "A truncated file is stored with its `corrupt_reason` and analysed: the part that decodes counts, the rest is "
    "a `corrupt` finding, and it ends `corrupt`; a file that is not video is refused (415). "
    "Send `X-Content-SHA256` (the file's SHA-256, hex) and the body goes to the archive while it arrives, "
    "instead of after it: faster for large files; the upload completes only if the bytes match it.")


DIRECT_DOC = (
    "For large files: the site sends the file straight to the S3 server. Give room, view, claimed start, size and "
    "SHA-256; the answer has an upload id and one presigned URL per part (`part_size` bytes each, the last one "
    "shorter; the URLs work for an hour at most). PUT each part to its URL, then "
    "`POST …/uploads/{upload_id}/complete`. `GET …/uploads/{upload_id}` says which parts storage holds and gives "
    "fresh URLs for the others (to resume). Nothing is locked before the complete step has checked the bytes. "
    "`qbank site upload FILE …` does all of it.")


def received_response(got: svc.Received, job_runner: JobRunner) -> Response[RecordingOut]:
    status = 200 if got.already_stored else 201
    if got.job is None:
        return Response(got.recording, status_code=status)
    return Response(got.recording, status_code=status, background=accepted(job_runner, got.job).background)


class RecordingController(Controller):
    tags = ["recordings"]
    responses = problem_responses(400, 401, 403, 404)

    @post("/api/v1/sessions/{session_id:int}/recordings", guards=[requires(Role.site, Role.admin)],
          summary="Upload a room recording (streamed)", description=UPLOAD_DOC, request_max_body_size=None,
          responses=problem_responses(409, 413, 415), status_code=201)
    async def upload(
        self, exam_session: ExamSession, request: Request[Any, Any, Any], db_session: AsyncSession, actor: Actor,
        settings: Settings, archive: RetentionArchive, job_runner: JobRunner,
        room: str = Parameter(description="site/room code", examples=[]),
        view: str = Parameter(description="camera view", max_length=30),
        start: datetime = Parameter(description="claimed start, with its time zone"),
        content_sha256: str | None = Parameter(header="X-Content-SHA256", default=None, pattern=r"^[0-9a-f]{64}$",
                                               description="the file's SHA-256 (hex), to stream it straight through"),
    ) -> Response[RecordingOut]:
        got = await svc.receive_recording(db_session, actor, settings, archive, exam_session, room, view, start,
                                          request.stream(), content_sha256)
        return received_response(got, job_runner)

    @post("/api/v1/sessions/{session_id:int}/recordings/uploads", guards=[requires(Role.site, Role.admin)],
          summary="Start an upload straight to storage", description=DIRECT_DOC, status_code=201,
          responses=problem_responses(413))
    async def begin_direct(self, exam_session: ExamSession, data: DirectUploadIn, db_session: AsyncSession,
                           actor: Actor, settings: Settings, archive: RetentionArchive) -> DirectUploadOut:
        return await direct.begin_upload(db_session, actor, settings, archive, exam_session, data)

    @get("/api/v1/sessions/{session_id:int}/recordings/uploads/{upload_id:str}",
         guards=[requires(Role.site, Role.admin)], responses=problem_responses(409),
         summary="An upload straight to storage: the parts storage holds, fresh URLs for the others (resume)")
    async def read_direct(self, exam_session: ExamSession, upload_id: str, db_session: AsyncSession, actor: Actor,
                          settings: Settings, archive: RetentionArchive) -> DirectUploadOut:
        return await direct.read_upload(db_session, actor, settings, archive, exam_session, upload_id)

    @post("/api/v1/sessions/{session_id:int}/recordings/uploads/{upload_id:str}/complete",
          guards=[requires(Role.site, Role.admin)], status_code=201, responses=problem_responses(409, 415),
          summary="Complete an upload straight to storage: checked, then stored with retention and analysed",
          description="Joins the parts and checks the stored bytes (size, SHA-256, probe); only then are they "
                      "stored under retention. A refusal (missing parts: 400 `parts`, wrong digest: 400 `sha256`, "
                      "not video: 415) removes the parts and marks the upload `refused` with its reason "
                      "(completing it again: 409); start a new upload. Otherwise as the streamed upload "
                      "(200 for bytes already stored, 409 for them with another start, an analysis job).")
    async def complete_direct(self, exam_session: ExamSession, upload_id: str, db_session: AsyncSession,
                              database: Database, actor: Actor, settings: Settings, archive: RetentionArchive,
                              job_runner: JobRunner) -> Response[RecordingOut]:
        got = await direct.complete_upload(db_session, database, actor, settings, archive, exam_session, upload_id)
        return received_response(got, job_runner)

    @get("/api/v1/sessions/{session_id:int}/recordings", guards=[FOOTAGE_READERS],
         summary="The recordings of a session (a site sees its own rooms')")
    async def list_recordings(self, exam_session: ExamSession, db_session: AsyncSession,
                              actor: Actor) -> list[RecordingOut]:
        return await svc.list_recordings(db_session, actor, exam_session.id)

    @get("/api/v1/recordings/{recording_id:int}", guards=[FOOTAGE_READERS], summary="One recording")
    async def read(self, recording_id: int, db_session: AsyncSession, actor: Actor) -> RecordingOut:
        row, room = await svc.get_recording(db_session, actor, recording_id)
        return svc.recording_out(row, room)

    @get("/api/v1/recordings/{recording_id:int}/link", guards=[FOOTAGE_READERS],
         summary="A short-lived link that plays the recording (range requests work); each link is in the trail")
    async def link(self, recording_id: int, db_session: AsyncSession, database: Database, actor: Actor,
                   archive: RetentionArchive,
                   minutes: int = Parameter(default=30, ge=1, le=60, description="how long the link works (≤ 60)")
                   ) -> RecordingLink:
        return await svc.play_link(db_session, database, actor, archive, recording_id, minutes)

    @get("/api/v1/recordings/{recording_id:int}/contact-sheet", guards=[FOOTAGE_READERS],
         summary="A short-lived link to the recording's contact sheet (JPEG grid, one frame every N s)")
    async def contact_sheet(self, recording_id: int, db_session: AsyncSession, actor: Actor,
                            archive: RetentionArchive) -> RecordingLink:
        return await svc.contact_sheet_link(db_session, actor, archive, recording_id)

    @post("/api/v1/recordings/{recording_id:int}/analysis", guards=[requires(Role.admin)], status_code=202,
          summary="Run the analysis of a recording again (a job)", responses=problem_responses(409),
          description="For a recording whose analysis failed or was lost, or after the quality thresholds changed: "
                      "a new analysis job (poll `GET /api/v1/jobs/{job_id}`); the recording waits as `uploaded` "
                      "until it ends, and its findings are replaced, never added to. 409 while one is queued or "
                      "running. `qbank recordings reanalyse ID` does the same from the command line.")
    async def analysis(self, recording_id: int, db_session: AsyncSession, actor: Actor,
                       job_runner: JobRunner) -> Response[JobOut]:
        return accepted(job_runner, await reanalyse(db_session, actor, recording_id))

    @get("/api/v1/sessions/{session_id:int}/video-audit", guards=[FOOTAGE_READERS],
         summary="Coverage of every required camera view of every room over the exam window, with a verdict")
    async def video_audit(self, exam_session: ExamSession, db_session: AsyncSession, settings: Settings) -> VideoAudit:
        return await session_video_audit(db_session, settings, exam_session)
