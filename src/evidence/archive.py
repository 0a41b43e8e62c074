"""Retention archive: evidence on an S3 server with Object Lock, through the (synchronous) ``minio`` SDK.

One bucket with Object Lock and versioning; one key prefix per kind of evidence. Keys are content addressed:
``KIND/SHA256[:2]/SHA256``, so the same bytes stored twice are recognised (the second put only extends the
retention or sets the legal hold if asked to, and reports ``already_stored=True``).

Every put sets COMPLIANCE retention until at least ``retention_years`` (≥ 5, §22) after the exam date
(end of that day, UTC); permanent records (key-node scans) also get a legal hold (:mod:`evidence.retention`).
Nothing here deletes or shortens a locked object: :meth:`RetentionArchive.delete` and
:meth:`RetentionArchive.set_retention` raise :class:`ObjectLocked` saying until when. (SeaweedFS itself answers
``AccessDenied`` to a shortened retention and to the delete of a locked *version*; a delete without version id
would only add a delete marker that hides the object, which is why :meth:`delete` refuses before asking the
server.)

SHA-256: how the bytes of a put are hashed before and during the upload is in :mod:`evidence.upload`; reads
(:meth:`get`, :meth:`open`, :meth:`download`) hash what they return and raise :class:`DigestMismatch` at the end
if it differs (:mod:`evidence.digests`).

Plain HTTP: the SDK sends no Content-MD5 over plain HTTP. AWS S3 requires it for uploads with Object Lock
headers; SeaweedFS 4.48 accepts locked uploads (single and multipart) without it (tested). Production runs
over HTTPS, where the SDK sends checksums.

Large files: multipart with ``part_size`` (default 16 MiB); the SDK keeps at most
``parallel_uploads + 1`` parts in memory.

An unavailable server: every connect waits at most ``connect_timeout`` and every read ``read_timeout`` seconds, and
a server that does not answer, refuses the connection or fails on its side raises :class:`StoreUnavailable`
(:mod:`evidence.transport`). Uploads a crashed process left incomplete are aborted by
:meth:`RetentionArchive.abort_stale_uploads`.

Uploads a client sends straight to storage (presigned parts, checked before they are locked): :mod:`evidence.staged`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self, Unpack

import msgspec

from evidence import transport
from evidence.digests import CHUNK, HashingReader, VerifyingReader, check_sha256, is_sha256
from evidence.errors import ArchiveError, DigestMismatch, ObjectLocked, ObjectNotFound
from evidence.objects import ArchivedObject
from evidence.retention import (
    MIN_RETENTION_YEARS,
    as_utc,
    check_policy,
    lifecycle_config,
    lifecycle_rules,
    noncurrent_days,
    retain_until_for,
)
from evidence.staged import STAGING_PREFIX, StagedUploads
from evidence.transport import GuardedClient
from evidence.upload import BytesOptions, Deposit, Prepared, PutOptions, Source, check_kind, deposit_of, prepare

__all__ = ["STAGING_PREFIX", "ArchivedObject", "RetentionArchive"]


class RetentionArchive(StagedUploads):
    """Evidence archive in one Object-Lock bucket of an S3 server (MinIO, SeaweedFS, AWS).

    :param endpoint: ``host:port`` of the S3 server as this process reaches it.
    :param bucket: the one bucket (created with Object Lock + versioning by :meth:`ensure_bucket`).
    :param retention_years: retention after the exam date, never below 5 (else :class:`RetentionTooShort`).
    :param public_endpoint: ``host:port`` that browsers reach, for presigned links (they are signed for the
        host they name); defaults to ``endpoint``. ``public_secure`` defaults to ``secure``.
    :param part_size: multipart part size; files larger than this go up in parts.
    :param presign_max: longest expiry a presigned link may have.
    :param spool_dir: where non-seekable streams are spooled while hashing (default: system temp dir).
    :param connect_timeout: / :param read_timeout: seconds one connect / one read may take (ignored when an
        ``http_client`` is given).

    All methods are synchronous and blocking: call them from a worker thread in async code.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str = "evidence",
        *,
        secure: bool = False,
        region: str = "us-east-1",
        retention_years: int = MIN_RETENTION_YEARS,
        public_endpoint: str | None = None,
        public_secure: bool | None = None,
        part_size: int = 16 << 20,
        parallel_uploads: int = 3,
        presign_default: timedelta = timedelta(minutes=15),
        presign_max: timedelta = timedelta(hours=12),
        spool_dir: str | os.PathLike[str] | None = None,
        http_client: Any = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
    ) -> None:
        from minio import Minio

        check_policy(retention_years)
        if part_size < 5 << 20:
            raise ValueError("part_size must be at least 5 MiB (S3 minimum)")
        if not (timedelta(0) < presign_default <= presign_max <= timedelta(days=7)):
            raise ValueError("need 0 < presign_default <= presign_max <= 7 days")
        self.bucket = bucket
        self.retention_years = retention_years
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self.presign_default = presign_default
        self.presign_max = presign_max
        self.spool_dir = Path(spool_dir) if spool_dir else None
        pool = http_client or transport.http_client(connect_timeout, read_timeout)
        self._client = GuardedClient(
            Minio(endpoint, access_key, secret_key, secure=secure, region=region, http_client=pool))
        self._public = Minio(
            public_endpoint or endpoint,
            access_key,
            secret_key,
            secure=secure if public_secure is None else public_secure,
            region=region,  # with a region set, presigning never contacts the (possibly unreachable) host
        )

    @property
    def client(self) -> Any:
        """The underlying ``minio.Minio`` client (for tests and admin tooling)."""
        return self._client.unguarded

    def ping(self) -> None:
        """Ask the server whether the bucket exists: :class:`StoreUnavailable` when it does not answer,
        :class:`ArchiveError` when the bucket is missing."""
        if not self._client.bucket_exists(self.bucket):
            raise ArchiveError(f"bucket {self.bucket} does not exist")

    # ------------------------------------------------------------------ bucket
    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (which enables versioning) if missing, check an existing one has
        both, and install the lifecycle rules (:meth:`lifecycle_rules`)."""
        from minio.error import S3Error

        c = self._client
        if not c.bucket_exists(self.bucket):
            c.make_bucket(self.bucket, object_lock=True)
        else:
            try:
                c.get_object_lock_config(self.bucket)
            except S3Error as exc:
                raise ArchiveError(
                    f"bucket {self.bucket} exists without Object Lock ({exc.code}); "
                    "Object Lock can only be enabled when a bucket is created"
                ) from exc
            status = c.get_bucket_versioning(self.bucket).status
            if status != "Enabled":
                raise ArchiveError(f"bucket {self.bucket} has versioning {status!r}, not 'Enabled'")
        c.set_bucket_lifecycle(self.bucket, lifecycle_config(self.retention_years))

    @property
    def noncurrent_days(self) -> int:
        """Days after which a noncurrent version may expire: the whole retention (leap days included) + 2."""
        return noncurrent_days(self.retention_years)

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """The lifecycle rules installed, as plain data: nothing current ever expires; a noncurrent version only
        after the whole retention period; incomplete multipart uploads are aborted after a day."""
        return lifecycle_rules(self.retention_years)

    # ------------------------------------------------------------------ keys and retention
    @staticmethod
    def key_for(kind: str, sha256: str) -> str:
        """Content-addressed key ``kind/ab/abcdef...`` of bytes with digest ``sha256`` under ``kind``."""
        check_kind(kind)
        check_sha256(sha256)
        return f"{kind}/{sha256[:2]}/{sha256}"

    def minimum_retain_until(self, exam_date: date) -> datetime:
        """Earliest retain-until this archive accepts for evidence of ``exam_date``."""
        return retain_until_for(exam_date, self.retention_years)

    # ------------------------------------------------------------------ put
    def store(self, source: Source, deposit: Deposit) -> ArchivedObject:
        """Store ``source`` (a path or a binary stream) as ``deposit`` says, with COMPLIANCE retention.

        The retain-until comes from ``deposit.retention`` under this archive's ``retention_years``; a shorter
        one raises :class:`RetentionTooShort` (nothing stored). If the same bytes are already stored under the
        kind nothing is uploaded: the stored object's retention is extended (never shortened) and the legal hold
        set if asked, and the result says ``already_stored=True``. How the bytes are hashed and sent:
        :mod:`evidence.upload`.
        """
        until = deposit.retention.until(self.retention_years)
        with prepare(source, deposit, self.spool_dir) as prepared:
            return self._store(prepared, deposit, until)

    def put(self, kind: str, source: Source, **options: Unpack[PutOptions]) -> ArchivedObject:
        """:meth:`store` with the :class:`Deposit` given as keywords (``exam_date=``, ``legal_hold=``,
        ``content_type=``, ``metadata=``, ``filename=``, ``size=``, ``sha256=``, ``before_commit=``,
        ``part_size=``, ``retain_until=``)."""
        return self.store(source, deposit_of(kind, options))

    def put_bytes(self, kind: str, data: bytes, **options: Unpack[BytesOptions]) -> ArchivedObject:
        """:meth:`put` for small in-memory objects (item media images, sealed-paper blobs)."""
        return self.put(kind, io.BytesIO(data), size=len(data), **options)

    def _store(self, prepared: Prepared, deposit: Deposit, until: datetime) -> ArchivedObject:
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention as S3Retention

        key = self.key_for(deposit.kind, prepared.digest)
        legal_hold = deposit.retention.legal_hold
        existing = self._stored(key, prepared.digest, prepared.size)
        if existing is not None:
            return self._store_known(existing, deposit, until)
        reader = HashingReader(prepared.stream, prepared.size, prepared.digest, prepared.before_commit)
        self._client.put_object(
            self.bucket,
            key,
            reader,
            -1 if prepared.size is None else prepared.size,
            content_type=deposit.content_type,
            metadata=prepared.object_metadata(deposit),
            part_size=max(prepared.part_size or self.part_size, 5 << 20),
            num_parallel_uploads=self.parallel_uploads,
            retention=S3Retention(COMPLIANCE, until),
            legal_hold=legal_hold,
        )
        return self.stat(key)

    def _stored(self, key: str, sha256: str, size: int | None) -> ArchivedObject | None:
        """The current version of ``key`` if it holds these bytes and was locked (so checked) by the archive; bytes
        a client sent straight to their key and not yet checked (:mod:`evidence.staged`) do not count."""
        existing = self._stat_or_none(key)
        if existing is None or not existing.locked_once or existing.sha256 != sha256 or (
            size is not None and existing.size != size
        ):
            return None
        return existing

    def _store_known(self, existing: ArchivedObject, deposit: Deposit, until: datetime) -> ArchivedObject:
        """The same bytes again: extend the stored object's retention (never shorten), set the legal hold if
        asked."""
        return msgspec.structs.replace(self._retain(existing, deposit, until), already_stored=True)

    def _retain(self, version: ArchivedObject, deposit: Deposit, until: datetime) -> ArchivedObject:
        """Set COMPLIANCE retention until ``until`` on that very version (extended, never shortened) and the legal
        hold if ``deposit`` asks; returns the version as stored now."""
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention as S3Retention

        current = version.retain_until
        if current is None or current < until:
            self._client.set_object_retention(
                self.bucket, version.key, S3Retention(COMPLIANCE, until), version_id=version.version_id
            )
        if deposit.retention.legal_hold and not version.legal_hold:
            self._client.enable_object_legal_hold(self.bucket, version.key, version_id=version.version_id)
        return self.stat(version.key, version.version_id)

    # ------------------------------------------------------------------ read
    def _stat_or_none(self, key: str, version_id: str | None = None) -> ArchivedObject | None:
        from minio.error import S3Error

        try:
            obj = self._client.stat_object(self.bucket, key, version_id=version_id)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"):
                return None
            raise
        return self._to_archived(key, obj)

    @staticmethod
    def _to_archived(key: str, obj: Any) -> ArchivedObject:
        headers = {k.lower(): v for k, v in obj.metadata.items()}
        meta: dict[str, str] = {}
        for k, v in headers.items():
            if k.startswith("x-amz-meta-"):
                meta[k[len("x-amz-meta-") :]] = urllib.parse.unquote(v)
        until_raw = headers.get("x-amz-object-lock-retain-until-date")
        until = datetime.fromisoformat(until_raw.replace("Z", "+00:00")) if until_raw else None
        sha = meta.pop("sha256", "")
        kind = meta.pop("kind", key.split("/", 1)[0])
        return ArchivedObject(
            key=key,
            size=int(obj.size or 0),
            sha256=sha,
            kind=kind,
            retain_until=until,
            mode=headers.get("x-amz-object-lock-mode"),
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "OFF").upper() == "ON",
            content_type=obj.content_type or "application/octet-stream",
            version_id=obj.version_id,
            last_modified=obj.last_modified,
            metadata=meta,
        )

    def stat(self, key: str, version_id: str | None = None) -> ArchivedObject:
        """Size, digest, retain-until, mode, legal hold and metadata of the current (or given) version."""
        found = self._stat_or_none(key, version_id)
        if found is None:
            raise ObjectNotFound(key)
        return found

    def exists(self, kind: str, sha256: str) -> ArchivedObject | None:
        """The stored object with these bytes under ``kind``, if any (bytes not checked yet do not count)."""
        return self._stored(self.key_for(kind, sha256), sha256, None)

    def list(self, prefix: str = "") -> Iterator[ArchivedObject]:
        """Current objects under ``prefix`` (e.g. ``"recordings/"``) with retention and legal hold, for an
        admin
        report. One HEAD request per object."""
        for item in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if item.is_dir or item.object_name is None:
                continue
            found = self._stat_or_none(item.object_name)
            if found is not None:
                yield found

    def _expected_digest(self, info: ArchivedObject) -> str:
        name = info.key.rsplit("/", 1)[-1]
        if is_sha256(name) and info.sha256 and name != info.sha256:
            raise DigestMismatch(info.key, name, info.sha256)
        return info.sha256 or name

    def open(self, key: str, version_id: str | None = None) -> VerifyingReader:
        """A stream of the object that raises :class:`DigestMismatch` at its end if the bytes differ."""
        info = self.stat(key, version_id)
        expected = self._expected_digest(info)
        resp = self._client.get_object(self.bucket, key, version_id=info.version_id)
        return VerifyingReader(key, GuardedClient(resp), expected, info.size)

    def get(self, key: str, version_id: str | None = None) -> bytes:
        """The whole object in memory (small objects only), digest checked."""
        with self.open(key, version_id) as r:
            data = r.read()
            r.read()  # reach EOF explicitly so the check runs even when read() stopped at the exact size
        return data

    def download(self, key: str, dest: str | os.PathLike[str], version_id: str | None = None) -> Path:
        """Copy the object to ``dest`` (written to a temporary name, renamed once the digest matched)."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self.open(key, version_id) as r, tmp.open("wb") as f:
                shutil.copyfileobj(r, f, CHUNK)
                r.read()
            tmp.replace(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return dest

    # ------------------------------------------------------------------ presigned
    def presigned_get(self, key: str, expires: timedelta | None = None, *, download_name: str | None = None,
                      confirm: bool = False, content_type: str | None = None) -> str:
        """A GET link for a browser or video player (range requests work), signed for ``public_endpoint``.
        ``expires`` defaults to ``presign_default`` and may not exceed ``presign_max``. Signing alone never asks
        the server; with ``confirm`` the server is asked first whether it holds the object
        (:class:`ObjectNotFound`, :class:`StoreUnavailable`), so no link is handed out for what it cannot serve.
        ``content_type``: the ``Content-Type`` the link's answer carries, whatever the server kept (SeaweedFS
        answers ``application/octet-stream`` for a version whose retention was set after it was written)."""
        expires = expires or self.presign_default
        if not (timedelta(0) < expires <= self.presign_max):
            raise ValueError(f"expiry must be in (0, {self.presign_max}]")
        if confirm:
            self.stat(key)
        headers: dict[str, str | list[str] | tuple[str]] = {}
        if download_name:
            headers["response-content-disposition"] = "attachment; filename*=UTF-8''" + urllib.parse.quote(
                download_name, safe="")
        if content_type:
            headers["response-content-type"] = content_type
        url: str = self._public.presigned_get_object(self.bucket, key, expires=expires,
                                                     response_headers=headers or None)
        return url

    # ------------------------------------------------------------------ lock management
    def _lock_of(self, info: ArchivedObject, now: datetime) -> ObjectLocked | None:
        if info.legal_hold or (info.retain_until is not None and info.retain_until > now):
            return ObjectLocked(info.key, info.retain_until, info.legal_hold)
        return None

    def set_retention(self, key: str, retain_until: datetime) -> ArchivedObject:
        """Extend the COMPLIANCE retention of ``key``. A shorter date raises :class:`ObjectLocked`."""
        from minio.commonconfig import COMPLIANCE
        from minio.error import S3Error
        from minio.retention import Retention as S3Retention

        until = as_utc(retain_until).replace(microsecond=0)
        info = self.stat(key)
        if info.retain_until is not None and until < info.retain_until:
            raise ObjectLocked(key, info.retain_until, info.legal_hold, "retention cannot be shortened")
        try:
            self._client.set_object_retention(
                self.bucket, key, S3Retention(COMPLIANCE, until), version_id=info.version_id
            )
        except S3Error as exc:
            if exc.code == "AccessDenied":
                raise ObjectLocked(key, info.retain_until, info.legal_hold, f"server: {exc.code}") from exc
            raise
        return self.stat(key)

    def hold(self, key: str) -> ArchivedObject:
        """Put ``key`` under legal hold (permanent record). There is deliberately no release."""
        info = self.stat(key)
        if not info.legal_hold:
            self._client.enable_object_legal_hold(self.bucket, key, version_id=info.version_id)
        return self.stat(key)

    def delete(self, key: str) -> None:
        """Remove every version of ``key`` whose retention has ended and that has no legal hold. Any version
        still locked: :class:`ObjectLocked` (saying until when) and nothing is removed."""
        from minio.error import S3Error

        now = datetime.now(UTC)
        versions = [
            v for v in self._client.list_objects(self.bucket, prefix=key, include_version=True) if v.object_name == key
        ]
        if not versions:
            raise ObjectNotFound(key)
        for v in versions:
            if v.is_delete_marker:
                continue
            info = self._stat_or_none(key, v.version_id)
            if info is not None and (lock := self._lock_of(info, now)) is not None:
                raise lock
        for v in versions:
            try:
                self._client.remove_object(self.bucket, key, version_id=v.version_id)
            except S3Error as exc:
                if exc.code == "AccessDenied":
                    raise ObjectLocked(key, None, False, f"server refused: {exc.code}") from exc
                raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
