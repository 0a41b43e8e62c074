"""The papers of exam sessions as stored: seats, the paper in force, its forms and contents, the paper as read
over the API. The use cases are beside this module: assembly, sealing, scoring, leaks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import structlog
from sqlalchemy import func, select
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
    AssemblyProblem,
    AssignmentOut,
    ExplanationRowOut,
    FormItemOut,
    FormOut,
    PaperOut,
    ShortfallOut,
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


async def paper_in_force(db: AsyncSession, session_id: int) -> Paper | None:
    """The session's paper in force: sealed if one is, else its latest assembly attempt that was not discarded
    (whatever its status: a partial or failed attempt stands until it is continued, discarded or replaced)."""
    sealed = await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.sealed_at.is_not(None))
                             .order_by(Paper.id.desc()).limit(1))
    if sealed is not None:
        return sealed
    return await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.status != "discarded")
                           .order_by(Paper.id.desc()).limit(1))


def why_not_complete(paper: Paper) -> str:
    """Why a paper that is not ``assembled`` cannot be used, in words, with what the admin can do."""
    if paper.status == "partial":
        short = (paper.report or {}).get("shortfall") or {}
        return (f"paper {paper.id} is partial, not a paper: {short.get('message_en') or paper.detail}. Continue it "
                f"(POST /api/v1/sessions/{paper.session_id}/papers/{paper.id}/continue) or discard it")
    if paper.status == "discarded":
        return f"paper {paper.id} was discarded; assemble the session's paper again"
    return f"paper {paper.id} failed: {paper.detail or 'no paper could be made'}; assemble again"


async def why_no_paper(db: AsyncSession, session_id: int) -> str:
    """Why the session has no complete paper to use, when its paper in force (or, all discarded, its latest)
    is partial, failed or discarded; "" otherwise."""
    row = await paper_in_force(db, session_id) or await db.scalar(
        select(Paper).where(Paper.session_id == session_id).order_by(Paper.id.desc()).limit(1))
    return why_not_complete(row) if row is not None and row.status != "assembled" else ""


async def current_paper(db: AsyncSession, session_id: int) -> Paper:
    """The session's paper in force when it is complete (sealed or assembled); 409 with the reason otherwise."""
    row = await paper_in_force(db, session_id)
    if row is None or row.status != "assembled":
        why = await why_no_paper(db, session_id)
        raise conflict(f"session {session_id} has no complete paper: " + (
            why or f"none assembled yet (POST /api/v1/sessions/{session_id}/papers)"),
            **({"paper_id": row.id, "paper_status": row.status} if row is not None else {}))
    return row


async def sealed_paper(db: AsyncSession, session_id: int) -> Paper:
    row = await db.scalar(select(Paper).where(Paper.session_id == session_id, Paper.sealed_at.is_not(None))
                          .order_by(Paper.id.desc()).limit(1))
    if row is None:
        why = await why_no_paper(db, session_id)
        raise conflict(f"the papers of session {session_id} are not sealed yet" + (f" ({why})" if why else ""))
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
    names = await version_names(db, sorted({int(e["version_id"]) for f in forms for e in f.items}))
    short = (paper.report or {}).get("shortfall")
    return PaperOut(
        id=paper.id, session_id=paper.session_id, layout_id=paper.layout_id, blueprint_id=paper.blueprint_id,
        mode=paper.mode,  # type: ignore[arg-type]
        status=paper.status,  # type: ignore[arg-type]
        request=paper.request, report=paper.report,
        forms=[FormOut(index=f.form_index, version_ids=[int(e["version_id"]) for e in f.items],
                       items=[FormItemOut(item_id=names[int(e["version_id"])][0],
                                          version=names[int(e["version_id"])][1], version_id=int(e["version_id"]),
                                          section=int(e["section"]), points=float(e["points"])) for e in f.items],
                       candidates=per_form.get(f.form_index, 0),
                       total_points=round(sum(float(e["points"]) for e in f.items), 4),
                       mean_facility=f.report.get("mean_facility"), counts=dict(f.report.get("counts") or {}))
               for f in forms],
        assignments=assignments, sealed_at=paper.sealed_at, created_by=paper.created_by, created_at=paper.created_at,
        shortfall=msgspec.convert(short, ShortfallOut) if short else None,
        explanation=explanation_out(paper.explanation), detail=paper.detail)


async def version_names(db: AsyncSession, version_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Item id and version number of each item version id: how a form names its questions."""
    out: dict[int, tuple[int, int]] = {}
    for start in range(0, len(version_ids), 500):
        rows = (await db.execute(select(ItemVersion.id, ItemVersion.item_id, ItemVersion.version).where(
            ItemVersion.id.in_(version_ids[start:start + 500])))).all()
        out.update({vid: (item_id, version) for vid, item_id, version in rows})
    return out


def explanation_out(rows: list[Any] | None) -> list[ExplanationRowOut]:
    """Stored explanation rows as the API gives them (rows stored before both languages were kept have one)."""
    out = []
    for r in rows or []:
        en = str(r.get("message_en") or r.get("message") or "")
        out.append(ExplanationRowOut(group=int(r.get("group") or 0), kind=str(r.get("kind") or ""),
                                     key=str(r.get("key") or ""), message_en=en,
                                     message_zh=str(r.get("message_zh") or en), message=en,
                                     demand=r.get("demand"), supply=r.get("supply"),
                                     unit=r.get("unit") or ""))
    return out


def assembly_problem(paper: Paper, forms_made: int = 0) -> ProblemError:
    """422: the session's paper in force is not complete; the explanation rows at the top of the problem body."""
    rows = explanation_out(paper.explanation)
    short = (paper.report or {}).get("shortfall")
    detail = why_not_complete(paper)
    body = AssemblyProblem(
        title="Cannot Assemble", status=422, detail=detail,
        errors=[FieldError(field=r.key, reason=r.message_en) for r in rows],
        paper_id=paper.id, paper_status=paper.status,  # type: ignore[arg-type]
        job_id=paper.job_id, forms_made=forms_made, explanation=rows,
        shortfall=msgspec.convert(short, ShortfallOut) if short else None)
    return ProblemError(422, detail, body=body)


async def read_paper(db: AsyncSession, session_id: int) -> PaperOut:
    paper = await paper_in_force(db, session_id)
    if paper is None:
        raise not_found("paper of session", f"{session_id} (none assembled yet; a job may still be running)")
    if paper.status != "assembled":
        made = await db.scalar(select(func.count()).select_from(PaperForm).where(PaperForm.paper_id == paper.id))
        raise assembly_problem(paper, int(made or 0))
    return await paper_out(db, paper)


async def session_paper(db: AsyncSession, session_id: int, paper_id: int) -> Paper:
    paper = await db.get(Paper, paper_id)
    if paper is None or paper.session_id != session_id:
        raise not_found("paper", f"{paper_id} of session {session_id}")
    return paper
