"""Item media (images, sounds, videos): stored through the retention archive, linked from item versions by key."""

from __future__ import annotations

import re
from datetime import timedelta

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ObjectNotFound, RetentionArchive
from qbank.audit.services import record
from qbank.items.schemas import MediaLink, MediaOut
from qbank.lib.actors import Actor
from qbank.lib.problems import ProblemError, bad_request, not_found

MEDIA_KIND = "media"
# Sniffed from the bytes, never trusted from the client's content type or a file's name.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
)
MP4_AUDIO_BRANDS = {b"M4A ", b"M4B "}
MP4_VIDEO_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash",
                    b"mmp4"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "audio/mpeg": "mp3",
              "audio/wav": "wav", "audio/ogg": "ogg", "audio/flac": "flac", "audio/mp4": "m4a", "video/mp4": "mp4",
              "video/webm": "webm"}
ACCEPTED = "PNG, JPEG, GIF or WebP images; MP3, WAV, Ogg (Vorbis/Opus), FLAC or M4A audio; MP4 or WebM video"
PLACEHOLDER = re.compile(r"\{\{media:([0-9a-f]{64})\}\}")


def sniff_media(data: bytes) -> str | None:
    """The media type of an image, a sound or a video that items may carry, judged from its first bytes."""
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if len(data) > 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06 == 0x02:
        return "audio/mpeg"  # an MPEG audio layer III frame without an ID3 tag
    if data[:4] == b"OggS" and (b"OpusHead" in data[:128] or b"\x01vorbis" in data[:128]):
        return "audio/ogg"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in MP4_AUDIO_BRANDS:
            return "audio/mp4"
        if brand in MP4_VIDEO_BRANDS:
            return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:64]:
        return "video/webm"
    return None


def media_key(sha256: str) -> str:
    """The archive key of item media with this digest (content addressed, as the archive stores it)."""
    return f"{MEDIA_KIND}/{sha256[:2]}/{sha256}"


def placeholder(sha256: str) -> str:
    """Where a medium stands in a stem, an option or an explanation: ``{{media:SHA256}}``."""
    return "{{media:" + sha256 + "}}"


def placeholder_errors(texts: dict[str, str], media: list[str]) -> list[tuple[str, str]]:
    """(field, reason) for every placeholder whose medium is not among the item's ``media`` keys."""
    known = {key.rsplit("/", 1)[-1] for key in media}
    return [(field, f"{{{{media:{sha[:12]}…}}}} names a medium that is not in media") for field, text in
            texts.items() for sha in PLACEHOLDER.findall(text) if sha not in known]


def check_media(content: bytes, limit: int, what: str = "the file") -> str:
    """The sniffed media type, or a ProblemError (413 over ``limit``, 400 empty or of a type not accepted)."""
    if len(content) > limit:
        raise ProblemError(413, f"file: {what} is larger than {limit} bytes (QBANK_MAX_UPLOAD_BYTES)")
    if not content:
        raise bad_request("file", f"{what} is empty")
    content_type = sniff_media(content)
    if content_type is None:
        raise bad_request("file", f"{what} is not a medium items may carry: {ACCEPTED}")
    return content_type


async def store_media(db: AsyncSession, actor: Actor, archive: RetentionArchive, content: bytes, limit: int,
                      filename: str | None) -> MediaOut:
    """Item media (an image, a sound, a video) into the archive, its type judged from its bytes."""
    return await put_media(db, actor, archive, content, check_media(content, limit), filename)


async def put_media(db: AsyncSession, actor: Actor, archive: RetentionArchive, content: bytes, content_type: str,
                    filename: str | None) -> MediaOut:
    """Checked media into the archive; media new to it are in the trail."""
    stored = await anyio.to_thread.run_sync(lambda: archive.put_bytes(
        MEDIA_KIND, content, content_type=content_type, filename=filename))
    out = MediaOut(key=stored.key, sha256=stored.sha256, size=stored.size, content_type=content_type,
                   already_stored=stored.already_stored)
    if not stored.already_stored:
        await record(db, actor, "media.upload", "media", stored.key, after=out)
    return out


async def fetch_media(archive: RetentionArchive, keys: list[str]) -> dict[str, tuple[bytes, str]]:
    """The bytes (digest checked) and sniffed type of each medium, by key: what an export packs."""
    out: dict[str, tuple[bytes, str]] = {}
    for key in dict.fromkeys(keys):
        try:
            data = await anyio.to_thread.run_sync(archive.get, key)
        except ObjectNotFound as exc:
            raise ProblemError(409, f"medium {key} of the items is not in the archive; nothing was exported") from exc
        out[key] = (data, sniff_media(data) or "application/octet-stream")
    return out


async def media_link(archive: RetentionArchive, key: str, expires: timedelta = timedelta(minutes=15)) -> MediaLink:
    """A short-lived link to an image the archive holds."""
    try:
        await anyio.to_thread.run_sync(archive.stat, key)
    except ObjectNotFound as exc:
        raise not_found("media", key) from exc
    url = await anyio.to_thread.run_sync(lambda: archive.presigned_get(key, expires))
    return MediaLink(key=key, url=url, expires_in_seconds=int(expires.total_seconds()))
