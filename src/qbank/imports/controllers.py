"""POST /api/v1/imports (multipart) and GET /api/v1/exports (a file download)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.blueprints.schemas import ItemType, Level
from qbank.imports import exports
from qbank.imports import services as svc
from qbank.imports.points import MAX_MAP_BYTES
from qbank.imports.safety import Limits
from qbank.imports.schemas import ExportFormat, ImportFormat, ImportOut
from qbank.items.schemas import Status
from qbank.lib.actors import Actor, OccupationCode, Role, requires
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
          request_max_body_size=BODY_CEILING, responses=problem_responses(413, 503),
          summary="Import items from an xlsx template, a QTI 2.1/2.2/3.0 package or Moodle XML: all or nothing",
          description="Every question is checked first; if any is bad nothing is stored and the 400 answer lists "
                      "every problem, naming the question as the file does (`row 7: answer`, "
                      "`item q-12 \"Title\": options`, `question \"熔断器\" (no. 3): point_code`). Images, sounds "
                      "and videos the questions show go with the items. The answer counts what each source of "
                      "appraisal points placed (`placed`). Columns and mappings: docs/import-formats.md.")
    async def create(
        self, settings: Settings, actor: Actor, db_session: AsyncSession, archive: RetentionArchive,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> ImportOut:
        limits = Limits(max_bytes=settings.max_import_bytes)
        content = await data.file.read(limits.max_bytes + 1)
        point_map = await data.point_map.read(MAX_MAP_BYTES + 1) if data.point_map is not None else None
        return await svc.import_items(db_session, actor, content, data.occupation_code, data.level, archive=archive,
                                      fmt=data.format, filename=data.file.filename or None, limits=limits,
                                      media_limit=settings.max_upload_bytes, file_point=data.point,
                                      point_map=point_map)

    @get("/exports", guards=[requires(Role.admin, Role.author, Role.reviewer)], responses=problem_responses(409),
         summary="Export a bank or a selection as a QTI 3.0 package, Moodle XML or the xlsx template",
         description="QTI and Moodle carry the items' media and hold choice items only (practical tasks: xlsx). "
                     "Importing the file gives the same items.")
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
