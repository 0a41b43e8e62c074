"""Parallel forms and one form per candidate.

Method (chosen by measurement, see ``benchmarks/assembly/RESULTS.md``): forms are assembled one at a time, each
as an exact one-form MIP (CBC through OR-Tools, ~0.05 s for a 1,200-item bank). What makes form-by-form work
close to the joint optimum:

* every form gets the same facility window of width δ, placed where the bank's X items can sustain it for all
  forms (a window the bank cannot sustain starves the last forms);
* a tie-break cost (worth less than one covered point in total) prefers items whose remaining uses are
  needed by the remaining forms (``1 - uses_left / forms_left``), items used least so far, and a seeded jitter;
* the pairwise cap becomes, for each earlier form, one linear row ``sum(x[items of g]) <= K``, added lazily
  only when a solution breaks it, so 200 forms never need pairwise booleans.

A global upper bound comes from the symmetric LP relaxation (every form alike, item use u spread as u/F).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from paperbuild.formmip import FormSolution, FormSpec, OneForm, objective_scale, solve_form
from paperbuild.model import (
    AssemblyRequest,
    AssemblyResult,
    Blueprint,
    Explanation,
    Form,
    ItemPool,
    Layout,
    SolveStats,
    Status,
)
from paperbuild.jointmip import solve_joint
from paperbuild.problem import Problem, compile_problem
from paperbuild.report import coverage_score, delivery_order, form_report, option_permutations

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BACKEND = "CBC"
LNS_STEP_LIMIT = 1.5  # seconds per pair re-solve; many short steps beat a few long ones


@dataclass
class _Run:
    forms: list[IntArray] = field(default_factory=list)
    sols: list[FormSolution] = field(default_factory=list)
    failed_at: int | None = None
    failed_status: str = ""
    solves: int = 0
    first_time: float | None = None


def facility_windows(prob: Problem, spread: float) -> list[tuple[float, float]]:
    """Candidate windows of width ``spread`` for the forms' mean facility, most promising first (unscaled)."""
    lo, hi = prob.layout.facility_min, prob.layout.facility_max
    if spread >= hi - lo:
        return [(lo, hi)]
    pool = prob.pool
    isx = prob.point_importance[prob.item_point] == 0
    num = 0.0
    for t, cnt in prob.type_count.items():
        m = prob.usable & (pool.item_type == t)
        mx = m & isx
        sel = mx if mx.any() else m
        mean_t = float(pool.facility[sel].mean()) if sel.any() else (lo + hi) / 2
        num += cnt * prob.type_points[t] * mean_t
    est = num / prob.total_scaled
    half = spread / 2
    centres = [min(max(est, lo + half), hi - half), (lo + hi) / 2, lo + half, hi - half]
    out: list[tuple[float, float]] = []
    for c in centres:
        w = (c - half, c + half)
        if all(abs(w[0] - o[0]) > 1e-9 for o in out):
            out.append(w)
    return out


def _costs(prob: Problem, uses: IntArray, f: int, n_forms: int, seed: int, slot: int = -1) -> FloatArray:
    """Tie-break cost per item in [0, 0.95): balance of uses, prior exposure, seeded jitter. ``slot`` 0/1 marks
    the two forms solved side by side (per-candidate mode), each steered to a different seeded half of the
    bank so that they rarely collide."""
    u = prob.request.max_item_use
    left = n_forms - f
    if u is not None and u < n_forms:
        rem = np.maximum(u - uses, 0)
        balance = 1.0 - np.minimum(1.0, rem / max(1, left))
    else:
        balance = np.minimum(1.0, uses / max(1, f))
    tu = prob.pool.times_used.astype(np.float64)
    exposure = tu / tu.max() if tu.size and tu.max() > 0 else np.zeros(prob.n)
    jitter = np.random.default_rng([seed & 0xFFFFFFFF, f, 7]).random(prob.n)
    if slot < 0:
        return 0.6 * balance + 0.25 * exposure + 0.1 * jitter
    half = np.random.default_rng([seed & 0xFFFFFFFF, f // 2, 11]).random(prob.n) < 0.5
    split = (half if slot == 0 else ~half).astype(np.float64)
    return 0.5 * balance + 0.2 * exposure + 0.1 * jitter + 0.15 * split


def _sequential(prob: Problem, n_forms: int, window: tuple[float, float], deadline: float, t0: float,
                fixed: list[IntArray] | None = None, pairs: bool = False) -> _Run:
    """Forms one at a time on incrementally updated MIPs. Every accepted form becomes one overlap row in the
    models (no pairwise variables). With ``pairs`` two forms are solved side by side on two threads (CBC
    releases the GIL); the second is re-solved only if it breaks a cap against the first. The outcome does not
    depend on thread timing."""
    req = prob.request
    run = _Run()
    prior = list(fixed or [])
    uses = np.zeros(prob.n, dtype=np.int64)
    for g in prior:
        uses[g] += 1
    member = np.zeros((n_forms + len(prior), prob.n), dtype=np.bool_)
    for k, g in enumerate(prior):
        member[k, g] = True
    fac = (window[0] * prob.total_scaled, window[1] * prob.total_scaled)
    models = []
    for _ in range(2 if pairs and n_forms > 1 else 1):
        spec = FormSpec(available=prob.usable.copy(), cost=np.zeros(prob.n), fac_lo=fac[0], fac_hi=fac[1],
                        must=prob.include if prob.include.size else None)
        models.append(OneForm(prob, spec, BACKEND))
    if models[0].trivially_infeasible:
        run.failed_at, run.failed_status = 0, "infeasible"
        return run
    k_cap = req.max_shared
    accepted: list[IntArray] = list(prior)
    has_row: list[set[int]] = [set() for _ in models]

    def add_rows(g: int) -> None:
        if k_cap is None:
            return
        for m, rows in zip(models, has_row, strict=True):
            if g not in rows:
                m.add_overlap(accepted[g], k_cap)
                rows.add(g)

    for gi in range(len(prior)):
        add_rows(gi)

    def prepare(slot: int, f: int) -> None:
        avail = prob.usable.copy()
        if req.max_item_use is not None:
            avail &= uses < req.max_item_use
        models[slot].set_available(avail)
        models[slot].set_cost(_costs(prob, uses, f, n_forms, req.seed, slot if len(models) > 1 else -1))

    def limit(f: int) -> float:
        left = max(0.05, deadline - time.perf_counter())
        return min(2 * max(0.2, left / max(1, n_forms - f)), left)

    executor = ThreadPoolExecutor(max_workers=2) if len(models) > 1 else None
    try:
        f = 0
        while f < n_forms:
            batch = [f, f + 1] if executor is not None and f + 1 < n_forms else [f]
            for slot, ff in enumerate(batch):
                prepare(slot, ff)
            if len(batch) == 2 and executor is not None:
                futs = [executor.submit(models[k].solve, limit(f)) for k in range(2)]
                sols = [fu.result() for fu in futs]
            else:
                sols = [models[0].solve(limit(f))]
            run.solves += len(sols)
            for slot, ff in enumerate(batch):
                sol = sols[slot]
                while True:
                    if sol.status not in ("optimal", "feasible"):
                        run.failed_at, run.failed_status = ff, sol.status
                        return run
                    ok = True
                    if req.max_item_use is not None and np.any(uses[sol.items] >= req.max_item_use):
                        ok = False
                        prepare(slot, ff)
                    if k_cap is not None and accepted:
                        shared = member[: len(accepted), :][:, sol.items].sum(axis=1)
                        bad = [int(g) for g in np.flatnonzero(shared > k_cap)]
                        for gi in bad:
                            if gi not in has_row[slot]:
                                models[slot].add_overlap(accepted[gi], k_cap)
                                has_row[slot].add(gi)
                        ok = ok and not bad
                    if ok:
                        break
                    sol = models[slot].solve(limit(ff))
                    run.solves += 1
                run.forms.append(sol.items)
                run.sols.append(sol)
                uses[sol.items] += 1
                member[len(accepted), sol.items] = True
                accepted.append(sol.items)
                add_rows(len(accepted) - 1)
            f += len(batch)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return run


def symmetric_bound(prob: Problem, n_forms: int) -> float:
    """Upper bound on the summed coverage objective of ``n_forms`` forms: the LP relaxation with every form
    alike and each item's use spread evenly (x_i <= min(1, max_item_use / n_forms))."""
    u = prob.request.max_item_use
    cap = 1.0 if u is None else min(1.0, u / n_forms)
    spec = FormSpec(available=prob.usable.copy(), cost=np.zeros(prob.n), upper=np.full(prob.n, cap), lp=True,
                    must=prob.include if prob.include.size else None)
    sol = solve_form(prob, spec, 10.0, "GLOP")
    if sol.status != "optimal":
        return math.inf
    scale = objective_scale(prob)
    return n_forms * sol.objective / scale


def _form_bound(prob: Problem, sol: FormSolution) -> float:
    """Coverage bound of one form from its MIP bound (the tie-break costs are worth less than one point)."""
    scale = objective_scale(prob)
    if not math.isfinite(sol.bound):
        return math.inf
    return float(math.floor((sol.bound + prob.items_per_form) / scale + 1e-9))


def _build_forms(prob: Problem, forms: list[IntArray], form_bound: float, start_index: int = 0,
                 fixed: list[IntArray] | None = None) -> tuple[Form, ...]:
    req = prob.request
    perms = option_permutations(prob, forms, req.seed, start_index)
    use = np.zeros(prob.n, dtype=np.int64)
    for g in forms:
        use[g] += 1
    out = []
    for k, items in enumerate(forms):
        others = [g for j, g in enumerate(forms) if j != k] + list(fixed or [])
        obj = float(coverage_score(prob, items))
        out.append(Form(
            index=start_index + k,
            items=delivery_order(prob, items, req.seed, start_index + k),
            permutations=perms[k],
            report=form_report(prob, items, others, use),
            objective=obj,
            bound=max(obj, form_bound),
        ))
    return tuple(out)


def _improve_pairs(prob: Problem, forms: list[IntArray], window: tuple[float, float], deadline: float,
                   bound: float, timed_out: list[bool], trajectory: list[tuple[float, float]],
                   t0: float) -> tuple[list[IntArray], int]:
    """Large-neighbourhood search: re-solve the weakest form jointly with another form (all others fixed)
    until the summed objective reaches the bound, a full round brings nothing, or time runs out."""
    req = prob.request
    forms = list(forms)
    n = len(forms)
    fw = (window[0] * prob.total_scaled, window[1] * prob.total_scaled)
    scores = [coverage_score(prob, f) for f in forms]
    solves = 0
    stale = 0
    step = 0
    max_steps = 4 * n  # a work limit, not only a time limit, keeps the result reproducible
    while (sum(scores) < bound - 1e-9 and stale < n - 1 and step < max_steps
           and time.perf_counter() < deadline - 0.05):
        order = sorted(range(n), key=lambda k: (scores[k], k))
        worst = order[0]
        partner = order[-1 - (step % (n - 1))]
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
                          max(0.05, min(left, LNS_STEP_LIMIT)), BACKEND, hint=[forms[worst], forms[partner]],
                          use_left=use_left, fixed_forms=others)
        solves += 1
        if sol.status != "optimal":
            timed_out.append(True)
        if sol.status not in ("optimal", "feasible"):
            stale += 1
            continue
        new = [coverage_score(prob, f) for f in sol.forms]
        if sum(new) > scores[worst] + scores[partner]:
            forms[worst], forms[partner] = sol.forms[0], sol.forms[1]
            scores[worst], scores[partner] = new
            trajectory.append((time.perf_counter() - t0, float(sum(scores))))
            stale = 0
        else:
            stale += 1
    return forms, solves


def _pair_stats(prob: Problem, forms: list[IntArray]) -> tuple[int, int]:
    if not forms:
        return 0, 0
    m = np.zeros((len(forms), prob.n), dtype=np.int32)
    for k, g in enumerate(forms):
        m[k, g] = 1
    use = int(m.sum(axis=0).max())
    if len(forms) < 2:
        return 0, use
    ov = m @ m.T
    np.fill_diagonal(ov, 0)
    return int(ov.max()), use


def run_assembly(prob: Problem, n_forms: int, method: str, improve: bool = True,
                 pairs: bool = False) -> AssemblyResult:
    """Assemble ``n_forms`` forms of a compiled problem (shared by the parallel and per-candidate modes)."""
    t0 = time.perf_counter()
    req = prob.request
    deadline = t0 + req.time_limit
    spread = req.facility_spread if n_forms > 1 else math.inf
    windows = facility_windows(prob, spread)
    if n_forms > 1:  # supply against demand across forms: cheap, exact necessary conditions
        from paperbuild.explain import multi_form_groups

        groups = multi_form_groups(prob, n_forms)
        if groups:
            expl = Explanation(groups=tuple(groups), proven_minimal=False,
                               summary="; ".join(" + ".join(r.message for r in g) for g in groups))
            return AssemblyResult(status=Status.INFEASIBLE, forms=(),
                                  stats=SolveStats(Status.INFEASIBLE, math.nan, math.nan,
                                                   time.perf_counter() - t0, None, method, 0),
                                  explanation=expl)
    run: _Run | None = None
    w = windows[0]
    messages: list[str] = []
    solves = 0
    for w in windows:
        run = _sequential(prob, n_forms, w, deadline, t0, pairs=pairs)
        solves += run.solves
        if run.failed_at is None or run.failed_status == "unknown":
            break
        messages.append(f"facility window {w[0]:.4f}-{w[1]:.4f}: form {run.failed_at} {run.failed_status}")
        if time.perf_counter() > deadline:
            break
    assert run is not None
    run.first_time = time.perf_counter() - t0
    if run.failed_at is not None and run.failed_status == "unknown" and run.forms:
        done = _build_forms(prob, run.forms, _form_bound(prob, run.sols[0]))
        ov, use = _pair_stats(prob, run.forms)
        messages.append(f"time limit reached after {len(done)} of {n_forms} forms; raise time_limit")
        return AssemblyResult(
            status=Status.PARTIAL, forms=done,
            stats=SolveStats(Status.PARTIAL, float(sum(f.objective for f in done)), math.nan,
                             time.perf_counter() - t0, run.first_time, method, solves),
            max_pairwise_shared=ov, max_item_use=use, messages=tuple(messages))
    if run.failed_at is not None:
        from paperbuild.explain import explain_problem

        expl = explain_problem(prob, n_forms, time_limit=max(1.0, min(10.0, req.time_limit)))
        status = Status.INFEASIBLE if expl.proven_minimal or (expl.groups and run.failed_at == 0) else Status.UNKNOWN
        if run.failed_status == "unknown":
            status = Status.UNKNOWN
        return AssemblyResult(
            status=status, forms=(),
            stats=SolveStats(status, math.nan, math.nan, time.perf_counter() - t0, None, method, solves),
            explanation=expl, messages=tuple(messages),
        )
    items = run.forms
    cut = [True for s in run.sols if s.status != "optimal"]
    assert run.first_time is not None
    trajectory = [(run.first_time, float(sum(coverage_score(prob, f) for f in run.forms)))]
    if n_forms == 1:
        bound = _form_bound(prob, run.sols[0])
    else:
        bound = math.floor(symmetric_bound(prob, n_forms) + 1e-6)
        lns_deadline = t0 + 0.93 * req.time_limit  # leave time to build the reports
        if improve and time.perf_counter() < lns_deadline:
            items, lns_solves = _improve_pairs(prob, items, w, lns_deadline, bound, cut, trajectory, t0)
            solves += lns_solves
    wall = time.perf_counter() - t0
    forms = _build_forms(prob, items, _form_bound(prob, run.sols[0]))
    objective = float(sum(f.objective for f in forms))
    optimal = objective >= bound - 1e-9 and (n_forms > 1 or run.sols[0].status == "optimal")
    status = Status.OPTIMAL if optimal else Status.FEASIBLE
    ov, use = _pair_stats(prob, items)
    if cut or time.perf_counter() > deadline:
        messages.append("the time limit cut a solve short: the forms are valid, but another run (or machine) "
                        "may give different ones; raise time_limit for reproducible results")
    return AssemblyResult(
        status=status, forms=forms,
        stats=SolveStats(status, objective, float(bound), wall, run.first_time, method, solves,
                         tuple(trajectory)),
        max_pairwise_shared=ov, max_item_use=use, messages=tuple(messages),
    )


def assemble(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest) -> AssemblyResult:
    """Assemble ``request.forms`` parallel forms (papers A, B, C…).

    Every form meets the layout and blueprint; across forms item use ≤ ``max_item_use``, pairwise shared items
    ≤ ``max_shared`` and mean facilities within ``facility_spread``. Raises
    :class:`~paperbuild.errors.InvalidInput` on bad input; returns status ``infeasible`` with an explanation
    when no paper can be made. Blocking; call it from a worker thread.
    """
    prob = compile_problem(pool, blueprint, layout, request)
    return run_assembly(prob, request.forms, "sequential-mip+pair-lns" if request.forms > 1 else "mip")


def assemble_per_candidate(pool: ItemPool, blueprint: Blueprint, layout: Layout,
                           request: AssemblyRequest) -> AssemblyResult:
    """One form per candidate for computer-based exams: ``request.forms`` forms (N candidates), any two sharing
    at most ``request.max_shared`` items. Forms are made one by one; each earlier form becomes one linear row
    in the next form's model only when needed, so N = 200 stays fast. The checker proves the cap holds."""
    prob = compile_problem(pool, blueprint, layout, request)
    return run_assembly(prob, request.forms, "per-candidate-sequential-mip-2-threads", improve=False,
                        pairs=True)
