from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from qbank.sessions.schemas import ViewName

RecordCategory = Literal["registration_form", "commitment", "sign_in_sheet", "room_record", "score_sheet",
                         "supervision_form"]
# Kept, never uploaded as a scan: the signed response bundle of an exam station's room (answers, answer logs, the
# proctor's log and incidents), stored by POST /api/v1/sessions/{id}/response-bundles.
KeptCategory = Literal["registration_form", "commitment", "sign_in_sheet", "room_record", "score_sheet",
                       "supervision_form", "response_bundle"]
# §22: the key-node papers that are scanned and kept permanently.
RECORD_CATEGORY_ZH: dict[str, str] = {
    "registration_form": "个人报名表", "commitment": "承诺书", "sign_in_sheet": "签到表",
    "room_record": "考场记录表", "score_sheet": "成绩汇总表", "supervision_form": "质量督导表",
    "response_bundle": "机考答题与考场记录",
}
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True, description="with its time zone",
                                                 examples=["2026-12-03T09:40:00+08:00"])]
RoomRef = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}/[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
                                      description="site/room", examples=["CD-01/T101"])]


class RecordOut(msgspec.Struct, kw_only=True):
    """A key-node record: its bytes are in the archive under ``key``, under legal hold."""

    id: int
    session_id: int
    category: KeptCategory
    category_zh: Annotated[str, msgspec.Meta(examples=["签到表"])]
    key: Annotated[str, msgspec.Meta(examples=["keynode/ab/ab12…"])]
    sha256: str
    size: int
    content_type: Annotated[str, msgspec.Meta(examples=["application/pdf"])]
    filename: str | None
    retain_until: datetime | None
    legal_hold: bool
    uploaded_by: str
    created_at: datetime
    already_stored: bool = False


class RetentionIn(msgspec.Struct, kw_only=True):
    retain_until: Annotated[datetime, msgspec.Meta(
        tz=True, examples=["2040-12-31T00:00:00Z"],
        description="new retain-until; it may only extend the current one")]


class RetentionObject(msgspec.Struct, kw_only=True):
    key: str
    kind: Annotated[str, msgspec.Meta(examples=["recordings"])]
    size: int
    retain_until: datetime | None
    mode: Annotated[str | None, msgspec.Meta(examples=["COMPLIANCE"])]
    legal_hold: bool
    content_type: str
    last_modified: datetime | None


class RetentionKindTotal(msgspec.Struct, kw_only=True):
    kind: str
    objects: int
    bytes: int
    legal_holds: int
    earliest_retain_until: datetime | None


class RetentionReport(msgspec.Struct, kw_only=True):
    """Every current object of the archive with its lock, and bytes per kind."""

    bucket: str
    objects: list[RetentionObject]
    totals: list[RetentionKindTotal]
    total_objects: int
    total_bytes: int
    generated_at: datetime


class IncidentIn(msgspec.Struct, kw_only=True):
    at: AwareDatetime
    room: RoomRef
    view: ViewName
    category: Annotated[str, msgspec.Meta(examples=["29.2"], description="code from /api/v1/incident-categories")]
    note: Annotated[str, msgspec.Meta(max_length=2000, examples=["考生3号与4号交头接耳，监考未制止"])] = ""


class IncidentOut(msgspec.Struct, kw_only=True):
    id: int
    session_id: int
    at: datetime
    local_at: Annotated[str, msgspec.Meta(examples=["2026-12-03T09:40:00+08:00"])]
    room: str
    view: str
    category: str
    category_zh: str
    category_en: str
    article: str
    note: str
    marked_by: str
    created_at: datetime


class VideoVerdict(msgspec.Struct, kw_only=True):
    """A video-audit verdict: the service's own at sign-off, or a snapshot the caller saw."""

    passes: bool
    reasons: Annotated[list[str], msgspec.Meta(examples=[["CD-01/T101 back: gap 09:40–09:45"]])] = []
    recordings: int | None = None
    computed_at: datetime | None = None


class SignOffIn(msgspec.Struct, kw_only=True):
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=8000,
                                         examples=["全程录像完整，考场纪律良好，未发现违规。"])]
    conclusion: Annotated[Literal["合格", "不合格", "pass", "fail"], msgspec.Meta(examples=["合格"])]
    video_verdict: Annotated[VideoVerdict | None, msgspec.Meta(
        description="the verdict the supervisor saw; the service's own verdict at sign-off is recorded too")] = None
    pass_reason: Annotated[str, msgspec.Meta(max_length=2000, description=(
        "why the session passes although the service's video audit fails: required to sign off as pass then"))] = ""


class SignOffOut(msgspec.Struct, kw_only=True):
    id: int
    session_id: int
    supervisor: str
    summary: str
    conclusion: Literal["pass", "fail"]
    conclusion_zh: str
    video_audit: VideoVerdict | None
    video_verdict_claimed: VideoVerdict | None
    pass_reason: str = ""  # why it passes although the video audit fails
    incidents: int
    form: RecordOut
    form_url: str | None = None
    form_url_expires_at: datetime | None = None
    signed_at: datetime


class PendingReview(msgspec.Struct, kw_only=True):
    session_id: int
    title: str
    occupation_code: str
    level: int
    starts_at: datetime
    ends_at: datetime
    sites: list[str]
    incidents: int
    records: int


class SupervisionForm(msgspec.Struct, kw_only=True):
    """The canonical content of a 质量督导表, embedded as JSON in its HTML rendering."""

    form: str
    version: int
    session: dict[str, Any]
    rooms: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    records: list[dict[str, Any]]
    video_audit: dict[str, Any] | None
    video_verdict_claimed: dict[str, Any] | None
    supervisor: str
    summary: str
    conclusion: str
    conclusion_zh: str
    signed_at: str
    pass_reason: str = ""  # why it passes although the video audit fails
