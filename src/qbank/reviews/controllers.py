"""Supervisor review over HTTP: key-node records, retention report, locked-object refusals, incidents, sign-off."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import ProblemError, problem_responses
from qbank.reviews import services as svc
from qbank.reviews.categories import CATEGORIES, IncidentCategory
from qbank.reviews.schemas import (
    IncidentIn,
    IncidentOut,
    PendingReview,
    RecordCategory,
    RecordOut,
    RetentionIn,
    RetentionReport,
    SignOffIn,
    SignOffOut,
)
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

ADMIN = requires(Role.admin)
RECORD_WRITERS = requires(Role.admin, Role.site)
RECORD_READERS = requires(Role.admin, Role.supervisor, Role.site)
REVIEWERS = requires(Role.admin, Role.supervisor)

UPLOAD_DOC = (
    "The request body is the scan itself (PDF, JPEG or PNG, judged from its bytes; any Content-Type), streamed to a "
    "spool file and into the archive with a legal hold and COMPLIANCE retention (§22: kept permanently). The same "
    "bytes again for the same session and category answer 200 with `already_stored: true`; nothing is stored twice. "
    "A site may upload for sessions with a room at that site. Limit: QBANK_MAX_UPLOAD_BYTES.")


async def refuse_oversized(request: Request[Any, Any, Any]) -> None:
    """Answer 413 from Content-Length before the body is read."""
    settings: Settings = request.app.state.settings
    limit = settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ProblemError(413, f"body: the scan has {length} bytes; the limit is {limit} (QBANK_MAX_UPLOAD_BYTES)")


class ReviewController(Controller):
    path = "/api/v1"
    tags = ["reviews"]
    responses = problem_responses(400, 401, 403, 404)

    # ------------------------------------------------------------------ key-node records
    @post("/sessions/{session_id:int}/records", guards=[RECORD_WRITERS], summary="Upload a key-node scan (§22)",
          description=UPLOAD_DOC, request_max_body_size=None, before_request=refuse_oversized, status_code=201,
          responses=problem_responses(413, 415))
    async def upload_record(
        self, exam_session: ExamSession, request: Request[Any, Any, Any], db_session: AsyncSession, actor: Actor,
        settings: Settings, archive: RetentionArchive,
        category: RecordCategory = Parameter(description="which key-node paper this is"),
        filename: str | None = Parameter(default=None, max_length=200, description="original file name"),
    ) -> Response[RecordOut]:
        if category == "supervision_form" and actor.role != Role.admin:
            raise PermissionDeniedException("a supervision form comes from the supervisor's sign-off or the centre; "
                                            "a site may not upload one")
        row, created = await svc.upload_record(db_session, actor, settings, archive, exam_session, category,
                                               request.stream(), filename)
        return Response(svc.record_out(row, already_stored=not created), status_code=201 if created else 200)

    @get("/sessions/{session_id:int}/records", guards=[RECORD_READERS], summary="The key-node records of a session")
    async def list_records(self, exam_session: ExamSession, db_session: AsyncSession) -> list[RecordOut]:
        return await svc.list_records(db_session, exam_session.id)

    @delete("/records/{record_id:int}", guards=[ADMIN], responses=problem_responses(409),
            summary="Delete a key-node record: refused (409, with the date it is locked until) while it is locked")
    async def delete_record(self, record_id: int, db_session: AsyncSession, actor: Actor,
                            archive: RetentionArchive) -> None:
        row = await svc.get_record(db_session, record_id)
        await svc.delete_record(db_session, actor, archive, row)

    @post("/records/{record_id:int}/retention", guards=[ADMIN], status_code=200, responses=problem_responses(409),
          summary="Set a record's retain-until: extending works, shortening is refused (409)")
    async def set_retention(self, record_id: int, data: RetentionIn, db_session: AsyncSession, actor: Actor,
                            archive: RetentionArchive) -> RecordOut:
        row = await svc.get_record(db_session, record_id)
        row = await svc.set_record_retention(db_session, actor, archive, row, data.retain_until)
        return svc.record_out(row)

    @get("/admin/retention", guards=[ADMIN],
         summary="Every archived object with its retain-until, lock mode and legal hold, and bytes per kind")
    async def retention(self, archive: RetentionArchive, prefix: str = Parameter(
            default="", max_length=100, pattern=r"^[a-z0-9_/-]*$",
            description="only keys under this prefix, e.g. keynode/")) -> RetentionReport:
        return await anyio.to_thread.run_sync(svc.retention_report, archive, prefix)

    # ------------------------------------------------------------------ incidents
    @get("/incident-categories", guards=[RECORD_READERS],
         summary="Incident categories from the regulation (§29–§31)")
    async def categories(self) -> list[IncidentCategory]:
        return list(CATEGORIES)

    @post("/sessions/{session_id:int}/incidents", guards=[REVIEWERS], status_code=201,
          responses=problem_responses(409), summary="Mark an incident: time, room, camera view, category, note")
    async def create_incident(self, exam_session: ExamSession, data: IncidentIn, db_session: AsyncSession,
                              actor: Actor, settings: Settings) -> IncidentOut:
        return await svc.create_incident(db_session, actor, settings, exam_session, data)

    @get("/sessions/{session_id:int}/incidents", guards=[REVIEWERS], summary="The incidents of a session, by time")
    async def list_incidents(self, exam_session: ExamSession, db_session: AsyncSession,
                             settings: Settings) -> list[IncidentOut]:
        return await svc.list_incidents(db_session, settings, exam_session.id)

    # ------------------------------------------------------------------ sign-off
    @post("/sessions/{session_id:int}/sign-off", guards=[requires(Role.supervisor)], status_code=201,
          responses=problem_responses(409),
          summary="Sign off the review: builds the supervision form (质量督导表), kept under legal hold")
    async def sign_off(self, exam_session: ExamSession, data: SignOffIn, db_session: AsyncSession, actor: Actor,
                       settings: Settings, archive: RetentionArchive) -> SignOffOut:
        return await svc.sign_off(db_session, actor, settings, archive, exam_session, data)

    @get("/sessions/{session_id:int}/sign-off", guards=[REVIEWERS],
         summary="A session's sign-off with a short-lived link to its supervision form (each link in the trail)")
    async def read_sign_off(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor,
                            archive: RetentionArchive) -> SignOffOut:
        return await svc.sign_off_with_link(db_session, actor, archive, exam_session.id)

    @get("/reviews/pending", guards=[REVIEWERS],
         summary="Sessions that have ended and wait for a sign-off, newest first")
    async def pending(self, db_session: AsyncSession) -> list[PendingReview]:
        return await svc.pending_reviews(db_session)


# A function, not a ReviewController method: Litestar refuses two controllers on one path (each brings its own
# OPTIONS handler), and GET /api/v1/recordings/{recording_id} is RecordingController's. Register it after that one.
@delete("/api/v1/recordings/{recording_id:int}", guards=[ADMIN], tags=["reviews"],
        responses=problem_responses(400, 401, 403, 404, 409),
        summary="Delete a recording: refused (409, with the date it is locked until) while it is locked")
async def delete_recording(recording_id: int, db_session: AsyncSession, actor: Actor,
                           archive: RetentionArchive) -> None:
    await svc.delete_recording(db_session, actor, archive, recording_id)
