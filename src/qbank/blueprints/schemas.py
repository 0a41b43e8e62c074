from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from qbank.lib.actors import OccupationCode

Level = Annotated[int, msgspec.Meta(ge=1, le=5, description="5 初级工 … 1 高级技师", examples=[3])]
Importance = Literal["X", "Y", "Z"]
ItemType = Literal["true_false", "single_choice", "multiple_choice", "practical_task"]
THEORY_TYPES: tuple[str, ...] = ("true_false", "single_choice", "multiple_choice")


class OccupationIn(msgspec.Struct, kw_only=True):
    code: OccupationCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["电工"])]
    levels: Annotated[list[Level], msgspec.Meta(min_length=1, max_length=5, examples=[[5, 4, 3, 2, 1]])]


class OccupationOut(OccupationIn, kw_only=True):
    created_at: datetime


class Point(msgspec.Struct, kw_only=True):
    """An appraisal point (鉴定点) at a leaf scope."""

    code: Annotated[str, msgspec.Meta(pattern=r"^\d{3}$", examples=["001"])]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    importance: Importance


WEIGHT_RULE = (
    "Weights as published tables (鉴定要素细目表) give them, in percent of the whole paper (not of the parent): "
    "a number in [0, 100] is the scope's own weight; `0`: the scope is not examined in a theory paper (no item of "
    "it or of any scope under it goes into a paper); `null` (or left out): the scope has no weight of its own and "
    "shares its parent's rest — the parent's weight minus its sub-scopes' own weights — with its siblings without a "
    "weight, in proportion to the appraisal points (鉴定点) each holds in the blueprint (top-level scopes share "
    "100 % the same way). At each level the weights add up: the sub-scopes' own weights equal their parent's "
    "(resolved) weight when every sub-scope has one, and are at most that when some have none; a rest above 0 needs "
    "a sub-scope without a weight that holds an appraisal point. Example: 03 = 10 %; 03.01 = 4.6 %, 03.02 (no "
    "weight, 3 appraisal points) and 03.03 (no weight, 1 point): 03.02 gets 4.05 %, 03.03 1.35 %. A blueprint that "
    "breaks the rule is refused with one error per bad scope (every one, not the first); `weights` in the answer "
    "gives each scope's resolved weight.")


class Scope(msgspec.Struct, kw_only=True):
    """A scope (鉴定范围) with its own weight (% of the whole paper), 0 (not examined) or none (its share of
    the parent's rest by appraisal points): see ``WEIGHT_RULE``."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=40, examples=["01"])]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    weight: Annotated[float, msgspec.Meta(ge=0, le=100, description=WEIGHT_RULE, examples=[4.6])] | None = None
    children: list[Scope] = []
    points: list[Point] = []


class BlueprintIn(msgspec.Struct, kw_only=True):
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]


class BlueprintWarning(msgspec.Struct, kw_only=True):
    code: str
    message: str


class BlueprintOut(msgspec.Struct, kw_only=True):
    id: int
    occupation_code: str
    level: int
    version: int
    scopes: list[Scope]
    points: int
    shares: dict[str, float]
    weights: Annotated[dict[str, float], msgspec.Meta(
        description="each scope's resolved weight in percent (own, or its share of its parent's rest)")] = {}
    warnings: list[BlueprintWarning]
    created_at: datetime
    created_by: str
    used_at: datetime | None


class Section(msgspec.Struct, kw_only=True):
    type: ItemType
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    points_per_item: Annotated[float, msgspec.Meta(gt=0, le=100)]


class LayoutIn(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["level-3 theory"])]
    sections: Annotated[list[Section], msgspec.Meta(min_length=1)]
    duration_minutes: Annotated[int, msgspec.Meta(ge=1, le=600)]
    facility_min: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.60
    facility_max: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.65


class LayoutOut(LayoutIn, kw_only=True):
    id: int
    occupation_code: str
    level: int
    total_points: float
    created_at: datetime
    created_by: str
