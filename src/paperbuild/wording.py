"""Explanation rows in words a person can act on, in English and Chinese.

One unit for what a paper gives: score points (分), out of the paper's 100; the blueprint's leaves are always
appraisal points (鉴定点), never "points" alone. ``demand`` and ``supply`` of every row are in the row's ``unit``
(score points unscaled, items, pairs of shared items, facility).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paperbuild.model import ITEM_TYPES, TYPE_NAMES, ExplanationRow, RowKind, RowUnit
from paperbuild.problem import Problem

TYPE_NAMES_ZH: dict[str, str] = {"tf": "判断题", "single": "单选题", "multiple": "多选题"}
IntArray = npt.NDArray[np.int64]


def num(x: float) -> str:
    """A number as a person writes it: 4.6, 95, 0.5 (no float noise)."""
    return f"{round(float(x), 4):g}"


def row(kind: RowKind, key: str, en: str, zh: str, demand: float | None = None, supply: float | None = None,
        unit: RowUnit = "", model_row: str = "") -> ExplanationRow:
    return ExplanationRow(kind=kind, key=key, message_en=en, message_zh=zh, demand=demand, supply=supply,
                          unit=unit, row=model_row or kind)


def max_points(prob: Problem, its: IntArray) -> int:
    """Upper bound on the scaled score points one form can draw from items ``its`` (type counts, the cap per
    appraisal point, one item per enemy group)."""
    if its.size == 0:
        return 0
    pool = prob.pool
    sset = set(its.tolist())
    drop: set[int] = set()
    for g in prob.enemy:
        inside = sorted((i for i in g.tolist() if i in sset), key=lambda i: -prob.item_points[i])
        drop.update(inside[1:])
    by_point: dict[int, list[int]] = {}
    for i in its.tolist():
        if i not in drop:
            by_point.setdefault(int(prob.item_point[i]), []).append(i)
    kept: list[int] = []
    for lst in by_point.values():
        lst.sort(key=lambda i: -prob.item_points[i])
        kept += lst[: prob.request.max_per_point]
    total = 0
    for t, cnt in prob.type_count.items():
        k = sum(1 for i in kept if pool.item_type[i] == t)
        total += min(k, cnt) * prob.type_points[t]
    return total


def facility_extremes(prob: Problem) -> tuple[float, float]:
    """The lowest and highest mean facility the layout's counts allow from the usable items."""
    lo = hi = 0.0
    for t, cnt in prob.type_count.items():
        f = np.sort(prob.pool.facility[prob.usable & (prob.pool.item_type == t)])
        lo += prob.type_points[t] * float(f[:cnt].sum())
        hi += prob.type_points[t] * float(f[-cnt:].sum()) if f.size else 0.0
    return lo / prob.total_scaled, hi / prob.total_scaled


def section_row(prob: Problem, t: int) -> ExplanationRow:
    name = ITEM_TYPES[t]
    have = int(np.sum(prob.usable & (prob.pool.item_type == t)))
    total = int(np.sum(prob.pool.item_type == t))
    need = prob.type_count[t]
    en = (f"the layout asks for {need} {TYPE_NAMES[name]} items per form; the bank has {have} approved that can "
          "be used")
    zh = f"试卷结构每份需要{TYPE_NAMES_ZH[name]} {need} 道；题库中可用的已审核{TYPE_NAMES_ZH[name]}只有 {have} 道"
    if total != have:
        en += f" ({total - have} more are excluded or in scopes not examined)"
        zh += f"（另有 {total - have} 道被排除或属于不考核的鉴定范围）"
    return row("section", name, en, zh, float(need), float(have), "items", f"section:{t}")


def _weight_words(prob: Problem, j: int) -> tuple[str, str]:
    w = float(prob.scope_weight[j])
    tol = num(prob.request.scope_tolerance)
    scope = prob.blueprint.scopes[j]
    if scope.weight is None:
        par = scope.parent or ""
        where_en = f"its share of scope {par}" if par else "its share of the paper"
        where_zh = f"由上级鉴定范围 {par} 分配" if par else "由全卷分配"
        return (f"weight {w:.3g} %, {where_en}, ± {tol} score points",
                f"比重 {w:.3g}%，{where_zh}，允许偏差 ± {tol} 分")
    return f"weight {num(w)} % ± {tol} score points", f"比重 {num(w)}%，允许偏差 ± {tol} 分"


def scope_row(prob: Problem, code: str) -> ExplanationRow:
    j = prob.scope_codes.index(code)
    its = prob.scope_items[j]
    sc = prob.scale
    lo, hi = prob.scope_lo[j] / sc, prob.scope_hi[j] / sc
    parts_en, parts_zh = [], []
    for t in prob.section_types:
        k = int(np.sum(prob.pool.item_type[its] == t))
        if k:
            parts_en.append(f"{k} {TYPE_NAMES[ITEM_TYPES[t]]}")
            parts_zh.append(f"{TYPE_NAMES_ZH[ITEM_TYPES[t]]} {k} 道")
    n_pts = len(np.unique(prob.item_point[its])) if its.size else 0
    supply = max_points(prob, its) / sc
    sset = set(its.tolist())
    worst = max((sum(1 for i in g.tolist() if i in sset) for g in prob.enemy), default=0)
    w_en, w_zh = _weight_words(prob, j)
    need_en = f"{num(lo)}–{num(hi)}" if hi > lo else num(lo)
    if lo > hi:
        en = (f"scope {code} needs between {num(lo)} and {num(hi)} score points ({w_en}): no number of score points "
              "the layout's items give is in that range; raise scope_tolerance")
        zh = (f"鉴定范围 {code} 需要 {num(lo)}–{num(hi)} 分（{w_zh}）：按试卷结构的分值凑不出这个分数；"
              "请放宽 scope_tolerance")
        return row("scope", code, en, zh, float(lo), float(hi), "score_points", f"scope:{code}")
    note_en = f", {worst} of them in one enemy group" if worst > 1 else ""
    note_zh = f"，其中 {worst} 道互斥" if worst > 1 else ""
    en = (f"scope {code} needs {need_en} score points ({w_en}); the bank has {its.size} approved items there"
          f"{' (' + ', '.join(parts_en) + ')' if parts_en else ''} on {n_pts} appraisal points{note_en}; at most "
          f"{num(supply)} score points can be drawn from them")
    zh = (f"鉴定范围 {code} 需要 {need_en} 分（{w_zh}）；题库中该范围有已审核试题 {its.size} 道"
          f"{'（' + '，'.join(parts_zh) + '）' if parts_zh else ''}，分布在 {n_pts} 个鉴定点上{note_zh}；"
          f"最多只能从中抽出 {num(supply)} 分")
    return row("scope", code, en, zh, float(lo), float(supply), "score_points", f"scope:{code}")


def children_row(prob: Problem, parent: str, kids: list[str]) -> ExplanationRow | None:
    """The bound conflict of a scope and its sub-scopes, or ``None`` when their bounds agree. A sub-scope gives
    at most its upper bound and at most what one form can draw from its items."""
    j = prob.scope_codes.index(parent)
    sc = prob.scale
    ks = [prob.scope_codes.index(c) for c in kids]
    top = {c: min(int(prob.scope_hi[k]), max_points(prob, prob.scope_items[k])) for c, k in zip(kids, ks, strict=True)}
    bottom = {c: int(prob.scope_lo[k]) for c, k in zip(kids, ks, strict=True)}
    lo, hi = int(prob.scope_lo[j]), int(prob.scope_hi[j])
    if sum(top.values()) < lo:
        each_en = ", ".join(f"{c} ≤ {num(v / sc)}" for c, v in top.items())
        each_zh = "，".join(f"{c} ≤ {num(v / sc)} 分" for c, v in top.items())
        give = num(sum(top.values()) / sc)
        return row("scope_children", parent,
                   f"scope {parent} needs ≥ {num(lo / sc)} score points; its sub-scopes can give at most {give} "
                   f"({each_en})",
                   f"鉴定范围 {parent} 至少需要 {num(lo / sc)} 分；其下级范围最多只能提供 {give} 分（{each_zh}）",
                   lo / sc, sum(top.values()) / sc, "score_points", f"scope:{parent}")
    if sum(bottom.values()) > hi:
        each_en = ", ".join(f"{c} ≥ {num(v / sc)}" for c, v in bottom.items() if v)
        each_zh = "，".join(f"{c} ≥ {num(v / sc)} 分" for c, v in bottom.items() if v)
        need = num(sum(bottom.values()) / sc)
        return row("scope_children", parent,
                   f"scope {parent} may take at most {num(hi / sc)} score points; its sub-scopes need at least "
                   f"{need} ({each_en})",
                   f"鉴定范围 {parent} 最多 {num(hi / sc)} 分；其下级范围至少需要 {need} 分（{each_zh}）",
                   sum(bottom.values()) / sc, hi / sc, "score_points", f"scope:{parent}")
    return None


def facility_row(prob: Problem) -> ExplanationRow:
    lo_f, hi_f = facility_extremes(prob)
    lay = prob.layout
    return row("facility", "mean",
               f"mean facility must be {num(lay.facility_min)}–{num(lay.facility_max)}; with the layout's counts the "
               f"bank allows {lo_f:.3f}–{hi_f:.3f}",
               f"平均通过率须在 {num(lay.facility_min)}–{num(lay.facility_max)} 之间；按试卷结构，题库能达到 "
               f"{lo_f:.3f}–{hi_f:.3f}", lay.facility_min, hi_f, "facility", "facility")


def describe(prob: Problem, model_row: str) -> ExplanationRow:
    """The row of the one-form model named ``model_row`` ("section:1", "scope:03.02", "facility", …) in words."""
    req = prob.request
    if model_row.startswith("section:"):
        return section_row(prob, int(model_row.split(":")[1]))
    if model_row.startswith("scope:"):
        return scope_row(prob, model_row.split(":", 1)[1])
    if model_row == "facility":
        return facility_row(prob)
    if model_row == "point_cap":
        k = req.max_per_point
        return row("point_cap", "max_per_point", f"at most {k} items per appraisal point",
                   f"每个鉴定点最多 {k} 道题", None, float(k), "items")
    if model_row == "enemy":
        n = len(prob.enemy)
        return row("enemy", "groups", f"at most one item of each of the {n} enemy groups (items that must not "
                   "appear together)", f"{n} 组互斥试题每组最多入卷 1 道")
    if model_row == "stimulus":
        n = len(prob.stimulus_sets)
        return row("stimulus", "sets", f"the {n} shared-stimulus sets go into a form whole or not at all",
                   f"{n} 组共用题干的试题须整组入卷或都不入卷")
    if model_row == "include":
        ids = [prob.pool.ids[i].item() for i in prob.include.tolist()]
        return row("include", "items", f"items {ids[:10]} must be in every form",
                   f"试题 {ids[:10]} 必须出现在每份试卷中", float(len(ids)), None, "items")
    return row("other", model_row, model_row, model_row, model_row=model_row)
