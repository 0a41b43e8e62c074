"""Evaluators, supervisors, conflicts, panels and draws (§17(三)(四), §20, §26, §30(八)).

Id numbers: AES-256-GCM under a key derived (HKDF-SHA256) from ``settings.token_secret``; a second derived key
gives an HMAC that finds a second record of the same person without decrypting anything. Changing the token
secret makes stored id numbers unreadable (masked copies stay), so keep it with the database backups.

The solver is :mod:`paperbuild.panels`; people are ``e<id>`` (evaluators), ``s<id>`` (internal supervisors, or
their evaluator's ``e<id>`` when they are the same person) and candidates ``c<id>``; the institution of a room
(for the ⌈n/3⌉ rotation) is its test site.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import os
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild.panels as pp
from paperbuild.errors import InvalidInput
from qbank.audit.models import AuditEntry
from qbank.audit.services import record
from qbank.db import get_or_404, utcnow
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobContext, JobFailed, job_kind
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict, not_found
from qbank.panels.models import (
    Evaluator,
    EvaluatorCertificate,
    PanelConflict,
    PanelMember,
    SessionSupervisor,
    Supervisor,
    SupervisorDraw,
)
from qbank.panels.schemas import (
    AssignmentIn,
    CertificateIn,
    ConflictIn,
    ConflictOut,
    DrawIn,
    DrawOut,
    DrawVerification,
    EvaluatorIn,
    EvaluatorOut,
    EvaluatorPatch,
    ManualPanelIn,
    PanelMemberOut,
    RoomPanelOut,
    SessionPanelsOut,
    SessionSupervisorOut,
    SupervisorIn,
    SupervisorOut,
    SupervisorPatch,
)
from qbank.sessions.models import Candidate, ExamSession, Room
from qbank.settings import Settings


# ---------------------------------------------------------------------------------------------- id numbers
def _derived(settings: Settings, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qbank-evaluator-id", info=purpose).derive(
        settings.token_secret.encode())


_AAD = b"qbank evaluator id number v1"


def id_number_ok(value: str) -> bool:
    """ISO 7064 MOD 11-2 checksum of an 18-character resident identity number."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    if len(value) != 18 or not value[:17].isdigit():
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(value[:17], weights, strict=True)) % 11]
    return value[17].upper() == check


def encrypt_id(settings: Settings, value: str) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(_derived(settings, b"encrypt")).encrypt(nonce, value.encode(), _AAD)
    return "v1:" + base64.b64encode(nonce + ct).decode()


def decrypt_id(settings: Settings, stored: str) -> str:
    raw = base64.b64decode(stored.removeprefix("v1:"))
    return AESGCM(_derived(settings, b"encrypt")).decrypt(raw[:12], raw[12:], _AAD).decode()


def id_hmac(settings: Settings, value: str) -> str:
    return hmac.new(_derived(settings, b"lookup"), value.upper().encode(), hashlib.sha256).hexdigest()


def mask_id(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


# ---------------------------------------------------------------------------------------------- evaluators
def _cert_out(c: EvaluatorCertificate) -> CertificateIn:
    return CertificateIn(occupation_code=c.occupation_code, level=c.level, valid_until=c.valid_until, number=c.number)


async def _certs(db: AsyncSession, evaluator_ids: list[int]) -> dict[int, list[EvaluatorCertificate]]:
    out: dict[int, list[EvaluatorCertificate]] = defaultdict(list)
    if evaluator_ids:
        rows = (await db.scalars(select(EvaluatorCertificate).where(
            EvaluatorCertificate.evaluator_id.in_(evaluator_ids)).order_by(EvaluatorCertificate.id))).all()
        for c in rows:
            out[c.evaluator_id].append(c)
    return out


async def evaluator_out(db: AsyncSession, row: Evaluator) -> EvaluatorOut:
    certs = (await _certs(db, [row.id]))[row.id]
    return EvaluatorOut(id=row.id, name=row.name, id_number=row.id_number_masked, employer=row.employer,
                        certificates=[_cert_out(c) for c in certs], integrity_notes=row.integrity_notes,
                        barred=row.barred, created_at=row.created_at, updated_at=row.updated_at)


def _check_certs(certs: list[CertificateIn], field: str = "certificates") -> None:
    seen: set[tuple[str, int]] = set()
    for i, c in enumerate(certs):
        if (c.occupation_code, c.level) in seen:
            raise bad_request(f"{field}[{i}]", f"occupation {c.occupation_code} level {c.level} is listed twice")
        seen.add((c.occupation_code, c.level))


async def create_evaluator(db: AsyncSession, settings: Settings, actor: Actor, data: EvaluatorIn) -> Evaluator:
    number = data.id_number.upper()
    if not id_number_ok(number):
        raise bad_request("id_number", "the check character does not match (GB 11643, ISO 7064 MOD 11-2)")
    _check_certs(data.certificates)
    digest = id_hmac(settings, number)
    existing = await db.scalar(select(Evaluator.id).where(Evaluator.id_number_hmac == digest))
    if existing is not None:
        raise conflict(f"an evaluator with this id number already exists (evaluator {existing})", evaluator=existing)
    row = Evaluator(name=data.name.strip(), id_number_enc=encrypt_id(settings, number), id_number_hmac=digest,
                    id_number_masked=mask_id(number), employer=data.employer, integrity_notes=data.integrity_notes,
                    barred=data.barred, created_by=actor.label)
    db.add(row)
    await db.flush()
    db.add_all(EvaluatorCertificate(evaluator_id=row.id, occupation_code=c.occupation_code, level=c.level,
                                    valid_until=c.valid_until, number=c.number) for c in data.certificates)
    await db.flush()
    return row


async def get_evaluator(db: AsyncSession, evaluator_id: int) -> Evaluator:
    row = await get_or_404(db, Evaluator, evaluator_id, "evaluator")
    return row


async def patch_evaluator(db: AsyncSession, row: Evaluator, data: EvaluatorPatch) -> None:
    if data.name is not None:
        row.name = data.name.strip()
    if data.employer is not None:
        row.employer = data.employer
    if data.integrity_notes is not None:
        row.integrity_notes = data.integrity_notes
    if data.barred is not None:
        row.barred = data.barred
    if data.certificates is not None:
        _check_certs(data.certificates)
        await db.execute(delete(EvaluatorCertificate).where(EvaluatorCertificate.evaluator_id == row.id))
        db.add_all(EvaluatorCertificate(evaluator_id=row.id, occupation_code=c.occupation_code, level=c.level,
                                        valid_until=c.valid_until, number=c.number) for c in data.certificates)
    row.updated_at = utcnow()
    await db.flush()


# --------------------------------------------------------------------------------------------- supervisors
def supervisor_out(row: Supervisor) -> SupervisorOut:
    return SupervisorOut(id=row.id, kind=row.kind, name=row.name, organisation=row.organisation,  # type: ignore[arg-type]
                         evaluator_id=row.evaluator_id, active=row.active, created_at=row.created_at)


async def create_supervisor(db: AsyncSession, actor: Actor, data: SupervisorIn) -> Supervisor:
    if data.evaluator_id is not None:
        if data.kind != "internal":
            raise bad_request("evaluator_id", "only an internal supervisor (staff) may also be an evaluator here")
        await get_evaluator(db, data.evaluator_id)
    row = Supervisor(kind=data.kind, name=data.name.strip(), organisation=data.organisation,
                     evaluator_id=data.evaluator_id, active=data.active, created_by=actor.label)
    db.add(row)
    await db.flush()
    return row


async def get_supervisor(db: AsyncSession, supervisor_id: int) -> Supervisor:
    row = await get_or_404(db, Supervisor, supervisor_id, "supervisor")
    return row


def patch_supervisor(row: Supervisor, data: SupervisorPatch) -> None:
    if data.name is not None:
        row.name = data.name.strip()
    if data.organisation is not None:
        row.organisation = data.organisation
    if data.active is not None:
        row.active = data.active


# ----------------------------------------------------------------------------------------------- conflicts
async def create_conflict(db: AsyncSession, actor: Actor, data: ConflictIn) -> tuple[PanelConflict, Candidate]:
    if (data.evaluator_id is None) == (data.supervisor_id is None):
        raise bad_request("evaluator_id", "name exactly one of evaluator_id and supervisor_id")
    if data.evaluator_id is not None:
        await get_evaluator(db, data.evaluator_id)
    if data.supervisor_id is not None:
        await get_supervisor(db, data.supervisor_id)
    cand = await db.scalar(select(Candidate).where(Candidate.session_id == data.session_id,
                                                   Candidate.number == data.candidate))
    if cand is None:
        raise bad_request("candidate", f"candidate {data.candidate} is not in session {data.session_id}", 404)
    dup = await db.scalar(select(PanelConflict.id).where(
        PanelConflict.candidate_id == cand.id, PanelConflict.evaluator_id == data.evaluator_id
        if data.evaluator_id is not None else PanelConflict.evaluator_id.is_(None),
        PanelConflict.supervisor_id == data.supervisor_id
        if data.supervisor_id is not None else PanelConflict.supervisor_id.is_(None)))
    if dup is not None:
        raise conflict(f"this conflict is already recorded (conflict {dup})", conflict_id=dup)
    row = PanelConflict(evaluator_id=data.evaluator_id, supervisor_id=data.supervisor_id, candidate_id=cand.id,
                        kind=data.kind, note=data.note, created_by=actor.label)
    db.add(row)
    await db.flush()
    return row, cand


def conflict_out(row: PanelConflict, cand: Candidate) -> ConflictOut:
    return ConflictOut(id=row.id, evaluator_id=row.evaluator_id, supervisor_id=row.supervisor_id,
                       session_id=cand.session_id, candidate=cand.number, kind=row.kind, note=row.note,
                       created_at=row.created_at)


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
    (per occupation and site) for the rotation."""
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
    certs = await _certs(db, [e.id for e in evs])
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


# ----------------------------------------------------------------------------------------- assignment job
async def request_assignment(db: AsyncSession, actor: Actor, data: AssignmentIn) -> JobOut:
    from qbank.jobs.services import submit

    ids = sorted(set(data.sessions))
    found = set((await db.scalars(select(ExamSession.id).where(ExamSession.id.in_(ids)))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise bad_request("sessions", f"session(s) {', '.join(map(str, missing))} do not exist", 404)
    params = {"sessions": ids, "seed": data.seed, "time_limit_s": data.time_limit_s,
              "actor": {"token_id": actor.token_id, "name": actor.name, "role": actor.role.value}}
    job = await submit(db, actor, "panel_assignment", params, subject="sessions:" + ",".join(map(str, ids))[:100])
    await record(db, actor, "panels.assign_requested", "sessions", ",".join(map(str, ids))[:120],
                 after=msgspec.to_builtins(data), detail={"job": job.id})
    return job


@job_kind("panel_assignment")
async def run_assignment(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    env = ctx.env
    a = params["actor"]
    actor = Actor(token_id=int(a["token_id"]), name=str(a["name"]), role=Role(a["role"]))
    ids = [int(i) for i in params["sessions"]]
    await ctx.progress(0.02, "loading evaluators, supervisors and conflicts")
    async with env.session_maker() as db:
        try:
            built = await build_request(db, env.settings, ids, seed=int(params.get("seed", 0)),
                                        time_limit_s=float(params.get("time_limit_s", 20.0)))
        except ProblemError as exc:
            raise JobFailed(exc.detail, status=exc.status_code) from exc
    req = built.request
    await ctx.progress(0.1, f"assigning {len(req.rooms)} practical room(s) in {len(req.sessions)} session(s) "
                            f"from {len(req.evaluators)} evaluators")
    task = asyncio.ensure_future(ctx.blocking(pp.assign_panels, req))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        await ctx.progress(0.1 + 0.8 * min(1.0, (loop.time() - t0) / max(req.time_limit_s, 0.1)))
    try:
        result = task.result()
    except pp.PanelsInfeasible as exc:
        reasons = [msgspec.to_builtins(r) for r in exc.reasons]
        async with env.writing() as db:
            await record(db, actor, "panels.assign_failed", "sessions", ",".join(map(str, ids))[:120],
                         after={"reasons": reasons}, detail={"job": ctx.job_id})
        raise JobFailed("no assignment holds every rule: " + "; ".join(r.message for r in exc.reasons[:5]),
                        reasons=reasons) from exc
    except InvalidInput as exc:
        raise JobFailed(f"{exc.field}: {exc.reason}") from exc
    violations = pp.check_assignment(req, result.assignment)
    if violations:  # never store an assignment the checker refuses
        raise JobFailed("the solver's assignment failed the checker",
                        violations=[msgspec.to_builtins(v) for v in violations])
    await ctx.progress(0.92, "storing panels")
    async with env.writing() as db:
        await store_assignment(db, actor, built, result.assignment, job_id=ctx.job_id)
    return {"sessions": ids, "status": result.status, "stats": msgspec.to_builtins(result.stats),
            "time_to_feasible_s": result.time_to_feasible_s, "wall_time_s": result.wall_time_s,
            "seed": result.seed, "panels": msgspec.to_builtins(result.assignment)}


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


# ------------------------------------------------------------------------------------------------- draws
async def _draw_request(db: AsyncSession, settings: Settings, data: DrawIn) -> pp.DrawRequest:
    tz = settings.tz
    ids = sorted(set(data.sessions))
    rows = (await db.scalars(select(ExamSession).where(ExamSession.id.in_(ids)))).all()
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        raise bad_request("sessions", f"session(s) {', '.join(map(str, missing))} do not exist", 404)
    if data.inspect is not None and data.inspect > len(ids):
        raise bad_request("inspect", f"only {len(ids)} session(s) to inspect from")
    query = select(Supervisor).where(Supervisor.kind == "external", Supervisor.active.is_(True))
    if data.pool is not None:
        query = select(Supervisor).where(Supervisor.id.in_(data.pool))
    pool = (await db.scalars(query.order_by(Supervisor.id))).all()
    if data.pool is not None:
        wrong = sorted(set(data.pool) - {s.id for s in pool if s.kind == "external"})
        if wrong:
            raise bad_request("pool", f"supervisor(s) {', '.join(map(str, wrong))} are not external supervisors")
    if not pool:
        raise bad_request("pool", "no external supervisors to draw from; add some (POST /api/v1/supervisors)")
    conf = (await db.execute(select(PanelConflict.supervisor_id, Candidate.session_id).join(
        Candidate, Candidate.id == PanelConflict.candidate_id).where(
        Candidate.session_id.in_(ids), PanelConflict.supervisor_id.is_not(None)))).all()
    excluded: dict[int, set[str]] = defaultdict(set)
    for sup_id, sid in conf:
        excluded[sid].add(f"x{sup_id}")
    seed = data.seed if data.seed is not None else secrets.randbits(63)
    return pp.DrawRequest(seed=seed, pool=[f"x{s.id}" for s in pool], inspect=data.inspect,
                          per_session=data.per_session,
                          sessions=[pp.DrawSession(id=str(r.id), start=r.starts_at.astimezone(tz),
                                                   end=r.ends_at.astimezone(tz), excluded=sorted(excluded[r.id]))
                                    for r in sorted(rows, key=lambda r: r.id)])


def draw_out(row: SupervisorDraw) -> DrawOut:
    return DrawOut(id=row.id, seed=row.seed, request=row.request, result=row.result, audit_seq=row.audit_seq,
                   created_by=row.created_by, created_at=row.created_at)


async def make_draw(db: AsyncSession, settings: Settings, actor: Actor, data: DrawIn) -> SupervisorDraw:
    """Draw, store the external supervisors per session, and publish request and result in the trail."""
    req = await _draw_request(db, settings, data)
    result = pp.draw_supervisors(req)
    request_doc = msgspec.to_builtins(req)
    result_doc = msgspec.to_builtins(result)
    row = SupervisorDraw(seed=str(req.seed), request=request_doc, result=result_doc, created_by=actor.label)
    db.add(row)
    await db.flush()
    for d in result.drawn:
        sid = int(d.session)
        await db.execute(delete(SessionSupervisor).where(SessionSupervisor.session_id == sid,
                                                         SessionSupervisor.kind == "external"))
        for x in d.supervisors:
            db.add(SessionSupervisor(session_id=sid, supervisor_id=int(x[1:]), kind="external", draw_id=row.id,
                                     assigned_by=actor.label))
    await db.flush()
    entry = await record(db, actor, "supervisors.draw", "supervisor_draw", row.id, after=result_doc,
                         detail={"seed": str(req.seed), "algorithm": result.algorithm, "request": request_doc,
                                 "result": result_doc})
    row.audit_seq = entry.seq
    await db.flush()
    return row


async def verify_draw(db: AsyncSession, draw_id: int) -> DrawVerification:
    """Re-run a draw from what the trail published (not from the draw's own row) and compare."""
    row = await get_or_404(db, SupervisorDraw, draw_id, "draw")
    entry = await db.scalar(select(AuditEntry).where(AuditEntry.action == "supervisors.draw",
                                                     AuditEntry.entity_id == str(draw_id)))
    if entry is None:
        raise conflict(f"draw {draw_id} is not published in the audit trail")
    published = entry.detail
    try:
        req = msgspec.convert(published["request"], pp.DrawRequest, strict=False)
    except (KeyError, msgspec.ValidationError) as exc:
        return DrawVerification(draw_id=draw_id, audit_seq=entry.seq, same=False, recomputed={},
                                reason=f"the published request cannot be read: {exc}")
    again = msgspec.to_builtins(pp.draw_supervisors(req))
    if again != published.get("result"):
        reason = "re-running the published request gives a different draw than the trail published"
    elif again != row.result:
        reason = "the trail's draw reproduces, but the stored draw differs from it (edited after publishing)"
    else:
        reason = "re-running the published seed and request gives the published draw"
    return DrawVerification(draw_id=draw_id, audit_seq=entry.seq, same=again == published.get("result") == row.result,
                            reason=reason, recomputed=again)


# ------------------------------------------------------------------------------------------------ roster
async def roster_xlsx(db: AsyncSession, settings: Settings, sessions: list[ExamSession]) -> bytes:
    """One sheet: session, time, room, role (组长 leader / 考评员 evaluator / 内督员 / 外督员), name, masked id,
    employer, certificate."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "roster"
    header = ["session", "occupation", "level", "start", "end", "room", "role", "name", "id number (masked)",
              "employer / organisation", "certificate (occupation, level, valid until)"]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for s in sessions:
        out = await session_panels(db, settings, s)
        certs = await _certs(db, [m.evaluator_id for p in out.panels for m in p.members])
        base = [s.id, s.occupation_code, s.level, out.local_start, out.local_end]
        for p in out.panels:
            for m in p.members:
                cert = next((f"{c.occupation_code} L{c.level} {c.valid_until.isoformat()}"
                             for c in sorted(certs.get(m.evaluator_id, []), key=lambda c: c.level)
                             if c.occupation_code == s.occupation_code and c.level <= s.level), "")
                ws.append([*base, p.room, "组长 leader" if m.leader else "考评员 evaluator", m.name, m.id_number,
                           m.employer, cert])
        for sup in out.supervisors:
            role = "内督员 internal supervisor" if sup.kind == "internal" else "外督员 external supervisor"
            ws.append([*base, "", role, sup.name, "", sup.organisation, ""])
    for col, width in zip("ABCDEFGHIJK", (8, 12, 6, 26, 26, 16, 22, 14, 20, 30, 30), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def local_text(settings: Settings, at: datetime) -> str:
    return at.astimezone(settings.tz).isoformat()
