"""Uploads a client sends straight to storage (presigned multipart parts to a staging key), checked before
anything is locked: the staged-upload half of :class:`evidence.RetentionArchive` (its base class)."""

from __future__ import annotations

import contextlib
import io
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack, cast

from evidence.digests import CHUNK
from evidence.errors import ObjectNotFound
from evidence.objects import ArchivedObject
from evidence.retention import as_utc
from evidence.transport import GuardedClient
from evidence.upload import BytesOptions, Deposit, Prepared, PutOptions, deposit_of

__all__ = ["STAGING_PREFIX", "StagedUploads"]

STAGING_PREFIX = "staging/"  # where clients' parts are joined before their bytes are checked and locked


class StagedUploads:
    """The staged-upload half of :class:`evidence.RetentionArchive` (its base class): blocking calls."""

    bucket: str
    retention_years: int
    presign_max: timedelta
    _client: GuardedClient
    _public: Any

    if TYPE_CHECKING:  # provided by RetentionArchive
        @staticmethod
        def key_for(kind: str, sha256: str) -> str: ...
        def stat(self, key: str, version_id: str | None = None) -> ArchivedObject: ...
        def _stat_or_none(self, key: str, version_id: str | None = None) -> ArchivedObject | None: ...
        def _store_known(self, existing: ArchivedObject, deposit: Deposit, until: datetime) -> ArchivedObject: ...

    def begin_staged(self, staging_key: str, content_type: str = "application/octet-stream") -> str:
        """Start a multipart upload to ``staging_key`` *without* retention (its bytes are checked before anything
        is locked: :meth:`lock_staged`); returns the S3 upload id."""
        upload_id: str = self._client._create_multipart_upload(self.bucket, staging_key,
                                                               {"Content-Type": content_type})
        return upload_id

    def presigned_part(self, staging_key: str, upload_id: str, part_number: int, expires: timedelta) -> str:
        """A PUT link for one part of a staged upload, signed for ``public_endpoint`` (≤ ``presign_max``)."""
        if not (timedelta(0) < expires <= self.presign_max):
            raise ValueError(f"expiry must be in (0, {self.presign_max}]")
        url: str = self._public.get_presigned_url(
            "PUT", self.bucket, staging_key, expires=expires,
            extra_query_params={"partNumber": str(part_number), "uploadId": upload_id})
        return url

    def staged_parts(self, staging_key: str, upload_id: str) -> dict[int, tuple[int, str]]:
        """The parts the server holds of a staged upload: number → (size, ETag). An upload that is no longer
        there (completed or aborted): :class:`ObjectNotFound`."""
        from minio.error import S3Error

        out: dict[int, tuple[int, str]] = {}
        marker: int | None = None
        while True:
            try:
                page = self._client._list_parts(self.bucket, staging_key, upload_id, part_number_marker=marker)
            except S3Error as exc:
                if exc.code in ("NoSuchUpload", "NoSuchKey"):
                    raise ObjectNotFound(staging_key) from exc
                raise
            for p in page.parts:
                out[int(p.part_number)] = (int(p.size or 0), str(p.etag))
            if not page.is_truncated or page.next_part_number_marker is None:
                return out
            marker = int(page.next_part_number_marker)

    def complete_staged(self, staging_key: str, upload_id: str, parts: dict[int, tuple[int, str]]) -> ArchivedObject:
        """Join the parts of a staged upload into one (unlocked) object at ``staging_key``."""
        from minio.datatypes import Part

        self._client._complete_multipart_upload(
            self.bucket, staging_key, upload_id, [Part(n, etag) for n, (_, etag) in sorted(parts.items())])
        return self.stat(staging_key)

    def discard_staged(self, staging_key: str, upload_id: str | None = None) -> None:
        """Remove a staged upload: its parts (abort) and every version of its object (never locked)."""
        from minio.error import S3Error

        if upload_id is not None:
            with contextlib.suppress(S3Error):  # already completed or aborted
                self._client._abort_multipart_upload(self.bucket, staging_key, upload_id)
        for v in self._client.list_objects(self.bucket, prefix=staging_key, include_version=True):
            if v.object_name == staging_key:
                self._client.remove_object(self.bucket, staging_key, version_id=v.version_id)

    def fetch_staged(self, staging_key: str, dest: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a staged object to ``dest`` and return the SHA-256 and size of the bytes the server holds."""
        import hashlib

        digest, size = hashlib.sha256(), 0
        resp = self._client.get_object(self.bucket, staging_key)
        try:
            with open(dest, "wb") as f:
                for chunk in resp.stream(CHUNK):
                    digest.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
        finally:
            resp.close()
            resp.release_conn()
        return digest.hexdigest(), size

    def lock_staged(self, kind: str, staging_key: str, sha256: str,
                    **options: Unpack[BytesOptions]) -> ArchivedObject:
        """Store a staged object whose bytes the caller verified (digest ``sha256``) under its content-addressed
        key with COMPLIANCE retention, as :meth:`store` would, then remove the staged copy. Same bytes already
        stored: their retention is extended and the result says ``already_stored=True``. The copy is made on the
        server (``copy_object`` keeps no retention, so it is set on the copy afterwards)."""
        from minio.commonconfig import COMPLIANCE, REPLACE, ComposeSource, CopySource
        from minio.retention import Retention as S3Retention

        deposit = deposit_of(kind, cast(PutOptions, options))
        until = deposit.retention.until(self.retention_years)
        key = self.key_for(kind, sha256)
        staged = self.stat(staging_key)
        existing = self._stat_or_none(key)
        if existing is not None and existing.sha256 == sha256 and existing.size == staged.size:
            self.discard_staged(staging_key)
            return self._store_known(existing, deposit, until)
        meta = Prepared(io.BytesIO(), staged.size, sha256, deposit.filename).object_metadata(deposit)
        headers = {f"x-amz-meta-{k}": v for k, v in meta.items()} | {"Content-Type": deposit.content_type}
        if staged.size <= 5 << 30:
            self._client.copy_object(self.bucket, key, CopySource(self.bucket, staging_key,
                                                                    version_id=staged.version_id),
                                     metadata=headers, metadata_directive=REPLACE)
        else:  # a single copy is limited to 5 GiB: copy in parts
            self._client.compose_object(self.bucket, key, [ComposeSource(self.bucket, staging_key,
                                                                          version_id=staged.version_id)],
                                        metadata=headers)
        copied = self.stat(key)
        self._client.set_object_retention(self.bucket, key, S3Retention(COMPLIANCE, until),
                                          version_id=copied.version_id)
        if deposit.retention.legal_hold:
            self._client.enable_object_legal_hold(self.bucket, key, version_id=copied.version_id)
        self.discard_staged(staging_key)
        return self.stat(key, copied.version_id)

    # ------------------------------------------------------------------ leftovers
    def abort_stale_uploads(self, older_than: timedelta) -> tuple[int, int]:
        """Abort the multipart uploads of this bucket that nothing wrote to for ``older_than`` (a process that
        crashed mid-upload leaves them; each holds its parts' bytes). Returns how many and their bytes."""
        cutoff = datetime.now(UTC) - older_than
        client = self._client
        count = size = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = client._list_multipart_uploads(self.bucket, key_marker=key_marker,
                                                  upload_id_marker=upload_marker)
            for upload in page.uploads:
                parts = client._list_parts(self.bucket, upload.object_name, upload.upload_id).parts
                times = [p.last_modified for p in parts if p.last_modified] or [upload.initiated_time]
                if any(t is None or as_utc(t) > cutoff for t in times):
                    continue  # still being written
                client._abort_multipart_upload(self.bucket, upload.object_name, upload.upload_id)
                count += 1
                size += sum(int(p.size or 0) for p in parts)
            if not page.is_truncated or not page.next_key_marker:  # (the SDK loses the upload id marker)
                return count, size
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker

    def remove_stale_staged(self, older_than: timedelta, prefix: str = STAGING_PREFIX) -> tuple[int, int]:
        """Remove staged objects (joined from a client's parts, never locked) untouched for ``older_than``: a
        process that crashed between joining and locking leaves them. Returns how many and their bytes."""
        cutoff = datetime.now(UTC) - older_than
        count = size = 0
        for v in self._client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True):
            if v.object_name is None or v.last_modified is None or as_utc(v.last_modified) > cutoff:
                continue
            self._client.remove_object(self.bucket, v.object_name, version_id=v.version_id)
            count += 1
            size += int(v.size or 0)
        return count, size

