"""Infeasibility explained: the smallest sets of blueprint/layout/request rows that cannot hold together.

Rows are the one-form model's row groups (a section's count, a scope's points, the facility range, the per-point
cap, enemy groups, shared-stimulus sets, included items) plus, for several forms, the caps across forms.

Method, smallest reasons first: rows short of supply on their own; a scope whose bounds its sub-scopes cannot meet
(plain arithmetic: a scope's score points are its sub-scopes'); then QuickXplain (Junker 2004) over the rows, each
test a feasibility MIP with every other row switched off, which gives an irreducible set (removing any one of its
rows makes the rest feasible). The rows of each set are relaxed and the search repeats until the request becomes
feasible, so relaxing every reported row makes the request feasible. Caps across forms (item use, shared items)
come last, and only those the one-form reasons do not already name. Each row is described with the bank's supply
against the demand, in English and Chinese (:mod:`paperbuild.wording`).
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
from paperbuild.wording import TYPE_NAMES_ZH, children_row, describe, max_points, num, row, scope_row


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


def _short(prob: Problem, model_row: str) -> bool:
    """Cheap test: is the bank's supply for this row below its demand (ignoring the other rows)?"""
    if model_row.startswith("section:"):
        t = int(model_row.split(":")[1])
        return int(np.sum(prob.usable & (prob.pool.item_type == t))) < prob.type_count[t]
    if model_row.startswith("scope:"):
        j = prob.scope_codes.index(model_row.split(":", 1)[1])
        return bool(max_points(prob, prob.scope_items[j]) < prob.scope_lo[j] or prob.scope_lo[j] > prob.scope_hi[j])
    return False


def bound_conflicts(prob: Problem) -> list[tuple[ExplanationRow, ...]]:
    """Scopes whose bounds their sub-scopes cannot meet (exact: a scope's score points are its sub-scopes'), each
    with the sub-scope rows that bind."""
    children: dict[str, list[str]] = {}
    for s in prob.blueprint.scopes:
        if s.parent is not None:
            children.setdefault(s.parent, []).append(s.code)
    out: list[tuple[ExplanationRow, ...]] = []
    for parent, kids in children.items():
        head = children_row(prob, parent, kids)
        if head is None:
            continue
        ks = {c: prob.scope_codes.index(c) for c in kids}
        if head.message_en.startswith(f"scope {parent} needs"):
            binding = [c for c, k in ks.items() if prob.scope_hi[k] < max_points(prob, prob.scope_items[k])]
        else:
            binding = [c for c, k in ks.items() if prob.scope_lo[k] > 0]
        out.append((head, *(scope_row(prob, c) for c in binding)))
    return out


def multi_form_groups(prob: Problem, n_forms: int) -> list[tuple[ExplanationRow, ...]]:
    """Supply-against-demand checks across forms (item use and pairwise caps)."""
    out = _use_groups(prob, n_forms) + _shared_groups(prob, n_forms)
    return [tuple(r if r.row else msgspec.structs.replace(r, row=r.kind) for r in g) for g in out]


def _use_groups(prob: Problem, n_forms: int) -> list[tuple[ExplanationRow, ...]]:
    u = prob.request.max_item_use
    if u is None or u >= n_forms:
        return []
    out: list[tuple[ExplanationRow, ...]] = []
    if prob.include.size:
        out.append((describe(prob, "include"), row(
            "item_use", "max_item_use",
            f"every one of the {n_forms} forms must hold the included items, but an item may be in at most {u} forms",
            f"{n_forms} 份试卷都必须包含指定试题，但每道题最多用于 {u} 份", float(n_forms), float(u), "forms")))
    for t, cnt in prob.type_count.items():
        have = int(np.sum(prob.usable & (prob.pool.item_type == t)))
        if n_forms * cnt > have * u:
            name = ITEM_TYPES[t]
            out.append((describe(prob, f"section:{t}"), row(
                "item_use", "max_item_use",
                f"{n_forms} forms need {n_forms * cnt} {TYPE_NAMES[name]} items in all; {have} approved, each used at "
                f"most {u} times, give {have * u}",
                f"{n_forms} 份试卷共需{TYPE_NAMES_ZH[name]} {n_forms * cnt} 道次；题库 {have} 道，每道最多用 {u} 次，"
                f"只能提供 {have * u} 道次", float(n_forms * cnt), float(have * u), "items")))
    for j, code in enumerate(prob.scope_codes):
        supply = float(prob.item_points[prob.scope_items[j]].sum()) * u / prob.scale
        need = float(prob.scope_lo[j]) * n_forms / prob.scale
        if need > supply:
            out.append((describe(prob, f"scope:{code}"), row(
                "item_use", "max_item_use",
                f"{n_forms} forms need {num(need)} score points from scope {code} in all; its items, each used at "
                f"most {u} times, give at most {num(supply)}",
                f"{n_forms} 份试卷共需从鉴定范围 {code} 抽出 {num(need)} 分；该范围的试题每道最多用 {u} 次，最多提供 "
                f"{num(supply)} 分", need, supply, "score_points")))
    return out


def _shared_groups(prob: Problem, n_forms: int) -> list[tuple[ExplanationRow, ...]]:
    k, u = prob.request.max_shared, prob.request.max_item_use
    if k is None or n_forms < 2:
        return []
    out: list[tuple[ExplanationRow, ...]] = []
    m = int(prob.include.size)
    if m > k:
        out.append((describe(prob, "include"), row(
            "max_shared", "max_shared",
            f"every form holds the {m} included items, so any two forms share at least {m}; the cap is {k}",
            f"每份试卷都含 {m} 道指定试题，任意两份至少共用 {m} 道；上限为 {k} 道", float(m), float(k), "items")))
    for t, cnt in prob.type_count.items():
        n_t = int(np.sum(prob.usable & (prob.pool.item_type == t)))
        cap_use = n_forms if u is None else min(u, n_forms)
        if n_t == 0 or n_forms * cnt > n_t * cap_use:
            continue
        q, r = divmod(n_forms * cnt, n_t)
        min_pairs = (n_t - r) * q * (q - 1) // 2 + r * (q + 1) * q // 2
        allowed = n_forms * (n_forms - 1) // 2 * k
        if min_pairs > allowed:
            name = ITEM_TYPES[t]
            out.append((describe(prob, f"section:{t}"), row(
                "max_shared", "max_shared",
                f"{n_forms} forms of {cnt} {TYPE_NAMES[name]} items from {n_t} approved share at least {min_pairs} "
                f"items summed over all pairs of forms; a cap of {k} per pair of forms allows {allowed}",
                f"{n_forms} 份试卷各需{TYPE_NAMES_ZH[name]} {cnt} 道，题库只有 {n_t} 道："
                f"所有两两试卷之间共用试题合计至少 {min_pairs} 道；每两份最多共用 {k} 道，合计只允许 {allowed} 道",
                float(min_pairs), float(allowed), "item_pairs")))
    return out


def summaries(groups: list[tuple[ExplanationRow, ...]]) -> tuple[str, str]:
    """The groups in one English and one Chinese sentence."""
    return ("; ".join(" + ".join(r.message_en for r in g) for g in groups),
            "；".join(" + ".join(r.message_zh for r in g) for g in groups))


def _single_form_groups(prob: Problem, deadline: float) -> tuple[list[tuple[ExplanationRow, ...]], bool]:
    """Groups of one-form rows that cannot hold together, smallest reasons first: rows short of supply on their
    own, bound conflicts of a scope and its sub-scopes, then QuickXplain cores. Returns (groups, proven)."""
    rows = _rows(prob)
    oracle = _Oracle(prob, rows, deadline)
    groups: list[tuple[ExplanationRow, ...]] = []
    for r in rows:
        if _short(prob, r) and not oracle.feasible(frozenset([r])):
            groups.append((describe(prob, r),))
    relaxed: set[str] = {r.row for g in groups for r in g}
    for g in bound_conflicts(prob):
        if g[0].row not in relaxed:
            groups.append(g)
            relaxed.update(r.row for r in g)
    for _ in range(len(rows)):
        active = [r for r in rows if r not in relaxed]
        if oracle.feasible(frozenset(active)) or time.perf_counter() > deadline:
            break
        core = _quickxplain(oracle.feasible, frozenset(), active)
        if not core:
            break
        groups.append(_core_rows(prob, core))
        relaxed.update(core)
    return groups, not oracle.timed_out


def _core_rows(prob: Problem, core: list[str]) -> tuple[ExplanationRow, ...]:
    """A QuickXplain core in words; a scope with sub-scopes in the same core gets their bound conflict first."""
    rows = tuple(describe(prob, r) for r in core)
    codes = {r.split(":", 1)[1] for r in core if r.startswith("scope:")}
    for s in prob.blueprint.scopes:
        kids = [c.code for c in prob.blueprint.scopes if c.parent == s.code]
        if s.code in codes and codes & set(kids):
            head = children_row(prob, s.code, kids)
            if head is not None:
                return (head, *rows)
    return rows


def explain_problem(prob: Problem, n_forms: int = 1, time_limit: float = 10.0) -> Explanation:
    """Explain why ``prob`` (with ``n_forms`` forms) cannot be assembled: reasons that concern one form first,
    then caps across forms that the one-form reasons do not already name. No groups when a single form is
    feasible and no cap across forms is shown to be impossible."""
    deadline = time.perf_counter() + time_limit
    groups, settled = _single_form_groups(prob, deadline)
    single_ok = not groups
    if n_forms > 1:
        named = {r.row for g in groups for r in g}
        groups += [g for g in multi_form_groups(prob, n_forms) if not named & {r.row for r in g}]
    if groups:
        summary, summary_zh = summaries(groups)
    elif n_forms > 1:
        req = prob.request
        summary = (f"a single form can be made, but {n_forms} forms could not be completed within the caps "
                   f"(max_item_use={req.max_item_use}, max_shared={req.max_shared}, facility spread "
                   f"{req.facility_spread}); raise a cap or lower the number of forms")
        summary_zh = (f"单份试卷可以组成，但在限制条件下（每题最多用 {req.max_item_use} 次，两份最多共用 "
                      f"{req.max_shared} 道，平均通过率相差不超过 {req.facility_spread}）组不齐 {n_forms} 份；"
                      "请放宽限制或减少份数")
    else:
        summary = "no conflicting rows were found within the time limit"
        summary_zh = "在时限内没有找到相互冲突的条件"
    proven = bool(groups) and settled and not single_ok
    return Explanation(groups=tuple(groups), summary=summary, proven_minimal=proven, summary_zh=summary_zh)


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
