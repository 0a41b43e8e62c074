from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from videoaudit import CoverageReport

RecordingStatus = Literal["uploaded", "analysing", "analysed", "corrupt"]


class FindingOut(msgspec.Struct, kw_only=True):
    kind: str
    start: float
    end: float
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
    findings: list[FindingOut]
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


def finding_out(raw: dict[str, Any]) -> FindingOut:
    return msgspec.convert(raw, FindingOut)
