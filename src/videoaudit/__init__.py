"""Video audit engine: probe, analyse, coverage, contact sheet. Never imports qbank, litestar, sqlalchemy, nor the
other engines; recordings are stored by the ``evidence`` engine.

Public API (plain data in and out; everything synchronous — call from a worker thread in async code):

- :func:`probe` (path, claimed_start=None, timeout=30) -> :class:`VideoInfo` — ffprobe facts; raises
  :class:`EmptyFile` / :class:`NotAVideo` / :class:`AudioOnly` / :class:`Truncated` / :class:`ProbeTimeout`.
- :func:`analyse` (path, config=None) -> :class:`QualityReport` — black / frozen / blurred / covered / gap /
  corrupt, each a :class:`Finding` with start and end (kinds never merged); below-minimum format as
  :class:`RecordingFinding` (about the whole file); truncation: ``truncated``, ``claimed_duration``,
  ``decodable``; :func:`analyse_many` runs files in parallel, one thread each. Thresholds: :class:`QualityConfig`.
- :func:`coverage` (window_start, window_end, rooms, recordings) -> :class:`CoverageReport` — per required
  view covered / gaps / unusable / overlaps / duplicates / outside, the findings per kind on the window's clock
  (:class:`FindingSpan`), notes per recording (:class:`RecordingNote`), corrupt files of unknown length
  (``unplaced``); verdict per room and session.
- :func:`contact_sheet` (path, out, every=60) -> Path — JPEG grid with time stamps.
"""

from videoaudit.contact import contact_sheet
from videoaudit.coverage import (
    CoverageError,
    CoverageReport,
    FindingSpan,
    Interval,
    Recording,
    RecordingNote,
    Room,
    RoomVerdict,
    ViewCoverage,
    coverage,
)
from videoaudit.errors import AudioOnly, EmptyFile, NotAVideo, ProbeTimeout, Truncated, VideoError
from videoaudit.probe import VideoInfo, probe
from videoaudit.quality import (
    FINDING_KINDS,
    RECORDING_FINDING_KINDS,
    Finding,
    QualityConfig,
    QualityReport,
    RecordingFinding,
    analyse,
    analyse_many,
)

__all__ = [
    "FINDING_KINDS",
    "RECORDING_FINDING_KINDS",
    "AudioOnly",
    "CoverageError",
    "CoverageReport",
    "EmptyFile",
    "Finding",
    "FindingSpan",
    "Interval",
    "NotAVideo",
    "ProbeTimeout",
    "QualityConfig",
    "QualityReport",
    "Recording",
    "RecordingFinding",
    "RecordingNote",
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
