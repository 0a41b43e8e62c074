"""Pair large-neighbourhood search for parallel forms: re-solve the weakest form jointly with another.

Form-by-form assembly (:mod:`paperbuild.sequential`) ends about 1 % below the joint optimum on the benchmark bank;
re-solving the weakest pair of forms together (every other form fixed, the pair's shared items capped with
one linearised row) closes that gap in a few 0.1-second steps (:mod:`paperbuild.jointmip`).
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from paperbuild.jointmip import solve_joint
from paperbuild.problem import Problem
from paperbuild.report import coverage_score

IntArray = npt.NDArray[np.int64]
STEP_LIMIT = 1.5  # seconds per pair re-solve; many short steps beat a few long ones


def improve_pairs(prob: Problem, forms: list[IntArray], window: tuple[float, float], deadline: float, bound: float,
                  t0: float, frozen: int = 0) -> tuple[list[IntArray], int, bool, list[tuple[float, float]]]:
    """Improve ``forms`` (the first ``frozen`` never change) until the summed objective reaches ``bound``, every
    pair has been re-solved without a gain, or time (or the work limit) runs out. The weakest form goes first,
    with the strongest partner first. Returns (forms, solves, whether a step was cut by its time limit,
    (seconds, summed objective) at each improvement)."""
    req = prob.request
    forms = list(forms)
    n = len(forms)
    free = list(range(frozen, n))
    fw = (window[0] * prob.total_scaled, window[1] * prob.total_scaled)
    scores = [coverage_score(prob, f) for f in forms]
    solves = step = 0
    cut = False
    trajectory: list[tuple[float, float]] = []
    tried: set[tuple[int, int]] = set()  # pairs re-solved since the last improvement
    max_steps = 6 * len(free)  # a work limit, not only a time limit, keeps the result reproducible
    while sum(scores) < bound - 1e-9 and step < max_steps and time.perf_counter() < deadline - 0.05:
        ranked = sorted(free, key=lambda k: (scores[k], k))  # the weakest form with the strongest partner first
        pairs_left = [(a, b) for i, a in enumerate(ranked) for b in reversed(ranked[i + 1:]) if (a, b) not in tried]
        if not pairs_left:  # every pair tried without a gain
            break
        worst, partner = pairs_left[0]
        tried.add((worst, partner))
        step += 1
        others = [forms[k] for k in range(n) if k not in (worst, partner)]
        uses = np.zeros(prob.n, dtype=np.int64)
        for g in others:
            uses[g] += 1
        cap = req.max_item_use if req.max_item_use is not None else n
        use_left = np.maximum(cap - uses, 0)
        avail = prob.usable & (use_left > 0)
        pairs = [(0, 1)] if req.max_shared is not None else []
        left = deadline - time.perf_counter()
        sol = solve_joint(prob, 2, avail, None, fw, None, np.zeros(prob.n), pairs, req.max_shared,
                          max(0.05, min(left, STEP_LIMIT)), "CBC", hint=[forms[worst], forms[partner]],
                          use_left=use_left, fixed_forms=others)
        solves += 1
        cut |= sol.status != "optimal"
        if sol.status not in ("optimal", "feasible"):
            continue
        new = [coverage_score(prob, f) for f in sol.forms]
        if sum(new) > scores[worst] + scores[partner]:
            forms[worst], forms[partner] = sol.forms[0], sol.forms[1]
            scores[worst], scores[partner] = new
            trajectory.append((time.perf_counter() - t0, float(sum(scores))))
            tried = {ab for ab in tried if worst not in ab and partner not in ab}  # pairs with a changed form
    return forms, solves, cut, trajectory
