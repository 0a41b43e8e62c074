"""Validation of the inputs and their compilation into index arrays the models and reports share.

:func:`compile_problem` checks every input (raising :class:`~paperbuild.errors.InvalidInput` naming the field)
and returns a :class:`Problem`. Points are scaled to integers (e.g. half points → ×2) so the models are exact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from paperbuild.blueprint import check_blueprint
from paperbuild.errors import InvalidInput
from paperbuild.model import (
    IMPORTANCE,
    ITEM_TYPES,
    AssemblyRequest,
    Blueprint,
    ItemId,
    ItemPool,
    Layout,
    type_code,
)

TOTAL_POINTS = 100.0
_SCALES = (1, 2, 4, 5, 10, 20, 25, 50, 100)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Problem:
    """A validated, compiled assembly problem (one form's constraints plus the request's caps)."""

    pool: ItemPool
    blueprint: Blueprint
    layout: Layout
    request: AssemblyRequest
    scale: int  # points × scale are integers
    section_types: tuple[int, ...]  # type code per layout section, in delivery order
    type_count: dict[int, int]  # items of each type per form
    type_points: dict[int, int]  # scaled points per item of each type
    item_points: IntArray  # scaled points per item (0 where its type is not in the layout)
    usable: npt.NDArray[np.bool_]  # type in layout and not excluded
    point_codes: tuple[str, ...]
    point_importance: IntArray  # 0 X, 1 Y, 2 Z per point
    item_point: IntArray  # point index per item
    point_items: tuple[IntArray, ...]  # usable item indices per point
    scope_codes: tuple[str, ...]
    scope_level: IntArray  # 1 for top-level scopes
    scope_weight: npt.NDArray[np.float64]  # resolved weight in percent (paperbuild.blueprint)
    scope_target: npt.NDArray[np.float64]  # scaled target points
    scope_lo: IntArray  # scaled
    scope_hi: IntArray  # scaled
    scope_items: tuple[IntArray, ...]  # usable item indices in each scope (with descendants)
    fac_lo: float  # bounds on sum(item_points * facility) (scaled)
    fac_hi: float
    enemy: tuple[IntArray, ...]  # usable item indices per enemy group (size > 1)
    stimulus_sets: tuple[IntArray, ...]  # item indices per shared-stimulus set
    include: IntArray
    exclude: IntArray
    id_index: dict[ItemId, int]
    total_scaled: int

    @property
    def n(self) -> int:
        return len(self.pool)

    @property
    def items_per_form(self) -> int:
        return sum(self.type_count.values())

    def idx(self, item_id: ItemId) -> int:
        return self.id_index[item_id]

    def importance_weights(self) -> tuple[int, int, int]:
        """Lexicographic weights for covering an X, Y, Z point: one X beats every Y and Z together."""
        n_z = int(np.sum(self.point_importance == 2))
        n_y = int(np.sum(self.point_importance == 1))
        w_z = 1
        w_y = n_z + 1
        w_x = n_y * w_y + n_z + 1
        return w_x, w_y, w_z


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _item_label(pool: ItemPool, i: int) -> str:
    return f"item {pool.ids[i].item() if isinstance(pool.ids[i], np.generic) else pool.ids[i]!r}"


def validate_request(req: AssemblyRequest) -> None:
    """Check the request's scalars."""
    if not isinstance(req.forms, int) or req.forms <= 0:
        raise InvalidInput("request.forms", f"must be a positive integer, got {req.forms!r}")
    for name in ("max_shared", "max_item_use"):
        v = getattr(req, name)
        if v is not None and (not isinstance(v, int) or v < 0):
            raise InvalidInput(f"request.{name}", f"must be None or an integer ≥ 0, got {v!r}")
    if not isinstance(req.max_per_point, int) or req.max_per_point < 1:
        raise InvalidInput("request.max_per_point", f"must be an integer ≥ 1, got {req.max_per_point!r}")
    if not _finite(req.time_limit) or req.time_limit <= 0:
        raise InvalidInput("request.time_limit", f"must be a positive number of seconds, got {req.time_limit!r}")
    if not _finite(req.scope_tolerance) or req.scope_tolerance < 0:
        raise InvalidInput("request.scope_tolerance", f"must be ≥ 0 points, got {req.scope_tolerance!r}")
    if not _finite(req.facility_spread) or req.facility_spread < 0:
        raise InvalidInput("request.facility_spread", f"must be ≥ 0, got {req.facility_spread!r}")
    if not isinstance(req.seed, int):
        raise InvalidInput("request.seed", f"must be an integer, got {req.seed!r}")


def validate_layout(layout: Layout) -> tuple[int, dict[int, int], dict[int, int], tuple[int, ...]]:
    """Check the layout; return (scale, count per type, scaled points per type, section type codes)."""
    if not layout.sections:
        raise InvalidInput("layout.sections", "no sections")
    codes: list[int] = []
    for k, sec in enumerate(layout.sections):
        t = type_code(sec.item_type, f"layout.sections[{k}].item_type")
        if t in codes:
            raise InvalidInput(f"layout.sections[{k}].item_type", f"type {sec.item_type!r} appears twice")
        codes.append(t)
        if not isinstance(sec.count, int) or isinstance(sec.count, bool) or sec.count <= 0:
            raise InvalidInput(f"layout.sections[{k}].count", f"must be a positive integer, got {sec.count!r}")
        if not _finite(sec.points_per_item) or sec.points_per_item <= 0:
            raise InvalidInput(f"layout.sections[{k}].points_per_item",
                               f"must be a positive number, got {sec.points_per_item!r}")
    total = sum(s.count * s.points_per_item for s in layout.sections)
    if abs(total - TOTAL_POINTS) > 1e-9:
        raise InvalidInput("layout.sections", f"sections add up to {total:g} points, not {TOTAL_POINTS:g}")
    for name in ("facility_min", "facility_max"):
        v = getattr(layout, name)
        if not _finite(v) or not 0.0 <= v <= 1.0:
            raise InvalidInput(f"layout.{name}", f"must be a number in [0, 1], got {v!r}")
    if layout.facility_min > layout.facility_max:
        raise InvalidInput("layout.facility_min", f"{layout.facility_min} is above facility_max {layout.facility_max}")
    scale = 0
    for s in _SCALES:
        if all(abs(sec.points_per_item * s - round(sec.points_per_item * s)) < 1e-9 for sec in layout.sections):
            scale = s
            break
    if scale == 0:
        raise InvalidInput("layout.sections", "points per item must be multiples of 0.01")
    counts = {codes[k]: sec.count for k, sec in enumerate(layout.sections)}
    pts = {codes[k]: round(sec.points_per_item * scale) for k, sec in enumerate(layout.sections)}
    return scale, counts, pts, tuple(codes)


def validate_pool(pool: ItemPool) -> dict[ItemId, int]:
    """Check the pool's arrays; return id → index."""
    n = len(pool)
    for name in ("item_type", "score", "point", "scope", "importance", "facility", "stimulus", "times_used",
                 "n_options"):
        arr = getattr(pool, name)
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.shape[0] != n:
            raise InvalidInput(f"pool.{name}", f"must be a 1-D array of {n} entries like pool.ids")
    ids = [x.item() if isinstance(x, np.generic) else x for x in pool.ids]
    index: dict[ItemId, int] = {}
    for i, x in enumerate(ids):
        if x in index:
            raise InvalidInput(f"pool.ids[{i}]", f"duplicate item id {x!r}")
        index[x] = i
    bad = np.flatnonzero((pool.item_type < 0) | (pool.item_type >= len(ITEM_TYPES)))
    if bad.size:
        raise InvalidInput(f"pool.item_type[{bad[0]}]",
                           f"{_item_label(pool, int(bad[0]))}: unknown type code {int(pool.item_type[bad[0]])}")
    fac = np.asarray(pool.facility, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(fac) | (fac < 0.0) | (fac > 1.0))
    if bad.size:
        raise InvalidInput(f"pool.facility[{bad[0]}]",
                           f"{_item_label(pool, int(bad[0]))}: facility {fac[bad[0]]!r} is not a number in [0, 1]")
    bad = np.flatnonzero(pool.times_used < 0)
    if bad.size:
        raise InvalidInput(f"pool.times_used[{bad[0]}]", f"{_item_label(pool, int(bad[0]))}: negative")
    choice = pool.item_type != 0
    bad = np.flatnonzero(choice & (pool.n_options < 2))
    if bad.size:
        raise InvalidInput(f"pool.n_options[{bad[0]}]", f"{_item_label(pool, int(bad[0]))}: a choice item needs ≥ 2")
    for i, imp in enumerate(pool.importance.tolist()):
        if imp not in IMPORTANCE:
            raise InvalidInput(f"pool.importance[{i}]", f"{_item_label(pool, i)}: {imp!r} is not X, Y or Z")
    for g, group in enumerate(pool.enemy_groups):
        for x in group:
            if x not in index:
                raise InvalidInput(f"pool.enemy_groups[{g}]", f"names item {x!r}, which is not in the pool")
    return index


def compile_problem(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest) -> Problem:
    """Validate everything and compile. Raises :class:`InvalidInput` on the first input found bad (listing every
    problem of that input where it checks them together: the blueprint's scopes)."""
    validate_request(request)
    scale, counts, tpts, sec_types = validate_layout(layout)
    index = validate_pool(pool)
    tree = check_blueprint(blueprint)
    n = len(pool)

    for k, sec in enumerate(layout.sections):
        have = int(np.sum(pool.item_type == sec_types[k]))
        if sec.count > have:
            raise InvalidInput(f"layout.sections[{k}].count",
                               f"asks for {sec.count} {sec.item_type} items; the pool has {have}")

    include, exclude = _request_items(pool, index, request, counts)
    item_point = _item_points(pool, blueprint)
    sc_list = pool.scope.tolist()

    scodes = tuple(s.code for s in blueprint.scopes)
    weight = np.array([tree.weight[c] for c in scodes])
    examined = _examined_items(blueprint, scodes, weight, sc_list)
    for j, x in enumerate(request.include):
        if not examined[index[x]]:
            raise InvalidInput(f"request.include[{j}]", f"item {x!r} is in scope {sc_list[index[x]]}, which is not "
                                                        "examined (weighted 0, or under a scope weighted 0)")
    usable = np.isin(pool.item_type, np.array(sorted(counts), dtype=np.int8)) & examined
    if exclude:
        usable[np.array(exclude, dtype=np.int64)] = False
    item_points = np.zeros(n, dtype=np.int64)
    for t, p in tpts.items():
        item_points[pool.item_type == t] = p
    item_points[~usable] = 0
    members, any_member = _scope_members(blueprint, scodes, sc_list, usable)
    empty = [(f"blueprint.scopes[{j}].weight", f"scope {c} weighs {weight[j]:g} %"
              f"{'' if blueprint.scopes[j].weight is not None else ' (its share of its parent)'} but the pool has "
              "no items in it") for j, c in enumerate(scodes) if weight[j] > 0 and any_member[j] == 0]
    if empty:
        raise InvalidInput.every(empty)
    tol = request.scope_tolerance * scale
    target = weight / 100.0 * TOTAL_POINTS * scale
    lo = np.maximum(0, np.ceil(target - tol - 1e-9)).astype(np.int64)
    hi = np.floor(target + tol + 1e-9).astype(np.int64)
    hi[weight <= 0] = 0  # not examined: no item at all, whatever the tolerance
    level = tree.level

    total_scaled = round(TOTAL_POINTS * scale)
    enemy = []
    for g in pool.enemy_groups:
        idx = sorted({index[x] for x in g if usable[index[x]]})
        if len(idx) > 1:
            enemy.append(np.array(idx, dtype=np.int64))
    stim: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(pool.stimulus.tolist()):
        if s >= 0:
            stim[s].append(i)
    point_items: list[list[int]] = [[] for _ in blueprint.points]
    for i in np.flatnonzero(usable).tolist():
        point_items[item_point[i]].append(i)
    imp_code = {c: k for k, c in enumerate(IMPORTANCE)}
    return Problem(
        pool=pool, blueprint=blueprint, layout=layout, request=request, scale=scale,
        section_types=sec_types, type_count=counts, type_points=tpts, item_points=item_points, usable=usable,
        point_codes=tuple(p.code for p in blueprint.points),
        point_importance=np.array([imp_code[p.importance] for p in blueprint.points], dtype=np.int64),
        item_point=item_point,
        point_items=tuple(np.array(v, dtype=np.int64) for v in point_items),
        scope_codes=scodes,
        scope_level=np.array([level[c] for c in scodes], dtype=np.int64),
        scope_weight=weight, scope_target=target, scope_lo=lo, scope_hi=hi,
        scope_items=tuple(np.array(m, dtype=np.int64) for m in members),
        fac_lo=layout.facility_min * total_scaled, fac_hi=layout.facility_max * total_scaled,
        enemy=tuple(enemy),
        stimulus_sets=tuple(np.array(v, dtype=np.int64) for _, v in sorted(stim.items()) if len(v) > 0),
        include=np.array(sorted(include), dtype=np.int64), exclude=np.array(sorted(exclude), dtype=np.int64),
        id_index=index, total_scaled=total_scaled,
    )


def _examined_items(bp: Blueprint, scodes: tuple[str, ...], weight: npt.NDArray[np.float64],
                    item_scope: list[str]) -> npt.NDArray[np.bool_]:
    """Items whose scope and every scope above it have a resolved weight above 0."""
    sidx = {c: j for j, c in enumerate(scodes)}
    ok: dict[str, bool] = {}
    for j, c in enumerate(scodes):
        chain = [j]
        par = bp.scopes[j].parent
        while par is not None:
            chain.append(sidx[par])
            par = bp.scopes[sidx[par]].parent
        ok[c] = all(weight[k] > 0 for k in chain)
    return np.array([ok[s] for s in item_scope], dtype=np.bool_)


def _scope_members(bp: Blueprint, scodes: tuple[str, ...], item_scope: list[str],
                   usable: npt.NDArray[np.bool_]) -> tuple[list[list[int]], list[int]]:
    """Usable items of each scope (with its sub-scopes), and how many items of the pool each holds at all."""
    sidx = {c: j for j, c in enumerate(scodes)}
    parent = [bp.scopes[j].parent for j in range(len(scodes))]
    members: list[list[int]] = [[] for _ in scodes]
    any_member: list[int] = [0] * len(scodes)
    for i, sc in enumerate(item_scope):
        sj: int | None = sidx[sc]
        while sj is not None:
            any_member[sj] += 1
            if usable[i]:
                members[sj].append(i)
            par = parent[sj]
            sj = None if par is None else sidx[par]
    return members, any_member


def _request_items(pool: ItemPool, index: dict[ItemId, int], request: AssemblyRequest,
                   counts: dict[int, int]) -> tuple[list[int], list[int]]:
    """Indexes of the included and excluded items, checked."""
    include = []
    for j, x in enumerate(request.include):
        if x not in index:
            raise InvalidInput(f"request.include[{j}]", f"item {x!r} is not in the pool")
        if int(pool.item_type[index[x]]) not in counts:
            raise InvalidInput(f"request.include[{j}]", f"item {x!r}: its type has no section")
        include.append(index[x])
    exclude = []
    for j, x in enumerate(request.exclude):
        if x not in index:
            raise InvalidInput(f"request.exclude[{j}]", f"item {x!r} is not in the pool")
        if x in request.include:
            raise InvalidInput(f"request.exclude[{j}]", f"item {x!r} is both included and excluded")
        exclude.append(index[x])
    return include, exclude


def _item_points(pool: ItemPool, blueprint: Blueprint) -> IntArray:
    """The blueprint's appraisal point of every item, checked against the item's scope and importance."""
    pcode = {p.code: k for k, p in enumerate(blueprint.points)}
    item_point = np.empty(len(pool), dtype=np.int64)
    for i, (pt, sc, im) in enumerate(zip(pool.point.tolist(), pool.scope.tolist(), pool.importance.tolist(),
                                         strict=True)):
        k = pcode.get(pt)
        if k is None:
            raise InvalidInput(f"pool.point[{i}]", f"{_item_label(pool, i)}: appraisal point {pt!r} is not in the "
                                                   "blueprint")
        bp_point = blueprint.points[k]
        if sc != bp_point.scope:
            raise InvalidInput(f"pool.scope[{i}]", f"{_item_label(pool, i)}: scope {sc!r} but its appraisal point "
                                                   f"{pt} belongs to scope {bp_point.scope!r}")
        if im != bp_point.importance:
            raise InvalidInput(f"pool.importance[{i}]", f"{_item_label(pool, i)}: importance {im!r} but appraisal "
                                                        f"point {pt} is {bp_point.importance!r} in the blueprint")
        item_point[i] = k
    return item_point
