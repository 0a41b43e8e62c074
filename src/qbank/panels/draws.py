"""Seeded, published draws of external supervisors (§26), re-runnable from the trail."""

from __future__ import annotations

import secrets
from collections import defaultdict

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild.panels as pp
from qbank.audit.models import AuditEntry
from qbank.audit.services import record
from qbank.db import get_or_404
from qbank.lib.actors import Actor
from qbank.lib.problems import bad_request, conflict
from qbank.panels.models import (
    PanelConflict,
    SessionSupervisor,
    Supervisor,
    SupervisorDraw,
)
from qbank.panels.schemas import (
    DrawIn,
    DrawOut,
    DrawVerification,
)
from qbank.sessions.models import Candidate, ExamSession
from qbank.settings import Settings


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


async def get_draw(db: AsyncSession, draw_id: int) -> DrawOut:
    return draw_out(await get_or_404(db, SupervisorDraw, draw_id, "draw"))
