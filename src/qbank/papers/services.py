"""The papers of exam sessions as stored: seats, the paper in force, its forms and contents, the paper as read
over the API. The use cases are beside this module: assembly, sealing, scoring, leaks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paperbuild import delivery
from qbank.items.models import Item, ItemVersion
from qbank.items.schemas import LABELS
from qbank.lib.problems import FieldError, ProblemError, conflict, not_found
from qbank.papers.models import (
    Paper,
    PaperAssignment,
    PaperForm,
)
from qbank.papers.schemas import (
    AssignmentOut,
    FormOut,
    PaperOut,
)
from qbank.sessions.models import Candidate, Room
from qbank.settings import Settings

log = structlog.get_logger("qbank.papers")


def local(settings: Settings, at: datetime) -> str:
    return at.astimezone(settings.tz).isoformat()


@dataclass
class Seat:
    candidate: Candidate
    room: Room


async def session_seats(db: AsyncSession, session_id: int) -> list[Seat]:
    """Every candidate of the session with their room, by site, room, desk, number."""
    rows = (await db.execute(select(Candidate, Room).join(Room, Room.id == Candidate.room_id)
                             .where(Candidate.session_id == session_id))).all()
    seats = [Seat(c, r) for c, r in rows]
    seats.sort(key=lambda s: (s.room.site_code, s.room.code, s.candidate.desk, s.candidate.number))
    return seats


async def latest_paper(db: AsyncSession, session_id: int) -> Paper | None:
    return await db.scalar(select(Paper).where(Paper.session_id == session_id).order_by(Paper.id.desc()).limit(1))


async def current_paper(db: AsyncSession, session_id: int) -> Paper:
    """The session's paper in force: sealed if one is, else the latest assembled one."""
    sealed = await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.sealed_at.is_not(None))
                             .order_by(Paper.id.desc()).limit(1))
    if sealed is not None:
        return sealed
    row = await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.status == "assembled")
                          .order_by(Paper.id.desc()).limit(1))
    if row is None:
        raise conflict(f"session {session_id} has no assembled paper yet: POST /api/v1/sessions/{session_id}/papers")
    return row


async def sealed_paper(db: AsyncSession, session_id: int) -> Paper:
    row = await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.sealed_at.is_not(None))
                          .order_by(Paper.id.desc()).limit(1))
    if row is None:
        raise conflict(f"the papers of session {session_id} are not sealed yet")
    return row


def content_items(contents: dict[int, dict[str, Any]], types: dict[int, str], form_items: list[Any],
                  ) -> list[delivery.FormItem]:
    out = []
    for entry in form_items:
        vid = int(entry["version_id"])
        c = contents[vid]
        options = list(c.get("options") or [])
        out.append(delivery.FormItem(
            version_id=vid, type=types[vid], options=len(options),
            answer=tuple(LABELS.index(label) for label in c.get("answer") or []),
            points=float(entry["points"]), section=int(entry["section"])))
    return out


@dataclass
class LoadedPaper:
    paper: Paper
    forms: dict[int, list[delivery.FormItem]]
    contents: dict[int, dict[str, Any]]
    item_ids: dict[int, int]
    assignment: dict[int, int]  # candidate id -> form index

    @property
    def seed(self) -> bytes:
        return bytes.fromhex(self.paper.delivery_seed)


async def load_paper(db: AsyncSession, paper: Paper) -> LoadedPaper:
    forms = list((await db.scalars(select(PaperForm).where(PaperForm.paper_id == paper.id)
                                   .order_by(PaperForm.form_index))).all())
    ids = sorted({int(e["version_id"]) for f in forms for e in f.items})
    contents: dict[int, dict[str, Any]] = {}
    types: dict[int, str] = {}
    item_ids: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        rows = (await db.execute(select(ItemVersion, Item.type).join(Item, Item.id == ItemVersion.item_id)
                                 .where(ItemVersion.id.in_(ids[start:start + 500])))).all()
        for version, item_type in rows:
            contents[version.id], types[version.id], item_ids[version.id] = version.content, item_type, version.item_id
    assignment = dict((await db.execute(select(PaperAssignment.candidate_id, PaperAssignment.form_index)
                                        .where(PaperAssignment.paper_id == paper.id))).all())
    return LoadedPaper(paper=paper, forms={f.form_index: content_items(contents, types, f.items) for f in forms},
                       contents=contents, item_ids=item_ids, assignment=assignment)



async def paper_out(db: AsyncSession, paper: Paper) -> PaperOut:
    forms = list((await db.scalars(select(PaperForm).where(PaperForm.paper_id == paper.id)
                                   .order_by(PaperForm.form_index))).all())
    seats = {s.candidate.id: s for s in await session_seats(db, paper.session_id)}
    rows = (await db.execute(select(PaperAssignment.candidate_id, PaperAssignment.form_index)
                             .where(PaperAssignment.paper_id == paper.id))).all()
    assignments = sorted((AssignmentOut(candidate=seats[c].candidate.number, site=seats[c].room.site_code,
                                        room=seats[c].room.code, desk=seats[c].candidate.desk, form=f)
                          for c, f in rows if c in seats), key=lambda a: (a.site, a.room, a.desk, a.candidate))
    per_form: dict[int, int] = defaultdict(int)
    for a in assignments:
        per_form[a.form] += 1
    return PaperOut(
        id=paper.id, session_id=paper.session_id, layout_id=paper.layout_id, blueprint_id=paper.blueprint_id,
        mode=paper.mode,  # type: ignore[arg-type]
        status=paper.status, request=paper.request, report=paper.report,
        forms=[FormOut(index=f.form_index, version_ids=[int(e["version_id"]) for e in f.items],
                       candidates=per_form.get(f.form_index, 0),
                       total_points=round(sum(float(e["points"]) for e in f.items), 4),
                       mean_facility=f.report.get("mean_facility"), counts=dict(f.report.get("counts") or {}))
               for f in forms],
        assignments=assignments, sealed_at=paper.sealed_at, created_by=paper.created_by, created_at=paper.created_at)


async def read_paper(db: AsyncSession, session_id: int) -> PaperOut:
    paper = await latest_paper(db, session_id)
    if paper is None:
        raise not_found("paper of session", f"{session_id} (none assembled yet; a job may still be running)")
    if paper.status != "assembled":
        rows = paper.explanation or []
        raise ProblemError(422, paper.detail or "the last assembly could not make a paper", title="Cannot Assemble",
                           errors=[FieldError(field=str(r.get("key")), reason=str(r.get("message"))) for r in rows],
                           extra={"paper_id": paper.id, "explanation": rows, "job_id": paper.job_id})
    return await paper_out(db, paper)
