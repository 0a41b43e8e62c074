"""POST /api/v1/imports (multipart) and GET /api/v1/exports (a file download)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.blueprints.schemas import ItemType, Level
from qbank.imports import services as svc
from qbank.imports.safety import Limits
from qbank.imports.schemas import ExportFormat, ImportOut
from qbank.items.schemas import Status
from qbank.lib.actors import Actor, OccupationCode, Role, requires
from qbank.lib.inputs import upload_filename
from qbank.lib.problems import ProblemError, problem_responses
from qbank.settings import Settings

# Litestar's own ceiling for the body (chunked uploads included); the configured limit is checked first.
BODY_CEILING = 1024 * 1024 * 1024
CHUNK = 256 * 1024


class ImportForm(msgspec.Struct, kw_only=True):
    file: Annotated[UploadFile, msgspec.Meta(description="xlsx template, QTI 2.1/3.0 zip package or Moodle XML")]
    occupation_code: OccupationCode
    level: Level
    format: Annotated[Literal["xlsx", "qti", "moodle"] | None, msgspec.Meta(
        description="normally detected from the content")] = None


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
          request_max_body_size=BODY_CEILING, responses=problem_responses(413),
          summary="Import items from an xlsx template, a QTI 2.1/3.0 package or Moodle XML: all or nothing",
          description="Every row is validated first; if any is bad nothing is stored and the 400 answer lists "
                      "every bad row (`row 7: answer`, `item q-12: options`, `question 3: point_code`). "
                      "Columns and mappings: docs/import-formats.md.")
    async def create(
        self, settings: Settings, actor: Actor, db_session: AsyncSession,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> ImportOut:
        limits = Limits(max_bytes=settings.max_import_bytes)
        content = await data.file.read(limits.max_bytes + 1)
        return await svc.import_items(db_session, actor, content, data.occupation_code, data.level,
                                      fmt=data.format, filename=upload_filename(data.file), limits=limits)

    @get("/exports", guards=[requires(Role.admin, Role.author, Role.reviewer)], responses=problem_responses(409),
         summary="Export a bank or a selection as a QTI 3.0 package or as the xlsx template",
         description="409 names the items whose stored text holds control characters no file can carry (stored "
                     "before the input policy): change them, then export again.")
    async def export(
        self, db_session: AsyncSession, actor: Actor,
        occupation: str = Parameter(pattern=r"^\d-\d{2}-\d{2}-\d{2}$", description="occupation code"),
        level: int = Parameter(ge=1, le=5),
        format: ExportFormat = Parameter(default="xlsx", description="qti3 (zip) or xlsx"),
        status: Status | None = None,
        point: str | None = Parameter(default=None, pattern=r"^\d{3}$", description="appraisal point code"),
        type: ItemType | None = None,
        ids: list[int] | None = Parameter(default=None, description="only these item ids"),
    ) -> Stream:
        rows = await svc.select_items(db_session, actor, occupation, level, status=status, point=point,
                                      item_type=type, ids=ids)
        body, count = svc.export_bytes(rows, format, f"{occupation} level {level}")
        media_type, ext = svc.EXPORT_MEDIA[format]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), CHUNK):
                yield body[start:start + CHUNK]

        return Stream(chunks(), media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="bank-{occupation}-L{level}.{ext}"',
            "Content-Length": str(len(body)), "X-Item-Count": str(count)})
