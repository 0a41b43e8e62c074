"""Baselines the engine is measured against: PuLP + CBC on the plain model, and a stratified random draw."""

from __future__ import annotations

import itertools
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pulp

from paperbuild.formmip import coverage_weights
from paperbuild.problem import Problem


@dataclass
class BaselineResult:
    forms: list[list[int]]  # item indices per form
    status: str
    objective: float | None
    bound: float | None
    wall: float
    first: float | None  # seconds to the first integer solution (from CBC's log)


def plain_cbc(prob: Problem, n_forms: int, max_use: int | None, max_shared: int | None, spread: float | None,
              time_limit: float, threads: int = 1) -> BaselineResult:
    """The plain model: one boolean per item and form, linearised pairwise overlap, lexicographic coverage."""
    t0 = time.perf_counter()
    pool = prob.pool
    items = np.flatnonzero(prob.usable).tolist()
    F = range(n_forms)
    m = pulp.LpProblem("plain", pulp.LpMaximize)
    x = {(i, f): pulp.LpVariable(f"x_{i}_{f}", cat="Binary") for i in items for f in F}
    wcov = coverage_weights(prob)
    ys = []
    for f in F:
        for p, its in enumerate(prob.point_items):
            its_l = its.tolist()
            if not its_l:
                continue
            y = pulp.LpVariable(f"y_{p}_{f}", 0, 1)
            ys.append((wcov[p], y))
            m += y <= pulp.lpSum(x[i, f] for i in its_l)
            if len(its_l) > prob.request.max_per_point:
                m += pulp.lpSum(x[i, f] for i in its_l) <= prob.request.max_per_point
        for t, cnt in prob.type_count.items():
            m += pulp.lpSum(x[i, f] for i in items if pool.item_type[i] == t) == cnt
        for j in range(len(prob.scope_codes)):
            its_l = prob.scope_items[j].tolist()
            e = pulp.lpSum(int(prob.item_points[i]) * x[i, f] for i in its_l)
            m += e >= int(prob.scope_lo[j])
            m += e <= int(prob.scope_hi[j])
        for g in prob.enemy:
            m += pulp.lpSum(x[i, f] for i in g.tolist()) <= 1
        for s in prob.stimulus_sets:
            sl = [i for i in s.tolist() if i in set(items)]
            for a, b in itertools.pairwise(sl):
                m += x[a, f] == x[b, f]
        for i in prob.include.tolist():
            m += x[i, f] == 1
    fac = {f: pulp.lpSum(float(prob.item_points[i] * pool.facility[i]) * x[i, f] for i in items) for f in F}
    if spread is not None and n_forms > 1:
        lo = pulp.LpVariable("faclo", prob.fac_lo, prob.fac_hi)
        for f in F:
            m += fac[f] >= lo
            m += fac[f] <= lo + spread * prob.total_scaled
    for f in F:
        m += fac[f] >= prob.fac_lo
        m += fac[f] <= prob.fac_hi
    if max_use is not None and n_forms > 1:
        for i in items:
            m += pulp.lpSum(x[i, f] for f in F) <= max_use
    if max_shared is not None and n_forms > 1:
        for f in F:
            for g in range(f + 1, n_forms):
                zs = []
                for i in items:
                    z = pulp.LpVariable(f"z_{i}_{f}_{g}", 0, 1)
                    m += z >= x[i, f] + x[i, g] - 1
                    zs.append(z)
                m += pulp.lpSum(zs) <= max_shared
    m += pulp.lpSum(float(w) * y for w, y in ys)
    with tempfile.TemporaryDirectory() as td:
        log = Path(td) / "cbc.log"
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=threads, logPath=str(log))
        t_solve = time.perf_counter()
        m.solve(solver)
        wall = time.perf_counter() - t0
        text = log.read_text(errors="replace") if log.exists() else ""
    first = _first_solution_time(text)
    if first is not None:
        first += t_solve - t0
    bound = _bound(text)
    status = pulp.LpStatus[m.status]
    forms: list[list[int]] = []
    obj = None
    if m.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        forms = [[i for i in items if (v := x[i, f].value()) is not None and v > 0.5] for f in F]
        obj = float(pulp.value(m.objective))
    return BaselineResult(forms, status, obj, bound if bound is not None else (obj if status == "Optimal" else None),
                          wall, first)


def _first_solution_time(log: str) -> float | None:
    times = []
    for line in log.splitlines():
        if ("Cbc0038I" in line and "Solution found" in line) or "Cbc0012I" in line:
            mt = re.search(r"\(([\d.]+) seconds\)", line)
            if mt:
                times.append(float(mt.group(1)))
        if "Cbc0038I Full problem" in line:
            continue
    return min(times) if times else None


def _bound(log: str) -> float | None:
    b = None
    for line in log.splitlines():
        mt = re.search(r"best possible (-?[\d.e+]+)", line)
        if mt:
            b = float(mt.group(1))
        mt = re.search(r"Objective (-?[\d.e+]+) after", line)
        if mt and "Optimal" in line:
            b = float(mt.group(1))
    return abs(b) if b is not None else None


def stratified_draw(prob: Problem, n_forms: int, seed: int) -> list[list[int]]:
    """What simple systems do: per form, per leaf scope and type, draw items at random in proportion to the
    blueprint weights (largest remainder), ignoring coverage, facility and caps across forms."""
    rng = np.random.default_rng(seed)
    pool = prob.pool
    leaves = [j for j in range(len(prob.scope_codes)) if prob.scope_codes[j] not in
              {s.parent for s in prob.blueprint.scopes}]
    w = np.array([prob.blueprint.scopes[j].weight for j in leaves], dtype=np.float64)
    forms = []
    for _ in range(n_forms):
        chosen: list[int] = []
        for t, cnt in prob.type_count.items():
            share = w / w.sum() * cnt
            k = np.floor(share).astype(int)
            order = np.argsort(-(share - k), kind="stable")
            k[order[: cnt - int(k.sum())]] += 1
            for j, kj in zip(leaves, k.tolist(), strict=True):
                cand = [i for i in prob.scope_items[j].tolist() if pool.item_type[i] == t]
                take = rng.choice(cand, size=min(kj, len(cand)), replace=False).tolist() if cand else []
                chosen += take
            short = cnt - sum(1 for i in chosen if pool.item_type[i] == t)
            if short > 0:
                rest = [i for i in np.flatnonzero(prob.usable & (pool.item_type == t)).tolist() if i not in chosen]
                chosen += rng.choice(rest, size=short, replace=False).tolist()
        forms.append(sorted(chosen))
    return forms
