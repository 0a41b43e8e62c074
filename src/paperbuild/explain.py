"""Infeasibility explained: the smallest sets of blueprint/layout/request rows that cannot hold together.

Rows are the one-form model's row groups (a section's count, a scope's points, the facility range, the per-point
cap, enemy groups, shared-stimulus sets, included items) plus, for several forms, the caps across forms.

Method: QuickXplain (Junker 2004) over the rows, each test a feasibility MIP with every other row switched off,
gives an irreducible set (removing any one of its rows makes the rest feasible). The rows of that set are
relaxed and the search repeats until the request becomes feasible, so relaxing every reported row makes the
request feasible. Each row is described with the bank's supply against the demand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import numpy as np

from paperbuild.formmip import FormSpec, solve_form
from paperbuild.model import (
    ITEM_TYPES,
    TYPE_NAMES,
    AssemblyRequest,
    Blueprint,
    Explanation,
    ExplanationRow,
    ItemPool,
    Layout,
)
from paperbuild.problem import Problem, compile_problem

_FMT = "{:g}"


def _rows(prob: Problem) -> list[str]:
    rows = [f"section:{t}" for t in prob.section_types]
    rows += [f"scope:{c}" for c in prob.scope_codes]
    rows += ["facility", "point_cap"]
    if prob.enemy:
        rows.append("enemy")
    if prob.stimulus_sets:
        rows.append("stimulus")
    if prob.include.size:
        rows.append("include")
    return rows


class _Oracle:
    """Feasibility of the one-form model with only some rows switched on (memoised)."""

    def __init__(self, prob: Problem, all_rows: list[str], deadline: float) -> None:
        self.prob = prob
        self.all_rows = all_rows
        self.deadline = deadline
        self.cache: dict[frozenset[str], bool] = {}
        self.calls = 0
        self.timed_out = False

    def feasible(self, on: frozenset[str]) -> bool:
        if on in self.cache:
            return self.cache[on]
        prob = self.prob
        spec = FormSpec(available=prob.usable.copy(), cost=np.zeros(prob.n),
                        must=prob.include if prob.include.size else None,
                        relaxed=frozenset(self.all_rows) - on, feasibility_only=True)
        left = max(0.2, self.deadline - time.perf_counter())
        sol = solve_form(prob, spec, left, "CBC")
        self.calls += 1
        if sol.status == "unknown":
            self.timed_out = True
        ok = sol.status != "infeasible"  # an unknown outcome counts as feasible (never blames a row wrongly)
        self.cache[on] = ok
        return ok


def _quickxplain(feasible: Callable[[frozenset[str]], bool], background: frozenset[str],
                 rows: list[str]) -> list[str]:
    """A minimal subset C of ``rows`` with background ∪ C infeasible (background ∪ rows must be infeasible)."""

    def qx(b: frozenset[str], delta: bool, c: list[str]) -> list[str]:
        if delta and not feasible(b):
            return []
        if len(c) == 1:
            return list(c)
        k = len(c) // 2
        c1, c2 = c[:k], c[k:]
        d2 = qx(b | frozenset(c1), True, c2)
        d1 = qx(b | frozenset(d2), bool(d2), c1)
        return d1 + d2

    if feasible(background | frozenset(rows)):
        return []
    return qx(background, False, rows)


def _describe(prob: Problem, row: str) -> ExplanationRow:
    return msgspec.structs.replace(_describe_row(prob, row), row=row)


def _describe_row(prob: Problem, row: str) -> ExplanationRow:
    pool = prob.pool
    sc = prob.scale
    req = prob.request
    if row.startswith("section:"):
        t = int(row.split(":")[1])
        name = TYPE_NAMES[ITEM_TYPES[t]]
        have = int(np.sum(prob.usable & (pool.item_type == t)))
        total = int(np.sum(pool.item_type == t))
        need = prob.type_count[t]
        extra = f" ({total - have} excluded)" if total != have else ""
        return ExplanationRow("section", ITEM_TYPES[t],
                              f"the layout asks for {need} {name} items per form; the bank has {have} approved{extra}",
                              float(need), float(have))
    if row.startswith("scope:"):
        code = row.split(":", 1)[1]
        j = prob.scope_codes.index(code)
        its = prob.scope_items[j]
        w = prob.blueprint.scopes[j].weight
        lo, hi = prob.scope_lo[j] / sc, prob.scope_hi[j] / sc
        parts = []
        for t in prob.section_types:
            k = int(np.sum(pool.item_type[its] == t))
            if k:
                parts.append(f"{k} {TYPE_NAMES[ITEM_TYPES[t]]}")
        n_pts = len(np.unique(prob.item_point[its])) if its.size else 0
        supply = _max_points(prob, its) / sc
        notes = []
        sset = set(its.tolist())
        for g in prob.enemy:
            inside = [i for i in g.tolist() if i in sset]
            if len(inside) > 2:
                notes.append(f"{len(inside)} of them in one enemy group")
            elif len(inside) == 2:
                notes.append("2 of them in one enemy group")
        note = (", " + ", ".join(sorted(set(notes)))) if notes else ""
        return ExplanationRow(
            "scope", code,
            f"scope {code} needs {_FMT.format(lo)}–{_FMT.format(hi)} points (weight {w:g} % ± "
            f"{req.scope_tolerance:g}); the bank has {its.size} approved items there"
            f"{' (' + ', '.join(parts) + ')' if parts else ''} on {n_pts} points{note}; at most "
            f"{_FMT.format(supply)} points can be drawn from them",
            float(lo), float(supply))
    if row == "facility":
        lo_f, hi_f = _facility_extremes(prob)
        return ExplanationRow(
            "facility", "mean",
            f"mean facility must be {prob.layout.facility_min:g}–{prob.layout.facility_max:g}; with the layout's "
            f"counts the bank allows {lo_f:.3f}–{hi_f:.3f}", prob.layout.facility_min, hi_f)
    if row == "point_cap":
        return ExplanationRow("point_cap", "k", f"at most {req.max_per_point} items per appraisal point",
                              None, float(req.max_per_point))
    if row == "enemy":
        return ExplanationRow("enemy", "groups", f"at most one item of each of the {len(prob.enemy)} enemy groups")
    if row == "stimulus":
        return ExplanationRow("stimulus", "sets",
                              f"the {len(prob.stimulus_sets)} shared-stimulus sets go into a form whole or not at all")
    if row == "include":
        ids = [pool.ids[i].item() for i in prob.include.tolist()]
        return ExplanationRow("include", "items", f"items {ids[:10]} must be in every form", float(len(ids)))
    return ExplanationRow("other", row, row)


def _short(prob: Problem, row: str) -> bool:
    """Cheap test: is the bank's supply for this row below its demand (ignoring the other rows)?"""
    if row.startswith("section:"):
        t = int(row.split(":")[1])
        return int(np.sum(prob.usable & (prob.pool.item_type == t))) < prob.type_count[t]
    if row.startswith("scope:"):
        j = prob.scope_codes.index(row.split(":", 1)[1])
        return bool(_max_points(prob, prob.scope_items[j]) < prob.scope_lo[j])
    return False


def _max_points(prob: Problem, its: np.ndarray) -> float:
    """Upper bound on the scaled points a form can draw from items ``its`` (type counts, k per point, one
    per enemy group)."""
    if its.size == 0:
        return 0.0
    pool = prob.pool
    sset = set(its.tolist())
    drop: set[int] = set()
    for g in prob.enemy:
        inside = sorted((i for i in g.tolist() if i in sset), key=lambda i: -prob.item_points[i])
        drop.update(inside[1:])
    keep = [i for i in its.tolist() if i not in drop]
    by_point: dict[int, list[int]] = {}
    for i in keep:
        by_point.setdefault(int(prob.item_point[i]), []).append(i)
    kept: list[int] = []
    for lst in by_point.values():
        lst.sort(key=lambda i: -prob.item_points[i])
        kept += lst[: prob.request.max_per_point]
    total = 0.0
    for t, cnt in prob.type_count.items():
        k = sum(1 for i in kept if pool.item_type[i] == t)
        total += min(k, cnt) * prob.type_points[t]
    return total


def _facility_extremes(prob: Problem) -> tuple[float, float]:
    lo = hi = 0.0
    for t, cnt in prob.type_count.items():
        f = np.sort(prob.pool.facility[prob.usable & (prob.pool.item_type == t)])
        lo += prob.type_points[t] * float(f[:cnt].sum())
        hi += prob.type_points[t] * float(f[-cnt:].sum()) if f.size else 0.0
    return lo / prob.total_scaled, hi / prob.total_scaled


def multi_form_groups(prob: Problem, n_forms: int) -> list[tuple[ExplanationRow, ...]]:
    """Supply-against-demand checks across forms (item use and pairwise caps)."""
    req = prob.request
    pool = prob.pool
    out: list[tuple[ExplanationRow, ...]] = []
    u = req.max_item_use
    if u is not None and u < n_forms and prob.include.size:
        out.append((_describe(prob, "include"),
                    ExplanationRow("item_use", "max_item_use",
                                   f"every one of the {n_forms} forms must hold the included items, but an item may "
                                   f"be in at most {u} forms", float(n_forms), float(u), row="item_use")))
    if u is not None and u < n_forms:
        for t, cnt in prob.type_count.items():
            have = int(np.sum(prob.usable & (pool.item_type == t)))
            if n_forms * cnt > have * u:
                out.append((
                    _describe(prob, f"section:{t}"),
                    ExplanationRow("item_use", "max_item_use",
                                   f"{n_forms} forms need {n_forms * cnt} {TYPE_NAMES[ITEM_TYPES[t]]} items; "
                                   f"{have} approved × at most {u} uses = {have * u}",
                                   float(n_forms * cnt), float(have * u))))
        for j, code in enumerate(prob.scope_codes):
            its = prob.scope_items[j]
            supply = float(prob.item_points[its].sum()) * u
            need = float(prob.scope_lo[j]) * n_forms
            if need > supply:
                out.append((
                    _describe(prob, f"scope:{code}"),
                    ExplanationRow("item_use", "max_item_use",
                                   f"{n_forms} forms need {need / prob.scale:g} points from scope {code}; its "
                                   f"items used at most {u} times give {supply / prob.scale:g}", need, supply)))
    k = req.max_shared
    if k is not None and n_forms > 1:
        if prob.include.size > k:
            out.append((_describe(prob, "include"),
                        ExplanationRow("max_shared", "max_shared",
                                       f"every form holds the {prob.include.size} included items, so any two forms "
                                       f"share at least that many; the cap is {k}",
                                       float(prob.include.size), float(k))))
        for t, cnt in prob.type_count.items():
            n_t = int(np.sum(prob.usable & (pool.item_type == t)))
            if n_t == 0:
                continue
            cap_use = n_forms if u is None else min(u, n_forms)
            total_uses = n_forms * cnt
            if total_uses > n_t * cap_use:
                continue
            q, r = divmod(total_uses, n_t)
            min_pairs = (n_t - r) * q * (q - 1) // 2 + r * (q + 1) * q // 2
            if min_pairs > n_forms * (n_forms - 1) // 2 * k:
                out.append((
                    _describe(prob, f"section:{t}"),
                    ExplanationRow("max_shared", "max_shared",
                                   f"{n_forms} forms of {cnt} {TYPE_NAMES[ITEM_TYPES[t]]} items from {n_t} approved "
                                   f"share at least {min_pairs} item pairs in all; a cap of {k} per pair of forms "
                                   f"allows {n_forms * (n_forms - 1) // 2 * k}",
                                   float(min_pairs), float(n_forms * (n_forms - 1) // 2 * k))))
    return [tuple(r if r.row else msgspec.structs.replace(r, row=r.kind) for r in g) for g in out]


def explain_problem(prob: Problem, n_forms: int = 1, time_limit: float = 10.0) -> Explanation:
    """Explain why ``prob`` (with ``n_forms`` forms) cannot be assembled. Returns an explanation with no groups
    when a single form is feasible and no cap across forms is shown to be impossible."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    rows = _rows(prob)
    oracle = _Oracle(prob, rows, deadline)
    groups: list[tuple[ExplanationRow, ...]] = []
    relaxed: set[str] = set()
    # cheap first guesses: rows that fail alone (a scope or section short of supply)
    for r in rows:
        if not _short(prob, r):
            continue
        if not oracle.feasible(frozenset([r])):
            groups.append((_describe(prob, r),))
            relaxed.add(r)
    for _ in range(len(rows)):
        active = [r for r in rows if r not in relaxed]
        if oracle.feasible(frozenset(active)) or time.perf_counter() > deadline:
            break
        core = _quickxplain(oracle.feasible, frozenset(), active)
        if not core:
            break
        groups.append(tuple(_describe(prob, r) for r in core))
        relaxed.update(core)
    single_ok = not groups
    if single_ok and n_forms > 1:
        groups = multi_form_groups(prob, n_forms)
    if groups:
        summary = "; ".join(" + ".join(r.message for r in g) for g in groups)
    elif single_ok and n_forms > 1:
        summary = (f"a single form can be made, but {n_forms} forms could not be completed within the caps "
                   f"(max_item_use={prob.request.max_item_use}, max_shared={prob.request.max_shared}, facility "
                   f"spread {prob.request.facility_spread}); raise a cap or lower the number of forms")
    else:
        summary = "no conflicting rows were found within the time limit"
    proven = bool(groups) and not oracle.timed_out and (not single_ok)
    return Explanation(groups=tuple(groups), summary=summary, proven_minimal=proven)


def explain_infeasible(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest,
                       time_limit: float | None = None) -> Explanation:
    """Why no paper can be made for this request: groups of rows (each irreducible: drop any row and the rest of
    the group can hold together) with the bank's supply against the demand. Relaxing every row of every group
    makes one form feasible. An empty ``groups`` means one form is feasible (for several forms, rows across
    forms are checked by supply against demand)."""
    prob = compile_problem(pool, blueprint, layout, request)
    tl = request.time_limit if time_limit is None else time_limit
    return explain_problem(prob, request.forms, time_limit=tl)


__all__ = ["explain_infeasible", "explain_problem"]
