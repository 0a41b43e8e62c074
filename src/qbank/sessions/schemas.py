from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

import msgspec

from qbank.blueprints.schemas import Level
from qbank.lib.actors import OccupationCode

RoomKind = Literal["theory", "practical", "defence"]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", examples=["CD-01"])]
ViewName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,29}$", examples=["front"])]


class SiteIn(msgspec.Struct, kw_only=True):
    code: Code
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["成都职业技能鉴定考点一"])]


class SiteOut(SiteIn, kw_only=True):
    has_public_key: bool
    has_signing_key: bool = False
    created_at: datetime


class RoomIn(msgspec.Struct, kw_only=True):
    site: Code
    code: Code
    kind: RoomKind
    desks: Annotated[int, msgspec.Meta(ge=1, le=1000, examples=[30])]
    camera_views: Annotated[list[ViewName], msgspec.Meta(min_length=1, max_length=8, examples=[["front", "back"]])]


class CandidateIn(msgspec.Struct, kw_only=True):
    number: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,40}$", examples=["2026120301001"])]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["陈明"])]
    room: Annotated[str, msgspec.Meta(description="site/room, e.g. CD-01/T101", examples=["CD-01/T101"])]
    desk: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    id_tail: Annotated[str, msgspec.Meta(
        pattern=r"^[0-9]{5}[0-9Xx]$", examples=["12301X"],
        description="the last six characters of the candidate's resident id number (only these are kept): with the "
                    "admission number they sign in at the exam station")] | None = None


class SessionIn(msgspec.Struct, kw_only=True):
    occupation_code: OccupationCode
    level: Level
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["2026年12月电工三级认定"])]
    date: Annotated[date, msgspec.Meta(examples=["2026-12-03"])]
    start: Annotated[time, msgspec.Meta(description="local time (QBANK_TIMEZONE)", examples=["09:00:00"])]
    end: Annotated[time, msgspec.Meta(examples=["10:30:00"])]
    grace_minutes: Annotated[int, msgspec.Meta(ge=0, le=240)] = 15
    rooms: Annotated[list[RoomIn], msgspec.Meta(min_length=1)]
    candidates: list[CandidateIn] = []
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class RoomOut(RoomIn, kw_only=True):
    id: int
    candidates: int


class SessionOut(msgspec.Struct, kw_only=True):
    id: int
    occupation_code: str
    level: int
    title: str
    starts_at: datetime
    ends_at: datetime
    local_start: str
    local_end: str
    grace_minutes: int
    sites: list[str]
    rooms: list[RoomOut]
    candidates: int
    note: str
    created_by: str
    created_at: datetime
