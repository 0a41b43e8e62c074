"""Repair: items must leave a form (retired or leaked); replace them changing as few items as possible.

Two MIP solves on the one-form model: first the most items of the old form that can stay (every constraint
holding, including the caps against the batch's other forms), then, with that many kept, the best coverage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import msgspec
import numpy as np

from paperbuild.errors import InvalidInput
from paperbuild.formmip import FormSpec, OneForm
from paperbuild.model import (
    AssemblyRequest,
    Blueprint,
    Explanation,
    Form,
    ItemId,
    ItemPool,
    Layout,
    SolveStats,
    Status,
    as_tuple,
)
from paperbuild.problem import Problem, compile_problem
from paperbuild.report import coverage_score, delivery_order, form_report, option_permutations


class RepairResult(msgspec.Struct, frozen=True):
    """The repaired form, which items left and which came in."""

    status: Status
    form: Form | None
    removed: tuple[ItemId, ...]
    added: tuple[ItemId, ...]
    stats: SolveStats
    explanation: Explanation | None = None


def _indices(prob: Problem, ids: Sequence[ItemId], field: str) -> np.ndarray:
    out = []
    for j, x in enumerate(ids):
        if x not in prob.id_index:
            raise InvalidInput(f"{field}[{j}]", f"item {x!r} is not in the pool")
        out.append(prob.id_index[x])
    return np.array(sorted(set(out)), dtype=np.int64)


def _in_place(prob: Problem, old_order: list[ItemId], new_items: np.ndarray, added: np.ndarray,
              form_index: int) -> tuple[ItemId, ...]:
    """The old delivery order with each leaving item's place taken by a new item of the same type."""
    fresh = delivery_order(prob, added, prob.request.seed, form_index)
    by_type: dict[int, list[ItemId]] = {}
    for x in fresh:
        by_type.setdefault(int(prob.pool.item_type[prob.id_index[x]]), []).append(x)
    keep = set(as_tuple(prob.pool.ids[new_items]))
    out: list[ItemId] = []
    for x in old_order:
        if x in keep:
            out.append(x)
            continue
        lst = by_type.get(int(prob.pool.item_type[prob.id_index[x]]))
        if lst:
            out.append(lst.pop(0))
    rest = [x for lst in by_type.values() for x in lst]
    if rest:  # more new items of a type than leaving ones: put each at the end of its section
        for x in rest:
            t = int(prob.pool.item_type[prob.id_index[x]])
            pos = max((k + 1 for k, y in enumerate(out) if int(prob.pool.item_type[prob.id_index[y]]) == t),
                      default=len(out))
            out.insert(pos, x)
    order = {t: r for r, t in enumerate(prob.section_types)}
    if [order[int(prob.pool.item_type[prob.id_index[x]])] for x in out] != sorted(
            order[int(prob.pool.item_type[prob.id_index[x]])] for x in out):
        return delivery_order(prob, new_items, prob.request.seed, form_index)
    return tuple(out)


def repair(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest,
           form: Sequence[ItemId] | Form, leaving: Sequence[ItemId],
           other_forms: Sequence[Sequence[ItemId] | Form] = (), form_index: int = 0) -> RepairResult:
    """Replace ``leaving`` items of ``form`` so every constraint still holds, changing as few items as possible.

    ``other_forms`` are the batch's other forms: the repaired form keeps to ``max_shared`` with each, to
    ``max_item_use`` together with them, and its mean facility stays within ``facility_spread`` of theirs.
    Items in ``leaving`` (and ``request.exclude``) never come back. The result lists what left and what came
    in; ``status`` is ``infeasible`` (with an explanation) when no repair exists.
    """
    t0 = time.perf_counter()
    items_in = list(form.items) if isinstance(form, Form) else list(form)
    prob = compile_problem(pool, blueprint, layout, request)
    cur = _indices(prob, items_in, "form")
    out_idx = _indices(prob, list(leaving), "leaving")
    others = [_indices(prob, list(g.items) if isinstance(g, Form) else list(g), f"other_forms[{k}]")
              for k, g in enumerate(other_forms)]
    req = prob.request
    avail = prob.usable.copy()
    avail[out_idx] = False
    uses = np.zeros(prob.n, dtype=np.int64)
    for g in others:
        uses[g] += 1
    if req.max_item_use is not None:
        avail &= uses < req.max_item_use
    fac_lo, fac_hi = prob.layout.facility_min, prob.layout.facility_max
    if others:
        mfs = [float(np.sum(prob.item_points[g] * pool.facility[g])) / prob.total_scaled for g in others]
        fac_lo = max(fac_lo, max(mfs) - req.facility_spread)
        fac_hi = min(fac_hi, min(mfs) + req.facility_spread)
    keep = np.setdiff1d(cur, out_idx)
    keep_bonus = np.zeros(prob.n)
    keep_bonus[keep] = 1.0
    spec = FormSpec(available=avail, cost=np.zeros(prob.n), fac_lo=fac_lo * prob.total_scaled,
                    fac_hi=fac_hi * prob.total_scaled, must=prob.include if prob.include.size else None,
                    overlap=[(g, req.max_shared) for g in others] if req.max_shared is not None else [],
                    feasibility_only=True, keep_bonus=keep_bonus)
    deadline = t0 + req.time_limit
    m1 = OneForm(prob, spec)
    sol1 = m1.solve(max(0.1, (deadline - time.perf_counter()) / 2)) if not m1.trivially_infeasible else None
    if sol1 is None or sol1.status not in ("optimal", "feasible"):
        from paperbuild.explain import explain_problem

        expl = explain_problem(prob, 1, time_limit=max(1.0, deadline - time.perf_counter()))
        st = Status.UNKNOWN if sol1 is not None and sol1.status == "unknown" else Status.INFEASIBLE
        return RepairResult(st, None, as_tuple(pool.ids[out_idx]), (),
                            SolveStats(st, math.nan, math.nan, time.perf_counter() - t0, None, "repair-mip", 1),
                            expl)
    kept = int(np.intersect1d(sol1.items, keep).size)
    # phase 2: best coverage among repairs keeping ``kept`` items; tie-break prefers little-used items
    tu = pool.times_used.astype(np.float64)
    cost = 0.5 * tu / tu.max() if tu.size and tu.max() > 0 else np.zeros(prob.n)
    spec2 = FormSpec(available=avail, cost=cost, fac_lo=spec.fac_lo, fac_hi=spec.fac_hi, must=spec.must,
                     overlap=spec.overlap, caps=[])
    m2 = OneForm(prob, spec2)
    m2.row(m2.lin(keep), float(kept), m2.solver.infinity())
    sol2 = m2.solve(max(0.1, deadline - time.perf_counter()), hint=sol1.items)
    best = sol2 if sol2.status in ("optimal", "feasible") else sol1
    status = Status.OPTIMAL if sol1.status == "optimal" and sol2.status == "optimal" else Status.FEASIBLE
    new_items = best.items
    added = np.setdiff1d(new_items, cur)
    removed = np.setdiff1d(cur, new_items)
    use = uses.copy()
    use[new_items] += 1
    perms = option_permutations(prob, [new_items], req.seed, form_index)[0]
    if isinstance(form, Form):  # keep the options of items that stay as they were
        for k, v in form.permutations.items():
            if k in perms:
                perms[k] = v
    obj = float(coverage_score(prob, new_items))
    new_form = Form(index=form_index, items=_in_place(prob, items_in, new_items, added, form_index),
                    permutations=perms, report=form_report(prob, new_items, others, use), objective=obj,
                    bound=obj if status == Status.OPTIMAL else math.inf)
    return RepairResult(status, new_form, as_tuple(pool.ids[removed]), as_tuple(pool.ids[added]),
                        SolveStats(status, obj, obj if status == Status.OPTIMAL else math.inf,
                                   time.perf_counter() - t0, None, "repair-mip", 2))
