"""Video audit engine: probe, analyse, coverage, retention archive. Never imports qbank.

Public API (plain data in and out):

- :class:`LocalS3Server` — SeaweedFS ``weed mini`` on 127.0.0.1 (embedded default and tests).
- :class:`RetentionArchive` — evidence on S3 Object Lock (COMPLIANCE ≥ 5 years, legal hold, SHA-256 checked).
"""

from videoaudit.archive import (
    ArchivedObject,
    ArchiveError,
    DigestMismatch,
    ObjectLocked,
    ObjectNotFound,
    RetentionArchive,
    RetentionTooShort,
    SourceChanged,
    VerifyingReader,
    retain_until_for,
)
from videoaudit.s3server import LocalS3Server, S3ServerError, find_weed

__all__ = [
    "ArchiveError",
    "ArchivedObject",
    "DigestMismatch",
    "LocalS3Server",
    "ObjectLocked",
    "ObjectNotFound",
    "RetentionArchive",
    "RetentionTooShort",
    "S3ServerError",
    "SourceChanged",
    "VerifyingReader",
    "find_weed",
    "retain_until_for",
]
