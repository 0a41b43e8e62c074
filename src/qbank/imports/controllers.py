"""POST /api/v1/imports (multipart) and GET /api/v1/exports (a file download)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.blueprints.schemas import ItemType, Level
from qbank.imports import exports
from qbank.imports.jobs import import_report, request_import
from qbank.imports.points import MAX_MAP_BYTES
from qbank.imports.schemas import ExportFormat, ImportFormat
from qbank.items.schemas import Status
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, OccupationCode, Role, requires
from qbank.lib.inputs import upload_filename
from qbank.lib.problems import ProblemError, problem_responses
from qbank.settings import Settings

# Litestar's own ceiling for the body (chunked uploads included); the configured limit is checked first.
BODY_CEILING = 1024 * 1024 * 1024
CHUNK = 256 * 1024


class ImportForm(msgspec.Struct, kw_only=True):
    file: Annotated[UploadFile, msgspec.Meta(
        description="xlsx template, QTI 2.1/2.2/3.0 zip package or Moodle XML, with the media it carries")]
    occupation_code: OccupationCode
    level: Level
    format: Annotated[ImportFormat | None, msgspec.Meta(
        description="normally detected from the content; `qti` (either QTI version) is accepted for older "
                    "clients")] = None
    point: Annotated[str, msgspec.Meta(
        pattern=r"^\d{3}$", examples=["005"],
        description="file-wide appraisal point for the questions the file and the point map place nowhere")] | None \
        = None
    point_map: Annotated[UploadFile | None, msgspec.Meta(
        description="rules placing whole banks on points: CSV `kind,key,point` or a JSON list of "
                    "`{kind, key, point}`; kinds `identifier`, `label`, `metadata`, `category` "
                    "(docs/import-formats.md)")] = None


async def refuse_oversized(request: Request[Any, Any, Any]) -> None:
    """Answer 413 from Content-Length before the body is read."""
    settings: Settings = request.app.state.settings
    limit = settings.max_import_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 64 * 1024:  # the form's own fields and boundaries
        raise ProblemError(413, f"file: the upload has {length} bytes; imports are limited to {limit} bytes "
                                "(QBANK_MAX_IMPORT_BYTES)")


class ImportController(Controller):
    path = "/api/v1"
    tags = ["import and export"]
    responses = problem_responses(400, 401, 403, 404)

    @post("/imports", guards=[requires(Role.admin, Role.author)], before_request=refuse_oversized,
          request_max_body_size=BODY_CEILING, responses=problem_responses(413, 503), status_code=202,
          summary="Import items from an xlsx template, a QTI 2.1/2.2/3.0 package or Moodle XML: a job, all or "
                  "nothing",
          description="Stores the file (its SHA-256 is checked again before it is read) and answers 202 with the "
                      "import job; poll `GET /api/v1/jobs/{id}`. The job reads and checks every question in a "
                      "worker process (progress: rows parsed, rows checked), then writes the items in one "
                      "transaction (`result`: the import, `items_written`). If any question is bad nothing is "
                      "stored and the job fails with `error.status` 400 and the first 200 problems "
                      "(`error.errors`, named as the file names the question: `row 7: answer`, "
                      "`item q-12 \"Title\": options`, `question \"熔断器\" (no. 3): point_code`), their total "
                      "(`error.problems`) and where the full list is (`error.report`). Refused at once: the "
                      "caller's occupation (403), an unknown level (404), the size (413), an unreadable point map "
                      "(400). Images, sounds and videos the questions show go with the items. Columns and "
                      "mappings: docs/import-formats.md.")
    async def create(
        self, settings: Settings, actor: Actor, db_session: AsyncSession, job_runner: JobRunner,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[JobOut]:
        content = await data.file.read(settings.max_import_bytes + 1)
        point_map = await data.point_map.read(MAX_MAP_BYTES + 1) if data.point_map is not None else None
        job = await request_import(db_session, actor, settings, content, data.occupation_code, data.level,
                                   fmt=data.format, filename=upload_filename(data.file), file_point=data.point,
                                   point_map=point_map)
        return accepted(job_runner, job)

    @get("/imports/{job_id:str}/report", guards=[requires(Role.admin, Role.author)],
         summary="Every problem of a refused import, as CSV (where, problem)",
         description="For who asked for the import, or an admin; 404 to anyone else and when the import was not "
                     "refused for its questions.")
    async def report(self, db_session: AsyncSession, actor: Actor, job_id: str) -> Response[bytes]:
        body = await import_report(db_session, actor, job_id)
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="import-problems.csv"'})

    @get("/exports", guards=[requires(Role.admin, Role.author, Role.reviewer)], responses=problem_responses(409),
         summary="Export a bank or a selection as a QTI 3.0 package, Moodle XML or the xlsx template",
         description="QTI and Moodle carry the items' media and hold choice items only (practical tasks: xlsx). "
                     "Importing the file gives the same items. 409 names the items whose stored text holds "
                     "control characters no file can carry (stored before the input policy): change them, then "
                     "export again.")
    async def export(
        self, db_session: AsyncSession, actor: Actor, archive: RetentionArchive,
        occupation: str = Parameter(pattern=r"^\d-\d{2}-\d{2}-\d{2}$", description="occupation code"),
        level: int = Parameter(ge=1, le=5),
        format: ExportFormat = Parameter(default="xlsx", description="qti3 (zip), moodle (XML) or xlsx"),
        status: Status | None = None,
        point: str | None = Parameter(default=None, pattern=r"^\d{3}$", description="appraisal point code"),
        type: ItemType | None = None,
        ids: list[int] | None = Parameter(default=None, description="only these item ids"),
    ) -> Stream:
        rows = await exports.select_items(db_session, actor, occupation, level, status=status, point=point,
                                          item_type=type, ids=ids)
        body, count = await exports.export_file(db_session, archive, rows, format, occupation, level)
        media_type, ext = exports.EXPORT_MEDIA[format]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), CHUNK):
                yield body[start:start + CHUNK]

        return Stream(chunks(), media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="bank-{occupation}-L{level}.{ext}"',
            "Content-Length": str(len(body)), "X-Item-Count": str(count)})
