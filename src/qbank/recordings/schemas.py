from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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


class DirectUploadIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A recording the site will send straight to storage: where and when it claims to be, its size and digest."""

    room: Annotated[str, msgspec.Meta(max_length=80, description="site/room code")]
    view: Annotated[str, msgspec.Meta(max_length=30, description="camera view")]
    start: Annotated[datetime, msgspec.Meta(description="claimed start, with its time zone")]
    size: Annotated[int, msgspec.Meta(gt=0, description="the file's size in bytes")]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="the file's SHA-256 (hex)")]


class PartUrl(msgspec.Struct, kw_only=True):
    number: int  # 1-based; part n holds bytes [(n-1)·part_size, n·part_size)
    url: str  # PUT the part's bytes here (presigned; no token)


class DirectUploadOut(msgspec.Struct, kw_only=True):
    """An upload straight to storage: PUT each part to its URL (the ETag of each answer is not needed), then
    complete it. ``received`` lists the parts storage holds already (resume: send only the others). A refused
    upload (``refusal`` says why) has nothing left in storage: start a new one."""

    id: str
    session_id: int
    room: str
    view: str
    claimed_start: datetime
    size: int
    sha256: str
    status: Literal["open", "stored", "refused"]
    part_size: int
    parts_total: int
    received: list[int]
    parts: list[PartUrl]  # URLs for the parts not received yet
    urls_expire_at: datetime
    recording_id: int | None = None
    refusal: str | None = None
