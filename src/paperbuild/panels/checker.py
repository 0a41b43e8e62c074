"""The independent checker of a panel assignment: every rule it breaks, written apart from the solvers, on the
rules' text (the package docstring), so a solver's mistake cannot hide in shared code."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from paperbuild.panels.data import MIN_PANEL, Assignment, Evaluator, Panel, PanelRequest, PracticalRoom, Violation
from paperbuild.panels.rules import overlaps

__all__ = ["check_assignment"]

Place = tuple[str, str | None]  # (session, room; None: supervising the session)


def check_assignment(req: PanelRequest, assignment: Assignment, rooms: Iterable[str] | None = None) -> list[Violation]:
    """Every rule the assignment breaks (empty: it holds).

    ``rooms``: report only violations that involve these rooms (e.g. a panel set by hand), with the rest of the
    assignment as context; supervisors are then checked only for those rooms' sessions."""
    out: list[Violation] = []
    room_of = {r.id: r for r in req.rooms}
    panels = _panels_by_room(assignment, room_of, out)
    sessions = {s.id: s for s in req.sessions}
    evaluators = {e.id: e for e in req.evaluators}
    for r in req.rooms:
        _check_panel(r, panels.get(r.id), sessions[r.session].start.date(), evaluators, out)
    places, seen_sup = _places(req, assignment, panels, room_of, out)
    _check_places(req, places, out)
    _check_rotation(req, panels, out)
    _check_supervisors(req, panels, room_of, seen_sup, out)
    if rooms is not None:
        keep = set(rooms)
        keep_sessions = {room_of[r].session for r in keep if r in room_of}
        out = [v for v in out if v.room in keep or keep.intersection(v.rooms)
               or (v.room is None and v.session in keep_sessions)]
    return out


def _panels_by_room(assignment: Assignment, room_of: dict[str, PracticalRoom],
                    out: list[Violation]) -> dict[str, Panel]:
    panels: dict[str, Panel] = {}
    for p in assignment.panels:
        if p.room not in room_of:
            out.append(Violation(rule="unknown_room", room=p.room, message=f"room {p.room} is not in the request"))
            continue
        if p.room in panels:
            out.append(Violation(rule="panel_twice", room=p.room, message=f"room {p.room} has two panels"))
        panels[p.room] = p
    return panels


def _check_panel(r: PracticalRoom, pan: Panel | None, day: date, evs: dict[str, Evaluator],
                 out: list[Violation]) -> None:
    """Size, leader, and each member: known, not barred, certified on the exam ``day``, no conflict in the room."""
    if pan is None or not pan.members:
        out.append(Violation(rule="panel_size", room=r.id, session=r.session,
                             message=f"room {r.id} has no panel; at least {r.panel_size} evaluators are needed"))
        return
    if len(set(pan.members)) != len(pan.members):
        out.append(Violation(rule="duplicate_member", room=r.id, message=f"room {r.id}: a member is listed twice"))
    if len(set(pan.members)) < max(r.panel_size, MIN_PANEL):
        out.append(Violation(rule="panel_size", room=r.id, session=r.session, message=(
            f"room {r.id} has a panel of {len(set(pan.members))}; at least {max(r.panel_size, MIN_PANEL)} "
            "evaluators mark a practical exam (§20)")))
    if pan.leader not in pan.members:
        out.append(Violation(rule="leader", room=r.id, person=pan.leader or None,
                             message=f"room {r.id}: the leader {pan.leader or '(none)'} is not on the panel"))
    for e in pan.members:
        ev = evs.get(e)
        if ev is None:
            out.append(Violation(rule="unknown_evaluator", room=r.id, person=e,
                                 message=f"room {r.id}: {e} is not a known evaluator"))
            continue
        if ev.barred:
            out.append(Violation(rule="barred", room=r.id, person=e,
                                 message=f"room {r.id}: evaluator {e} is barred by their integrity record"))
        ok = [c for c in ev.certificates if c.occupation == r.occupation and c.level <= r.level]
        if not ok:
            out.append(Violation(rule="certificate", room=r.id, person=e, message=(
                f"room {r.id}: evaluator {e} holds no certificate for occupation {r.occupation} "
                f"at level {r.level} or higher")))
        elif not any(c.valid_until >= day for c in ok):
            out.append(Violation(rule="certificate", room=r.id, person=e, message=(
                f"room {r.id}: evaluator {e}'s certificate for occupation {r.occupation} expired on "
                f"{max(c.valid_until for c in ok).isoformat()}, before the exam on {day.isoformat()}")))
        hit = sorted(set(ev.conflicts) & set(r.candidates))
        if hit:
            out.append(Violation(rule="conflict", room=r.id, person=e, message=(
                f"room {r.id}: evaluator {e} has a conflict with candidate(s) {', '.join(hit[:5])} in the room")))


def _places(req: PanelRequest, assignment: Assignment, panels: dict[str, Panel], room_of: dict[str, PracticalRoom],
            out: list[Violation]) -> tuple[dict[str, list[Place]], dict[str, list[str]]]:
    """Where each person is (panels, then supervisions), and who supervises each session."""
    sessions = {s.id for s in req.sessions}
    places: dict[str, list[Place]] = defaultdict(list)
    for rid, p in panels.items():
        for e in set(p.members):
            places[e].append((room_of[rid].session, rid))
    seen_sup: dict[str, list[str]] = defaultdict(list)
    for slot in assignment.supervisors:
        if slot.session not in sessions:
            out.append(Violation(rule="unknown_session", session=slot.session,
                                 message=f"session {slot.session} is not in the request"))
            continue
        seen_sup[slot.session].append(slot.supervisor)
        places[slot.supervisor].append((slot.session, None))
    return places, seen_sup


def _check_places(req: PanelRequest, places: dict[str, list[Place]], out: list[Violation]) -> None:
    """Nobody in two places at once: against what they are busy with outside the request, then among its places."""
    sessions = {s.id: s for s in req.sessions}
    for busy in req.busy:
        for sid, where_room in places.get(busy.person, []):
            if overlaps(sessions[sid], busy):
                what = f"room {where_room}" if where_room else f"supervising session {sid}"
                out.append(Violation(rule="overlap", person=busy.person, room=where_room, session=sid,
                                     rooms=[where_room] if where_room else [], message=(
                    f"{busy.person} is in two places at once: {what} and {busy.what or 'elsewhere'} "
                    f"({busy.start.strftime('%Y-%m-%d %H:%M')}–{busy.end.strftime('%H:%M')})")))
    for person, where in places.items():
        for i in range(len(where)):
            for j in range(i + 1, len(where)):
                (sa, ra), (sb, rb) = where[i], where[j]
                if overlaps(sessions[sa], sessions[sb]):
                    what_a = f"room {ra}" if ra else f"supervising session {sa}"
                    what_b = f"room {rb}" if rb else f"supervising session {sb}"
                    out.append(Violation(rule="overlap", person=person, room=ra or rb, session=sa,
                                         rooms=[x for x in (ra, rb) if x], message=(
                        f"{person} is in two places at once: {what_a} and {what_b}")))


def _check_rotation(req: PanelRequest, panels: dict[str, Panel], out: list[Violation]) -> None:
    """At least ⌈n/3⌉ new members against every panel of the batch before (the previous panel, for the first)."""
    sessions = {s.id: s for s in req.sessions}
    groups: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in req.rooms:
        groups[(r.occupation, r.institution)][r.session].append(r.id)
    for key, by_session in groups.items():
        order = sorted(by_session, key=lambda sid: (sessions[sid].start, sid))
        prev_members = [set(p.members) for p in req.previous if (p.occupation, p.institution) == key][-1:]
        for b, sid in enumerate(order):
            befores = ([(f"the previous panel of occupation {key[0]} at {key[1]}", m) for m in prev_members] if b == 0
                       else [(f"room {q} (batch {b})", set(panels[q].members)) for q in by_session[order[b - 1]]
                             if q in panels])
            for rid in by_session[sid]:
                if rid not in panels:
                    continue
                now = set(panels[rid].members)
                need = math.ceil(len(now) / 3)
                for label, before in befores:
                    new = len(now - before)
                    if new < need:
                        out.append(Violation(rule="rotation", room=rid, session=sid, message=(
                            f"room {rid} (batch {b + 1}) keeps {len(now & before)} of {label}'s members: only {new} "
                            f"new of {len(now)}; at least ⌈{len(now)}/3⌉ = {need} must be new (§20)")))


def _check_supervisors(req: PanelRequest, panels: dict[str, Panel], room_of: dict[str, PracticalRoom],
                       seen_sup: dict[str, list[str]], out: list[Violation]) -> None:
    """Exactly one known internal supervisor per session, without a conflict, not on its panels."""
    sups = {s.id: s for s in req.supervisors}
    on_panel: dict[str, set[str]] = defaultdict(set)
    for rid, p in panels.items():
        on_panel[room_of[rid].session].update(p.members)
    for s in req.sessions:
        got = seen_sup.get(s.id, [])
        if not s.needs_supervisor and not got:
            continue
        if len(got) != 1:
            out.append(Violation(rule="supervisor", session=s.id, message=(
                f"session {s.id} has {len(got)} internal supervisors; every exam has exactly one (§17(四))")))
        for who in got:
            sp = sups.get(who)
            if sp is None:
                out.append(Violation(rule="unknown_supervisor", session=s.id, person=who,
                                     message=f"session {s.id}: {who} is not a known internal supervisor"))
                continue
            hit = sorted(set(sp.conflicts) & set(s.candidates))
            if hit:
                out.append(Violation(rule="conflict", session=s.id, person=who, message=(
                    f"session {s.id}: supervisor {who} has a conflict with candidate(s) {', '.join(hit[:5])}")))
            if who in on_panel[s.id]:
                out.append(Violation(rule="supervisor_on_panel", session=s.id, person=who, message=(
                    f"session {s.id}: supervisor {who} sits on one of its panels")))
