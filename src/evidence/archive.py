"""Retention archive: evidence on an S3 server with Object Lock, through the (synchronous) ``minio`` SDK.

One bucket with Object Lock and versioning; one key prefix per kind of evidence. Keys are content addressed:
``KIND/SHA256[:2]/SHA256``, so the same bytes stored twice are recognised (the second put only extends the
retention or sets the legal hold if asked to, and reports ``already_stored=True``).

Every put sets COMPLIANCE retention until at least ``retention_years`` (≥ 5, §22) after the exam date
(end of that day, UTC); permanent records (key-node scans) also get a legal hold. Nothing here deletes or
shortens a locked object: :meth:`RetentionArchive.delete` and :meth:`RetentionArchive.set_retention` raise
:class:`ObjectLocked` saying until when. (SeaweedFS itself answers ``AccessDenied`` to a shortened retention
and to the delete of a locked *version*; a delete without version id would only add a delete marker that
hides the object, which is why :meth:`delete` refuses before asking the server.)

SHA-256: from a path or a seekable stream the digest is computed in a first pass (cheap: ≈ 1.9 GB/s here),
then the upload is streamed and hashed again; if the bytes changed in between the upload is aborted before
its last part, so nothing half-stored or mislabelled is locked. A non-seekable stream of unknown size is
spooled to a temporary file while hashing (bounded memory). Reads (:meth:`get`, :meth:`open`,
:meth:`download`) hash what they return and raise :class:`DigestMismatch` at the end if it differs.

Plain HTTP: the SDK sends no Content-MD5 over plain HTTP. AWS S3 requires it for uploads with Object Lock
headers; SeaweedFS 4.48 accepts locked uploads (single and multipart) without it (tested). Production runs
over HTTPS, where the SDK sends checksums.

Large files: multipart with ``part_size`` (default 16 MiB); the SDK keeps at most
``parallel_uploads + 1`` parts in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, Self

import msgspec

__all__ = [
    "ArchiveError",
    "ArchivedObject",
    "DigestMismatch",
    "ObjectLocked",
    "ObjectNotFound",
    "RetentionArchive",
    "RetentionTooShort",
    "SourceChanged",
    "VerifyingReader",
    "retain_until_for",
]

MIN_RETENTION_YEARS = 5
_CHUNK = 1 << 20
_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_META_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_RESERVED_META = frozenset({"sha256", "kind", "exam-date", "filename"})


# ---------------------------------------------------------------------------------------------- errors
class ArchiveError(Exception):
    """Base of the archive's errors."""


class RetentionTooShort(ArchiveError, ValueError):
    """A retention policy or retain-until date shorter than the legal minimum (5 years from the exam)."""

    def __init__(self, message: str, minimum_until: datetime | None = None) -> None:
        super().__init__(message)
        self.minimum_until = minimum_until


class ObjectLocked(ArchiveError):
    """Delete or shortened retention of an object under retention or legal hold.

    ``locked_until`` is the retain-until date (``None`` with a legal hold and no date), ``legal_hold``
    whether a legal hold is on (then the object is kept whatever the date).
    """

    def __init__(self, key: str, locked_until: datetime | None, legal_hold: bool = False, detail: str = "") -> None:
        until = locked_until.isoformat() if locked_until else "no date"
        hold = " and under legal hold (kept permanently)" if legal_hold else ""
        super().__init__(f"{key} is locked until {until}{hold}" + (f": {detail}" if detail else ""))
        self.key = key
        self.locked_until = locked_until
        self.legal_hold = legal_hold


class DigestMismatch(ArchiveError):
    """The bytes read (or uploaded) do not have the SHA-256 recorded for them."""

    def __init__(self, key: str, expected: str, actual: str) -> None:
        super().__init__(f"{key}: SHA-256 mismatch, expected {expected}, got {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class SourceChanged(ArchiveError):
    """The source changed (or delivered a different size) during the upload; the upload was aborted."""


class ObjectNotFound(ArchiveError):
    """No (current) object under that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object {key!r} in the archive")
        self.key = key


# ---------------------------------------------------------------------------------------------- data
class ArchivedObject(msgspec.Struct, frozen=True, kw_only=True):
    """One stored object, as put returns it and stat/list report it."""

    key: str
    size: int
    sha256: str
    kind: str
    retain_until: datetime | None
    mode: str | None  # "COMPLIANCE" / "GOVERNANCE" / None
    legal_hold: bool
    content_type: str
    version_id: str | None = None
    last_modified: datetime | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    already_stored: bool = False  # put: the same bytes were already in the archive


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February -> 1 March (the later day, on the safe side)
        return date(d.year + years, 3, 1)


def retain_until_for(exam_date: date, years: int = MIN_RETENTION_YEARS) -> datetime:
    """Minimum retain-until for evidence of an exam on ``exam_date``: end of that day ``years`` later, UTC."""
    end = _add_years(exam_date, years) + timedelta(days=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt.astimezone(UTC)


# ---------------------------------------------------------------------------------------------- streams
class _HashingReader:
    """Reads ``size`` bytes of ``raw`` (all of it when ``size`` is None), hashing them; at the end verifies them
    against ``expected`` and runs ``before_commit`` *before* handing the last bytes to the SDK, so a changed source
    or a refusal aborts the upload before it completes."""

    def __init__(self, raw: IO[bytes], size: int | None, expected: str | None,
                 before_commit: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self._left = size
        self._expected = expected
        self._before_commit = before_commit
        self._hash = hashlib.sha256()
        self._done = False

    def _finish(self) -> None:
        self._done = True
        if self._expected is not None:
            actual = self._hash.hexdigest()
            if actual != self._expected:
                raise SourceChanged(f"source changed during upload: SHA-256 {actual} != {self._expected}")
        if self._before_commit is not None:
            self._before_commit()

    def read(self, n: int = -1) -> bytes:
        if self._done or (self._left is not None and self._left <= 0):
            return b""
        want = n if n is not None and n >= 0 else -1
        if self._left is not None:
            want = self._left if want < 0 else min(want, self._left)
        data = self._raw.read(want)
        if not data:
            if self._left is not None:
                raise SourceChanged(f"source ended {self._left} bytes early")
            self._finish()
            return b""
        self._hash.update(data)
        if self._left is not None:
            self._left -= len(data)
            if self._left == 0:
                self._finish()
        return data

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class VerifyingReader(io.RawIOBase):
    """A readable stream of an archived object that hashes what it returns and raises :class:`DigestMismatch`
    when it reaches the end with another SHA-256 than recorded. Use as a context manager."""

    def __init__(self, key: str, response: Any, expected: str, size: int) -> None:
        super().__init__()
        self.key = key
        self._resp = response
        self._expected = expected
        self._size = size
        self._hash = hashlib.sha256()
        self._read = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._resp.read(len(view)) if len(view) else b""
        n = len(data)
        if n:
            view[:n] = data
            self._hash.update(data)
            self._read += n
        elif len(view):
            self._check()
        return n

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._hash.hexdigest()
        if actual != self._expected or self._read != self._size:
            raise DigestMismatch(self.key, self._expected, actual)

    @property
    def verified(self) -> bool:
        """True once the whole object was read and its digest matched."""
        return self._checked

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._resp.close()
                self._resp.release_conn()
        super().close()


# ---------------------------------------------------------------------------------------------- archive
class RetentionArchive:
    """Evidence archive in one Object-Lock bucket of an S3 server (MinIO, SeaweedFS, AWS).

    :param endpoint: ``host:port`` of the S3 server as this process reaches it.
    :param bucket: the one bucket (created with Object Lock + versioning by :meth:`ensure_bucket`).
    :param retention_years: retention after the exam date, never below 5 (else :class:`RetentionTooShort`).
    :param public_endpoint: ``host:port`` that browsers reach, for presigned links (they are signed for the
        host
        they name); defaults to ``endpoint``. ``public_secure`` defaults to ``secure``.
    :param part_size: multipart part size; files larger than this go up in parts.
    :param presign_max: longest expiry a presigned link may have.
    :param spool_dir: where non-seekable streams are spooled while hashing (default: system temp dir).

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
    ) -> None:
        from minio import Minio

        if retention_years < MIN_RETENTION_YEARS:
            raise RetentionTooShort(
                f"retention policy of {retention_years} years is below the minimum of {MIN_RETENTION_YEARS}"
            )
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
        self._client = Minio(endpoint, access_key, secret_key, secure=secure, region=region, http_client=http_client)
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
        return self._client

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
        c.set_bucket_lifecycle(self.bucket, self._lifecycle_config())

    @property
    def noncurrent_days(self) -> int:
        """Days after which a noncurrent version may expire: the whole retention (leap days included) + 2."""
        return (retain_until_for(date(2000, 1, 1), self.retention_years).date() - date(2000, 1, 1)).days + 2

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """The lifecycle rules installed, as plain data: nothing current ever expires; a noncurrent version
        only
        after the whole retention period; incomplete multipart uploads are aborted after a day."""
        return [
            {"id": "noncurrent-after-retention", "prefix": "", "noncurrent_days": self.noncurrent_days},
            {"id": "abort-incomplete-uploads", "prefix": "", "abort_incomplete_multipart_days": 1},
        ]

    def _lifecycle_config(self) -> Any:
        from minio.commonconfig import ENABLED, Filter
        from minio.lifecycleconfig import (
            AbortIncompleteMultipartUpload,
            LifecycleConfig,
            NoncurrentVersionExpiration,
            Rule,
        )

        return LifecycleConfig(
            [
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=""),
                    rule_id="noncurrent-after-retention",
                    noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=self.noncurrent_days),
                ),
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=""),
                    rule_id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(days_after_initiation=1),
                ),
            ]
        )

    # ------------------------------------------------------------------ keys and retention
    @staticmethod
    def key_for(kind: str, sha256: str) -> str:
        """Content-addressed key ``kind/ab/abcdef...`` of bytes with digest ``sha256`` under ``kind``."""
        if not _KIND_RE.match(kind):
            raise ValueError(f"kind must match {_KIND_RE.pattern}, got {kind!r}")
        if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        if not _SHA_RE.match(sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return f"{kind}/{sha256[:2]}/{sha256}"

    def minimum_retain_until(self, exam_date: date) -> datetime:
        """Earliest retain-until this archive accepts for evidence of ``exam_date``."""
        return retain_until_for(exam_date, self.retention_years)

    def _retain_until(self, exam_date: date | None, retain_until: datetime | None) -> datetime:
        base = exam_date or datetime.now(UTC).date()
        minimum = self.minimum_retain_until(base)
        if retain_until is None:
            return minimum
        until = _as_utc(retain_until)
        if until < minimum:
            raise RetentionTooShort(
                f"retain-until {until.isoformat()} is shorter than {self.retention_years} years after the "
                f"exam "
                f"of {base.isoformat()} (minimum {minimum.isoformat()})",
                minimum,
            )
        return until.replace(microsecond=0)

    # ------------------------------------------------------------------ put
    def put(
        self,
        kind: str,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        size: int | None = None,
        exam_date: date | None = None,
        retain_until: datetime | None = None,
        legal_hold: bool = False,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        filename: str | None = None,
        sha256: str | None = None,
        before_commit: Callable[[], None] | None = None,
        part_size: int | None = None,
    ) -> ArchivedObject:
        """Store ``source`` (a path or a binary stream) under ``kind`` with COMPLIANCE retention.

        ``sha256``: the digest of a path the caller already hashed (e.g. while receiving it) saves the pre-pass
        over the file; the upload still hashes what it sends and aborts if it differs, so nothing mislabelled
        is ever locked. With a non-seekable stream, a known ``sha256`` streams it straight to the server (no
        spooling; ``size`` may be None), and ``before_commit`` — run once the last byte is read and the digest
        matched — may raise to abort the upload before anything is stored (e.g. a probe of the bytes).
        ``part_size`` (≥ 5 MiB) overrides the archive's for this upload: smaller parts hold less in memory.

        Retention runs until ``retain_until`` or, by default, the end of the exam day ``retention_years``
        later; a shorter ``retain_until`` raises :class:`RetentionTooShort` (nothing stored). Without
        ``exam_date`` today counts as the exam date. ``legal_hold`` marks a permanent record. ``metadata``
        keys: lowercase ``[a-z0-9-]``; values any text (stored percent-encoded, returned decoded). ``size``
        is checked against the bytes delivered. If the same bytes are already stored under ``kind`` nothing
        is uploaded: the stored object's retention is extended (never shortened) and the legal hold set if
        asked, and the result says ``already_stored=True``.
        """
        key_meta = self._check_metadata(metadata)
        until = self._retain_until(exam_date, retain_until)
        if not _KIND_RE.match(kind):
            raise ValueError(f"kind must match {_KIND_RE.pattern}, got {kind!r}")
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            with path.open("rb") as f:
                actual_size = os.fstat(f.fileno()).st_size
                if size is not None and size != actual_size:
                    raise SourceChanged(f"{path}: size {actual_size} != declared {size}")
                digest = sha256 or _hash_stream(f, actual_size)
                f.seek(0)
                return self._store(
                    kind,
                    f,
                    actual_size,
                    digest,
                    until,
                    exam_date,
                    legal_hold,
                    content_type,
                    key_meta,
                    filename or path.name,
                )
        stream = source
        seekable = False
        with contextlib.suppress(Exception):
            seekable = bool(stream.seekable())
        if seekable:
            start = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(start)
            actual_size = end - start
            if size is not None and size != actual_size:
                raise SourceChanged(f"stream holds {actual_size} bytes, declared {size}")
            digest = _hash_stream(stream, actual_size)
            stream.seek(start)
            return self._store(
                kind,
                stream,
                actual_size,
                digest,
                until,
                exam_date,
                legal_hold,
                content_type,
                key_meta,
                filename,
            )
        if sha256 is not None:  # the key is known up front: stream straight through, verified at the end
            return self._store(kind, stream, size, sha256, until, exam_date, legal_hold, content_type, key_meta,
                               filename, before_commit, part_size)
        # non-seekable: spool to a temporary file while hashing, then upload from it
        with tempfile.TemporaryFile(dir=self.spool_dir) as spool:
            h = hashlib.sha256()
            total = 0
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                spool.write(chunk)
                total += len(chunk)
            if size is not None and size != total:
                raise SourceChanged(f"stream delivered {total} bytes, declared {size}")
            spool.seek(0)
            return self._store(
                kind,
                spool,
                total,
                h.hexdigest(),
                until,
                exam_date,
                legal_hold,
                content_type,
                key_meta,
                filename,
            )

    def put_bytes(
        self,
        kind: str,
        data: bytes,
        *,
        exam_date: date | None = None,
        retain_until: datetime | None = None,
        legal_hold: bool = False,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        filename: str | None = None,
    ) -> ArchivedObject:
        """:meth:`put` for small in-memory objects (item media images, sealed-paper blobs)."""
        return self.put(
            kind,
            io.BytesIO(data),
            size=len(data),
            exam_date=exam_date,
            retain_until=retain_until,
            legal_hold=legal_hold,
            content_type=content_type,
            metadata=metadata,
            filename=filename,
        )

    @staticmethod
    def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in (metadata or {}).items():
            if not _META_KEY_RE.match(k) or k in _RESERVED_META:
                raise ValueError(f"metadata key {k!r} must match {_META_KEY_RE.pattern} and not be reserved")
            if not isinstance(v, str):
                raise ValueError(f"metadata value of {k!r} must be str")
            out[k] = v
        return out

    def _store(
        self,
        kind: str,
        stream: IO[bytes],
        size: int | None,
        digest: str,
        until: datetime,
        exam_date: date | None,
        legal_hold: bool,
        content_type: str,
        metadata: dict[str, str],
        filename: str | None,
        before_commit: Callable[[], None] | None = None,
        part_size: int | None = None,
    ) -> ArchivedObject:
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention

        key = self.key_for(kind, digest)
        existing = self._stat_or_none(key)
        if existing is not None and existing.sha256 == digest and (size is None or existing.size == size):
            current = existing.retain_until
            if current is None or current < until:
                self._client.set_object_retention(
                    self.bucket, key, Retention(COMPLIANCE, until), version_id=existing.version_id
                )
            if legal_hold and not existing.legal_hold:
                self._client.enable_object_legal_hold(self.bucket, key, version_id=existing.version_id)
            refreshed = self.stat(key)
            return msgspec.structs.replace(refreshed, already_stored=True)
        meta = {f"{k}": _quote(v) for k, v in metadata.items()}
        meta["sha256"] = digest
        meta["kind"] = kind
        if exam_date is not None:
            meta["exam-date"] = exam_date.isoformat()
        if filename:
            meta["filename"] = _quote(filename)
        reader = _HashingReader(stream, size, digest, before_commit)
        self._client.put_object(
            self.bucket,
            key,
            reader,  # type: ignore[arg-type]
            -1 if size is None else size,
            content_type=content_type,
            metadata=meta,  # type: ignore[arg-type]
            part_size=max(part_size or self.part_size, 5 << 20),
            num_parallel_uploads=self.parallel_uploads,
            retention=Retention(COMPLIANCE, until),
            legal_hold=legal_hold,
        )
        return self.stat(key)

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
        """The stored object with these bytes under ``kind``, if any."""
        return self._stat_or_none(self.key_for(kind, sha256))

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
        if _SHA_RE.match(name) and info.sha256 and name != info.sha256:
            raise DigestMismatch(info.key, name, info.sha256)
        return info.sha256 or name

    def open(self, key: str, version_id: str | None = None) -> VerifyingReader:
        """A stream of the object that raises :class:`DigestMismatch` at its end if the bytes differ."""
        info = self.stat(key, version_id)
        expected = self._expected_digest(info)
        resp = self._client.get_object(self.bucket, key, version_id=info.version_id)
        return VerifyingReader(key, resp, expected, info.size)

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
                shutil.copyfileobj(r, f, _CHUNK)
                r.read()
            tmp.replace(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return dest

    # ------------------------------------------------------------------ presigned
    def presigned_get(self, key: str, expires: timedelta | None = None, *, download_name: str | None = None) -> str:
        """A GET link for a browser or video player (range requests work), signed for ``public_endpoint``.
        ``expires`` defaults to ``presign_default`` and may not exceed ``presign_max``."""
        expires = expires or self.presign_default
        if not (timedelta(0) < expires <= self.presign_max):
            raise ValueError(f"expiry must be in (0, {self.presign_max}]")
        headers: dict[str, str | list[str] | tuple[str]] | None = None
        if download_name:
            headers = {
                "response-content-disposition": "attachment; filename*=UTF-8''"
                + urllib.parse.quote(download_name, safe="")
            }
        url: str = self._public.presigned_get_object(self.bucket, key, expires=expires, response_headers=headers)
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
        from minio.retention import Retention

        until = _as_utc(retain_until).replace(microsecond=0)
        info = self.stat(key)
        if info.retain_until is not None and until < info.retain_until:
            raise ObjectLocked(key, info.retain_until, info.legal_hold, "retention cannot be shortened")
        try:
            self._client.set_object_retention(
                self.bucket, key, Retention(COMPLIANCE, until), version_id=info.version_id
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


def _hash_stream(f: IO[bytes] | BinaryIO, size: int) -> str:
    h = hashlib.sha256()
    left = size
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    readinto = getattr(f, "readinto", None)
    while left > 0:
        if readinto is not None:
            n = readinto(view[: min(_CHUNK, left)])
            if not n:
                break
            h.update(view[:n])
        else:
            data = f.read(min(_CHUNK, left))
            if not data:
                break
            n = len(data)
            h.update(data)
        left -= n
    if left:
        raise SourceChanged(f"source ended {left} bytes early")
    return h.hexdigest()
