"""Exact counting reasons why a panel request cannot be met, found fast before any solving: too few people for
one room or one session, or for the rooms and sessions that run at the same time (Hall's condition)."""

from __future__ import annotations

from collections import defaultdict

from paperbuild.panels.data import PanelRequest, PracticalRoom, Reason
from paperbuild.panels.rules import RequestIndex

__all__ = ["precheck", "precheck_index"]


def precheck(req: PanelRequest) -> list[Reason]:
    """Exact counting reasons, fast: each one alone makes the request impossible."""
    ix = RequestIndex(req)
    return precheck_index(ix)


def precheck_index(ix: RequestIndex) -> list[Reason]:
    """:func:`precheck` on an index already built: first each room and session alone, then (only when each
    alone can be met) each set of sessions that share a moment."""
    reasons: list[Reason] = []
    for r in ix.room_order:
        if len(ix.eligible[r.id]) < r.panel_size:
            reasons.append(Reason(rule="panel_size", message=ix.room_shortage(r.id), rooms=[r.id],
                                  sessions=[r.session], needed=r.panel_size, available=len(ix.eligible[r.id])))
    for s in ix.req.sessions:
        if s.needs_supervisor and not ix.sup_eligible[s.id]:
            conflicted = len(ix.req.supervisors) - len(ix.sup_eligible[s.id])
            reasons.append(Reason(rule="supervisor", sessions=[s.id], needed=1, available=0, message=(
                f"session {s.id} on {s.start.date().isoformat()}: {len(ix.req.supervisors)} internal supervisors, "
                f"{conflicted} conflicted, 1 needed")))
    if reasons:
        return reasons
    for clique in ix.cliques:
        reasons += _same_time_reasons(ix, clique)
    return reasons


def _same_time_reasons(ix: RequestIndex, clique: list[str]) -> list[Reason]:
    """Rooms at the same time need disjoint panels: the union of who may sit must cover the seats (Hall), per
    occupation and level, per occupation, then over all occupations (the first set short is reported); likewise
    the sessions' supervisors."""
    reasons: list[Reason] = []
    cset = set(clique)
    rooms = [r for r in ix.room_order if r.session in cset]
    groups: dict[tuple[str, int], list[PracticalRoom]] = defaultdict(list)
    for r in rooms:
        groups[(r.occupation, r.level)].append(r)
    candidates_sets: list[tuple[str, list[PracticalRoom]]] = [
        (f"occupation {occ} level {lvl}", rs) for (occ, lvl), rs in sorted(groups.items()) if len(rs) > 1]
    by_occ: dict[str, list[PracticalRoom]] = defaultdict(list)
    for r in rooms:
        by_occ[r.occupation].append(r)
    candidates_sets += [(f"occupation {occ}", rs) for occ, rs in sorted(by_occ.items())
                        if len(rs) > 1 and len({r.level for r in rs}) > 1]
    if len(by_occ) > 1:
        candidates_sets.append(("all occupations", rooms))
    for label, rs in candidates_sets:
        need = sum(r.panel_size for r in rs)
        pool = set().union(*(ix.eligible[r.id] for r in rs))
        if len(pool) < need:
            s0 = ix.sessions[rs[0].session]
            reasons.append(Reason(rule="overlap", rooms=[r.id for r in rs],
                                  sessions=sorted({r.session for r in rs}), needed=need,
                                  available=len(pool), message=(
                f"{label} on {s0.start.date().isoformat()} at {s0.start.strftime('%H:%M')}: rooms "
                f"{', '.join(r.id for r in rs)} run at the same time and need {need} evaluators; "
                f"{len(pool)} are certified and free of conflicts for any of them")))
            break
    sups = [s for s in clique if ix.sessions[s].needs_supervisor]
    pool_s = set().union(*(ix.sup_eligible[s] for s in sups)) if sups else set()
    if len(pool_s) < len(sups):
        s0 = ix.sessions[clique[0]]
        reasons.append(Reason(rule="supervisor_overlap", sessions=sups, needed=len(sups), available=len(pool_s),
                              message=(f"sessions {', '.join(sups)} on {s0.start.date().isoformat()} run at the "
                                       f"same time and need {len(sups)} internal supervisors; "
                                       f"{len(pool_s)} are free of conflicts")))
    return reasons
