"""Why a panel request cannot be met, in words with the people counted: the exact counting reasons when there are
any, else the smallest set of rules found that cannot hold together (a core of CP-SAT assumptions, shrunk by
deletion)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ortools.sat.python import cp_model

from paperbuild.panels.counts import precheck_index
from paperbuild.panels.cpmodel import PanelModel, solver_for
from paperbuild.panels.data import PanelRequest, Reason
from paperbuild.panels.rules import RequestIndex, validate

__all__ = ["explain"]


def _rule_words(ix: RequestIndex, kind: str, keys: tuple[str, ...]) -> Reason:
    if kind == "panel_size":
        rid = keys[0]
        r = ix.rooms[rid]
        return Reason(rule=kind, rooms=[rid], sessions=[r.session], needed=r.panel_size,
                      available=len(ix.eligible[rid]),
                      message=f"a panel of {r.panel_size} for {ix.room_shortage(rid)}")
    if kind == "supervisor":
        sid = keys[0]
        return Reason(rule=kind, sessions=[sid], needed=1, available=len(ix.sup_eligible[sid]), message=(
            f"an internal supervisor for session {sid} not on its panels: "
            f"{len(ix.sup_eligible[sid])} free of conflicts"))
    if kind == "overlap":
        day = ix.sessions[keys[0]].start
        return Reason(rule=kind, sessions=list(keys), message=(
            f"nobody in two places at once: sessions {', '.join(keys)} overlap on {day.date().isoformat()} "
            f"at {day.strftime('%H:%M')}"))
    if kind == "rotation_previous":
        return Reason(rule=kind, message=(
            f"≥ ⌈n/3⌉ new members against the previous panel of occupation {keys[0]} at {keys[1]}"))
    occ, inst, b = keys
    batches = ix.batches[(occ, inst)]
    rooms = batches[int(b) - 1] + batches[int(b)]
    pool = set().union(*(ix.eligible[r] for r in rooms))
    return Reason(rule=kind, rooms=rooms, available=len(pool), message=(
        f"≥ ⌈n/3⌉ new members between batches {int(b)} and {int(b) + 1} of occupation {occ} at {inst} "
        f"(rooms {', '.join(rooms)}): {len(pool)} certified and free of conflicts for them"))


def explain(req: PanelRequest, deadline_s: float = 10.0) -> list[Reason]:
    """The smallest set of rules found that cannot hold together, in words with people counted."""
    validate(req)
    ix = RequestIndex(req)
    reasons = precheck_index(ix)
    if reasons:
        return reasons
    t_end = time.perf_counter() + deadline_s
    model = PanelModel(ix, with_assumptions=True)

    def infeasible_with(lits: Sequence[cp_model.IntVar]) -> tuple[bool, list[int]]:
        model.m.clear_assumptions()
        model.m.add_assumptions(lits)
        solver = solver_for(req, max(min(t_end - time.perf_counter(), deadline_s / 4), 0.05), 1)
        status = solver.solve(model.m)
        if status == cp_model.INFEASIBLE:
            return True, list(solver.sufficient_assumptions_for_infeasibility())
        return False, []

    bad, core = infeasible_with(model.lits)
    if not bad:
        return [Reason(rule="time", message="no assignment was found in time, and none was proven impossible")]
    by_index = {v.index: v for v in model.lits}
    current = [by_index[i] for i in core if i in by_index] or list(model.lits)
    i = 0
    while i < len(current) and time.perf_counter() < t_end:  # deletion: drop each rule the rest does not need
        trial = current[:i] + current[i + 1:]
        still, sub = infeasible_with(trial)
        if still:
            keep = {v.index for v in trial} & set(sub) if sub else {v.index for v in trial}
            current = [v for v in trial if v.index in keep] or trial
        else:
            i += 1
    return [_rule_words(ix, *model.rules[v.index]) for v in current]
