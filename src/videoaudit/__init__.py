"""Video audit engine: probe, analyse, coverage, contact sheet, retention archive. Never imports qbank.

Public API (plain data in and out; everything synchronous — call from a worker thread in async code):

- :func:`probe` (path, claimed_start=None, timeout=30) -> :class:`VideoInfo` — ffprobe facts; raises
  :class:`EmptyFile` / :class:`NotAVideo` / :class:`AudioOnly` / :class:`Truncated` / :class:`ProbeTimeout`.
- :func:`analyse` (path, config=None) -> :class:`QualityReport` — black / frozen / blurred / covered / gaps /
  truncation / below-minimum format, each a :class:`Finding` with start and end; :func:`analyse_many` runs
  files in parallel, one thread each. Thresholds: :class:`QualityConfig`.
- :func:`coverage` (window_start, window_end, rooms, recordings) -> :class:`CoverageReport` — per required
  view covered / gaps / unusable / overlaps / duplicates / outside, verdict per room and session.
- :func:`contact_sheet` (path, out, every=60) -> Path — JPEG grid with time stamps.
- :class:`RetentionArchive` — evidence on S3 Object Lock (COMPLIANCE ≥ 5 years, legal hold, SHA-256 checked).
- :class:`LocalS3Server` — SeaweedFS ``weed mini`` on 127.0.0.1 (embedded default and tests).
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
from videoaudit.contact import contact_sheet
from videoaudit.coverage import (
    CoverageError,
    CoverageReport,
    Interval,
    Recording,
    Room,
    RoomVerdict,
    ViewCoverage,
    coverage,
)
from videoaudit.errors import AudioOnly, EmptyFile, NotAVideo, ProbeTimeout, Truncated, VideoError
from videoaudit.probe import VideoInfo, probe
from videoaudit.quality import Finding, QualityConfig, QualityReport, analyse, analyse_many
from videoaudit.s3server import LocalS3Server, S3ServerError, find_weed

__all__ = [
    "ArchiveError",
    "ArchivedObject",
    "AudioOnly",
    "CoverageError",
    "CoverageReport",
    "DigestMismatch",
    "EmptyFile",
    "Finding",
    "Interval",
    "LocalS3Server",
    "NotAVideo",
    "ObjectLocked",
    "ObjectNotFound",
    "ProbeTimeout",
    "QualityConfig",
    "QualityReport",
    "Recording",
    "RetentionArchive",
    "RetentionTooShort",
    "Room",
    "RoomVerdict",
    "S3ServerError",
    "SourceChanged",
    "Truncated",
    "VerifyingReader",
    "VideoError",
    "VideoInfo",
    "ViewCoverage",
    "analyse",
    "analyse_many",
    "contact_sheet",
    "coverage",
    "find_weed",
    "probe",
    "retain_until_for",
]
