"""Panels of practical rooms and internal supervisors: from records to the solver's request, storing its
assignment, reading it back, a panel set by hand, and who may score a practical exam."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild.panels as pp
from qbank.audit.services import record
from qbank.lib.actors import Actor
from qbank.lib.problems import FieldError, ProblemError, bad_request, not_found
from qbank.panels.models import (
    Evaluator,
    EvaluatorCertificate,
    PanelConflict,
    PanelMember,
    SessionSupervisor,
    Supervisor,
)
from qbank.panels.people import certificates_of
from qbank.panels.schemas import (
    ManualPanelIn,
    PanelMemberOut,
    RoomPanelOut,
    SessionPanelsOut,
    SessionSupervisorOut,
)
from qbank.sessions.models import Candidate, ExamSession, Room
from qbank.settings import Settings


# ------------------------------------------------------------------------------------ from records to solver
@dataclass
class Built:
    request: pp.PanelRequest
    rooms: dict[str, Room]
    sessions: dict[str, ExamSession]


def _ev(i: int) -> str:
    return f"e{i}"


def _sup_pid(s: Supervisor) -> str:
    return _ev(s.evaluator_id) if s.evaluator_id is not None else f"s{s.id}"


async def build_request(db: AsyncSession, settings: Settings, session_ids: list[int], *, seed: int = 0,
                        time_limit_s: float = 20.0) -> Built:
    """The solver's request for these sessions: their practical rooms, every evaluator with a certificate, the
    internal supervisors, conflicts, people busy in other sessions at the same time, and the last panel before
    (per occupation and site) for the rotation. One function on purpose: each step reads what the previous one
    found (rooms → sessions → people → conflicts → busy times), and splitting it would pass all of it around."""
    tz = settings.tz
    rows = (await db.scalars(select(ExamSession).where(ExamSession.id.in_(session_ids)))).all()
    missing = sorted(set(session_ids) - {r.id for r in rows})
    if missing:
        raise bad_request("sessions", f"session(s) {', '.join(map(str, missing))} do not exist", 404)
    sessions = {str(r.id): r for r in rows}
    rooms = (await db.scalars(select(Room).where(Room.session_id.in_(session_ids)).order_by(Room.id))).all()
    cands = (await db.scalars(select(Candidate).where(Candidate.session_id.in_(session_ids)))).all()
    by_room: dict[int, list[str]] = defaultdict(list)
    by_session: dict[int, list[str]] = defaultdict(list)
    for c in cands:
        by_room[c.room_id].append(f"c{c.id}")
        by_session[c.session_id].append(f"c{c.id}")
    conflicts = (await db.scalars(select(PanelConflict).where(
        PanelConflict.candidate_id.in_([c.id for c in cands])))).all() if cands else []
    ev_conf: dict[int, list[str]] = defaultdict(list)
    sup_conf: dict[int, list[str]] = defaultdict(list)
    for k in conflicts:
        if k.evaluator_id is not None:
            ev_conf[k.evaluator_id].append(f"c{k.candidate_id}")
        if k.supervisor_id is not None:
            sup_conf[k.supervisor_id].append(f"c{k.candidate_id}")
    occupations = {r.occupation_code for r in rows}
    evs = (await db.scalars(select(Evaluator).where(Evaluator.id.in_(
        select(EvaluatorCertificate.evaluator_id).where(EvaluatorCertificate.occupation_code.in_(occupations))))
        .order_by(Evaluator.id))).all()
    certs = await certificates_of(db, [e.id for e in evs])
    evaluators = [pp.Evaluator(id=_ev(e.id), barred=e.barred, conflicts=ev_conf[e.id], certificates=[
        pp.Certificate(occupation=c.occupation_code, level=c.level, valid_until=c.valid_until)
        for c in certs[e.id]]) for e in evs if certs.get(e.id)]
    sups = (await db.scalars(select(Supervisor).where(Supervisor.kind == "internal", Supervisor.active.is_(True))
                             .order_by(Supervisor.id))).all()
    supervisors = []
    for s in sups:
        pid = _sup_pid(s)
        conf = sup_conf[s.id] + (ev_conf[s.evaluator_id] if s.evaluator_id is not None else [])
        supervisors.append(pp.Supervisor(id=pid, conflicts=conf))
    psessions = [pp.Session(id=sid, start=r.starts_at.astimezone(tz), end=r.ends_at.astimezone(tz),
                            candidates=by_session[r.id]) for sid, r in sessions.items()]
    prooms = [pp.PracticalRoom(id=str(room.id), session=str(room.session_id),
                               occupation=sessions[str(room.session_id)].occupation_code,
                               level=sessions[str(room.session_id)].level, institution=room.site_code,
                               candidates=by_room[room.id]) for room in rooms if room.kind == "practical"]
    busy: list[pp.Busy] = []
    if rows:
        lo, hi = min(r.starts_at for r in rows), max(r.ends_at for r in rows)
        other = select(ExamSession).where(ExamSession.id.not_in(session_ids), ExamSession.starts_at < hi,
                                          ExamSession.ends_at > lo)
        for sess, member in (await db.execute(select(ExamSession, PanelMember).join(
                PanelMember, PanelMember.session_id == ExamSession.id).where(
                ExamSession.id.in_(other.with_only_columns(ExamSession.id))))):
            busy.append(pp.Busy(person=_ev(member.evaluator_id), start=sess.starts_at.astimezone(tz),
                                end=sess.ends_at.astimezone(tz), what=f"the panel of room {member.room_id} "
                                f"(session {sess.id})"))
        for sess, sup in (await db.execute(select(ExamSession, Supervisor).join(
                SessionSupervisor, SessionSupervisor.session_id == ExamSession.id).join(
                Supervisor, Supervisor.id == SessionSupervisor.supervisor_id).where(
                ExamSession.id.in_(other.with_only_columns(ExamSession.id))))):
            busy.append(pp.Busy(person=_sup_pid(sup), start=sess.starts_at.astimezone(tz),
                                end=sess.ends_at.astimezone(tz), what=f"supervising session {sess.id}"))
    previous: list[pp.PreviousPanel] = []
    groups = {(r.occupation, r.institution) for r in prooms}
    for occ, site in sorted(groups):
        first = min(sessions[r.session].starts_at for r in prooms if (r.occupation, r.institution) == (occ, site))
        last = await db.scalar(
            select(ExamSession.id).join(Room, Room.session_id == ExamSession.id)
            .join(PanelMember, PanelMember.room_id == Room.id)
            .where(ExamSession.occupation_code == occ, Room.site_code == site, ExamSession.starts_at < first,
                   ExamSession.id.not_in(session_ids))
            .order_by(ExamSession.starts_at.desc()).limit(1))
        if last is not None:
            members = (await db.scalars(select(PanelMember.evaluator_id).join(Room, Room.id == PanelMember.room_id)
                                        .where(PanelMember.session_id == last, Room.site_code == site))).all()
            previous.append(pp.PreviousPanel(occupation=occ, institution=site, members=[_ev(m) for m in members]))
    req = pp.PanelRequest(sessions=psessions, rooms=prooms, evaluators=evaluators, supervisors=supervisors,
                          previous=previous, busy=busy, seed=seed, time_limit_s=time_limit_s)
    return Built(request=req, rooms={str(r.id): r for r in rooms}, sessions=sessions)


def _int_id(pid: str) -> int:
    return int(pid[1:])



async def store_assignment(db: AsyncSession, actor: Actor, built: Built, assignment: pp.Assignment,
                           job_id: str | None) -> None:
    room_ids = [int(r) for r in built.rooms if built.rooms[r].kind == "practical"]
    session_ids = [int(s) for s in built.sessions]
    if room_ids:
        await db.execute(delete(PanelMember).where(PanelMember.room_id.in_(room_ids)))
    await db.execute(delete(SessionSupervisor).where(SessionSupervisor.session_id.in_(session_ids),
                                                     SessionSupervisor.kind == "internal"))
    sup_ids: dict[str, int] = {}
    for s in (await db.scalars(select(Supervisor).where(Supervisor.kind == "internal"))).all():
        sup_ids[_sup_pid(s)] = s.id
    per_session: dict[int, dict[str, Any]] = defaultdict(lambda: {"panels": {}, "supervisor": None})
    for p in assignment.panels:
        room = built.rooms[p.room]
        for e in p.members:
            db.add(PanelMember(session_id=room.session_id, room_id=room.id, evaluator_id=_int_id(e),
                               leader=e == p.leader, source="solver", job_id=job_id, assigned_by=actor.label))
        per_session[room.session_id]["panels"][str(room.id)] = {"members": p.members, "leader": p.leader}
    for slot in assignment.supervisors:
        sid = int(slot.session)
        db.add(SessionSupervisor(session_id=sid, supervisor_id=sup_ids[slot.supervisor], kind="internal",
                                 job_id=job_id, assigned_by=actor.label))
        per_session[sid]["supervisor"] = sup_ids[slot.supervisor]
    await db.flush()
    for sid in session_ids:
        await record(db, actor, "panels.assign", "session", sid, after=per_session[sid],
                     detail={"job": job_id} if job_id else {})


# ---------------------------------------------------------------------------------------- reading panels
async def session_panels(db: AsyncSession, settings: Settings, session: ExamSession) -> SessionPanelsOut:
    tz = settings.tz
    rooms = (await db.scalars(select(Room).where(Room.session_id == session.id, Room.kind == "practical")
                              .order_by(Room.id))).all()
    members = (await db.execute(select(PanelMember, Evaluator).join(Evaluator, Evaluator.id == PanelMember.evaluator_id)
                                .where(PanelMember.session_id == session.id)
                                .order_by(PanelMember.leader.desc(), Evaluator.id))).all()
    by_room: dict[int, list[tuple[PanelMember, Evaluator]]] = defaultdict(list)
    for m, e in members:
        by_room[m.room_id].append((m, e))
    panels = []
    for r in rooms:
        ms = by_room.get(r.id, [])
        panels.append(RoomPanelOut(
            room_id=r.id, room=f"{r.site_code}/{r.code}",
            members=[PanelMemberOut(evaluator_id=e.id, name=e.name, id_number=e.id_number_masked, employer=e.employer,
                                    leader=m.leader) for m, e in ms],
            leader_id=next((e.id for m, e in ms if m.leader), None), source=ms[0][0].source if ms else None))
    sups = (await db.execute(select(SessionSupervisor, Supervisor).join(
        Supervisor, Supervisor.id == SessionSupervisor.supervisor_id).where(
        SessionSupervisor.session_id == session.id).order_by(SessionSupervisor.kind.desc(), Supervisor.id)))
    return SessionPanelsOut(
        session_id=session.id, occupation_code=session.occupation_code, level=session.level,
        local_start=session.starts_at.astimezone(tz).isoformat(), local_end=session.ends_at.astimezone(tz).isoformat(),
        panels=panels, supervisors=[SessionSupervisorOut(supervisor_id=s.id, name=s.name, kind=ss.kind,
                                                         organisation=s.organisation, draw_id=ss.draw_id)
                                    for ss, s in sups])


async def current_assignment(db: AsyncSession, built: Built) -> pp.Assignment:
    room_ids = [int(r) for r in built.rooms]
    members = (await db.scalars(select(PanelMember).where(PanelMember.room_id.in_(room_ids)))).all() if room_ids \
        else []
    panels: dict[int, pp.Panel] = {}
    for m in members:
        p = panels.setdefault(m.room_id, pp.Panel(room=str(m.room_id), members=[], leader=""))
        p.members.append(_ev(m.evaluator_id))
        if m.leader:
            p.leader = _ev(m.evaluator_id)
    sups = (await db.execute(select(SessionSupervisor, Supervisor).join(
        Supervisor, Supervisor.id == SessionSupervisor.supervisor_id).where(
        SessionSupervisor.session_id.in_([int(s) for s in built.sessions]),
        SessionSupervisor.kind == "internal"))).all()
    return pp.Assignment(panels=list(panels.values()),
                         supervisors=[pp.SupervisorSlot(session=str(ss.session_id), supervisor=_sup_pid(s))
                                      for ss, s in sups])


# ------------------------------------------------------------------------------------------ a panel by hand
_FIELD_OF_RULE = {"leader": "leader"}


async def set_manual_panel(db: AsyncSession, settings: Settings, actor: Actor, session: ExamSession, room_id: int,
                           data: ManualPanelIn) -> None:
    """Replace one room's panel with the given members and leader, if the checker finds nothing wrong with it."""
    room = await db.get(Room, room_id)
    if room is None or room.session_id != session.id:
        raise not_found("room", f"{room_id} in session {session.id}")
    if room.kind != "practical":
        raise bad_request("room", f"room {room.site_code}/{room.code} is a {room.kind} room; panels mark practical "
                                  "rooms")
    if len(set(data.members)) != len(data.members):
        raise bad_request("members", "an evaluator is listed twice")
    known = set((await db.scalars(select(Evaluator.id).where(Evaluator.id.in_(data.members)))).all())
    unknown = [m for m in data.members if m not in known]
    if unknown:
        raise bad_request("members", f"evaluator(s) {', '.join(map(str, unknown))} do not exist")
    built = await build_request(db, settings, [session.id])
    current = await current_assignment(db, built)
    mine = pp.Panel(room=str(room.id), members=[_ev(m) for m in data.members], leader=_ev(data.leader))
    assignment = pp.Assignment(panels=[p for p in current.panels if p.room != mine.room] + [mine],
                               supervisors=current.supervisors)
    violations = [v for v in pp.check_assignment(built.request, assignment, rooms=[mine.room])
                  if v.rule != "supervisor"]  # the session may get its supervisor later
    if violations:
        errors = [FieldError(field=_FIELD_OF_RULE.get(v.rule, "members"), reason=v.message) for v in violations]
        raise ProblemError(400, "; ".join(e.reason for e in errors[:5]), errors=errors,
                           extra={"rules": sorted({v.rule for v in violations})})
    before = [msgspec.to_builtins(p) for p in current.panels if p.room == mine.room]
    await db.execute(delete(PanelMember).where(PanelMember.room_id == room.id))
    db.add_all(PanelMember(session_id=session.id, room_id=room.id, evaluator_id=m, leader=m == data.leader,
                           source="manual", assigned_by=actor.label) for m in data.members)
    await db.flush()
    await record(db, actor, "panels.set_manual", "room", room.id, before=before or None,
                 after=msgspec.to_builtins(data), detail={"session": session.id})


# ------------------------------------------------------------------------------ practical scores (papers)
async def check_practical_scorers(db: AsyncSession, session_id: int, room_id: int | None, evaluators: list[str],
                                  leader: str, *, require_panel: bool = True) -> list[str]:
    """Why these evaluators may not score a candidate (empty: they may), by name as the score sheet gives them:
    every scorer must be on the assigned panel (§20) and the final score must come from that panel's leader.

    The panel is the one of ``room_id`` (the candidate's practical room); when that room has none (a candidate
    seated in a theory room, say), any panel of the session, the leader being the one of the panel that holds
    all the scorers. A session without any assigned panel accepts no scores, unless ``require_panel`` is False
    (then the check passes: for flows that record panels elsewhere)."""
    rows = (await db.execute(select(PanelMember, Evaluator).join(Evaluator, Evaluator.id == PanelMember.evaluator_id)
                             .where(PanelMember.session_id == session_id))).all()
    panels: dict[int, dict[str, bool]] = defaultdict(dict)
    for m, e in rows:
        panels[m.room_id][e.name.strip()] = m.leader
    if not panels:
        if not require_panel:
            return []
        return [f"session {session_id} has no assigned evaluator panel; assign one first "
                "(POST /api/v1/assignments, or PUT /api/v1/sessions/{id}/rooms/{room}/panel)"]
    candidates = [panels[room_id]] if room_id in panels else list(panels.values())
    where = f"room {room_id}" if room_id in panels else f"session {session_id}"
    names = [n.strip() for n in evaluators]
    known = set().union(*candidates)
    reasons = [f"{n!r} is not on the assigned panel of {where} ({', '.join(sorted(known))})"
               for n in names if n not in known]
    holding = [p for p in candidates if all(n in p for n in names)] or candidates
    chiefs = sorted(n for p in holding for n, is_leader in p.items() if is_leader)
    if leader.strip() not in chiefs:
        reasons.append(f"the final score comes from the panel's leader {' or '.join(map(repr, chiefs))}, "
                       f"not {leader!r}")
    return reasons
