"""Form reports, delivery order and seeded option permutations."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paperbuild.model import IMPORTANCE, ITEM_TYPES, ConstraintSlack, FormReport, ItemId, ScopeReport, as_tuple
from paperbuild.problem import Problem

IntArray = npt.NDArray[np.int64]


def _slack(name: str, value: float, lo: float | None, hi: float | None) -> ConstraintSlack:
    s = min(value - lo if lo is not None else np.inf, hi - value if hi is not None else np.inf)
    return ConstraintSlack(name, round(float(value), 6), lo, hi, round(float(s), 6))


def coverage(prob: Problem, items: IntArray) -> tuple[int, int, int]:
    """Distinct X, Y, Z points covered by ``items``."""
    pts = np.unique(prob.item_point[items])
    c = np.bincount(prob.point_importance[pts], minlength=3)
    return int(c[0]), int(c[1]), int(c[2])


def coverage_score(prob: Problem, items: IntArray) -> int:
    """Lexicographic coverage objective of a form (what the models maximise, without tie-breaks)."""
    w = prob.importance_weights()
    c = coverage(prob, items)
    return c[0] * w[0] + c[1] * w[1] + c[2] * w[2]


def mean_facility(prob: Problem, items: IntArray) -> float:
    return float(np.sum(prob.item_points[items] * prob.pool.facility[items]) / prob.total_scaled)


def form_report(prob: Problem, items: IntArray, others: Sequence[IntArray] = (),
                batch_use: IntArray | None = None, *, max_shared: int | None = None) -> FormReport:
    """Score points per scope against target at every level, coverage, facility, exposure and each slack.
    ``max_shared``: the most items the form shares with another form of the batch, when the caller knows it
    (else it is counted against ``others``)."""
    pool = prob.pool
    sc = float(prob.scale)
    chosen = np.zeros(prob.n, dtype=bool)
    chosen[items] = True
    scopes = []
    slacks = []
    counts = {ITEM_TYPES[t]: int(np.sum(pool.item_type[items] == t)) for t in prob.section_types}
    for t, c in counts.items():
        need = prob.type_count[ITEM_TYPES.index(t)]
        slacks.append(_slack(f"section {t} count", c, need, need))
    for j, code in enumerate(prob.scope_codes):
        its = prob.scope_items[j]
        v = float(prob.item_points[its[chosen[its]]].sum()) / sc
        lo, hi = float(prob.scope_lo[j]) / sc, float(prob.scope_hi[j]) / sc
        scopes.append(ScopeReport(code, int(prob.scope_level[j]), float(prob.scope_target[j]) / sc, v, lo, hi))
        slacks.append(_slack(f"scope {code} points", v, lo, hi))
    mf = mean_facility(prob, items)
    slacks.append(_slack("mean facility", mf, prob.layout.facility_min, prob.layout.facility_max))
    per_point = np.bincount(prob.item_point[items], minlength=len(prob.point_codes))
    slacks.append(_slack("items per point (max)", float(per_point.max(initial=0)), None, prob.request.max_per_point))
    if prob.enemy:
        worst = max(int(chosen[g].sum()) for g in prob.enemy)
        slacks.append(_slack("items per enemy group (max)", worst, None, 1))
    if max_shared is None and others:
        max_shared = max(int(chosen[o].sum()) for o in others)
    if max_shared is not None and prob.request.max_shared is not None:
        slacks.append(_slack("items shared with another form (max)", max_shared, None, prob.request.max_shared))
    if batch_use is not None and prob.request.max_item_use is not None:
        slacks.append(_slack("forms per item in batch (max)", float(batch_use[items].max(initial=0)), None,
                             prob.request.max_item_use))
    cx, cy, cz = coverage(prob, items)
    avail = np.bincount(prob.point_importance, minlength=3)
    tu = pool.times_used[items]
    return FormReport(
        total_points=float(prob.item_points[items].sum()) / sc,
        counts=counts,
        scopes=tuple(scopes),
        covered={"X": cx, "Y": cy, "Z": cz},
        available={IMPORTANCE[k]: int(avail[k]) for k in range(3)},
        mean_facility=round(mf, 6),
        exposure_mean=float(tu.mean()) if tu.size else 0.0,
        exposure_max=int(tu.max(initial=0)),
        slacks=tuple(slacks),
    )


def _rng(*key: object) -> np.random.Generator:
    h = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def delivery_order(prob: Problem, items: IntArray, seed: int, form_index: int) -> tuple[ItemId, ...]:
    """Items grouped by section in layout order; within a section in a seeded order per form."""
    out: list[int] = []
    rng = _rng("order", seed, form_index)
    for t in prob.section_types:
        sec = np.sort(items[prob.pool.item_type[items] == t])
        out += sec[rng.permutation(sec.size)].tolist()
    return as_tuple(prob.pool.ids[np.array(out, dtype=np.int64)])


def _all_perms(k: int, rng: np.random.Generator, need: int) -> list[tuple[int, ...]]:
    if k <= 6:
        perms = list(itertools.permutations(range(k)))
        order = rng.permutation(len(perms))
        return [perms[o] for o in order]
    return [tuple(int(v) for v in rng.permutation(k)) for _ in range(max(need, 1))]


def option_permutations(prob: Problem, forms: Sequence[IntArray], seed: int,
                        start_index: int = 0) -> list[dict[str, tuple[int, ...]]]:
    """Seeded option permutation per choice item per form.

    For each item a seeded list of all permutations of its options is dealt out in turn to the forms holding
    it, so forms that share an item show it with different option orders (for up to k! forms): a handful of
    leaked items, with their option orders, points to one form and so to one candidate.
    """
    pool = prob.pool
    dealt: dict[int, int] = {}
    cache: dict[int, list[tuple[int, ...]]] = {}
    use = np.zeros(prob.n, dtype=np.int64)
    for f in forms:
        use[f] += 1
    out = []
    for f in forms:
        perms: dict[str, tuple[int, ...]] = {}
        for i in f.tolist():
            if int(pool.item_type[i]) == 0:
                continue
            if i not in cache:
                item_id = pool.ids[i].item() if isinstance(pool.ids[i], np.generic) else pool.ids[i]
                cache[i] = _all_perms(int(pool.n_options[i]), _rng("perm", seed, start_index, item_id),
                                      int(use[i]))
            k = dealt.get(i, 0)
            dealt[i] = k + 1
            lst = cache[i]
            perms[str(as_tuple(pool.ids[[i]])[0])] = lst[k % len(lst)]
        out.append(perms)
    return out
