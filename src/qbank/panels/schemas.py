from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from qbank.blueprints.schemas import Level
from qbank.lib.actors import OccupationCode

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["王建国"])]
IdNumber = Annotated[str, msgspec.Meta(
    pattern=r"^\d{17}[\dXx]$", examples=["11010519491231002X"],
    description="resident identity number (18 characters, checksum verified); stored encrypted, shown masked")]
SupervisorKind = Literal["internal", "external"]
ConflictKind = Literal["employer", "training", "relation", "other"]
PersonId = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]


class CertificateIn(msgspec.Struct, kw_only=True):
    occupation_code: OccupationCode
    level: Level
    valid_until: Annotated[date, msgspec.Meta(examples=["2028-06-30"])]
    number: Annotated[str, msgspec.Meta(max_length=60, examples=["KP2024-0312"])] = ""


class EvaluatorIn(msgspec.Struct, kw_only=True):
    name: Name
    id_number: IdNumber
    employer: Annotated[str, msgspec.Meta(max_length=200, examples=["成都市高级技工学校"])] = ""
    certificates: Annotated[list[CertificateIn], msgspec.Meta(max_length=50)] = []
    integrity_notes: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    barred: bool = False


class EvaluatorPatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: Name | None = None
    employer: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    certificates: Annotated[list[CertificateIn], msgspec.Meta(max_length=50)] | None = None
    integrity_notes: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    barred: bool | None = None


class EvaluatorOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    id_number: Annotated[str, msgspec.Meta(examples=["110***********002X"])]  # masked
    employer: str
    certificates: list[CertificateIn]
    integrity_notes: str
    barred: bool
    created_at: datetime
    updated_at: datetime


class SupervisorIn(msgspec.Struct, kw_only=True):
    kind: SupervisorKind
    name: Name
    organisation: Annotated[str, msgspec.Meta(max_length=200, examples=["成都市职业技能鉴定指导中心"])] = ""
    evaluator_id: Annotated[PersonId | None, msgspec.Meta(
        description="the same person's evaluator record (they then never supervise a session they mark)")] = None
    active: bool = True


class SupervisorPatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: Name | None = None
    organisation: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    active: bool | None = None


class SupervisorOut(SupervisorIn, kw_only=True):
    id: int
    created_at: datetime


class ConflictIn(msgspec.Struct, kw_only=True):
    """Exactly one of evaluator_id / supervisor_id; the candidate by session and number."""

    evaluator_id: PersonId | None = None
    supervisor_id: PersonId | None = None
    session_id: PersonId
    candidate: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,40}$", examples=["2026120301001"])]
    kind: ConflictKind
    note: Annotated[str, msgspec.Meta(max_length=2000, examples=["同一单位"])] = ""


class ConflictOut(msgspec.Struct, kw_only=True):
    id: int
    evaluator_id: int | None
    supervisor_id: int | None
    session_id: int
    candidate: str
    kind: str
    note: str
    created_at: datetime


class AssignmentIn(msgspec.Struct, kw_only=True):
    sessions: Annotated[list[PersonId], msgspec.Meta(min_length=1, max_length=200, examples=[[1, 2]])]
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    time_limit_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 20.0


class PanelMemberOut(msgspec.Struct, kw_only=True):
    evaluator_id: int
    name: str
    id_number: str  # masked
    employer: str
    leader: bool


class RoomPanelOut(msgspec.Struct, kw_only=True):
    room_id: int
    room: str  # site/code
    members: list[PanelMemberOut]
    leader_id: int | None
    source: str | None


class SessionSupervisorOut(msgspec.Struct, kw_only=True):
    supervisor_id: int
    name: str
    kind: str
    organisation: str
    draw_id: int | None


class SessionPanelsOut(msgspec.Struct, kw_only=True):
    session_id: int
    occupation_code: str
    level: int
    local_start: str
    local_end: str
    panels: list[RoomPanelOut]
    supervisors: list[SessionSupervisorOut]


class ManualPanelIn(msgspec.Struct, kw_only=True):
    members: Annotated[list[PersonId], msgspec.Meta(min_length=1, max_length=15, examples=[[1, 2, 3]])]
    leader: PersonId


class DrawIn(msgspec.Struct, kw_only=True):
    sessions: Annotated[list[PersonId], msgspec.Meta(min_length=1, max_length=500, examples=[[1, 2, 3]])]
    inspect: Annotated[int, msgspec.Meta(ge=1, le=500, description="how many of the sessions to inspect")] | None = None
    per_session: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1, description=(
        "publish it beforehand (e.g. from a public lottery); omitted: drawn from the OS and published"))] | None = None
    pool: Annotated[list[PersonId], msgspec.Meta(max_length=2000, description=(
        "external supervisor ids (default: every active external supervisor)"))] | None = None


class DrawOut(msgspec.Struct, kw_only=True):
    id: int
    seed: str
    request: dict[str, Any]
    result: dict[str, Any]
    audit_seq: int | None
    created_by: str
    created_at: datetime


class DrawVerification(msgspec.Struct, kw_only=True):
    draw_id: int
    audit_seq: int
    same: bool
    reason: str
    recomputed: dict[str, Any]
