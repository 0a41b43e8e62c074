"""Bank health (§17(二)): what an occupation's level holds against the national minimums and its layouts."""

from __future__ import annotations

from typing import Annotated

import msgspec

from qbank.blueprints.schemas import Importance, ItemType

MIN_THEORY_ITEMS = 1200
MIN_PRACTICAL_PAPERS = 10
MIN_ITEMS_PER_POINT = 4
FACILITY_BINS = 10


class Minimum(msgspec.Struct, kw_only=True):
    """One regulation minimum: what is required, what the bank has, and whether that is enough."""

    required: Annotated[int, msgspec.Meta(examples=[1200])]
    approved: Annotated[int, msgspec.Meta(examples=[1264])]
    met: Annotated[bool, msgspec.Meta(description="approved ≥ required")]
    shortfall: Annotated[int, msgspec.Meta(ge=0, description="items still missing (0 when met)")]


class PointItems(msgspec.Struct, kw_only=True):
    code: Annotated[str, msgspec.Meta(examples=["001"])]
    name: str
    importance: Importance
    scope: Annotated[str, msgspec.Meta(description="scope codes from the root, joined by '/'", examples=["01/01.01"])]
    items: Annotated[int, msgspec.Meta(ge=0, description="approved theory items at this point")]
    practical_tasks: Annotated[int, msgspec.Meta(
        ge=0, description="approved practical tasks at this point (not counted in `items`)")] = 0


THEORY_PRACTICAL_NOTE = (
    "Points are counted on approved theory items (true/false, single and multiple choice): the computer-based "
    "theory paper draws on them, and the ≥ 4 items per point rule is about them. Practical tasks count toward "
    "practical_papers (§17(二): ≥ 10) and per point in per_point[].practical_tasks; a point in without_items may "
    "still hold practical tasks (listed in practical_only).")


class PointCoverage(msgspec.Struct, kw_only=True):
    """Approved theory items per appraisal point of the current blueprint (practical tasks apart)."""

    blueprint_id: int | None
    blueprint_version: int | None
    points: Annotated[int, msgspec.Meta(ge=0, description="points in the blueprint")]
    min_items_per_point: int = MIN_ITEMS_PER_POINT
    without_items: Annotated[list[str], msgspec.Meta(
        description="codes of points with no approved theory item, by code (practical tasks are not counted here)")]
    practical_only: Annotated[list[str], msgspec.Meta(
        description="codes of points without theory items that hold approved practical tasks")] = []
    under_minimum: Annotated[list[str], msgspec.Meta(
        description=f"codes of points with fewer than {MIN_ITEMS_PER_POINT} approved items (0 included)")]
    outside_blueprint: Annotated[int, msgspec.Meta(
        ge=0, description="approved theory items whose point is not in the current blueprint")]
    per_point: list[PointItems]
    note: Annotated[str, msgspec.Meta(description="how theory items and practical tasks are counted")] = \
        THEORY_PRACTICAL_NOTE


class SectionSupply(msgspec.Struct, kw_only=True):
    type: ItemType
    per_paper: Annotated[int, msgspec.Meta(description="items of this type one paper needs", examples=[140])]
    approved: Annotated[int, msgspec.Meta(description="approved items of this type", examples=[700])]
    papers: Annotated[int, msgspec.Meta(description="floor(approved / per_paper)", examples=[5])]


class LayoutSupply(msgspec.Struct, kw_only=True):
    """How many papers with no item in common the approved bank could fill with this layout."""

    layout_id: int
    name: str
    papers: Annotated[int, msgspec.Meta(ge=0, description="the smallest papers figure of its sections")]
    binding_type: Annotated[ItemType | None, msgspec.Meta(
        description="the item type that limits the number of papers")]
    sections: list[SectionSupply]


class ImportanceShares(msgspec.Struct, kw_only=True):
    """Approved theory items by their point's importance; national rule X ≥ 80 %, Y ≤ 15 %, Z ≤ 5 %."""

    counts: Annotated[dict[str, int], msgspec.Meta(examples=[{"X": 1000, "Y": 150, "Z": 50}])]
    percent: Annotated[dict[str, float], msgspec.Meta(examples=[{"X": 83.33, "Y": 12.5, "Z": 4.17}])]
    within_rules: Annotated[bool, msgspec.Meta(description="X ≥ 80 %, Y ≤ 15 % and Z ≤ 5 %")]


class FacilityHistogram(msgspec.Struct, kw_only=True):
    """Approved theory items by facility estimate, in 10 bins of width 0.1 (the last one includes 1.0)."""

    edges: Annotated[list[float], msgspec.Meta(examples=[[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]])]
    counts: Annotated[list[int], msgspec.Meta(examples=[[0, 0, 3, 40, 200, 400, 380, 150, 20, 0]])]
    mean: Annotated[float | None, msgspec.Meta(examples=[0.61])]


class NearDuplicatePair(msgspec.Struct, kw_only=True):
    a: int
    b: int


class ItemUse(msgspec.Struct, kw_only=True):
    item_id: int
    times_used: int


class Usage(msgspec.Struct, kw_only=True):
    never_used: Annotated[int, msgspec.Meta(ge=0, description="approved items no paper has used")]
    never_used_ids: Annotated[list[int], msgspec.Meta(description="the first of them by id (at most 100)")]
    most_used: Annotated[list[ItemUse], msgspec.Meta(description="the ten most used approved items")]


class BankHealth(msgspec.Struct, kw_only=True):
    """The health of one occupation's bank at one level; only approved items count."""

    occupation: Annotated[str, msgspec.Meta(examples=["4-04-05-01"])]
    level: Annotated[int, msgspec.Meta(examples=[3])]
    theory_items: Minimum
    practical_papers: Minimum
    meets_minimums: Annotated[bool, msgspec.Meta(description="both §17(二) minimums are met")]
    approved_by_type: Annotated[dict[str, int], msgspec.Meta(
        examples=[{"true_false": 300, "single_choice": 800, "multiple_choice": 164, "practical_task": 12}])]
    points: PointCoverage
    supply: list[LayoutSupply]
    importance: ImportanceShares
    facility: FacilityHistogram
    near_duplicates: Annotated[list[NearDuplicatePair], msgspec.Meta(
        description="pairs of approved items flagged as near duplicates (a < b)")]
    usage: Usage
