"""Evidence storage engine: every kind of evidence (room recordings, item images, sealed papers, key-node scans,
supervision forms) on an S3 server with Object Lock. Never imports qbank, litestar, sqlalchemy, nor the other
engines.

Public API (plain data in and out; everything synchronous — call from a worker thread in async code):

- :class:`RetentionArchive` — one Object-Lock bucket, content-addressed keys ``KIND/ab/SHA256``:
  :meth:`~RetentionArchive.store` (source, :class:`Deposit`) -> :class:`ArchivedObject`, or its keyword forms
  :meth:`~RetentionArchive.put` / :meth:`~RetentionArchive.put_bytes`; COMPLIANCE retention ≥ 5 years from the
  exam (:class:`Retention`, :func:`retain_until_for`), legal hold for permanent records, SHA-256 checked on the
  way in and out (:class:`VerifyingReader`); ``stat`` / ``exists`` / ``list`` / ``open`` / ``get`` /
  ``download`` / ``presigned_get``; ``set_retention`` only extends, ``hold`` has no release, ``delete`` refuses
  anything still locked. Uploads a client sends straight to storage (presigned parts, checked, then locked in
  place): ``begin_staged`` … ``lock_staged`` (:mod:`evidence.staged`).
- Errors: :class:`ArchiveError` and its kinds :class:`RetentionTooShort`, :class:`ObjectLocked`,
  :class:`DigestMismatch`, :class:`SourceChanged`, :class:`ObjectNotFound`, :class:`ObjectExists`, and
  :class:`StoreUnavailable` (the server did not answer within the archive's timeouts, refused the connection or
  failed on its side).
- :class:`LocalS3Server` — SeaweedFS ``weed mini`` on 127.0.0.1 (the service's embedded default and the tests),
  recorded in its data dir so that a crashed launcher's server is found and stopped; :func:`running_server`,
  :class:`S3ServerError`, :func:`find_weed`.
"""

from evidence.archive import STAGING_PREFIX, ArchivedObject, RetentionArchive
from evidence.digests import VerifyingReader
from evidence.errors import (
    ArchiveError,
    DigestMismatch,
    ObjectExists,
    ObjectLocked,
    ObjectNotFound,
    RetentionTooShort,
    SourceChanged,
    StoreUnavailable,
)
from evidence.retention import MIN_RETENTION_YEARS, Retention, retain_until_for
from evidence.s3server import LocalS3Server, RunningServer, S3ServerError, find_weed, running_server
from evidence.upload import BytesOptions, Deposit, PutOptions

__all__ = [
    "MIN_RETENTION_YEARS",
    "STAGING_PREFIX",
    "ArchiveError",
    "ArchivedObject",
    "BytesOptions",
    "Deposit",
    "DigestMismatch",
    "LocalS3Server",
    "ObjectExists",
    "ObjectLocked",
    "ObjectNotFound",
    "PutOptions",
    "Retention",
    "RetentionArchive",
    "RetentionTooShort",
    "RunningServer",
    "S3ServerError",
    "SourceChanged",
    "StoreUnavailable",
    "VerifyingReader",
    "find_weed",
    "retain_until_for",
    "running_server",
]
