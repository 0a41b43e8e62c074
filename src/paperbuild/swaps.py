"""Item swaps that bring a form within the caps across forms without losing coverage.

A form from the one-form MIP (:mod:`paperbuild.formmip`) meets every rule of its own, but may share more than
``max_shared`` items with an earlier form or hold an item already at ``max_item_use``. Putting every earlier form
into the MIP as a row works, but 200 dense rows make each solve about three times slower (measured: 0.09 s →
0.26 s a form on the benchmark bank). Instead the form is repaired here by swapping single items:

* an item leaves only if it is shared with a form over the cap (or over its use cap); it is never an included
  item nor part of a shared-stimulus set;
* its replacement has the same type (so the section counts and the form's points hold), keeps every scope of the
  blueprint within its bounds, the per-point cap, the facility window and the enemy groups, is in no form over
  the cap and pushes no form at the cap over it, and does not lower the form's coverage score (an X point is
  only given up for another X point, never for a Y or Z point);
* among replacements the least used item is taken (a seeded jitter breaks ties), so repairs spread use.

Each swap lowers the excess (items over the caps, summed over forms) by at least one, so the search ends. When no
swap helps, :func:`repair_caps` returns ``None`` and the caller falls back to overlap rows in the MIP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paperbuild.problem import Problem

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Out-items tried per swap before giving up (the best-placed ones first).
_TRIES = 12


@dataclass(frozen=True, eq=False)
class SwapIndex:
    """What the swaps need from a problem, computed once per run."""

    member: npt.NDArray[np.int8]  # scope × item: 1 when the item counts towards the scope
    weight: npt.NDArray[np.int64]  # coverage weight of each appraisal point (lexicographic X > Y > Z)
    by_type: dict[int, IntArray]  # usable items per type code
    fixed: BoolArray  # items that never move: included items and shared-stimulus sets
    groups_of: tuple[tuple[int, ...], ...]  # enemy group numbers per item
    fac_w: npt.NDArray[np.float64]  # scaled points × facility per item

    @classmethod
    def build(cls, prob: Problem) -> SwapIndex:
        member = np.zeros((len(prob.scope_codes), prob.n), dtype=np.int8)
        for j, its in enumerate(prob.scope_items):
            member[j, its] = 1
        wx, wy, wz = prob.importance_weights()
        weight = np.array([wx, wy, wz], dtype=np.int64)[prob.point_importance]
        by_type = {t: np.flatnonzero(prob.usable & (prob.pool.item_type == t)) for t in prob.type_count}
        fixed = np.zeros(prob.n, dtype=np.bool_)
        fixed[prob.include] = True
        for s in prob.stimulus_sets:
            fixed[s] = True
        groups: list[list[int]] = [[] for _ in range(prob.n)]
        for g, its in enumerate(prob.enemy):
            for i in its.tolist():
                groups[i].append(g)
        return cls(member=member, weight=weight, by_type=by_type, fixed=fixed,
                   groups_of=tuple(tuple(g) for g in groups),
                   fac_w=prob.item_points * prob.pool.facility)


def repair_caps(prob: Problem, index: SwapIndex, items: IntArray, earlier: npt.NDArray[np.bool_],
                uses: IntArray, available: BoolArray, fac: tuple[float, float], seed: int,
                max_swaps: int = 400) -> IntArray | None:
    """Swap items of ``items`` until it shares at most ``max_shared`` items with each row of ``earlier`` (forms ×
    items, booleans) and holds no item with ``uses`` at ``max_item_use``. ``available`` marks the items that may
    come in; ``fac`` is the facility window (scaled sum of points × facility). Returns the repaired items (sorted)
    or ``None`` when no swap helps."""
    req = prob.request
    cap = req.max_shared if req.max_shared is not None else prob.items_per_form
    use_cap = req.max_item_use
    chosen = np.zeros(prob.n, dtype=np.bool_)
    chosen[items] = True
    shared = earlier[:, chosen].sum(axis=1).astype(np.int64) if earlier.size else np.zeros(0, np.int64)
    over_use = (uses >= use_cap) if use_cap is not None else np.zeros(prob.n, dtype=np.bool_)
    if not (shared > cap).any() and not (chosen & over_use).any():
        return np.sort(items)
    state = _State(prob, index, chosen, fac)
    jitter = np.random.default_rng([seed & 0xFFFFFFFF, int(items.sum()) & 0xFFFFFFFF, 13]).random(prob.n)
    for _ in range(max_swaps):
        bad = np.flatnonzero(shared > cap)
        must_go = chosen & over_use
        if not bad.size and not must_go.any():
            return np.flatnonzero(chosen)
        at_cap = np.flatnonzero(shared == cap)
        blame = earlier[bad][:, chosen].sum(axis=0) if bad.size else np.zeros(int(chosen.sum()), np.int64)
        inside = np.flatnonzero(chosen)
        score = blame + 1000 * must_go[inside]
        order = np.lexsort((-jitter[inside], -uses[inside], -score))
        swap = None
        for k in order[:_TRIES].tolist():
            i = int(inside[k])
            if score[k] == 0 or index.fixed[i]:
                continue
            ok = available & ~chosen & ~index.fixed & ~over_use
            if bad.size:
                ok &= ~earlier[bad].any(axis=0)
            lacking = at_cap[~earlier[at_cap, i]] if at_cap.size else at_cap
            if lacking.size:
                ok &= ~earlier[lacking].any(axis=0)
            j = state.best_in(i, ok, uses, jitter)
            if j is not None:
                swap = (i, j)
                break
        if swap is None:
            return None
        i, j = swap
        state.move(i, j)
        if earlier.size:
            shared += earlier[:, j].astype(np.int64) - earlier[:, i].astype(np.int64)
    return None


class _State:
    """The form being repaired: its items, points per appraisal point and scope, facility sum, enemy counts."""

    def __init__(self, prob: Problem, index: SwapIndex, chosen: BoolArray, fac: tuple[float, float]) -> None:
        self.prob = prob
        self.ix = index
        self.chosen = chosen
        items = np.flatnonzero(chosen)
        self.per_point = np.bincount(prob.item_point[items], minlength=len(prob.point_codes))
        self.scope_pts = index.member[:, items].astype(np.int64) @ prob.item_points[items]
        self.fac_sum = float(index.fac_w[items].sum())
        eps = 1e-6 * prob.total_scaled
        self.fac_lo, self.fac_hi = fac[0] + eps, fac[1] - eps
        self.enemy_in = np.zeros(len(prob.enemy), dtype=np.int64)
        for i in items.tolist():
            for g in index.groups_of[i]:
                self.enemy_in[g] += 1

    def best_in(self, i: int, ok: BoolArray, uses: IntArray, jitter: npt.NDArray[np.float64]) -> int | None:
        """The least used item that can take ``i``'s place, or ``None``."""
        prob, ix = self.prob, self.ix
        cand = ix.by_type[int(prob.pool.item_type[i])]
        cand = cand[ok[cand]]
        if not cand.size:
            return None
        pi = int(prob.item_point[i])
        pj = prob.item_point[cand]
        same = pj == pi
        # coverage: what leaving costs against what coming gains; never lower the score
        loss = ix.weight[pi] if self.per_point[pi] == 1 else 0
        gain = np.where(self.per_point[pj] == 0, ix.weight[pj], 0)
        keep = same | ((gain - loss >= 0) & (self.per_point[pj] < prob.request.max_per_point))
        fac = self.fac_sum - ix.fac_w[i] + ix.fac_w[cand]
        keep &= (fac >= self.fac_lo) & (fac <= self.fac_hi)
        cand = cand[keep]
        if not cand.size:
            return None
        pts = int(prob.item_points[i])  # same type: the same points
        delta = (ix.member[:, cand].astype(np.int64) - ix.member[:, [i]]) * pts
        new = self.scope_pts[:, None] + delta
        keep = np.all((new >= prob.scope_lo[:, None]) & (new <= prob.scope_hi[:, None]), axis=0)
        cand = cand[keep]
        if prob.enemy and cand.size:
            mine = set(ix.groups_of[i])
            keep = np.array([all(self.enemy_in[g] - (g in mine) == 0 for g in ix.groups_of[j]) for j in cand.tolist()],
                            dtype=np.bool_)
            cand = cand[keep]
        if not cand.size:
            return None
        return int(cand[np.argmin(uses[cand] + 0.5 * jitter[cand])])

    def move(self, i: int, j: int) -> None:
        prob, ix = self.prob, self.ix
        self.chosen[i], self.chosen[j] = False, True
        self.per_point[prob.item_point[i]] -= 1
        self.per_point[prob.item_point[j]] += 1
        pts = int(prob.item_points[i])
        self.scope_pts += (ix.member[:, j].astype(np.int64) - ix.member[:, i]) * pts
        self.fac_sum += float(ix.fac_w[j] - ix.fac_w[i])
        for g in ix.groups_of[i]:
            self.enemy_in[g] -= 1
        for g in ix.groups_of[j]:
            self.enemy_in[g] += 1
