"""Parallel forms and one form per candidate: the entry points, continuing a run, and the result.

Forms are made one at a time (:mod:`paperbuild.sequential`), every form in the same facility window of width δ,
placed where the bank's X items can sustain it for all forms (a window the bank cannot sustain starves the last
forms); parallel forms are then improved pairwise (:mod:`paperbuild.lns`). A global upper bound comes from the
symmetric LP relaxation (every form alike, item use u spread as u/F).

Only a complete paper is a paper: a run that ends short (time, a form that cannot be made beside the others, the
caller stopping it) returns its valid forms as ``partial_forms`` with a :class:`~paperbuild.model.Shortfall`, and
``forms`` stays empty. Such a run is continued by passing those forms back as ``made``: they are kept as they are
(items, order, option permutations) and only the missing forms are made, within every cap against them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paperbuild.checker import check_forms
from paperbuild.errors import InvalidInput
from paperbuild.formmip import FormSolution, FormSpec, objective_scale, solve_form
from paperbuild.lns import improve_pairs
from paperbuild.model import (
    AssemblyRequest,
    AssemblyResult,
    Blueprint,
    Form,
    ItemId,
    ItemPool,
    Layout,
    Shortfall,
    ShortfallReason,
    SolveStats,
    Status,
)
from paperbuild.problem import Problem, compile_problem
from paperbuild.report import coverage_score, delivery_order, form_report, mean_facility, option_permutations
from paperbuild.sequential import Batch, FormCallback, StopCheck, TimePlan, make_forms

IntArray = npt.NDArray[np.int64]
Made = Sequence[Form | Sequence[ItemId]]
#: Share of the time limit kept for building the forms' reports at the end.
REPORT_SHARE = 0.05


def facility_windows(prob: Problem, spread: float, fixed: Sequence[float] = ()) -> list[tuple[float, float]]:
    """Candidate windows of width ``spread`` for the forms' mean facility, most promising first (unscaled). With
    ``fixed`` (the mean facilities of forms taken over) every window holds them all."""
    lo, hi = prob.layout.facility_min, prob.layout.facility_max
    if spread >= hi - lo:
        return [(lo, hi)]
    pool = prob.pool
    isx = prob.point_importance[prob.item_point] == 0
    num = 0.0
    for t, cnt in prob.type_count.items():
        m = prob.usable & (pool.item_type == t)
        sel = m & isx if (m & isx).any() else m
        num += cnt * prob.type_points[t] * (float(pool.facility[sel].mean()) if sel.any() else (lo + hi) / 2)
    est = num / prob.total_scaled
    half = spread / 2
    starts = [min(max(est, lo + half), hi - half) - half, lo + (hi - lo) / 2 - half, lo, hi - spread]
    first, last = lo, hi - spread
    if fixed:
        first, last = max(lo, max(fixed) - spread), min(hi - spread, min(fixed))
    out: list[tuple[float, float]] = []
    for s in starts:
        s = min(max(s, first), last)
        if all(abs(s - o[0]) > 1e-9 for o in out):
            out.append((s, s + spread))
    return out


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
    return n_forms * sol.objective / objective_scale(prob)


def _form_bound(prob: Problem, sol: FormSolution | None) -> float:
    """Coverage bound of one form from its MIP bound (the tie-break costs are worth less than one point)."""
    if sol is None or not math.isfinite(sol.bound):
        return math.inf
    return float(math.floor((sol.bound + prob.items_per_form) / objective_scale(prob) + 1e-9))


def _taken_over(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest, prob: Problem,
                made: Made) -> list[IntArray]:
    """Check the forms of an earlier run (``made``) and return their item indexes."""
    if len(made) >= request.forms:
        raise InvalidInput("made", f"{len(made)} forms were made and {request.forms} requested: the run is "
                                   "complete, there is nothing to continue")
    out = []
    for k, f in enumerate(made):
        if isinstance(f, Form) and f.index != k:
            raise InvalidInput(f"made[{k}].index", f"form {k} of the run has index {f.index}")
        ids = list(f.items) if isinstance(f, Form) else list(f)
        bad = [x for x in ids if x not in prob.id_index]
        if bad:
            raise InvalidInput(f"made[{k}]", f"items {bad[:10]} are not in the pool")
        out.append(np.array(sorted(prob.id_index[x] for x in ids), dtype=np.int64))
    raw = [f for f in made if not isinstance(f, Form)]
    problems = [(f"made[{v.form}]" if v.form is not None else "made", v.message)
                for v in check_forms(pool, blueprint, layout, request, made)
                if not (v.rule == "delivery_order" and raw)]  # plain id lists are put in order here
    if problems:
        raise InvalidInput.every(problems)
    return out


def _build_forms(prob: Problem, batch: Batch, kept: Sequence[Form | Sequence[ItemId]]) -> tuple[Form, ...]:
    """Every form of the batch as a :class:`Form`: the forms taken over keep their items, order and option
    permutations (their reports are recomputed against the whole batch)."""
    seed = prob.request.seed
    perms = option_permutations(prob, batch.forms, seed)
    use = batch.uses
    m = batch.member[: len(batch.forms)].astype(np.int32)
    overlap = m @ m.T
    np.fill_diagonal(overlap, -1)
    first_bound = _form_bound(prob, batch.sols[0] if batch.sols else None)
    out = []
    for k, items in enumerate(batch.forms):
        old = kept[k] if k < len(kept) else None
        worst = int(overlap[k].max()) if len(batch.forms) > 1 else None
        obj = float(coverage_score(prob, items))
        report = form_report(prob, items, (), use, max_shared=worst)
        if isinstance(old, Form):
            out.append(Form(index=k, items=old.items, permutations=old.permutations, report=report,
                            objective=obj, bound=old.bound))
            continue
        out.append(Form(index=k, items=delivery_order(prob, items, seed, k), permutations=perms[k], report=report,
                        objective=obj, bound=max(obj, first_bound)))
    return tuple(out)


def _pair_stats(batch: Batch) -> tuple[int, int]:
    n = len(batch.forms)
    if not n:
        return 0, 0
    m = batch.member[:n].astype(np.int32)
    use = int(m.sum(axis=0).max())
    if n < 2:
        return 0, use
    ov = m @ m.T
    np.fill_diagonal(ov, 0)
    return int(ov.max()), use


def _stats(status: Status, batch: Batch, t0: float, method: str, objective: float = math.nan,
           bound: float = math.nan, first: float | None = None,
           trajectory: tuple[tuple[float, float], ...] = ()) -> SolveStats:
    return SolveStats(status, objective, bound, time.perf_counter() - t0, first, method, batch.solves, trajectory,
                      time_to_first_form=batch.made_at[0] if batch.made_at else None,
                      time_to_last_form=batch.made_at[-1] if batch.made_at else None)


def _shortfall(batch: Batch, reason: ShortfallReason) -> Shortfall:
    made, n = len(batch.forms), batch.n_forms
    missing = tuple(range(made, n))
    say = {"time_limit": ("the time limit ran out", "时间用完"),
           "infeasible": ("the next form cannot be made beside the forms already made",
                          "在已组成的试卷之外无法再组成下一份"),
           "cancelled": ("the run was stopped", "组卷被中止")}[reason]
    first, last = made, n - 1
    which_en = f"form {first}" if first == last else f"forms {first}–{last}"
    which_zh = f"第 {first} 份" if first == last else f"第 {first}–{last} 份"
    return Shortfall(
        reason=reason, requested=n, made=made, missing=missing,
        message_en=f"{made} of {n} forms made: {say[0]}; {which_en} missing. This is not a paper: continue the run "
                   "(pass the forms made as 'made', with more time) or start again",
        message_zh=f"只组成了 {n} 份中的 {made} 份：{say[1]}；缺{which_zh}。这不是一套完整的试卷："
                   "请在更长的时限内继续组卷（把已组成的试卷作为 made 传入），或重新组卷")


def _make(prob: Problem, n_forms: int, spread: float, kept: list[IntArray], t0: float, deadline: float,
          pairs: bool, should_stop: StopCheck | None, on_form: FormCallback | None) -> tuple[Batch, list[str]]:
    """Make the forms, trying the next facility window when one cannot hold them all; the batch with the most
    forms wins."""
    plan = TimePlan(deadline)
    fixed = [mean_facility(prob, g) for g in kept]
    best: Batch | None = None
    messages: list[str] = []
    solves = 0
    for w in facility_windows(prob, spread, fixed):
        batch = Batch(prob, n_forms, w)
        for g in kept:
            batch.accept(g)
        batch.kept = len(kept)
        make_forms(batch, plan, t0, pairs, should_stop, on_form)
        solves += batch.solves
        if best is None or len(batch.forms) > len(best.forms):
            best = batch
        if batch.stop is None or batch.stop.reason != "infeasible" or plan.left() <= 0:
            break
        messages.append(f"facility window {w[0]:.4f}-{w[1]:.4f}: form {batch.stop.at} cannot be made")
    assert best is not None
    best.solves = solves
    return best, messages


def _short_result(prob: Problem, batch: Batch, made: Made, t0: float, method: str,
                  messages: list[str]) -> AssemblyResult:
    """A run that ended short: the valid forms it made, what is missing and why."""
    assert batch.stop is not None
    reason = batch.stop.reason
    expl = None
    if reason == "infeasible":
        from paperbuild.explain import explain_problem

        left = max(1.0, min(10.0, prob.request.time_limit))
        expl = explain_problem(prob, batch.n_forms, time_limit=left)
    forms = _build_forms(prob, batch, made) if batch.forms else ()
    if forms:
        status = Status.CANCELLED if reason == "cancelled" else Status.PARTIAL
    elif reason == "infeasible":
        status = Status.INFEASIBLE if (expl is not None and expl.groups) or batch.stop.at == 0 else Status.UNKNOWN
    else:
        status = {"time_limit": Status.UNKNOWN, "cancelled": Status.CANCELLED}[reason]
    short = _shortfall(batch, reason)
    ov, use = _pair_stats(batch)
    return AssemblyResult(
        status=status, forms=(), stats=_stats(status, batch, t0, method, float(sum(f.objective for f in forms))),
        explanation=expl, max_pairwise_shared=ov, max_item_use=use, messages=(*messages, short.message_en),
        requested=batch.n_forms, complete=False, partial_forms=forms, shortfall=short, continued_from=batch.kept)


def _infeasible_upfront(prob: Problem, n_forms: int, t0: float, method: str) -> AssemblyResult | None:
    """Exact supply-against-demand checks across forms, before any solve; the explanation puts reasons that
    concern one form first."""
    from paperbuild.explain import explain_problem, multi_form_groups

    if n_forms < 2 or not multi_form_groups(prob, n_forms):
        return None
    expl = explain_problem(prob, n_forms, time_limit=max(1.0, min(10.0, prob.request.time_limit)))
    st = Status.INFEASIBLE
    return AssemblyResult(status=st, forms=(), explanation=expl, requested=n_forms,
                          stats=SolveStats(st, math.nan, math.nan, time.perf_counter() - t0, None, method, 0))


def run_assembly(prob: Problem, method: str, improve: bool = True, pairs: bool = False,
                 made: Made = (), kept: list[IntArray] | None = None, should_stop: StopCheck | None = None,
                 on_form: FormCallback | None = None) -> AssemblyResult:
    """Assemble ``request.forms`` forms of a compiled problem, keeping ``kept`` (the item indexes of ``made``),
    (shared by the parallel and per-candidate modes)."""
    t0 = time.perf_counter()
    req = prob.request
    n_forms = req.forms
    kept = kept or []
    upfront = None if kept else _infeasible_upfront(prob, n_forms, t0, method)
    if upfront is not None:
        return upfront
    deadline = t0 + req.time_limit * (1 - REPORT_SHARE)
    spread = req.facility_spread if n_forms > 1 else math.inf
    batch, messages = _make(prob, n_forms, spread, kept, t0, deadline, pairs, should_stop, on_form)
    if batch.stop is not None:
        return _short_result(prob, batch, made, t0, method, messages)
    first = time.perf_counter() - t0
    items = batch.forms
    trajectory = [(first, float(sum(coverage_score(prob, f) for f in items)))]
    n_new = n_forms - len(kept)
    kept_score = float(sum(coverage_score(prob, g) for g in kept))
    if n_forms == 1:
        bound = _form_bound(prob, batch.sols[0])
    else:
        bound = kept_score + math.floor(symmetric_bound(prob, n_new) + 1e-6)
        if improve and n_new > 1 and time.perf_counter() < deadline:
            items, lns_solves, lns_cut, steps = improve_pairs(prob, items, batch.window, deadline, bound, t0,
                                                              frozen=len(kept))
            batch.solves += lns_solves
            batch.cut |= lns_cut
            trajectory += steps
            _replace(batch, items)
    forms = _build_forms(prob, batch, made)
    objective = float(sum(f.objective for f in forms))
    optimal = objective >= bound - 1e-9 and (n_forms > 1 or batch.sols[0].status == "optimal")
    status = Status.OPTIMAL if optimal else Status.FEASIBLE
    ov, use = _pair_stats(batch)
    if batch.cut:
        messages.append("the time limit cut a solve short: the forms are valid, but another run (or machine) "
                        "may give different ones; raise time_limit for reproducible results")
    return AssemblyResult(
        status=status, forms=forms,
        stats=_stats(status, batch, t0, method, objective, float(bound), first, tuple(trajectory)),
        max_pairwise_shared=ov, max_item_use=use, messages=tuple(messages), requested=n_forms, complete=True,
        continued_from=len(kept))


def _replace(batch: Batch, items: list[IntArray]) -> None:
    """Put improved forms into the batch (uses and membership follow)."""
    batch.member[:] = False
    batch.uses[:] = 0
    for k, g in enumerate(items):
        batch.member[k, g] = True
        batch.uses[g] += 1
    batch.forms = list(items)


def _run(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest, method: str,
         improve: bool, pairs: bool, made: Made, should_stop: StopCheck | None,
         on_form: FormCallback | None) -> AssemblyResult:
    prob = compile_problem(pool, blueprint, layout, request)
    kept = _taken_over(pool, blueprint, layout, request, prob, made) if made else []
    return run_assembly(prob, method, improve, pairs, made, kept, should_stop, on_form)


def assemble(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest, *, made: Made = (),
             should_stop: StopCheck | None = None, on_form: FormCallback | None = None) -> AssemblyResult:
    """Assemble ``request.forms`` parallel forms (papers A, B, C…).

    Every form meets the layout and blueprint; across forms item use ≤ ``max_item_use``, pairwise shared items
    ≤ ``max_shared`` and mean facilities within ``facility_spread``. Raises
    :class:`~paperbuild.errors.InvalidInput` on bad input; returns status ``infeasible`` with an explanation
    when no paper can be made. ``complete`` is true only when every form is made; otherwise ``partial_forms`` and
    ``shortfall`` say what was made and why the rest is missing.

    ``made``: the ``partial_forms`` of an earlier run of the same request (and seed), to continue it: they are
    kept unchanged and only the missing forms are made (``InvalidInput`` if nothing is missing or they break a
    rule). ``should_stop``: called between solves; when it returns true the run stops (status ``cancelled``).
    ``on_form(made, requested)``: called after each form. Blocking; call it from a worker thread.
    """
    method = "sequential-mip+pair-lns" if request.forms > 1 else "mip"
    return _run(pool, blueprint, layout, request, method, True, False, made, should_stop, on_form)


def assemble_per_candidate(pool: ItemPool, blueprint: Blueprint, layout: Layout, request: AssemblyRequest, *,
                           made: Made = (), should_stop: StopCheck | None = None,
                           on_form: FormCallback | None = None) -> AssemblyResult:
    """One form per candidate for computer-based exams: ``request.forms`` forms (N candidates), any two sharing
    at most ``request.max_shared`` items. Forms are made one by one, two at a time on two threads; the caps
    across forms are met by item swaps (rows in the MIP only when swaps cannot), so N = 200 stays fast. The
    checker proves the cap holds. ``made``, ``should_stop`` and ``on_form`` as in :func:`assemble`."""
    return _run(pool, blueprint, layout, request, "per-candidate-sequential-mip-swaps-2-threads", False, True,
                made, should_stop, on_form)
