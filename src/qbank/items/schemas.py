from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from qbank.blueprints.schemas import ItemType, Level
from qbank.lib.actors import OccupationCode
from qbank.lib.problems import Problem

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


# One definition of each field's constraints, shared by the item, its full replacement and its merge patch.
Stem = Annotated[str, msgspec.Meta(max_length=MAX_STEM, examples=["电流的单位是（ ）。"], description=(
    "the question; media appear where {{media:SHA256}} stands (the SHA-256 of one of `media`)"))]
Options = Annotated[list[Annotated[str, msgspec.Meta(max_length=5000)]], msgspec.Meta(
    examples=[["安培", "伏特", "欧姆", "瓦特"]],
    description="the options in order (A, B, …); a true/false item may send none: 正确, 错误")]
Answer = Annotated[list[OptionLabel], msgspec.Meta(examples=[["A"]])]
Explanation = Annotated[str, msgspec.Meta(max_length=MAX_STEM)]
PointCode = Annotated[str, msgspec.Meta(pattern=r"^\d{3}$", examples=["001"],
                                        description="3-digit appraisal point code of the level's blueprint")]
Facility = Annotated[float, msgspec.Meta(ge=0, le=1, examples=[0.62])]
Groups = list[Annotated[str, msgspec.Meta(min_length=1, max_length=60)]]
StimulusSet = Annotated[str, msgspec.Meta(max_length=60)]
MediaKeys = list[Annotated[str, msgspec.Meta(pattern=r"^media/[0-9a-f]{2}/[0-9a-f]{64}$",
                                             description="key from POST /api/v1/media")]]
Language = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", examples=["zh-CN", "en"],
                                       description="BCP 47 language tag; when absent, exports detect it from the text")]
Maintainer = Annotated[str, msgspec.Meta(max_length=120)]
TRUE_FALSE_OPTIONS = ["正确", "错误"]


class ItemContent(msgspec.Struct, kw_only=True):
    """The fields each version keeps."""

    stem: Stem
    options: Options = []
    answer: Answer = []
    explanation: Explanation = ""
    point_code: PointCode
    facility: Facility = 0.6
    difficulty: Difficulty = "中等"
    enemy_groups: Groups = []
    stimulus_set: StimulusSet | None = None
    tags: Groups = []
    media: MediaKeys = []
    language: Language | None = None
    practical: PracticalTask | None = None


class ItemIn(ItemContent, kw_only=True):
    occupation_code: OccupationCode
    level: Level
    type: ItemType
    maintainer: Maintainer | None = None


class ItemUpdate(ItemContent, kw_only=True):
    """PUT: the whole content; a field left out takes its default."""

    maintainer: Maintainer | None = None


class PracticalPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    preparation: Annotated[str, msgspec.Meta(max_length=20000)] | msgspec.UnsetType | None = msgspec.UNSET
    tasks: list[Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]] | msgspec.UnsetType = msgspec.UNSET
    marking: list[Criterion] | msgspec.UnsetType = msgspec.UNSET
    duration_minutes: Annotated[int, msgspec.Meta(ge=1, le=600)] | msgspec.UnsetType = msgspec.UNSET


class ItemPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH (JSON Merge Patch, RFC 7396): only the fields sent change; ``null`` puts a field back to its default
    (no explanation, no stimulus set, facility 0.6, 中等, …); ``practical`` is merged field by field."""

    stem: Stem | msgspec.UnsetType = msgspec.UNSET
    options: Options | msgspec.UnsetType | None = msgspec.UNSET
    answer: Answer | msgspec.UnsetType | None = msgspec.UNSET
    explanation: Explanation | msgspec.UnsetType | None = msgspec.UNSET
    point_code: PointCode | msgspec.UnsetType = msgspec.UNSET
    facility: Facility | msgspec.UnsetType | None = msgspec.UNSET
    difficulty: Difficulty | msgspec.UnsetType | None = msgspec.UNSET
    enemy_groups: Groups | msgspec.UnsetType | None = msgspec.UNSET
    stimulus_set: StimulusSet | msgspec.UnsetType | None = msgspec.UNSET
    tags: Groups | msgspec.UnsetType | None = msgspec.UNSET
    media: MediaKeys | msgspec.UnsetType | None = msgspec.UNSET
    language: Language | msgspec.UnsetType | None = msgspec.UNSET
    practical: PracticalPatch | msgspec.UnsetType | None = msgspec.UNSET
    maintainer: Maintainer | msgspec.UnsetType = msgspec.UNSET


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


class RetireIn(msgspec.Struct, kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, examples=["超出新版标准"])] | None = None


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


ReviewAction = Literal["submit", "approve", "reject"]
BULK_LIMIT = 10_000
BULK_REVIEW_DOC = (
    "Submit, approve or reject many items in one request, named by `ids` or chosen by a `filter` (the items of "
    "the filter in the status the action needs: draft for submit, in review for approve and reject; within the "
    "caller's occupations). Each item is checked by the same rules as `POST /api/v1/items/{id}/{action}`: the "
    "caller's role and occupations, the item's status, and for approve four eyes (nobody approves an item when "
    "they made a version of it since its last approval). Each item changed gets its own trail entry. "
    "`mode: all_or_nothing` (the default): if any item is refused, nothing changes and the answer is 409 with "
    "every item's result (`BulkReviewProblem.results`: each refused item with its reason); "
    "`mode: per_item`: the items that pass change, the others are left as they are, and the answer (200) says "
    f"which and why. At most {BULK_LIMIT:,} items per request.")


class ItemFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which items: every field given must match (the status is the one the action needs)."""

    occupation: OccupationCode | None = None
    level: Level | None = None
    point: Annotated[str, msgspec.Meta(pattern=r"^\d{3}$")] | None = None
    type: ItemType | None = None
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="text in the stem")] | None = None


class BulkReviewIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: ReviewAction
    ids: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]], msgspec.Meta(
        min_length=1, max_length=BULK_LIMIT, description="the items (each once); or give a filter")] | None = None
    filter: ItemFilter | None = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, examples=["答案有误"],
                                        description="why (required to reject)")] | None = None
    mode: Literal["all_or_nothing", "per_item"] = "all_or_nothing"


class ItemReviewResult(msgspec.Struct, kw_only=True):
    id: int
    ok: bool  # changed (per_item), or would be changed (a refused all_or_nothing request)
    status: str | None  # the item's status after the request (None: no such item)
    version: int | None
    reason: str = ""  # why it was refused


class BulkReviewOut(msgspec.Struct, kw_only=True):
    action: ReviewAction
    mode: str
    matched: int
    changed: int
    refused: int
    results: list[ItemReviewResult]


class BulkReviewProblem(Problem, kw_only=True):
    """A bulk review refused as a whole (mode all_or_nothing): nothing changed; each item's result."""

    results: list[ItemReviewResult] = []
