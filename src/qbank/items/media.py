"""Item media (images): stored through the retention archive, linked from item versions by key."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import anyio.to_thread
import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ObjectNotFound
from qbank.audit.services import record
from qbank.auth.guards import requires
from qbank.auth.schemas import Actor, Role
from qbank.lib.problems import ProblemError, bad_request, not_found, problem_responses

MEDIA_KIND = "media"
# Sniffed from the bytes, never trusted from the client's content type.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class MediaOut(msgspec.Struct, kw_only=True):
    key: Annotated[str, msgspec.Meta(examples=["media/ab/ab12…"])]
    sha256: str
    size: int
    content_type: str
    already_stored: bool


class MediaLink(msgspec.Struct, kw_only=True):
    key: str
    url: str
    expires_in_seconds: int


def sniff_image(data: bytes) -> str | None:
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class MediaUpload(msgspec.Struct):
    file: UploadFile


class MediaController(Controller):
    path = "/api/v1/media"
    tags = ["items"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin, Role.author)], summary="Upload an image for items (PNG, JPEG, GIF, WebP)",
          responses=problem_responses(413))
    async def upload(
        self, state: State, actor: Actor, db_session: AsyncSession,
        data: Annotated[MediaUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MediaOut:
        limit = state.settings.max_upload_bytes
        content = await data.file.read(limit + 1)
        if len(content) > limit:
            raise ProblemError(413, f"file: the image is larger than {limit} bytes")
        if not content:
            raise bad_request("file", "the file is empty")
        content_type = sniff_image(content)
        if content_type is None:
            raise bad_request("file", "not an image: PNG, JPEG, GIF or WebP expected")
        archive = state.store.archive
        stored = await anyio.to_thread.run_sync(lambda: archive.put_bytes(
            MEDIA_KIND, content, content_type=content_type, filename=data.file.filename or None))
        out = MediaOut(key=stored.key, sha256=stored.sha256, size=stored.size, content_type=content_type,
                       already_stored=stored.already_stored)
        if not stored.already_stored:
            await record(db_session, actor, "media.upload", "media", stored.key, after=out)
        return out

    @get("/link", guards=[requires(Role.admin, Role.author, Role.reviewer)],
         summary="A short-lived link to view an image", responses=problem_responses(404))
    async def link(self, state: State,
                   key: str = Parameter(pattern=r"^media/[0-9a-f]{2}/[0-9a-f]{64}$", description="media key")
                   ) -> MediaLink:
        archive = state.store.archive
        try:
            await anyio.to_thread.run_sync(archive.stat, key)
        except ObjectNotFound as exc:
            raise not_found("media", key) from exc
        expires = timedelta(minutes=15)
        url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(key, expires))
        return MediaLink(key=key, url=url, expires_in_seconds=int(expires.total_seconds()))
