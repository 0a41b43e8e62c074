"""Independent checker: lists every violation of forms against the layout, blueprint and request.

It shares nothing with the models (it does not use :mod:`paperbuild.problem` or :mod:`paperbuild.formmip`):
it recomputes everything from the raw inputs with plain Python, so a bug in the model is not hidden by the same
bug here. Tests and benchmarks run it on every form they get. What a blueprint's weights mean (scopes without a
weight of their own, scopes weighted 0) is the blueprint's definition, :mod:`paperbuild.blueprint`, which both
sides read.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import Any

import msgspec

from paperbuild.blueprint import resolved_weights
from paperbuild.model import ITEM_TYPES, AssemblyRequest, Blueprint, Form, ItemId, ItemPool, Layout

_EPS = 1e-9


class Violation(msgspec.Struct, frozen=True):
    """One broken rule. ``form`` is the form's position in the list checked (None for a rule across forms)."""

    form: int | None
    rule: str
    message: str


def _py(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def check_form(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest,
               form: Form | Sequence[ItemId], index: int = 0) -> list[Violation]:
    """Every violation of one form (layout, blueprint, request rules that concern a single form).

    Longer than most functions on purpose: the checker lists every rule in one place, in the order a reader checks
    a paper, so that what it checks can be read (and compared with the models) at a glance."""
    items = list(form.items) if isinstance(form, Form) else list(form)
    perms = form.permutations if isinstance(form, Form) else None
    out: list[Violation] = []

    def bad(rule: str, msg: str) -> None:
        out.append(Violation(index, rule, msg))

    ids = [_py(x) for x in pool.ids.tolist()]
    pos = {x: i for i, x in enumerate(ids)}
    dup = [x for x, c in Counter(items).items() if c > 1]
    if dup:
        bad("unique", f"items appear more than once: {dup[:10]}")
    missing = [x for x in items if x not in pos]
    if missing:
        bad("in_pool", f"items not in the pool: {missing[:10]}")
    rows = [pos[x] for x in items if x in pos]
    tname = [ITEM_TYPES[int(pool.item_type[i])] for i in rows]
    # layout: counts per type, section order, total points
    ppi = {s.item_type: float(s.points_per_item) for s in layout.sections}
    cnt = Counter(tname)
    for s in layout.sections:
        if cnt.get(s.item_type, 0) != s.count:
            bad("section_count", f"{s.item_type}: {cnt.get(s.item_type, 0)} items, layout asks {s.count}")
    for t in cnt:
        if t not in ppi:
            bad("section_type", f"{cnt[t]} items of type {t}, which has no section in the layout")
    order = [s.item_type for s in layout.sections]
    ranks = [order.index(t) for t in tname if t in order]
    if any(a > b for a, b in pairwise(ranks)):
        bad("delivery_order", "items are not grouped by section in layout order")
    pts = [ppi.get(t, 0.0) for t in tname]
    total = sum(pts)
    if abs(total - 100.0) > _EPS:
        bad("total_points", f"form is worth {total:g} points, not 100")
    # blueprint: points per scope at every level
    parent = {s.code: s.parent for s in blueprint.scopes}
    got: dict[str, float] = defaultdict(float)
    scope_of_item = [str(pool.scope[i]) for i in rows]
    for sc, p in zip(scope_of_item, pts, strict=True):
        cur: str | None = sc
        seen = 0
        while cur is not None and seen < 64:
            got[cur] += p
            cur = parent.get(cur)
            seen += 1
    tol = float(request.scope_tolerance)
    weights = resolved_weights(blueprint)
    for scope in blueprint.scopes:
        target = weights[scope.code] / 100.0 * 100.0  # percent of a 100-point paper
        v = got.get(scope.code, 0.0)
        if target <= 0 and v > _EPS:
            bad("scope_points", f"scope {scope.code}: {v:g} score points, but it is weighted 0 (not examined)")
        elif v < target - tol - _EPS or v > target + tol + _EPS:
            bad("scope_points", f"scope {scope.code}: {v:g} score points, target {target:g} ± {tol:g}")
    for sc in set(scope_of_item):
        if sc not in parent:
            bad("scope_unknown", f"items in scope {sc}, which is not in the blueprint")
    # at most k items per appraisal point
    per_point = Counter(str(pool.point[i]) for i in rows)
    for pcode, c in sorted(per_point.items()):
        if c > request.max_per_point:
            bad("point_cap", f"point {pcode}: {c} items, at most {request.max_per_point}")
    # mean facility (points-weighted)
    if total > 0:
        mf = sum(p * float(pool.facility[i]) for p, i in zip(pts, rows, strict=True)) / total
        if mf < layout.facility_min - 1e-7 or mf > layout.facility_max + 1e-7:
            bad("facility", f"mean facility {mf:.4f} outside [{layout.facility_min}, {layout.facility_max}]")
    # enemy groups, shared stimulus, include, exclude
    chosen = set(items)
    for g in pool.enemy_groups:
        inside = [x for x in g if x in chosen]
        if len(inside) > 1:
            bad("enemy", f"enemy items together: {inside}")
    sets: dict[int, list[ItemId]] = defaultdict(list)
    for i, st in enumerate(pool.stimulus.tolist()):
        if st >= 0:
            sets[st].append(ids[i])
    for st, members in sets.items():
        k = sum(1 for x in members if x in chosen)
        if 0 < k < len(members):
            bad("stimulus", f"shared-stimulus set {st}: {k} of its {len(members)} items")
    for x in request.include:
        if x not in chosen:
            bad("include", f"item {x!r} must be in every form")
    for x in request.exclude:
        if x in chosen:
            bad("exclude", f"item {x!r} is excluded")
    # option permutations
    if perms is not None:
        for x, i in zip(items, rows, strict=False):
            if int(pool.item_type[i]) == 0:
                continue
            pm = perms.get(str(x))
            k = int(pool.n_options[i])
            if pm is None or sorted(pm) != list(range(k)):
                bad("permutation", f"item {x!r}: option permutation {pm} is not a permutation of {k} options")
    return out


def check_forms(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest,
                forms: Sequence[Form | Sequence[ItemId]]) -> list[Violation]:
    """Every violation of each form, and across forms: pairwise shared items, item use, facility spread."""
    out: list[Violation] = []
    sets: list[set[ItemId]] = []
    mfs: list[float] = []
    ids = [_py(x) for x in pool.ids.tolist()]
    pos = {x: i for i, x in enumerate(ids)}
    ppi = {s.item_type: float(s.points_per_item) for s in layout.sections}
    for k, f in enumerate(forms):
        out += check_form(pool, blueprint, layout, request, f, k)
        items = list(f.items) if isinstance(f, Form) else list(f)
        sets.append(set(items))
        rows = [pos[x] for x in items if x in pos]
        w = [ppi.get(ITEM_TYPES[int(pool.item_type[i])], 0.0) for i in rows]
        tw = sum(w)
        mfs.append(sum(a * float(pool.facility[i]) for a, i in zip(w, rows, strict=True)) / tw if tw else math.nan)
    if request.max_shared is not None:
        for a, b in combinations(range(len(sets)), 2):
            shared = len(sets[a] & sets[b])
            if shared > request.max_shared:
                out.append(Violation(None, "pairwise_shared",
                                     f"forms {a} and {b} share {shared} items, at most {request.max_shared}"))
    if request.max_item_use is not None:
        use = Counter(x for s in sets for x in s)
        for x, c in sorted(use.items(), key=lambda kv: str(kv[0])):
            if c > request.max_item_use:
                out.append(Violation(None, "item_use", f"item {x!r} is in {c} forms, at most {request.max_item_use}"))
    if len(forms) > 1 and request.facility_spread is not None:
        good = [m for m in mfs if not math.isnan(m)]
        if good and max(good) - min(good) > request.facility_spread + 1e-7:
            out.append(Violation(None, "facility_spread",
                                 f"mean facilities range {min(good):.4f}–{max(good):.4f}, more than "
                                 f"{request.facility_spread} apart"))
    return out
