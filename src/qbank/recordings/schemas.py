from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

import videoaudit
from videoaudit import CoverageReport

RecordingStatus = Literal["uploaded", "analysing", "analysed", "corrupt"]


class FindingOut(msgspec.Struct, kw_only=True):
    kind: str
    start: float
    end: float
    detail: str = ""


class RecordingFindingOut(msgspec.Struct, kw_only=True):
    """About the whole recording (a format minimum: low_resolution, low_fps, low_bit_rate), never a stretch."""

    kind: str
    detail: str = ""


class RecordingOut(msgspec.Struct, kw_only=True):
    id: int
    session_id: int
    room: str  # site/code
    view: str
    claimed_start: datetime
    sha256: str
    size: int
    status: RecordingStatus
    corrupt_reason: str | None
    duration: float | None
    findings: list[FindingOut]  # picture findings, one per kind per stretch (kinds may overlap, never merged)
    recording_findings: list[RecordingFindingOut] = []  # format minimums: about the whole file
    decodable: float | None = None  # a corrupt file: seconds from its start that decode (the rest is "corrupt")
    retain_until: datetime | None
    has_contact_sheet: bool
    job_id: str | None
    uploaded_by: str
    created_at: datetime
    analysed_at: datetime | None
    already_stored: bool = False


class RecordingLink(msgspec.Struct, kw_only=True):
    recording_id: int
    url: str
    expires_at: datetime


class VideoAudit(msgspec.Struct, kw_only=True):
    """The session's coverage: every required view of every room, usable for the whole window?"""

    session_id: int
    passes: bool
    reasons: list[str]
    pending: list[int]  # recordings not analysed yet (not counted as covered)
    recordings: int
    report: CoverageReport
    computed_at: datetime


def split_findings(raw: list[dict[str, Any]]) -> tuple[list[videoaudit.Finding], list[videoaudit.RecordingFinding]]:
    """A recording's stored findings: picture findings (kind, start, end) and the format minimums, which are about
    the whole file (stored in the same list by kind; rows analysed before issue 13 gave them a span: dropped)."""
    picture: list[videoaudit.Finding] = []
    whole: list[videoaudit.RecordingFinding] = []
    for f in raw:
        if f.get("kind") in videoaudit.RECORDING_FINDING_KINDS:
            whole.append(videoaudit.RecordingFinding(kind=f["kind"], detail=f.get("detail", "")))
        else:
            picture.append(msgspec.convert(f, videoaudit.Finding))
    return picture, whole


def stored_findings(report: videoaudit.QualityReport) -> list[dict[str, Any]]:
    """What the recording row keeps of an analysis: the picture findings, then the format minimums (no span)."""
    return [msgspec.to_builtins(f) for f in report.findings] + \
        [msgspec.to_builtins(f) for f in report.recording_findings]
