"""Panels for every practical room and a supervisor for every session, by CP-SAT: feasibility first, then the
workload objective from that assignment as a hint."""

from __future__ import annotations

import math
import time
from collections import defaultdict

from ortools.sat.python import cp_model

from paperbuild.panels.counts import precheck_index
from paperbuild.panels.cpmodel import PanelModel, solver_for
from paperbuild.panels.data import Assignment, LoadStats, PanelRequest, PanelResult, PanelsInfeasible, Reason
from paperbuild.panels.infeasible import explain
from paperbuild.panels.rules import RequestIndex, validate

__all__ = ["assign_panels", "load_stats"]


def assign_panels(req: PanelRequest) -> PanelResult:
    """Panels for every practical room and a supervisor for every session, or :class:`PanelsInfeasible`.

    Feasibility first (time to a first assignment), then the workload objective from that assignment as a hint.
    Blocks the calling thread for up to ``time_limit_s`` (plus the explanation when infeasible)."""
    validate(req)
    t0 = time.perf_counter()
    ix = RequestIndex(req)
    reasons = precheck_index(ix)
    if reasons:
        raise PanelsInfeasible(reasons)
    model = PanelModel(ix)
    solver = solver_for(req, req.time_limit_s * 0.5, req.workers)
    status = solver.solve(model.m)
    if status == cp_model.INFEASIBLE:
        raise PanelsInfeasible(explain(req, deadline_s=max(req.time_limit_s, 5.0)))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise PanelsInfeasible([Reason(rule="time", message=(
            f"no assignment found in {req.time_limit_s * 0.5:g} s and none proven impossible; allow more time"))])
    first = model.assignment(solver)
    t_first = time.perf_counter() - t0
    hint = [(v, solver.value(v)) for v in [*model.x.values(), *model.z.values()]]
    model.objective()
    for var, val in hint:
        model.m.add_hint(var, val)
    remaining = max(req.time_limit_s - (time.perf_counter() - t0), 0.1)
    solver = solver_for(req, remaining, req.workers)
    found = _Found(t0)
    status = solver.solve(model.m, found)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        best, label = model.assignment(solver), ("optimal" if status == cp_model.OPTIMAL else "feasible")
        objective, bound, t_best = solver.objective_value, solver.best_objective_bound, found.last or t_first
    else:
        best, label, objective, bound, t_best = first, "feasible", 0.0, 0.0, t_first
    return PanelResult(status=label, assignment=best, stats=load_stats(req, best),  # type: ignore[arg-type]
                       time_to_feasible_s=round(t_first, 3), time_to_best_s=round(t_best, 3),
                       wall_time_s=round(time.perf_counter() - t0, 3), seed=req.seed, objective=objective,
                       bound=bound)


class _Found(cp_model.CpSolverSolutionCallback):
    """Remembers when the last (best so far) solution came."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.last = 0.0

    def on_solution_callback(self) -> None:
        self.last = time.perf_counter() - self.t0


def load_stats(req: PanelRequest, assignment: Assignment) -> LoadStats:
    ix = RequestIndex(req)
    pool = sorted({e for rid in ix.eligible for e in ix.eligible[rid]})
    load = dict.fromkeys(pool, 0)
    for p in assignment.panels:
        for e in p.members:
            load[e] = load.get(e, 0) + 1
    sup: dict[str, int] = defaultdict(int)
    for s in assignment.supervisors:
        sup[s.supervisor] += 1
    values = list(load.values()) or [0]
    mean = sum(values) / len(values)
    seats = sum(r.panel_size for r in req.rooms)
    return LoadStats(pool=len(pool), used=sum(1 for v in values if v), max_load=max(values), min_load=min(values),
                     mean=round(mean, 4), stdev=round(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), 4),
                     lower_bound=math.ceil(seats / len(pool)) if pool else 0,
                     supervisor_max_load=max(sup.values(), default=0))
