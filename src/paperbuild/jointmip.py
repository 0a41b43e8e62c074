"""The joint model of a few parallel forms (one MIP, OR-Tools ``pywraplp``).

Used for parallel forms (papers A, B, C…) where joint optimisation beats form-by-form assembly. Pairwise
overlap caps are added lazily, only for pairs of forms whose overlap exceeds the cap in the current solution.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.linear_solver import pywraplp

from paperbuild.errors import SolverError
from paperbuild.formmip import coverage_weights, mip_gap, objective_scale
from paperbuild.problem import Problem

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class MultiSolution:
    status: str
    forms: list[IntArray]
    objective: float
    bound: float
    seconds: float


def solve_joint(prob: Problem, n_forms: int, available: npt.NDArray[np.bool_], max_use: int | None,
                fac_window: tuple[float, float] | None, spread: float | None, cost: FloatArray,
                pair_caps: list[tuple[int, int]], max_shared: int | None, time_limit: float,
                backend: str = "CBC", hint: list[IntArray] | None = None, use_left: IntArray | None = None,
                fixed_forms: list[IntArray] | None = None) -> MultiSolution:
    """Solve ``n_forms`` forms jointly. ``pair_caps`` lists the pairs of forms whose shared items are capped by
    ``max_shared`` (linearised with one continuous variable per item in the pair). Long on purpose: the joint
    model reads as one list of its rows, like the one-form model it mirrors."""
    t0 = time.perf_counter()
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise SolverError(f"MIP backend {backend} not available")
    inf = solver.infinity()
    pool = prob.pool
    cand = np.flatnonzero(available).tolist()
    F = range(n_forms)
    x = {(i, f): solver.BoolVar(f"x{i}_{f}") for f in F for i in cand}
    wcov = coverage_weights(prob)
    scale = objective_scale(prob)
    obj = solver.Objective()

    def row(terms: list[tuple[pywraplp.Variable, float]], lo: float, hi: float) -> None:
        c = solver.RowConstraint(lo, hi, "")
        for v, a in terms:
            c.SetCoefficient(v, a)

    by_type = {t: [i for i in cand if pool.item_type[i] == t] for t in prob.type_count}
    cset = set(cand)
    facs: list[list[tuple[pywraplp.Variable, float]]] = []
    for f in F:
        for t, cnt in prob.type_count.items():
            row([(x[i, f], 1.0) for i in by_type[t]], cnt, cnt)
        for j in range(len(prob.scope_codes)):
            its = [i for i in prob.scope_items[j].tolist() if i in cset]
            row([(x[i, f], float(prob.item_points[i])) for i in its], float(prob.scope_lo[j]),
                float(prob.scope_hi[j]))
        fac = [(x[i, f], float(prob.item_points[i] * pool.facility[i])) for i in cand]
        facs.append(fac)
        lo, hi = fac_window if fac_window is not None else (prob.fac_lo, prob.fac_hi)
        eps = 1e-6 * prob.total_scaled
        row(fac, lo + eps, hi - eps)
        for p, its_a in enumerate(prob.point_items):
            its = [i for i in its_a.tolist() if i in cset]
            if not its:
                continue
            if len(its) > prob.request.max_per_point:
                row([(x[i, f], 1.0) for i in its], -inf, prob.request.max_per_point)
            y = solver.NumVar(0.0, 1.0, "")
            row([(y, 1.0)] + [(x[i, f], -1.0) for i in its], -inf, 0.0)
            obj.SetCoefficient(y, float(wcov[p]) * scale)
        for g in prob.enemy:
            its = [i for i in g.tolist() if i in cset]
            if len(its) > 1:
                row([(x[i, f], 1.0) for i in its], -inf, 1.0)
        for s in prob.stimulus_sets:
            members = s.tolist()
            if any(i not in cset for i in members):
                for i in members:
                    if i in cset:
                        x[i, f].SetUb(0.0)
                continue
            for a, b in itertools.pairwise(members):
                row([(x[a, f], 1.0), (x[b, f], -1.0)], 0.0, 0.0)
        for i in prob.include.tolist():
            if i in cset:
                x[i, f].SetLb(1.0)
        for i in cand:
            obj.SetCoefficient(x[i, f], -float(cost[i]))
    if spread is not None and n_forms > 1:
        m = solver.NumVar(-inf, inf, "m")
        for f in F:
            row([(m, -1.0)] + facs[f], 0.0, spread * prob.total_scaled - 2e-6 * prob.total_scaled)
    # symmetry: forms ordered by mean facility
    for f in range(n_forms - 1 if hint is None else 0):
        row(facs[f] + [(v, -a) for v, a in facs[f + 1]], -inf, 0.0)
    if max_use is not None and n_forms > max_use:
        for i in cand:
            row([(x[i, f], 1.0) for f in F], -inf, max_use)
    if use_left is not None:
        for i in cand:
            if use_left[i] < n_forms:
                row([(x[i, f], 1.0) for f in F], -inf, float(use_left[i]))
    if max_shared is not None and fixed_forms:
        for g in fixed_forms:
            its = [i for i in g.tolist() if i in cset]
            if len(its) > max_shared:
                for f in F:
                    row([(x[i, f], 1.0) for i in its], -inf, max_shared)
    if max_shared is not None:
        for a, b in pair_caps:
            zs = []
            for i in cand:
                z = solver.NumVar(0.0, 1.0, "")
                row([(z, 1.0), (x[i, a], -1.0), (x[i, b], -1.0)], -1.0, inf)
                zs.append((z, 1.0))
            row(zs, -inf, max_shared)
    obj.SetMaximization()
    if hint is not None:
        hv, hval = [], []
        for f in F:
            hs = set(hint[f].tolist()) if f < len(hint) else set()
            for i in cand:
                hv.append(x[i, f])
                hval.append(1.0 if i in hs else 0.0)
        solver.SetHint(hv, hval)
    solver.SetTimeLimit(max(1, int(time_limit * 1000)))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, mip_gap(prob) / n_forms)
    code = solver.Solve(params)
    secs = time.perf_counter() - t0
    if code == pywraplp.Solver.OPTIMAL:
        st = "optimal"
    elif code == pywraplp.Solver.FEASIBLE:
        st = "feasible"
    elif code == pywraplp.Solver.INFEASIBLE:
        st = "infeasible"
    else:
        st = "unknown"
    if st not in ("optimal", "feasible"):
        return MultiSolution(st, [], math.nan, math.nan, secs)
    forms = [np.array([i for i in cand if x[i, f].solution_value() > 0.5], dtype=np.int64) for f in F]
    return MultiSolution(st, forms, float(obj.Value()), float(obj.BestBound()), secs)
