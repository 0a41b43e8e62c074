"""Video audit engine: probe, analyse, coverage, contact sheet. Never imports qbank, litestar, sqlalchemy, nor the
other engines; recordings are stored by the ``evidence`` engine.

Public API (plain data in and out; everything synchronous — call from a worker thread in async code):

- :func:`probe` (path, claimed_start=None, timeout=30) -> :class:`VideoInfo` — ffprobe facts; raises
  :class:`EmptyFile` / :class:`NotAVideo` / :class:`AudioOnly` / :class:`Truncated` / :class:`ProbeTimeout`.
- :func:`analyse` (path, config=None) -> :class:`QualityReport` — black / frozen / blurred / covered / gaps /
  truncation / below-minimum format, each a :class:`Finding` with start and end; :func:`analyse_many` runs
  files in parallel, one thread each. Thresholds: :class:`QualityConfig`.
- :func:`coverage` (window_start, window_end, rooms, recordings) -> :class:`CoverageReport` — per required
  view covered / gaps / unusable / overlaps / duplicates / outside, verdict per room and session.
- :func:`contact_sheet` (path, out, every=60) -> Path — JPEG grid with time stamps.
"""

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

__all__ = [
    "AudioOnly",
    "CoverageError",
    "CoverageReport",
    "EmptyFile",
    "Finding",
    "Interval",
    "NotAVideo",
    "ProbeTimeout",
    "QualityConfig",
    "QualityReport",
    "Recording",
    "Room",
    "RoomVerdict",
    "Truncated",
    "VideoError",
    "VideoInfo",
    "ViewCoverage",
    "analyse",
    "analyse_many",
    "contact_sheet",
    "coverage",
    "probe",
]
