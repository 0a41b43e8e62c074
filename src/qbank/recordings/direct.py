"""Recordings straight to storage: the site PUTs presigned multipart parts, without retention, to the recording's
content-addressed key (or to a staging key when that key already holds a stored object), then asks the service to
complete. The service joins the parts and reads that version back; only bytes that have the claimed size and
SHA-256 and that probe as video get COMPLIANCE retention, set on that very version (no copy; a staged upload is
copied under the content key) — so junk or a wrong digest is never locked, and a refused upload's parts and joined
bytes are removed. From there on it is the streamed upload's path (same bytes → already stored, another start →
409, analysis job, trail). A service killed between joining and locking leaves an unlocked version under the
content key: :func:`remove_unchecked_versions` removes it at the next start (:mod:`evidence.staged`)."""

from __future__ import annotations

import secrets
from datetime import UTC, timedelta

import anyio
import anyio.to_thread
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import STAGING_PREFIX, ArchivedObject, ObjectExists, ObjectNotFound, RetentionArchive, StoreUnavailable
from qbank.audit.services import chain, new_entry, record
from qbank.db import Database, utcnow
from qbank.jobs.kinds import JobEnv
from qbank.jobs.lease import Enqueues
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import ProblemError, bad_request, conflict, not_found
from qbank.recordings.models import Recording, RecordingUpload
from qbank.recordings.schemas import DirectUploadIn, DirectUploadOut, PartUrl
from qbank.recordings.services import (
    RECORDINGS_KIND,
    Received,
    add_recording,
    archive_labels,
    check_claimed_start,
    check_same_start,
    find_room,
    probe_upload,
    received,
    room_label,
)
from qbank.sessions.models import ExamSession, Room
from qbank.settings import Settings

MAX_PARTS = 10_000  # S3's limit
log = structlog.get_logger("qbank.recordings")


def parts_total(size: int, part_size: int) -> int:
    return -(-size // part_size)


async def begin_upload(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                       session: ExamSession, data: DirectUploadIn) -> DirectUploadOut:
    """Check the claims as the streamed upload does, start a multipart upload without retention (to the content
    key, or a staging key when a stored object is there), hand out the part URLs."""
    room = await find_room(db, actor, session, data.room, data.view)
    check_claimed_start(settings, session, data.start)
    if data.size > settings.max_recording_bytes:
        raise bad_request("size", f"{data.size} bytes is more than a recording may have "
                                  f"({settings.max_recording_bytes}, QBANK_MAX_RECORDING_BYTES)", status=413)
    part_size = max(settings.recording_part_size, -(-data.size // MAX_PARTS))
    upload = RecordingUpload(
        id=secrets.token_hex(16), session_id=session.id, room_id=room.id, view=data.view,
        claimed_start=data.start.astimezone(UTC), sha256=data.sha256, size=data.size, part_size=part_size,
        upload_key="", s3_upload_id="", created_by=actor.label, created_at=utcnow())
    labels = archive_labels(settings, session, room, data.view)
    upload.upload_key, upload.s3_upload_id = await anyio.to_thread.run_sync(lambda: archive.begin_staged(
        RECORDINGS_KIND, data.sha256, f"{STAGING_PREFIX}{RECORDINGS_KIND}/{upload.id}", **labels))
    db.add(upload)
    await db.flush()
    await record(db, actor, "recording.upload_begin", "recording_upload", upload.id,
                 detail={"room": room_label(room), "view": data.view, "sha256": data.sha256, "size": data.size})
    return await upload_out(archive, settings, upload, room, received_parts={})


async def upload_out(archive: RetentionArchive, settings: Settings, upload: RecordingUpload, room: Room,
                     received_parts: dict[int, tuple[int, str]]) -> DirectUploadOut:
    total = parts_total(upload.size, upload.part_size)
    ttl = timedelta(seconds=settings.recording_part_url_s)
    missing = [n for n in range(1, total + 1) if n not in received_parts] if upload.status == "open" else []

    def sign() -> list[PartUrl]:
        return [PartUrl(number=n, url=archive.presigned_part(upload.upload_key, upload.s3_upload_id, n, ttl))
                for n in missing]

    urls = await anyio.to_thread.run_sync(sign)
    return DirectUploadOut(
        id=upload.id, session_id=upload.session_id, room=room_label(room), view=upload.view,
        claimed_start=upload.claimed_start, size=upload.size, sha256=upload.sha256,
        status=upload.status,  # type: ignore[arg-type]
        part_size=upload.part_size, parts_total=total, received=sorted(received_parts), parts=urls,
        urls_expire_at=utcnow() + ttl, recording_id=upload.recording_id, refusal=upload.refusal)


async def own_upload(db: AsyncSession, actor: Actor, session: ExamSession,
                     upload_id: str) -> tuple[RecordingUpload, Room]:
    """The upload of this session; another site's is as unknown as one that does not exist (404)."""
    upload = await db.get(RecordingUpload, upload_id)
    room = await db.get(Room, upload.room_id) if upload is not None else None
    if upload is None or room is None or upload.session_id != session.id or (
            actor.role == Role.site and room.site_code != actor.site):
        raise not_found("recording upload", "with this id")
    return upload, room


async def stored_parts(archive: RetentionArchive, upload: RecordingUpload) -> dict[int, tuple[int, str]]:
    try:
        return await anyio.to_thread.run_sync(archive.staged_parts, upload.upload_key, upload.s3_upload_id)
    except ObjectNotFound as exc:
        raise conflict("this upload is no longer open in storage (it was refused, or left unused too long): "
                       "start a new one") from exc


async def read_upload(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                      session: ExamSession, upload_id: str) -> DirectUploadOut:
    """Which parts storage holds, with fresh URLs for the others (to resume after a broken connection)."""
    upload, room = await own_upload(db, actor, session, upload_id)
    got = await stored_parts(archive, upload) if upload.status == "open" else {}
    return await upload_out(archive, settings, upload, room, got)


async def complete_upload(db: AsyncSession, database: Database, actor: Actor, settings: Settings,
                          archive: RetentionArchive, session: ExamSession, upload_id: str) -> Received:
    """Join the parts, check that version's bytes (size, SHA-256, probe), then lock them under their content-addressed
    key and go on as the streamed upload does. Any failure removes the parts and the joined bytes; a refusal (4xx)
    also marks the upload refused, with its reason, so that reading it says so rather than "open"."""
    upload, room = await own_upload(db, actor, session, upload_id)
    if upload.status == "stored":  # completed before (e.g. the answer was lost): the same answer again
        row = await db.get(Recording, upload.recording_id)
        assert row is not None
        return await received(db, actor, room, row, already=True)
    if upload.status == "refused":
        raise conflict(f"this upload was refused ({upload.refusal}); nothing of it is stored: start a new upload")
    try:
        return await _complete(db, actor, settings, archive, session, upload, room)
    except ProblemError as exc:
        if exc.status_code < 500:
            await _mark_refused(database, actor, upload.id, session.id, str(exc.detail))
        raise


async def _mark_refused(database: Database, actor: Actor, upload_id: str, session_id: int, reason: str) -> None:
    """The refusal and its trail entry in a transaction of their own: the request's rolls back with its 4xx, and
    it holds the write gate already (a POST), so this one does not ask for it."""
    async with database.session_maker() as db, db.begin():
        await db.execute(update(RecordingUpload).where(RecordingUpload.id == upload_id,
                                                       RecordingUpload.status == "open")
                         .values(status="refused", refusal=reason[:2000]))
        await chain(db, [new_entry(actor.label, actor.role.value, "recording.upload_refused", "recording_upload",
                                   upload_id, detail={"session": session_id, "reason": reason[:2000]})])


async def _complete(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                    session: ExamSession, upload: RecordingUpload, room: Room) -> Received:
    parts = await stored_parts(archive, upload)
    total = parts_total(upload.size, upload.part_size)
    path = settings.data_dir / "spool" / f"direct-{upload.id}"
    joined: ArchivedObject | None = None  # what the cleanup removes
    existing: Recording | None = None
    info, corrupt = None, None
    try:
        check_parts(upload, parts, total)
        joined = version = await join_parts(archive, upload, parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        sha256, size = await anyio.to_thread.run_sync(archive.fetch_staged, version, path)
        if size != upload.size:
            raise bad_request("size", f"storage holds {size} bytes, not the claimed {upload.size}; nothing was "
                                      "stored and the parts are removed")
        if sha256 != upload.sha256:
            raise bad_request("sha256", f"the stored bytes have SHA-256 {sha256}, not the claimed {upload.sha256}; "
                                        "nothing was stored and the parts are removed")
        existing = await db.scalar(select(Recording).where(
            Recording.room_id == room.id, Recording.view == upload.view, Recording.sha256 == sha256))
        if existing is not None:
            check_same_start(settings, existing, upload.claimed_start)
        else:
            info, corrupt = await anyio.to_thread.run_sync(probe_upload, path, upload.claimed_start, settings)
        labels = archive_labels(settings, session, room, upload.view)
        stored = await anyio.to_thread.run_sync(
            lambda: archive.lock_staged(RECORDINGS_KIND, version, sha256, **labels))
    except BaseException:
        with anyio.CancelScope(shield=True):  # a cancelled request still removes what it joined
            await anyio.to_thread.run_sync(archive.discard_staged, upload.upload_key, upload.s3_upload_id,
                                           joined.version_id if joined is not None else None)
        raise
    finally:
        path.unlink(missing_ok=True)
    if existing is not None:
        mark_stored(upload, existing)
        return await received(db, actor, room, existing, already=True)
    row = await add_recording(db, actor, session, room, upload.view, upload.claimed_start, stored, info, corrupt)
    mark_stored(upload, row)
    return await received(db, actor, room, row, already=False)


async def join_parts(archive: RetentionArchive, upload: RecordingUpload,
                     parts: dict[int, tuple[int, str]]) -> ArchivedObject:
    """The version joined from the parts; 409 when another upload stored the same bytes' key meanwhile."""
    try:
        return await anyio.to_thread.run_sync(archive.complete_staged, upload.upload_key, upload.s3_upload_id, parts)
    except ObjectExists as exc:
        raise conflict("while this upload was open, another upload stored bytes under the same SHA-256; this "
                       "upload's parts are removed: start a new upload (the stored bytes are then recognised)") \
            from exc


def check_parts(upload: RecordingUpload, parts: dict[int, tuple[int, str]], total: int) -> None:
    """Every part there, each of the part size but the last, no extra part: else 400 naming them."""
    missing = [n for n in range(1, total + 1) if n not in parts]
    if missing:
        raise bad_request("parts", f"storage lacks part(s) {', '.join(map(str, missing[:20]))} of {total}; "
                                   "nothing was stored and the parts are removed")
    extra = sorted(n for n in parts if n > total)
    wrong = [n for n in range(1, total + 1)
             if parts[n][0] != min(upload.part_size, upload.size - (n - 1) * upload.part_size)]
    if extra or wrong:
        raise bad_request("parts", f"part(s) {', '.join(map(str, (wrong + extra)[:20]))} do not have the size "
                                   f"the claimed size and part size {upload.part_size} give; nothing was stored "
                                   "and the parts are removed")


def mark_stored(upload: RecordingUpload, row: Recording) -> None:
    upload.status = "stored"
    upload.recording_id = row.id


async def remove_unchecked_versions(env: JobEnv, runner: Enqueues) -> int:
    """At start: a service killed between joining an upload's parts under their content key and locking them left
    an unchecked, unlocked version there. For each upload to a content key that was not stored, the unlocked
    versions of that key older than the leftover age are removed (younger ones may be being checked by another
    process right now)."""
    store = env.store
    age = timedelta(seconds=env.settings.leftover_age_s)
    async with env.session_maker() as db:
        keys = (await db.scalars(select(RecordingUpload.upload_key).distinct().where(
            # refused too: a refusal because the parts were gone may follow a joining that was never locked
            RecordingUpload.status != "stored", RecordingUpload.upload_key.not_like(f"{STAGING_PREFIX}%"),
            RecordingUpload.created_at < utcnow() - age))).all()
    if not keys or store is None:
        return 0
    count = size = 0
    try:
        archive = store.available()
        for key in keys:
            n, b = await anyio.to_thread.run_sync(archive.remove_unlocked_versions, key, age)
            count, size = count + n, size + b
    except StoreUnavailable as exc:
        log.warning("could not look for unchecked recording uploads: the store is unavailable", reason=exc.reason)
    if count:
        log.warning("removed unchecked bytes that killed direct uploads left under content keys", versions=count,
                    bytes=size, uploads=len(keys))
    return count
