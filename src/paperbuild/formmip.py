"""The one-form model: choose the items of a single form as a MIP (OR-Tools ``pywraplp``).

Every mode is built from this model: parallel and per-candidate forms solve it form by form with the earlier
forms' items turned into linear overlap rows (one row per earlier form, so nothing grows quadratically), repair
solves it with a bonus for keeping items, and the infeasibility explainer switches its rows off one by one.

Objective (maximised): coverage with lexicographic weights (one X point beats every Y and Z point together),
times ``scale``, minus a per-item cost in [0, 1) (exposure, balance, seeded jitter) that only breaks ties.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from ortools.linear_solver import linear_solver_pb2, pywraplp

from paperbuild.errors import SolverError
from paperbuild.problem import Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Seconds a restricted MIP of :class:`LpFirstForm` gets at least (at most a tenth of what is left beyond that).
SUB_MIP_LIMIT = 0.2
#: Roundings of a fractional LP optimum :class:`LpFirstForm` tries before a restricted MIP.
ROUNDINGS = 16
#: Scope levels a restricted MIP of :class:`LpFirstForm` widens through (leaf, parent, grandparent).
NEIGHBOURHOOD_LEVELS = 3
#: Row groups of the one-form model; the explainer can relax each one.
ROW_KINDS = ("section", "scope", "facility", "point_cap", "enemy", "stimulus", "include", "overlap")


@dataclass
class FormSpec:
    """Per-solve additions to the problem's one-form constraints."""

    available: BoolArray  # items that may be chosen (usable, uses left)
    cost: FloatArray  # tie-break cost per item in [0, 1)
    fac_lo: float | None = None  # override of the facility bounds (scaled sum of points × facility)
    fac_hi: float | None = None
    overlap: list[tuple[IntArray, int]] = field(default_factory=list)  # (items of another form, cap)
    keep_bonus: FloatArray | None = None  # repair: reward per item kept (dominates coverage)
    must: IntArray | None = None  # items forced in (include)
    relaxed: frozenset[str] = frozenset()  # row keys switched off (explainer)
    caps: list[tuple[IntArray, float]] = field(default_factory=list)  # fair-share caps: sum(x[items]) <= cap
    upper: FloatArray | None = None  # LP relaxation: upper bound of each x (with ``lp``)
    lp: bool = False  # solve the LP relaxation (for bounds)
    feasibility_only: bool = False  # no objective (explainer)


@dataclass
class FormSolution:
    status: str  # "optimal", "feasible", "infeasible", "unknown"
    items: IntArray
    objective: float
    bound: float
    seconds: float


def _status(code: int) -> str:
    if code == pywraplp.Solver.OPTIMAL:
        return "optimal"
    if code == pywraplp.Solver.FEASIBLE:
        return "feasible"
    if code == pywraplp.Solver.INFEASIBLE:
        return "infeasible"
    if code in (pywraplp.Solver.ABNORMAL, pywraplp.Solver.MODEL_INVALID):
        raise SolverError(f"MIP solver returned status {code}")
    return "unknown"


def coverage_weights(prob: Problem) -> FloatArray:
    """Objective weight of covering each point (lexicographic X > Y > Z)."""
    wx, wy, wz = prob.importance_weights()
    return np.array([wx, wy, wz], dtype=np.float64)[prob.point_importance]


def objective_scale(prob: Problem) -> float:
    """Weight of one unit of coverage in the MIP objective; tie-break costs (< 1 per item) sum to less than a
    quarter of it, so a solution within ``mip_gap`` of the bound has the optimal coverage."""
    return 4.0 * float(prob.items_per_form + 1)


def mip_gap(prob: Problem) -> float:
    """Relative gap that still guarantees optimal coverage (only the tie-break may be off)."""
    scale = objective_scale(prob)
    top = scale * float(coverage_weights(prob).sum())
    return max(1e-9, 0.5 * (scale - prob.items_per_form) / top)


def solve_form(prob: Problem, spec: FormSpec, time_limit: float, backend: str = "CBC",
               hint: IntArray | None = None) -> FormSolution:
    """Build and solve the one-form MIP. ``spec.relaxed`` may switch off row groups by key
    (``"section:<t>"``, ``"scope:<code>"``, ``"facility"``, ``"point_cap"``, ``"enemy"``, ``"stimulus"``,
    ``"include"``, ``"overlap"``)."""
    t0 = time.perf_counter()
    model = OneForm(prob, spec, backend)
    if model.trivially_infeasible:
        return FormSolution("infeasible", np.zeros(0, np.int64), math.nan, math.nan, time.perf_counter() - t0)
    sol = model.solve(time_limit, hint)
    sol.seconds = time.perf_counter() - t0
    return sol


class OneForm:
    """The one-form MIP, built once and re-solved after changes (costs, availability, overlap rows), which is
    how the sequential modes avoid rebuilding it for every form."""

    def __init__(self, prob: Problem, spec: FormSpec, backend: str = "CBC") -> None:
        self.prob = prob
        self.spec = spec
        self.trivially_infeasible = False
        self.blocked: set[int] = set()  # items that can never be chosen (shared-stimulus set incomplete)
        self._build(prob, spec, backend)

    def _build(self, prob: Problem, spec: FormSpec, backend: str) -> None:
        """Every row group of the model, in one listing (long on purpose: the model reads as one list of its rows,
        each switched off by its key for the explainer)."""
        solver = pywraplp.Solver.CreateSolver(backend)
        if solver is None:
            raise SolverError(f"MIP backend {backend} not available")
        relaxed = spec.relaxed
        avail = spec.available.copy()
        cand = np.flatnonzero(avail)
        if spec.lp:
            ub = np.ones(prob.n) if spec.upper is None else spec.upper
            x: dict[int, pywraplp.Variable] = {int(i): solver.NumVar(0.0, float(ub[i]), f"x{i}") for i in cand}
        else:
            x = {int(i): solver.BoolVar(f"x{i}") for i in cand}
        pool = prob.pool

        def lin(items: IntArray, coef: npt.NDArray[np.float64] | npt.NDArray[np.int64] | None = None) -> list[
                tuple[pywraplp.Variable, float]]:
            out = []
            for k, i in enumerate(items.tolist()):
                v = x.get(i)
                if v is not None:
                    out.append((v, 1.0 if coef is None else float(coef[k])))
            return out

        def row(terms: list[tuple[pywraplp.Variable, float]], lo: float, hi: float) -> None:
            c = solver.RowConstraint(lo, hi, "")
            for v, a in terms:
                c.SetCoefficient(v, a)

        inf = solver.infinity()
        for t, cnt in prob.type_count.items():
            if f"section:{t}" in relaxed:
                continue
            row(lin(np.flatnonzero(pool.item_type == t)), cnt, cnt)
        for j, code in enumerate(prob.scope_codes):
            if f"scope:{code}" in relaxed:
                continue
            items = prob.scope_items[j]
            row(lin(items, prob.item_points[items]), float(prob.scope_lo[j]), float(prob.scope_hi[j]))
        if "facility" not in relaxed:
            lo = prob.fac_lo if spec.fac_lo is None else spec.fac_lo
            hi = prob.fac_hi if spec.fac_hi is None else spec.fac_hi
            w = prob.item_points[cand] * pool.facility[cand]
            eps = 1e-6 * prob.total_scaled
            row(lin(cand, w), lo + eps, hi - eps)
        wcov = coverage_weights(prob)
        obj = solver.Objective()
        scale = objective_scale(prob)
        for p, items in enumerate(prob.point_items):
            terms = lin(items)
            if not terms:
                continue
            if "point_cap" not in relaxed and len(terms) > prob.request.max_per_point:
                row(terms, -inf, prob.request.max_per_point)
            if spec.feasibility_only:
                continue
            y = solver.NumVar(0.0, 1.0, f"y{p}")
            c = solver.RowConstraint(-inf, 0.0, "")
            c.SetCoefficient(y, 1.0)
            for v, _ in terms:
                c.SetCoefficient(v, -1.0)
            obj.SetCoefficient(y, float(wcov[p]) * scale)
        if "enemy" not in relaxed:
            for g in prob.enemy:
                terms = lin(g)
                if len(terms) > 1:
                    row(terms, -inf, 1.0)
        if "stimulus" not in relaxed:
            for s in prob.stimulus_sets:
                members = s.tolist()
                if any(i not in x for i in members):
                    for i in members:  # a set with an unavailable member cannot be used at all
                        if i in x:
                            x[i].SetUb(0.0)
                            self.blocked.add(i)
                    continue
                for a, b in itertools.pairwise(members):
                    row([(x[a], 1.0), (x[b], -1.0)], 0.0, 0.0)
        if spec.must is not None and "include" not in relaxed:
            for i in spec.must.tolist():
                if i in x:
                    x[i].SetLb(1.0)
                else:
                    self.trivially_infeasible = True
        if "overlap" not in relaxed:
            for items, ocap in spec.overlap:
                terms = lin(items)
                if len(terms) > ocap:
                    row(terms, -inf, ocap)
        for items, fcap in spec.caps:
            terms = lin(items)
            if len(terms) > fcap:
                row(terms, -inf, fcap)
        for i, v in x.items():
            c_i = 0.0 if spec.feasibility_only else -float(spec.cost[i])
            if spec.keep_bonus is not None:
                c_i += float(spec.keep_bonus[i])
            if c_i:
                obj.SetCoefficient(v, c_i)
        obj.SetMaximization()
        self.solver = solver
        self.x = x
        self.obj = obj
        self.row = row
        self.lin = lin

    def set_cost(self, cost: FloatArray) -> None:
        """New tie-break costs (keep bonuses are not touched)."""
        set_coefficient = self.obj.SetCoefficient
        neg = (-cost).tolist()
        for i, v in self.x.items():
            set_coefficient(v, neg[i])

    def set_available(self, available: BoolArray) -> None:
        """Which items may be chosen; only the items whose availability changed are touched."""
        before = getattr(self, "available", None)
        self.available = available.copy()
        changed = np.flatnonzero(available != before) if before is not None else np.arange(self.prob.n)
        for i in changed.tolist():
            v = self.x.get(i)
            if v is not None:
                v.SetUb(1.0 if available[i] and i not in self.blocked else 0.0)

    def values(self) -> FloatArray:
        """Each item's value in the last solution (0 for items not in the model). Read in one call from the
        solution message (15x faster than one call per variable): the item variables are the model's first."""
        response = linear_solver_pb2.MPSolutionResponse()
        self.solver.FillSolutionResponseProto(response)
        keys = np.fromiter(self.x.keys(), dtype=np.int64, count=len(self.x))
        out = np.zeros(self.prob.n)
        out[keys] = np.asarray(response.variable_value[: len(keys)], dtype=np.float64)
        return out

    def fix(self, free: BoolArray, ones: BoolArray) -> None:
        """Fix every item outside ``free`` to 1 where ``ones`` is true, else to 0 (undone by :meth:`release`)."""
        for i, v in self.x.items():
            if not free[i]:
                val = 1.0 if ones[i] else 0.0
                v.SetBounds(val, val)

    def release(self) -> None:
        """Undo :meth:`fix`: bounds from availability and the included items again."""
        avail = getattr(self, "available", self.spec.available)
        must = set(self.spec.must.tolist()) if self.spec.must is not None and "include" not in self.spec.relaxed \
            else set()
        for i, v in self.x.items():
            v.SetBounds(1.0 if i in must else 0.0, 1.0 if avail[i] and i not in self.blocked else 0.0)

    def add_overlap(self, items: IntArray, cap: int) -> None:
        """At most ``cap`` of ``items`` (an earlier form) in this form."""
        terms = self.lin(items)
        if len(terms) > cap:
            self.row(terms, -self.solver.infinity(), cap)

    def solve(self, time_limit: float, hint: IntArray | None = None) -> FormSolution:
        t0 = time.perf_counter()
        solver, x, obj, spec = self.solver, self.x, self.obj, self.spec
        if hint is not None:
            hs = set(hint.tolist())
            solver.SetHint(list(x.values()), [1.0 if i in hs else 0.0 for i in x])
        solver.SetTimeLimit(max(1, int(time_limit * 1000)))
        params = pywraplp.MPSolverParameters()
        if not spec.lp:
            params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, mip_gap(self.prob))
        code = solver.Solve(params)
        st = _status(code)
        secs = time.perf_counter() - t0
        if st not in ("optimal", "feasible"):
            return FormSolution(st, np.zeros(0, np.int64), math.nan, math.nan, secs)
        if spec.lp:
            return FormSolution(st, np.zeros(0, np.int64), float(obj.Value()), float(obj.Value()), secs)
        chosen = np.flatnonzero(self.values() > 0.5).astype(np.int64)
        return FormSolution(st, chosen, float(obj.Value()), float(obj.BestBound()), secs)


class LpFirstForm:
    """The one-form MIP solved LP first.

    An integral LP optimum is the form. Else the items whose LP values are fractional and every item of their
    (leaf) scopes stay free, the rest is fixed at its LP value, and CBC solves that small MIP, widening to the
    parent scopes (twice at most) while it has no solution. Its form is taken only when its coverage reaches the
    LP's coverage bound (so it is proven optimal); else the full MIP decides, and after two such misses in a row
    it is used at once (the LP bound is then out of reach, as with tight caps across forms).

    Measured on the benchmark bank's later per-candidate forms: the LP is integral or two or three items are
    fractional, and CBC alone spends 0.1-0.2 s in its heuristics to round them; LP (CLP, warm started) plus the
    small MIP takes about a fifth of that (benchmarks/assembly)."""

    def __init__(self, prob: Problem, spec: FormSpec) -> None:
        self.prob = prob
        self.mip = OneForm(prob, spec, "CBC")
        self.lp = OneForm(prob, replace(spec, lp=True), "CLP")
        self.trivially_infeasible = self.mip.trivially_infeasible
        sidx = {c: j for j, c in enumerate(prob.scope_codes)}
        self.parent = [sidx.get(s.parent) if s.parent is not None else None for s in prob.blueprint.scopes]
        self.leaf = np.array([sidx[c] for c in prob.pool.scope.tolist()], dtype=np.int64)
        self.weights = coverage_weights(prob)
        self.misses = 0  # forms in a row whose restricted MIP fell short of the LP bound
        self._cost: FloatArray | None = None
        self._available: BoolArray | None = None
        self.overlaps: list[tuple[IntArray, int]] = []
        self.cost = spec.cost
        self.member = np.zeros((len(prob.scope_codes), prob.n), dtype=np.int64)
        for j, its in enumerate(prob.scope_items):
            self.member[j, its] = 1
        self.can_round = not spec.relaxed and not spec.caps and spec.keep_bonus is None and not spec.overlap

    def set_cost(self, cost: FloatArray) -> None:
        self.lp.set_cost(cost)
        self.cost = cost
        self._cost = cost  # the MIP gets it when it is needed (the LP is often integral)

    def set_available(self, available: BoolArray) -> None:
        self.lp.set_available(available)
        self._available = available

    def _sync(self) -> None:
        """Pass pending costs and availability to the MIP before it is solved."""
        if self._cost is not None:
            self.mip.set_cost(self._cost)
            self._cost = None
        if self._available is not None:
            self.mip.set_available(self._available)
            self._available = None

    def add_overlap(self, items: IntArray, cap: int) -> None:
        self.mip.add_overlap(items, cap)
        self.lp.add_overlap(items, cap)
        self.overlaps.append((items, cap))

    def _fits(self, items: IntArray) -> bool:
        """Does ``items`` (with the section counts right by construction) meet every other row of the model?"""
        prob, spec = self.prob, self.mip.spec
        pts = self.member[:, items] @ prob.item_points[items]
        if np.any(pts < prob.scope_lo) or np.any(pts > prob.scope_hi):
            return False
        fac = float(np.sum(prob.item_points[items] * prob.pool.facility[items]))
        eps = 1e-6 * prob.total_scaled
        lo = prob.fac_lo if spec.fac_lo is None else spec.fac_lo
        hi = prob.fac_hi if spec.fac_hi is None else spec.fac_hi
        if not lo + eps <= fac <= hi - eps:
            return False
        if np.bincount(prob.item_point[items]).max(initial=0) > prob.request.max_per_point:
            return False
        chosen = np.zeros(prob.n, dtype=np.bool_)
        chosen[items] = True
        if any(chosen[g].sum() > 1 for g in prob.enemy):
            return False
        if any(0 < chosen[st].sum() < st.size for st in prob.stimulus_sets):
            return False
        if spec.must is not None and not chosen[spec.must].all():
            return False
        return all(chosen[g].sum() <= cap for g, cap in self.overlaps)

    def _round(self, x: FloatArray, ones: BoolArray, frac: IntArray, bound: float) -> IntArray | None:
        """The LP optimum rounded: each section's missing items taken from its fractional items (highest LP value
        first, at most ``ROUNDINGS`` tries), kept only if it meets every row and the coverage bound."""
        prob = self.prob
        choices = []
        for t, cnt in prob.type_count.items():
            here = frac[prob.pool.item_type[frac] == t]
            need = cnt - int(np.sum(ones & (prob.pool.item_type == t)))
            if need < 0 or need > here.size:
                return None
            choices.append(list(itertools.combinations(here[np.argsort(-x[here], kind="stable")].tolist(), need)))
        base = np.flatnonzero(ones)
        for k, pick in enumerate(itertools.product(*choices)):
            if k >= ROUNDINGS:
                break
            items = np.sort(np.concatenate([base, np.array([i for c in pick for i in c], dtype=np.int64)]))
            if self._coverage(items) >= bound and self._fits(items):
                return items
        return None

    def _coverage(self, items: IntArray) -> float:
        return float(self.weights[np.unique(self.prob.item_point[items])].sum())

    def _neighbourhoods(self, frac: IntArray) -> list[BoolArray]:
        """Items of the scopes that hold the fractional items: their leaf scopes, then up to
        ``NEIGHBOURHOOD_LEVELS - 1`` levels above (while that still leaves items fixed)."""
        out = []
        scopes = set(self.leaf[frac].tolist())
        for _ in range(NEIGHBOURHOOD_LEVELS):
            free = np.zeros(self.prob.n, dtype=np.bool_)
            for j in scopes:
                free[self.prob.scope_items[j]] = True
            if free[self.prob.usable].all():
                break
            out.append(free)
            scopes = {p for j in scopes if (p := self.parent[j]) is not None}
            if not scopes:
                break
        return out

    def solve(self, time_limit: float) -> FormSolution:
        t0 = time.perf_counter()
        deadline = t0 + time_limit
        relaxed = self.lp.solve(time_limit)
        if relaxed.status == "infeasible":  # no LP solution, so no form
            return relaxed
        if relaxed.status != "optimal":
            self._sync()
            return self.mip.solve(max(0.01, deadline - time.perf_counter()))
        x = self.lp.values()
        scale = objective_scale(self.prob)
        bound = math.floor((relaxed.objective + self.prob.items_per_form) / scale + 1e-9)
        ones = x >= 1 - 1e-6
        frac = np.flatnonzero((x > 1e-6) & ~ones)
        if not frac.size:
            items = np.flatnonzero(ones)
            return FormSolution("optimal", items, relaxed.objective, relaxed.objective, time.perf_counter() - t0)
        rounded = self._round(x, ones, frac, bound) if self.can_round else None
        if rounded is not None:
            value = self._coverage(rounded) * scale - float(self.cost[rounded].sum())
            return FormSolution("optimal", rounded, value, relaxed.objective, time.perf_counter() - t0)
        self._sync()
        best: FormSolution | None = None
        steps = self._neighbourhoods(frac) if self.misses < 2 or self.misses % 4 == 0 else []
        for free in steps:  # after misses in a row the LP bound is out of reach: straight to the full MIP
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self.mip.fix(free, ones)
            try:  # a heuristic step: a short limit, the full MIP below gets the rest
                sol = self.mip.solve(min(left, max(SUB_MIP_LIMIT, 0.1 * left)))
            finally:
                self.mip.release()
            if sol.status not in ("optimal", "feasible"):
                continue  # too little freedom: widen
            if self._coverage(sol.items) >= bound:
                self.misses = 0
                return FormSolution("optimal", sol.items, sol.objective, relaxed.objective, time.perf_counter() - t0)
            best = FormSolution("feasible", sol.items, sol.objective, relaxed.objective, 0.0)
            break  # a form, but short of the LP bound, which may be out of reach: the full MIP decides
        self.misses += 1
        full = self.mip.solve(max(0.01, deadline - time.perf_counter()))
        if full.status == "unknown" and best is not None:  # the full MIP found nothing in time: the step's form
            best.seconds = time.perf_counter() - t0
            return best
        return full
