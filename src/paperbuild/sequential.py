"""Forms one at a time: each an exact one-form MIP, then item swaps for the caps across forms.

Method (chosen by measurement, see ``benchmarks/assembly/RESULTS.md``): every form is the one-form MIP
(:mod:`paperbuild.formmip`, CBC, built once and updated in place) with the same facility window of width δ for all
forms, and tie-break costs (worth less than one covered appraisal point in total) that prefer items whose
remaining uses are needed by the remaining forms, items used least so far, and a seeded jitter. The caps across
forms (``max_shared`` against every earlier form, ``max_item_use``) are not rows of the MIP: a solution that
breaks one is repaired by item swaps (:mod:`paperbuild.swaps`) that keep every other rule and the coverage; only
when no swap helps do the offending earlier forms become rows (``sum(x[items of g]) <= K``) and the form is solved
again. 200 dense overlap rows would make every solve about three times slower.

With ``pairs`` two forms are solved side by side on two threads (CBC releases the GIL), steered to different
seeded halves of the bank; forms are accepted in order, so the outcome does not depend on thread timing.

Time: :class:`TimePlan` gives each solve what the forms still to make can spare at the speed seen so far (a slow
form borrows from the rest), and a form that found nothing in its share is tried again with all the time left:
the run stops early only when every form is done.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from paperbuild.formmip import FormSolution, FormSpec, LpFirstForm
from paperbuild.model import ShortfallReason
from paperbuild.problem import Problem
from paperbuild.swaps import SwapIndex, repair_caps

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: Shortest time a solve is given (below this CBC cannot even read the model of a large bank).
MIN_SOLVE = 0.2

StopCheck = Callable[[], bool]
FormCallback = Callable[[int, int], None]


@dataclass
class Stop:
    """Why the run ended before every form was made: ``reason`` is ``"time_limit"``, ``"infeasible"`` or
    ``"cancelled"``; ``at`` the index of the first form not made."""

    reason: ShortfallReason
    at: int


@dataclass
class Batch:
    """The forms of one call so far: the forms taken over (``kept``) first, then the forms made here."""

    prob: Problem
    n_forms: int
    window: tuple[float, float]
    forms: list[IntArray] = field(default_factory=list)
    kept: int = 0
    sols: list[FormSolution] = field(default_factory=list)
    made_at: list[float] = field(default_factory=list)  # seconds from the start, per form made here
    solves: int = 0
    cut: bool = False  # a solve ended on its time limit: another run may give other forms
    stop: Stop | None = None

    def __post_init__(self) -> None:
        self.uses = np.zeros(self.prob.n, dtype=np.int64)
        self.member = np.zeros((self.n_forms, self.prob.n), dtype=np.bool_)

    def accept(self, items: IntArray) -> None:
        self.member[len(self.forms), items] = True
        self.uses[items] += 1
        self.forms.append(items)


class TimePlan:
    """Time for each solve: what the forms still to make can spare at the speed seen so far."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.seen: list[float] = []

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def limit(self, forms_left: int, retry: bool) -> float:
        """Seconds for the next solve with ``forms_left`` forms (this one included) still to make. A retry gets
        everything that is left."""
        left = self.left()
        if retry or forms_left <= 1:
            return max(0.0, left)
        share = left / forms_left
        typical = statistics.median(self.seen[-15:]) if self.seen else 0.5 * share
        reserve = (forms_left - 1) * min(typical, share)
        return max(0.0, min(left, max(MIN_SOLVE, left - reserve)))

    def record(self, seconds: float) -> None:
        self.seen.append(seconds)


def costs(prob: Problem, uses: IntArray, f: int, n_forms: int, seed: int, slot: int = -1) -> FloatArray:
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


class _Maker:
    """Makes the forms of a batch: the MIP models (one per thread), the swap index and the rows added so far."""

    def __init__(self, batch: Batch, plan: TimePlan, pairs: bool, t0: float) -> None:
        prob = batch.prob
        self.batch, self.plan, self.t0 = batch, plan, t0
        fac = (batch.window[0] * prob.total_scaled, batch.window[1] * prob.total_scaled)
        self.fac = fac
        n_models = 2 if pairs and batch.n_forms - len(batch.forms) > 1 else 1
        self.models = [LpFirstForm(prob, FormSpec(available=prob.usable.copy(), cost=np.zeros(prob.n), fac_lo=fac[0],
                                                  fac_hi=fac[1], must=prob.include if prob.include.size else None))
                       for _ in range(n_models)]
        self.rows: list[set[int]] = [set() for _ in self.models]
        self.index = SwapIndex.build(prob)

    @property
    def trivially_infeasible(self) -> bool:
        return self.models[0].trivially_infeasible

    def prepare(self, slot: int, f: int) -> None:
        """Availability (uses left) and costs of model ``slot`` for form ``f``."""
        b, req = self.batch, self.batch.prob.request
        avail = b.prob.usable.copy()
        if req.max_item_use is not None:
            avail &= b.uses < req.max_item_use
        self.models[slot].set_available(avail)
        pair = slot if len(self.models) > 1 else -1
        self.models[slot].set_cost(costs(b.prob, b.uses, f, b.n_forms, req.seed, pair))

    def solve(self, slot: int, forms_left: int, retry: bool = False) -> FormSolution:
        t = time.perf_counter()
        limit = self.plan.limit(forms_left, retry)
        sol = self.models[slot].solve(limit)
        took = time.perf_counter() - t
        self.plan.record(took)
        if sol.status == "infeasible" and took >= 0.9 * limit:
            # a solver stopped by its time limit may say "infeasible" without a proof (seen on a loaded machine
            # with a few milliseconds a form): only a solve that ended in time proves it
            sol.status = "unknown"
        self.batch.solves += 1
        self.batch.cut |= sol.status in ("feasible", "unknown")
        return sol

    def settle(self, slot: int, f: int, sol: FormSolution) -> Stop | None:
        """Make ``sol`` (form ``f`` from model ``slot``) meet the caps against the forms accepted so far and
        accept it: swaps first, else rows and another solve, until it fits or time runs out."""
        b, prob = self.batch, self.batch.prob
        req = prob.request
        retried = False
        while True:
            if sol.status == "unknown":
                if retried or self.plan.left() < MIN_SOLVE:
                    return Stop("time_limit", f)
                retried = True
                sol = self.solve(slot, b.n_forms - f, retry=True)
                continue
            if sol.status == "infeasible":
                return Stop("infeasible", f)
            n = len(b.forms)
            avail = prob.usable
            fixed = repair_caps(prob, self.index, sol.items, b.member[:n], b.uses, avail, self.fac, req.seed + f)
            if fixed is not None:
                b.accept(fixed)
                b.sols.append(sol)
                b.made_at.append(time.perf_counter() - self.t0)
                return None
            self._add_rows(slot, sol.items)
            self.prepare(slot, f)
            if self.plan.left() < MIN_SOLVE:
                return Stop("time_limit", f)
            sol = self.solve(slot, b.n_forms - f)

    def _add_rows(self, slot: int, items: IntArray) -> None:
        """Rows for the accepted forms that ``items`` shares too many items with (in every model: they hold for
        every later form too)."""
        b, k_cap = self.batch, self.batch.prob.request.max_shared
        if k_cap is None:
            return
        shared = b.member[: len(b.forms)][:, items].sum(axis=1)
        for g in np.flatnonzero(shared > k_cap).tolist():
            for m, rows in zip(self.models, self.rows, strict=True):
                if g not in rows:
                    m.add_overlap(b.forms[g], k_cap)
                    rows.add(g)


def make_forms(batch: Batch, plan: TimePlan, t0: float, pairs: bool = False, should_stop: StopCheck | None = None,
               on_form: FormCallback | None = None) -> Batch:
    """Make the missing forms of ``batch`` (in place) until every form is made or the run must stop
    (``batch.stop`` says why)."""
    maker = _Maker(batch, plan, pairs, t0)
    if maker.trivially_infeasible:
        batch.stop = Stop("infeasible", len(batch.forms))
        return batch
    executor = ThreadPoolExecutor(max_workers=2) if len(maker.models) > 1 else None
    try:
        while len(batch.forms) < batch.n_forms:
            f = len(batch.forms)
            if should_stop is not None and should_stop():
                batch.stop = Stop("cancelled", f)
                return batch
            if plan.left() <= 0:
                batch.stop = Stop("time_limit", f)
                return batch
            todo = [f, f + 1] if executor is not None and f + 1 < batch.n_forms else [f]
            for slot, ff in enumerate(todo):
                maker.prepare(slot, ff)
            if executor is not None and len(todo) == 2:
                futs = [executor.submit(maker.solve, k, batch.n_forms - f) for k in range(2)]
                sols = [fu.result() for fu in futs]
            else:
                sols = [maker.solve(0, batch.n_forms - f)]
            for slot, ff in enumerate(todo):
                batch.stop = maker.settle(slot, ff, sols[slot])
                if batch.stop is not None:
                    return batch
                if on_form is not None:
                    on_form(len(batch.forms), batch.n_forms)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return batch
