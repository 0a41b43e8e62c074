"""The first-fit baseline the CP-SAT assignment is measured against: rooms in time order, evaluators in id order,
under the same rules."""

from __future__ import annotations

from collections import defaultdict

from paperbuild.panels.data import Assignment, PanelRequest
from paperbuild.panels.rules import RequestIndex, overlaps, rotation_limit, validate, with_leaders

__all__ = ["greedy_panels"]


def greedy_panels(req: PanelRequest) -> Assignment:
    """First fit, rooms in time order, evaluators in id order, under the same rules; a panel it cannot fill
    stays short (the checker reports it)."""
    validate(req)
    ix = RequestIndex(req)
    busy: dict[str, list[str]] = defaultdict(list)  # person → sessions they are in
    members: dict[str, list[str]] = {}

    def free(p: str, sid: str) -> bool:
        s = ix.sessions[sid]
        return not any(overlaps(s, ix.sessions[t]) for t in busy[p])

    prev_batch: dict[str, list[str]] = {}
    for key, batches in ix.batches.items():
        for b, rooms in enumerate(batches):
            for rid in rooms:
                prev_batch[rid] = batches[b - 1] if b else []
        del key
    for r in ix.room_order:
        limit = rotation_limit(r.panel_size)
        before = [set(members.get(q, [])) for q in prev_batch[r.id]]
        if not prev_batch[r.id]:
            before = [ix.previous((r.occupation, r.institution))]
        chosen: list[str] = []
        for e in ix.eligible[r.id]:
            if len(chosen) == r.panel_size:
                break
            if not free(e, r.session):
                continue
            if any(e in q and len(q.intersection(chosen)) + 1 > limit for q in before):
                continue
            chosen.append(e)
        for e in chosen:
            busy[e].append(r.session)
        members[r.id] = chosen
    sups: dict[str, str] = {}
    for s in sorted(req.sessions, key=lambda s: (s.start, s.id)):
        if not s.needs_supervisor:
            continue
        for p in ix.sup_eligible[s.id]:
            if free(p, s.id):
                sups[s.id] = p
                busy[p].append(s.id)
                break
    return with_leaders(ix, members, sups)
