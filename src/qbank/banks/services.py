"""Bank health: one service function for the API and the CLI; counting is done on numpy arrays."""

from __future__ import annotations

import msgspec
import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.banks.schemas import (
    FACILITY_BINS,
    MIN_ITEMS_PER_POINT,
    MIN_PRACTICAL_PAPERS,
    MIN_THEORY_ITEMS,
    BankHealth,
    FacilityHistogram,
    ImportanceShares,
    ItemUse,
    LayoutSupply,
    Minimum,
    NearDuplicatePair,
    PointCoverage,
    PointItems,
    SectionSupply,
    Usage,
)
from qbank.blueprints.models import Layout
from qbank.blueprints.schemas import BlueprintIn, ItemType, Section
from qbank.blueprints.services import SHARE_RULES, current_blueprint, leaf_points, require_level
from qbank.items.models import Item, ItemVersion
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import not_found

ITEM_TYPES: tuple[ItemType, ...] = ("true_false", "single_choice", "multiple_choice", "practical_task")
IMPORTANCES = ("X", "Y", "Z")
NEVER_USED_LISTED = 100
MOST_USED_LISTED = 10


def minimum(required: int, approved: int) -> Minimum:
    return Minimum(required=required, approved=approved, met=approved >= required,
                   shortfall=max(required - approved, 0))


def layout_supply(layout_id: int, name: str, sections: list[Section], by_type: dict[str, int]) -> LayoutSupply:
    """Papers with no shared item: per section floor(approved / count); the layout gets the smallest."""
    need = np.array([s.count for s in sections], dtype=np.int64)
    have = np.array([by_type.get(s.type, 0) for s in sections], dtype=np.int64)
    papers = have // need
    binding = int(np.argmin(papers)) if len(papers) else -1
    return LayoutSupply(
        layout_id=layout_id, name=name, papers=int(papers[binding]) if binding >= 0 else 0,
        binding_type=sections[binding].type if binding >= 0 else None,
        sections=[SectionSupply(type=s.type, per_paper=int(n), approved=int(h), papers=int(p))
                  for s, n, h, p in zip(sections, need, have, papers, strict=True)])


async def bank_health(db: AsyncSession, actor: Actor, occupation: str, level: int,
                      layout_id: int | None = None) -> BankHealth:
    """The health report of an occupation's level; 404 for an unknown occupation or layout, 403 out of scope."""
    check_occupation(actor, occupation)
    await require_level(db, occupation, level)

    rows = (await db.execute(
        select(Item.id, Item.type, Item.point_code, Item.near_duplicates, Item.times_used, ItemVersion.content)
        .join(ItemVersion, and_(ItemVersion.item_id == Item.id, ItemVersion.version == Item.version))
        .where(Item.occupation_code == occupation, Item.level == level, Item.status == "approved")
        .order_by(Item.id))).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    type_idx = np.array([ITEM_TYPES.index(r[1]) for r in rows], dtype=np.int64)
    used = np.array([r[4] for r in rows], dtype=np.int64)
    facility = np.array([float(r[5].get("facility", 0.0)) for r in rows], dtype=np.float64)
    type_counts = np.bincount(type_idx, minlength=len(ITEM_TYPES))
    by_type: dict[str, int] = {t: int(n) for t, n in zip(ITEM_TYPES, type_counts, strict=True)}
    theory = type_idx < ITEM_TYPES.index("practical_task")
    n_theory = int(theory.sum())

    # Items per point of the current blueprint, and the importance shares through each item's point.
    blueprint = await current_blueprint(db, occupation, level)
    points = leaf_points(msgspec.convert({"scopes": blueprint.scopes}, BlueprintIn).scopes) if blueprint else []
    point_pos = {p.code: i for i, (p, _) in enumerate(points)}
    theory_points = [r[2] for r, t in zip(rows, theory, strict=True) if t]
    pos = np.array([point_pos.get(code, -1) for code in theory_points], dtype=np.int64)
    per_point = np.bincount(pos[pos >= 0], minlength=len(points))
    practical_pos = np.array([point_pos.get(r[2], -1) for r, t in zip(rows, theory, strict=True) if not t],
                             dtype=np.int64)
    practical_per_point = np.bincount(practical_pos[practical_pos >= 0], minlength=len(points))
    importance_of_point = np.array([IMPORTANCES.index(p.importance) for p, _ in points], dtype=np.int64)
    by_importance = np.bincount(importance_of_point[pos[pos >= 0]], minlength=len(IMPORTANCES))
    counted = max(int(by_importance.sum()), 1)
    percent = {k: round(100.0 * int(n) / counted, 2) for k, n in zip(IMPORTANCES, by_importance, strict=True)}
    within = all(percent[k] >= limit if op == ">=" else percent[k] <= limit for k, op, limit in SHARE_RULES)
    coverage = PointCoverage(
        blueprint_id=blueprint.id if blueprint else None, blueprint_version=blueprint.version if blueprint else None,
        points=len(points),
        without_items=sorted(points[i][0].code for i in np.flatnonzero(per_point == 0).tolist()),
        practical_only=sorted(points[i][0].code for i in np.flatnonzero(
            (per_point == 0) & (practical_per_point > 0)).tolist()),
        under_minimum=sorted(points[i][0].code for i in np.flatnonzero(per_point < MIN_ITEMS_PER_POINT).tolist()),
        outside_blueprint=int((pos < 0).sum()),
        per_point=[PointItems(code=p.code, name=p.name, importance=p.importance, scope="/".join(codes),
                              items=int(n), practical_tasks=int(k))
                   for (p, codes), n, k in zip(points, per_point, practical_per_point, strict=True)])

    # Supply against the layouts of this level (or the one asked for).
    query = select(Layout).where(Layout.occupation_code == occupation, Layout.level == level)
    if layout_id is not None:
        query = query.where(Layout.id == layout_id)
    layouts = (await db.scalars(query.order_by(Layout.id))).all()
    if layout_id is not None and not layouts:
        raise not_found(f"layout of {occupation} level {level}", layout_id)
    supply = [layout_supply(lay.id, lay.name, msgspec.convert(lay.sections, list[Section]), by_type)
              for lay in layouts]

    # Bin i holds [i/10, (i+1)/10), the last one also 1.0; rounding first keeps 0.7 out of the 0.6 bin.
    bins = np.minimum(np.floor(np.round(facility[theory] * FACILITY_BINS, 9)).astype(np.int64), FACILITY_BINS - 1)
    counts = np.bincount(bins, minlength=FACILITY_BINS)
    edges = [round(i / FACILITY_BINS, 2) for i in range(FACILITY_BINS + 1)]
    approved = set(ids.tolist())
    pairs = sorted({(min(a, int(b)), max(a, int(b))) for a, marks in ((r[0], r[3] or []) for r in rows)
                    for b in marks if int(b) in approved and int(b) != a})
    never = ids[used == 0]
    order = np.lexsort((ids, -used))  # most used first, then by id
    top = [i for i in order[:MOST_USED_LISTED].tolist() if used[i] > 0]
    practical = by_type["practical_task"]
    theory_min, practical_min = minimum(MIN_THEORY_ITEMS, n_theory), minimum(MIN_PRACTICAL_PAPERS, practical)
    return BankHealth(
        occupation=occupation, level=level, theory_items=theory_min, practical_papers=practical_min,
        meets_minimums=theory_min.met and practical_min.met, approved_by_type=by_type, points=coverage,
        supply=supply,
        importance=ImportanceShares(counts={k: int(n) for k, n in zip(IMPORTANCES, by_importance, strict=True)},
                                    percent=percent, within_rules=within and int(by_importance.sum()) > 0),
        facility=FacilityHistogram(edges=edges, counts=[int(c) for c in counts],
                                   mean=round(float(facility[theory].mean()), 4) if n_theory else None),
        near_duplicates=[NearDuplicatePair(a=a, b=b) for a, b in pairs],
        usage=Usage(never_used=len(never), never_used_ids=never[:NEVER_USED_LISTED].tolist(),
                    most_used=[ItemUse(item_id=int(ids[i]), times_used=int(used[i])) for i in top]),
    )
