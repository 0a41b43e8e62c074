from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from qbank.blueprints.schemas import ItemType, Level
from qbank.lib.actors import OccupationCode

Difficulty = Literal["易", "较易", "中等", "较难", "难"]
Status = Literal["draft", "in_review", "approved", "retired"]
OptionLabel = Literal["A", "B", "C", "D", "E", "F", "G", "H"]
LABELS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H")
MAX_STEM = 10_000


class Criterion(msgspec.Struct, kw_only=True):
    criterion: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    points: Annotated[float, msgspec.Meta(gt=0, le=100)]


class PracticalTask(msgspec.Struct, kw_only=True):
    """A practical operation paper: preparation notice, tasks, marking sheet, duration."""

    preparation: Annotated[str, msgspec.Meta(max_length=20_000)] = ""
    tasks: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]], msgspec.Meta(min_length=1)]
    marking: Annotated[list[Criterion], msgspec.Meta(min_length=1)]
    duration_minutes: Annotated[int, msgspec.Meta(ge=1, le=600)]


class ItemContent(msgspec.Struct, kw_only=True):
    """The fields each version keeps."""

    stem: Annotated[str, msgspec.Meta(max_length=MAX_STEM, examples=["电流的单位是（ ）。"])]
    options: Annotated[list[Annotated[str, msgspec.Meta(max_length=5000)]], msgspec.Meta(
        examples=[["安培", "伏特", "欧姆", "瓦特"]])] = []
    answer: Annotated[list[OptionLabel], msgspec.Meta(examples=[["A"]])] = []
    explanation: Annotated[str, msgspec.Meta(max_length=MAX_STEM)] = ""
    point_code: Annotated[str, msgspec.Meta(pattern=r"^\d{3}$", examples=["001"])]
    facility: Annotated[float, msgspec.Meta(ge=0, le=1, examples=[0.62])] = 0.6
    difficulty: Difficulty = "中等"
    enemy_groups: list[Annotated[str, msgspec.Meta(min_length=1, max_length=60)]] = []
    stimulus_set: Annotated[str, msgspec.Meta(max_length=60)] | None = None
    tags: list[Annotated[str, msgspec.Meta(min_length=1, max_length=60)]] = []
    media: list[Annotated[str, msgspec.Meta(pattern=r"^media/[0-9a-f]{2}/[0-9a-f]{64}$",
                                            description="key from POST /api/v1/media")]] = []
    practical: PracticalTask | None = None


class ItemIn(ItemContent, kw_only=True):
    occupation_code: OccupationCode
    level: Level
    type: ItemType
    maintainer: Annotated[str, msgspec.Meta(max_length=120)] | None = None


class ItemUpdate(ItemContent, kw_only=True):
    maintainer: Annotated[str, msgspec.Meta(max_length=120)] | None = None


class ItemOut(ItemContent, kw_only=True):
    id: int
    occupation_code: str
    level: int
    type: ItemType
    status: Status
    version: int
    author: str
    maintainer: str
    reviewer: str | None
    reject_reason: str | None
    near_duplicates: list[int]
    times_used: int
    created_at: datetime
    updated_at: datetime


class ItemPage(msgspec.Struct, kw_only=True):
    items: list[ItemOut]
    total: int
    limit: int
    offset: int


class ItemVersionOut(ItemContent, kw_only=True):
    item_id: int
    version: int
    digest: str
    created_at: datetime
    created_by: str


class FieldChange(msgspec.Struct, kw_only=True):
    field: str
    before: Any
    after: Any


class ItemDiff(msgspec.Struct, kw_only=True):
    item_id: int
    from_version: int
    to_version: int
    changes: list[FieldChange]


class RejectIn(msgspec.Struct, kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, examples=["答案有误"])]


class MediaOut(msgspec.Struct, kw_only=True):
    key: Annotated[str, msgspec.Meta(examples=["media/ab/ab12…"])]
    sha256: str
    size: int
    content_type: str
    already_stored: bool


class MediaLink(msgspec.Struct, kw_only=True):
    key: str
    url: str
    expires_in_seconds: int
