"""Item media (images): stored through the retention archive, linked from item versions by key."""

from __future__ import annotations

from datetime import timedelta

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ObjectNotFound, RetentionArchive
from qbank.audit.services import record
from qbank.items.schemas import MediaLink, MediaOut
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError, bad_request, not_found

MEDIA_KIND = "media"
# Sniffed from the bytes, never trusted from the client's content type.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def store_media(db: AsyncSession, actor: Actor, archive: RetentionArchive, content: bytes, limit: int,
                      filename: str | None) -> MediaOut:
    """An item image into the archive (type judged from its bytes); new images are in the trail."""
    if len(content) > limit:
        raise ProblemError(413, f"file: the image is larger than {limit} bytes")
    if not content:
        raise bad_request("file", "the file is empty")
    content_type = sniff_image(content)
    if content_type is None:
        raise bad_request("file", "not an image: PNG, JPEG, GIF or WebP expected")
    stored = await anyio.to_thread.run_sync(lambda: archive.put_bytes(
        MEDIA_KIND, content, content_type=content_type, filename=filename))
    out = MediaOut(key=stored.key, sha256=stored.sha256, size=stored.size, content_type=content_type,
                   already_stored=stored.already_stored)
    if not stored.already_stored:
        await record(db, actor, "media.upload", "media", stored.key, after=out)
    return out


async def media_link(archive: RetentionArchive, key: str, expires: timedelta = timedelta(minutes=15)) -> MediaLink:
    """A short-lived link to an image the archive holds."""
    try:
        await anyio.to_thread.run_sync(archive.stat, key)
    except ObjectNotFound as exc:
        raise not_found("media", key) from exc
    url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(key, expires))
    return MediaLink(key=key, url=url, expires_in_seconds=int(expires.total_seconds()))
