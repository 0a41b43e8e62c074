"""Papers of exam sessions: assembly (a job running paperbuild off the event loop), sealing per site, release in
the window, responses and scores, score sheets, leak tracing."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import msgspec
import structlog
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild as pb
from paperbuild import delivery, sealing
from qbank.audit.services import record
from qbank.blueprints.models import Blueprint as BlueprintRow
from qbank.blueprints.models import Layout as LayoutRow
from qbank.blueprints.schemas import BlueprintIn, LayoutIn
from qbank.blueprints.services import current_blueprint, walk
from qbank.db import get_or_404, utcnow
from qbank.items.models import Item, ItemVersion
from qbank.items.schemas import LABELS
from qbank.items.similarity import normalise_stem, stem_key
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobContext, JobFailed, job_kind
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict, not_found
from qbank.papers.keys import b64, centre_key, parse_site_key
from qbank.papers.models import (
    Leak,
    Paper,
    PaperAssignment,
    PaperForm,
    PracticalScore,
    SealedPaper,
    TheoryResponse,
    VoidedResult,
)
from qbank.papers.schemas import (
    AssemblyIn,
    AssignmentOut,
    FormOut,
    LeakIn,
    LeakMatchOut,
    LeakOut,
    PracticalScoresIn,
    PracticalScoresOut,
    ReleaseOut,
    ResolvedItem,
    ResponsesIn,
    ResponsesOut,
    ResultOut,
    ResultsOut,
    ScoredOut,
    SealedSiteOut,
    SealOut,
)
from qbank.sessions.models import Candidate, ExamSession, Room, Site
from qbank.settings import Settings

log = structlog.get_logger("qbank.papers")
SEALED_KIND = "sealed-papers"
CONTENT_FORMAT = "qbank-paper-content/1"
RELEASE_LEAD = timedelta(minutes=15)
PASS_MARK = 60.0
ENGINE_TYPES = {"true_false": "tf", "single_choice": "single", "multiple_choice": "multiple"}
QBANK_TYPES = {v: k for k, v in ENGINE_TYPES.items()}
MIN_EVALUATORS = 3


# ------------------------------------------------------------------------------------------- shared helpers
def local(settings: Settings, at: datetime) -> str:
    return at.astimezone(settings.tz).isoformat()


def actor_params(actor: Actor) -> dict[str, Any]:
    return {"token_id": actor.token_id, "name": actor.name, "role": actor.role.value, "site": actor.site}


def actor_of(params: dict[str, Any]) -> Actor:
    a = params["actor"]
    return Actor(token_id=int(a["token_id"]), name=str(a["name"]), role=Role(a["role"]), site=a.get("site"))


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


# ------------------------------------------------------------------------------------------- assembly
@dataclass
class BankInput:
    blueprint_row: BlueprintRow
    blueprint: pb.Blueprint
    records: list[dict[str, Any]]
    skipped: int


async def load_bank(db: AsyncSession, session: ExamSession) -> BankInput:
    """The engine's view of the bank: approved theory item versions of the session's occupation and level, on the
    current blueprint's points (scope paths, importance by point code), with enemy groups, stimulus sets and
    times used."""
    bp_row = await current_blueprint(db, session.occupation_code, session.level)
    if bp_row is None:
        raise JobFailed(f"{session.occupation_code} level {session.level} has no blueprint",
                        explanation=[{"group": 0, "kind": "blueprint", "key": "blueprint",
                                      "message": "no blueprint exists for this occupation and level"}])
    data = msgspec.convert({"scopes": bp_row.scopes}, BlueprintIn)
    scopes: list[pb.Scope] = []
    points: dict[str, pb.AppraisalPoint] = {}
    for _, scope, codes in walk(data.scopes):
        scopes.append(pb.Scope(code=scope.code, weight=scope.weight, parent=codes[-2] if len(codes) > 1 else None,
                               name=scope.name))
        for p in scope.points:
            points[p.code] = pb.AppraisalPoint(code=p.code, scope=scope.code, importance=p.importance)
    blueprint = pb.Blueprint(scopes=tuple(scopes), points=tuple(points.values()))
    rows = (await db.execute(
        select(Item.id, Item.type, Item.times_used, ItemVersion.id, ItemVersion.content)
        .join(ItemVersion, (ItemVersion.item_id == Item.id) & (ItemVersion.version == Item.version))
        .where(Item.occupation_code == session.occupation_code, Item.level == session.level,
               Item.status == "approved", Item.type.in_(list(ENGINE_TYPES)))
        .order_by(ItemVersion.id))).all()
    stimuli: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    skipped = 0
    for _item_id, item_type, used, version_id, content in rows:
        point = points.get(str(content.get("point_code")))
        if point is None:
            skipped += 1
            continue
        stim = content.get("stimulus_set")
        records.append({
            "id": int(version_id), "type": ENGINE_TYPES[item_type], "point": point.code, "scope": point.scope,
            "importance": point.importance, "facility": min(max(float(content.get("facility", 0.6)), 0.01), 1.0),
            "stimulus": None if not stim else stimuli.setdefault(str(stim), len(stimuli)),
            "times_used": int(used or 0), "n_options": 0 if item_type == "true_false" else len(content["options"]),
            "enemy_group": list(content.get("enemy_groups") or []) or None})
    return BankInput(blueprint_row=bp_row, blueprint=blueprint, records=records, skipped=skipped)


def engine_layout(row: LayoutRow) -> pb.Layout:
    data = msgspec.convert({"name": row.name, "sections": row.sections, "duration_minutes": row.duration_minutes,
                            "facility_min": row.facility_min, "facility_max": row.facility_max}, LayoutIn)
    return pb.Layout(sections=tuple(pb.Section(ENGINE_TYPES[s.type], s.count, s.points_per_item)
                                    for s in data.sections),
                     facility_min=row.facility_min, facility_max=row.facility_max)


def explanation_rows(expl: pb.Explanation | None) -> list[dict[str, Any]]:
    if expl is None:
        return []
    return [{"group": g, "kind": r.kind, "key": r.key, "message": r.message, "demand": r.demand,
             "supply": r.supply} for g, rows in enumerate(expl.groups) for r in rows]


async def check_assembly(db: AsyncSession, session: ExamSession, data: AssemblyIn) -> tuple[LayoutRow, int]:
    """Refuse at once what the job could never do: returns the layout and the number of forms."""
    layout = await db.get(LayoutRow, data.layout_id)
    if layout is None:
        raise bad_request("layout_id", f"layout {data.layout_id} does not exist", status=404)
    if (layout.occupation_code, layout.level) != (session.occupation_code, session.level):
        raise bad_request("layout_id", f"layout {layout.id} is for {layout.occupation_code} level {layout.level}, "
                                       f"the session is {session.occupation_code} level {session.level}")
    odd = [s["type"] for s in layout.sections if s["type"] not in ENGINE_TYPES]
    if odd:
        raise bad_request("layout_id", f"layout {layout.id} has {', '.join(odd)} sections; a theory paper "
                                       "holds true/false, single and multiple choice items")
    sealed = await db.scalar(select(Paper.id).where(Paper.session_id == session.id, Paper.sealed_at.is_not(None)))
    if sealed is not None:
        raise conflict(f"the papers of session {session.id} are sealed (paper {sealed}); they cannot be "
                       "assembled again", paper_id=sealed)
    seats = await session_seats(db, session.id)
    if not seats:
        raise conflict(f"session {session.id} has no candidates: a paper is assembled for its candidates")
    forms = len(seats) if data.mode == "per_candidate" else data.forms
    return layout, forms


async def request_assembly(db: AsyncSession, actor: Actor, session: ExamSession, data: AssemblyIn) -> JobOut:
    """Check the request, store the job (kind ``paper_assembly``) in the caller's transaction, record it."""
    from qbank.jobs.services import submit

    layout, forms = await check_assembly(db, session, data)
    request = msgspec.to_builtins(data)
    job = await submit(db, actor, "paper_assembly",
                       {"session_id": session.id, "request": request, "actor": actor_params(actor)},
                       subject=f"session:{session.id}")
    await record(db, actor, "paper.assemble_requested", "session", session.id, after=request,
                 detail={"job": job.id, "forms": forms, "layout": layout.id})
    return job


async def solve_with_progress(ctx: JobContext, fn: Callable[[], pb.AssemblyResult], limit: float,
                              ) -> pb.AssemblyResult:
    task = asyncio.ensure_future(ctx.blocking(fn))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        await ctx.progress(0.1 + 0.8 * min(1.0, (loop.time() - t0) / max(limit, 0.1)))
    return task.result()


def assign_forms(seats: list[Seat], mode: str, n_forms: int) -> dict[int, int]:
    if mode == "per_candidate":
        return {s.candidate.id: i for i, s in enumerate(seats)}
    return {s.candidate.id: (s.candidate.desk - 1) % n_forms for s in seats}


@job_kind("paper_assembly")
async def assemble_paper(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Build the pool, run paperbuild in a worker thread, store the paper (or the explanation rows)."""
    env = ctx.env
    actor = actor_of(params)
    data = msgspec.convert(params["request"], AssemblyIn)
    session_id = int(params["session_id"])
    await ctx.progress(0.02, "loading the bank")
    async with env.session_maker() as db:
        session = await db.get(ExamSession, session_id)
        if session is None:
            raise JobFailed(f"session {session_id} does not exist")
        try:
            layout_row, n_forms = await check_assembly(db, session, data)
        except ProblemError as exc:
            raise JobFailed(exc.detail, status=exc.status_code) from exc
        bank = await load_bank(db, session)
        seats = await session_seats(db, session_id)
    layout = engine_layout(layout_row)
    request = pb.AssemblyRequest(forms=n_forms, max_shared=data.max_shared, max_item_use=data.max_item_use,
                                 seed=data.seed, time_limit=data.time_limit_s)
    run = pb.assemble_per_candidate if data.mode == "per_candidate" else pb.assemble
    await ctx.progress(0.1, f"assembling {n_forms} form(s) from {len(bank.records)} approved items")
    rows: list[dict[str, Any]] = []
    result: pb.AssemblyResult | None = None
    detail = ""
    try:
        pool = pb.ItemPool.from_records(bank.records)
        result = await solve_with_progress(ctx, lambda: run(pool, bank.blueprint, layout, request), data.time_limit_s)
        if not result.forms:
            rows = explanation_rows(result.explanation)
            summary = result.explanation.summary if result.explanation else "no paper could be found"
            detail = f"no paper can be made ({result.status.value}): {summary}"
            if not rows:
                rows = [{"group": 0, "kind": "time", "key": "time_limit_s", "demand": None, "supply": None,
                         "message": f"no paper was found within {data.time_limit_s:g} s; give it more time"}]
    except pb.InvalidInput as exc:
        rows = [{"group": 0, "kind": "input", "key": exc.field, "message": exc.reason, "demand": None,
                 "supply": None}]
        detail = f"no paper can be made: {exc.field}: {exc.reason}"
    request_doc = {**msgspec.to_builtins(data), "forms": n_forms}
    await ctx.progress(0.92, "storing the paper")
    async with env.writing() as db:
        paper = Paper(session_id=session_id, layout_id=layout_row.id, blueprint_id=bank.blueprint_row.id,
                      mode=data.mode, request=request_doc, delivery_seed=secrets.token_hex(32), job_id=ctx.job_id,
                      created_by=actor.label, status="failed", report={}, explanation=None)
        if rows or result is None:
            paper.explanation, paper.detail = rows, detail
            paper.report = {"status": result.status.value if result else "invalid", "items_in_pool": len(bank.records),
                            "items_off_blueprint": bank.skipped}
            db.add(paper)
            await db.flush()
            await record(db, actor, "paper.assemble_failed", "paper", paper.id,
                         after={"explanation": rows}, detail={"session": session_id, "job": ctx.job_id})
        else:
            section_of = {s.item_type: (i, s.points_per_item) for i, s in enumerate(layout.sections)}
            type_of = {r["id"]: r["type"] for r in bank.records}
            paper.status = "assembled"
            paper.report = {
                "status": result.status.value, "method": result.stats.method, "wall_time_s": result.stats.wall_time,
                "objective": result.stats.objective, "bound": result.stats.bound,
                "max_pairwise_shared": result.max_pairwise_shared, "max_item_use": result.max_item_use,
                "items_in_pool": len(bank.records), "items_off_blueprint": bank.skipped,
                "messages": list(result.messages), "blueprint_version": bank.blueprint_row.version}
            db.add(paper)
            await db.flush()
            uses: dict[int, int] = defaultdict(int)
            for form in result.forms:
                items = []
                for vid in form.items:
                    section, points = section_of[type_of[int(vid)]]
                    items.append({"version_id": int(vid), "section": section, "points": points})
                    uses[int(vid)] += 1
                items.sort(key=lambda e: e["section"])  # stable: the engine's order within each section
                db.add(PaperForm(paper_id=paper.id, form_index=form.index, items=items,
                                 report=msgspec.to_builtins(form.report)))
            for candidate_id, form_index in assign_forms(seats, data.mode, n_forms).items():
                db.add(PaperAssignment(paper_id=paper.id, candidate_id=candidate_id, form_index=form_index))
            bp = await db.get(BlueprintRow, bank.blueprint_row.id)
            if bp is not None and bp.used_at is None:
                bp.used_at = utcnow()
                await record(db, actor, "blueprint.used", "blueprint", bp.id, detail={"paper": paper.id})
            item_ids = dict((await db.execute(select(ItemVersion.id, ItemVersion.item_id).where(
                ItemVersion.id.in_(list(uses))))).all())
            by_item: dict[int, int] = defaultdict(int)
            for vid, n in uses.items():
                by_item[item_ids[vid]] += n
            for item_id, n in by_item.items():
                await db.execute(update(Item).where(Item.id == item_id).values(times_used=Item.times_used + n))
            await db.flush()
            await record(db, actor, "paper.assemble", "paper", paper.id, after=paper.report,
                         detail={"session": session_id, "job": ctx.job_id, "forms": n_forms, "mode": data.mode,
                                 "items": len(uses)})
        paper_id = paper.id
    if rows:
        raise JobFailed(detail, paper_id=paper_id, explanation=rows)
    assert result is not None
    return {"paper_id": paper_id, "status": result.status.value, "forms": len(result.forms),
            "wall_time_s": round(result.stats.wall_time, 3), "max_pairwise_shared": result.max_pairwise_shared,
            "max_item_use": result.max_item_use}


async def paper_out(db: AsyncSession, paper: Paper) -> Any:
    from qbank.papers.schemas import PaperOut

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


async def read_paper(db: AsyncSession, session_id: int) -> Any:
    paper = await latest_paper(db, session_id)
    if paper is None:
        raise not_found("paper of session", f"{session_id} (none assembled yet; a job may still be running)")
    if paper.status != "assembled":
        rows = paper.explanation or []
        raise ProblemError(422, paper.detail or "the last assembly could not make a paper", title="Cannot Assemble",
                           errors=[FieldError(field=str(r.get("key")), reason=str(r.get("message"))) for r in rows],
                           extra={"paper_id": paper.id, "explanation": rows, "job_id": paper.job_id})
    return await paper_out(db, paper)


# ------------------------------------------------------------------------------------------- sealing
def session_doc(settings: Settings, session: ExamSession) -> dict[str, Any]:
    return {"id": session.id, "title": session.title, "occupation_code": session.occupation_code,
            "level": session.level, "starts_at": session.starts_at.isoformat(), "ends_at": session.ends_at.isoformat(),
            "local_start": local(settings, session.starts_at), "local_end": local(settings, session.ends_at)}


def site_content(settings: Settings, session: ExamSession, layout: LayoutRow, loaded: LoadedPaper, site: str,
                 seats: list[Seat]) -> dict[str, Any]:
    """What a site's terminals show: each candidate's questions in their order, options in their order; no keys."""
    candidates = []
    for seat in seats:
        form = loaded.assignment.get(seat.candidate.id)
        if form is None:
            continue
        items = loaded.forms[form]
        by_id = {it.version_id: it for it in items}
        questions = []
        for no, d in enumerate(delivery.deliver(items, loaded.seed, seat.candidate.number), start=1):
            it, c = by_id[d.version_id], loaded.contents[d.version_id]
            options = list(c.get("options") or [])
            questions.append({"no": no, "version_id": d.version_id, "type": it.type, "section": it.section,
                              "points": it.points, "stem": c["stem"], "options": [options[k] for k in d.option_order],
                              "media": list(c.get("media") or [])})
        candidates.append({"number": seat.candidate.number, "name": seat.candidate.name, "room": seat.room.code,
                           "desk": seat.candidate.desk, "form": form, "questions": questions})
    return {"format": CONTENT_FORMAT, "session": session_doc(settings, session), "site": site,
            "paper_id": loaded.paper.id, "layout": {"name": layout.name, "duration_minutes": layout.duration_minutes,
                                                    "sections": layout.sections},
            "candidates": candidates}


def release_window(session: ExamSession) -> tuple[datetime, datetime]:
    return session.starts_at - RELEASE_LEAD, session.ends_at


async def seal_session(db: AsyncSession, actor: Actor, settings: Settings, archive: Any,
                       session: ExamSession) -> SealOut:
    paper = await current_paper(db, session.id)
    if paper.sealed_at is not None:
        raise conflict(f"the papers of session {session.id} were sealed at {local(settings, paper.sealed_at)}",
                       paper_id=paper.id)
    seats = await session_seats(db, session.id)
    by_site: dict[str, list[Seat]] = defaultdict(list)
    for s in seats:
        by_site[s.room.site_code].append(s)
    sites = {s.code: s for s in (await db.scalars(select(Site).where(Site.code.in_(list(by_site))))).all()}
    missing = sorted(code for code in by_site if not sites[code].public_key)
    if missing:
        raise ProblemError(409, f"site(s) {', '.join(missing)} have registered no public key "
                                "(PUT /api/v1/sites/{code}/public-key); nothing was sealed",
                           errors=[FieldError(field=f"sites.{c}.public_key", reason="not registered") for c in missing])
    layout = await db.get(LayoutRow, paper.layout_id)
    assert layout is not None
    loaded = await load_paper(db, paper)
    key = centre_key(settings)
    exam_day = session.starts_at.astimezone(settings.tz).date()
    now = utcnow()
    out: list[SealedSiteOut] = []
    for code in sorted(by_site):
        public = parse_site_key(sites[code].public_key or "", f"sites.{code}.public_key")
        package_id = secrets.token_hex(16)
        header = {"package_id": package_id, "session": session.id, "site": code, "paper": paper.id,
                  "created_at": now.isoformat(), "starts_at": session.starts_at.isoformat(),
                  "ends_at": session.ends_at.isoformat()}
        site_seats = by_site[code]

        def build(site: str = code, hdr: dict[str, Any] = header, ss: list[Seat] = site_seats,
                  pk: Any = public) -> Any:
            content = site_content(settings, session, layout, loaded, site, ss)
            sealed = sealing.seal(content, hdr, pk, key)
            stored = archive.put_bytes(SEALED_KIND, sealed.package, exam_date=exam_day,
                                       content_type="application/json",
                                       metadata={"session": str(session.id), "site": site, "paper": str(paper.id)},
                                       filename=f"papers-session-{session.id}-{site}.json")
            return sealed, stored

        sealed, stored = await anyio.to_thread.run_sync(build)
        row = SealedPaper(paper_id=paper.id, session_id=session.id, site_code=code, package_id=package_id,
                          archive_key=stored.key, sha256=sealed.sha256, size=len(sealed.package),
                          centre_share=sealed.centre_share.hex(),
                          site_key_id=sealing.key_id(sealing.raw_public(public)),
                          candidates=len(site_seats), retain_until=stored.retain_until, created_by=actor.label)
        db.add(row)
        await db.flush()
        site_out = SealedSiteOut(site=code, package_id=package_id, sha256=row.sha256, size=row.size,
                                 candidates=row.candidates, key=row.archive_key, retain_until=row.retain_until)
        await record(db, actor, "paper.seal_site", "sealed_paper", row.id, after=site_out,
                     detail={"session": session.id, "site": code, "key": stored.key})
        out.append(site_out)
    paper.sealed_at = now
    await db.flush()
    opens, closes = release_window(session)
    result = SealOut(session_id=session.id, paper_id=paper.id, sealed_at=now, packages=out,
                     release_opens_at=local(settings, opens), release_closes_at=local(settings, closes))
    await record(db, actor, "paper.seal", "paper", paper.id, after=result, detail={"session": session.id})
    return result


def site_for(actor: Actor, site: str | None) -> str:
    """Whose package: a site token only its own; an admin names the site."""
    if actor.role == Role.site:
        if site is not None and site != actor.site:
            raise PermissionDeniedException(f"site {actor.site} may not fetch site {site}'s papers or key share")
        assert actor.site is not None
        return actor.site
    if site is None:
        raise bad_request("site", "name the site whose package to fetch")
    return site


async def site_package(db: AsyncSession, session: ExamSession, site: str) -> SealedPaper:
    paper = await sealed_paper(db, session.id)
    row = await db.scalar(select(SealedPaper).where(SealedPaper.paper_id == paper.id, SealedPaper.site_code == site))
    if row is None:
        raise not_found("sealed package of site", f"{site} in session {session.id}")
    return row


async def release_share(db: AsyncSession, settings: Settings, session: ExamSession, site: str) -> ReleaseOut:
    row = await site_package(db, session, site)
    opens, closes = release_window(session)
    now = utcnow()
    if now < opens:
        raise ProblemError(403, f"the key share of session {session.id} is released from {local(settings, opens)} "
                                f"(15 minutes before the exam starts) until {local(settings, closes)}; "
                                f"it is now {local(settings, now)}",
                           extra={"opens_at": local(settings, opens), "closes_at": local(settings, closes)})
    if now > closes:
        raise ProblemError(403, f"the release window of session {session.id} closed at {local(settings, closes)}",
                           extra={"opens_at": local(settings, opens), "closes_at": local(settings, closes)})
    return ReleaseOut(session_id=session.id, site=site, package_id=row.package_id, package_sha256=row.sha256,
                      centre_share=b64(bytes.fromhex(row.centre_share)), closes_at=local(settings, closes))


async def package_chunks(archive: Any, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """The archived package, digest checked as it streams, read in a worker thread."""
    reader = await anyio.to_thread.run_sync(archive.open, key)
    try:
        while True:
            data = await anyio.to_thread.run_sync(reader.read, chunk)
            if not data:
                break
            yield data
    finally:
        await anyio.to_thread.run_sync(reader.close)


# ------------------------------------------------------------------------------------------- responses, scores
def check_open(settings: Settings, session: ExamSession, what: str) -> None:
    now = utcnow()
    closes = session.ends_at + timedelta(minutes=session.grace_minutes)
    if now < session.starts_at:
        raise ProblemError(403, f"{what} of session {session.id} are accepted from "
                                f"{local(settings, session.starts_at)}")
    if now > closes:
        raise ProblemError(403, f"{what} of session {session.id} were accepted until {local(settings, closes)} "
                                f"(the end plus {session.grace_minutes} minutes' grace); "
                                f"it is now {local(settings, now)}",
                           extra={"closed_at": local(settings, closes)})


async def seats_by_number(db: AsyncSession, actor: Actor, session_id: int, numbers: list[str],
                          field: Callable[[int], str]) -> dict[str, Seat]:
    seats = {s.candidate.number: s for s in await session_seats(db, session_id)}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, number in enumerate(numbers):
        if number not in seats:
            errors.append(FieldError(field=field(i), reason=f"candidate {number} is not in session {session_id}"))
        if number in seen:
            errors.append(FieldError(field=field(i), reason=f"candidate {number} appears twice in this request"))
        seen.add(number)
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    if actor.role == Role.site:
        foreign = [n for n in numbers if seats[n].room.site_code != actor.site]
        if foreign:
            raise PermissionDeniedException(f"candidates {', '.join(foreign[:10])} do not sit at site {actor.site}")
    return seats


async def accept_responses(db: AsyncSession, actor: Actor, settings: Settings, session: ExamSession,
                           data: ResponsesIn) -> ResponsesOut:
    check_open(settings, session, "responses")
    paper = await sealed_paper(db, session.id)
    numbers = [r.candidate for r in data.responses]
    seats = await seats_by_number(db, actor, session.id, numbers, lambda i: f"responses[{i}].candidate")
    ids = [seats[n].candidate.id for n in numbers]
    done = set((await db.scalars(select(TheoryResponse.candidate_id).where(
        TheoryResponse.candidate_id.in_(ids)))).all())
    if done:
        twice = [n for n in numbers if seats[n].candidate.id in done]
        raise conflict(f"responses of candidate(s) {', '.join(twice[:10])} were already received; they are final",
                       candidates=twice)
    loaded = await load_paper(db, paper)
    errors: list[FieldError] = []
    parsed: list[tuple[Seat, int, dict[int, Sequence[int]], list[delivery.DeliveredItem]]] = []
    for i, entry in enumerate(data.responses):
        seat = seats[entry.candidate]
        form = loaded.assignment.get(seat.candidate.id)
        if form is None:
            errors.append(FieldError(field=f"responses[{i}].candidate", reason="this candidate has no paper"))
            continue
        items = {it.version_id: it for it in loaded.forms[form]}
        answers: dict[int, Sequence[int]] = {}
        for raw, places in entry.answers.items():
            where = f"responses[{i}].answers.{raw}"
            try:
                vid = int(raw)
            except ValueError:
                errors.append(FieldError(field=where, reason="a key is an item version id (an integer)"))
                continue
            it = items.get(vid)
            if it is None:
                errors.append(FieldError(field=where, reason=f"item version {raw} is not on this candidate's paper"))
                continue
            if len(set(places)) != len(places) or any(p >= it.options for p in places):
                errors.append(FieldError(field=where, reason=(
                    f"places are distinct option positions 0–{it.options - 1} as shown; got {places}")))
                continue
            answers[vid] = list(places)
        parsed.append((seat, form, answers, delivery.deliver(loaded.forms[form], loaded.seed, seat.candidate.number)))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    scored: list[ScoredOut] = []
    for seat, form, answers, delivered in parsed:
        points = delivery.score(loaded.forms[form], delivered, answers)
        db.add(TheoryResponse(session_id=session.id, candidate_id=seat.candidate.id, paper_id=paper.id,
                              form_index=form, answers={str(k): v for k, v in answers.items()}, score=points,
                              received_by=actor.label))
        scored.append(ScoredOut(candidate=seat.candidate.number, form=form, answered=len(answers), score=points))
    await db.flush()
    out = ResponsesOut(session_id=session.id, accepted=len(scored), scores=scored)
    await record(db, actor, "responses.receive", "session", session.id, after=out,
                 detail={"candidates": numbers[:500], "paper": paper.id})
    return out


async def accept_practical(db: AsyncSession, actor: Actor, session: ExamSession,
                           data: PracticalScoresIn) -> PracticalScoresOut:
    numbers = [s.candidate for s in data.scores]
    seats = await seats_by_number(db, actor, session.id, numbers, lambda i: f"scores[{i}].candidate")
    errors: list[FieldError] = []
    for i, s in enumerate(data.scores):
        names = [e.name.strip() for e in s.evaluators]
        if len(set(names)) < MIN_EVALUATORS or len(set(names)) != len(names):
            errors.append(FieldError(field=f"scores[{i}].evaluators", reason=(
                f"a panel of at least {MIN_EVALUATORS} distinct evaluators marks a practical exam (§20); "
                f"got {len(set(names))} distinct of {len(names)}")))
        if s.leader.strip() not in names:
            errors.append(FieldError(field=f"scores[{i}].leader",
                                     reason=f"the leader {s.leader!r} is not one of the evaluators"))
        from qbank.panels.services import check_practical_scorers  # §20: only the assigned panel, final by its leader

        for reason in await check_practical_scorers(db, session.id, seats[s.candidate].room.id, names, s.leader):
            errors.append(FieldError(field=f"scores[{i}].evaluators", reason=reason))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    ids = [seats[n].candidate.id for n in numbers]
    done = set((await db.scalars(select(PracticalScore.candidate_id).where(
        PracticalScore.candidate_id.in_(ids)))).all())
    if done:
        twice = [n for n in numbers if seats[n].candidate.id in done]
        raise conflict(f"practical scores of candidate(s) {', '.join(twice[:10])} were already recorded",
                       candidates=twice)
    for s in data.scores:
        db.add(PracticalScore(session_id=session.id, candidate_id=seats[s.candidate].candidate.id,
                              evaluators=[msgspec.to_builtins(e) for e in s.evaluators], leader=s.leader.strip(),
                              score=s.final_score, recorded_by=actor.label))
    await db.flush()
    out = PracticalScoresOut(session_id=session.id, accepted=len(data.scores))
    await record(db, actor, "practical_scores.record", "session", session.id, after=msgspec.to_builtins(data),
                 detail={"candidates": numbers[:500]})
    return out


async def session_results(db: AsyncSession, session: ExamSession) -> ResultsOut:
    seats = await session_seats(db, session.id)
    theory = dict((await db.execute(select(TheoryResponse.candidate_id, TheoryResponse.score).where(
        TheoryResponse.session_id == session.id))).all())
    practical = dict((await db.execute(select(PracticalScore.candidate_id, PracticalScore.score).where(
        PracticalScore.session_id == session.id))).all())
    void = await db.get(VoidedResult, session.id)
    results = []
    for s in seats:
        t, p = theory.get(s.candidate.id), practical.get(s.candidate.id)
        passes = None if void is not None or t is None or p is None else (t >= PASS_MARK and p >= PASS_MARK)
        results.append(ResultOut(candidate=s.candidate.number, name=s.candidate.name, site=s.room.site_code,
                                 theory=t, practical=p, passes=passes, void=void is not None))
    return ResultsOut(session_id=session.id, void=void is not None, void_reason=void.reason if void else None,
                      results=results)


def _pdf_text(text: str) -> str:
    safe = text.encode("ascii", "replace").decode()
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def score_sheet_pdf(title: str, lines: list[str], attachment: bytes) -> bytes:
    """A plain PDF: the sheet as text lines (Helvetica, ASCII; 50 lines a page) and the canonical JSON of the sheet
    (names in Chinese included) as an embedded file, so that a reader and a machine both get it."""
    pages = [lines[i:i + 50] for i in range(0, max(len(lines), 1), 50)] or [[]]
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    ef = add(b"<< /Type /EmbeddedFile /Subtype /application#2Fjson /Length %d >>\nstream\n" % len(attachment)
             + attachment + b"\nendstream")
    spec = add(b"<< /Type /Filespec /F (score-sheet.json) /UF (score-sheet.json) /EF << /F %d 0 R >> >>" % ef)
    pages_id = len(objs) + 1 + 2 * len(pages) + 1  # filled in below
    kids = []
    for n, page_lines in enumerate(pages):
        text = [f"BT /F1 14 Tf 40 800 Td ({_pdf_text(title)}) Tj ET" if n == 0 else ""]
        y = 770
        for line in page_lines:
            text.append(f"BT /F1 9 Tf 40 {y} Td ({_pdf_text(line)}) Tj ET")
            y -= 15
        stream = "\n".join(t for t in text if t).encode()
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R "
                        b">> >> /Contents %d 0 R >>" % (pages_id, font, content)))
    names = add(b"<< /Names [(score-sheet.json) %d 0 R] >>" % spec)
    assert len(objs) + 1 == pages_id
    add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R /Names << /EmbeddedFiles %d 0 R >> >>" % (pages_id, names))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, xref)
    return bytes(out)


async def build_score_sheet(db: AsyncSession, actor: Actor, settings: Settings, archive: Any,
                            session: ExamSession) -> tuple[Any, bool, ResultsOut]:
    """The score sheet (成绩汇总表) as a key-node record under legal hold, stored by the reviews domain."""
    from qbank.reviews.services import upload_record

    results = await session_results(db, session)
    sheet = {"form": "成绩汇总表", "session": session_doc(settings, session), "pass_mark": PASS_MARK,
             "void": results.void, "void_reason": results.void_reason,
             "results": [msgspec.to_builtins(r) for r in results.results]}

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [f"Session {session.id}  occupation {session.occupation_code}  level {session.level}  "
             f"{local(settings, session.starts_at)} - {local(settings, session.ends_at)}",
             "RESULTS VOID: " + (results.void_reason or "") if results.void else "",
             "candidate                 site          theory  practical  result", ""]
    for r in results.results:
        verdict = "void" if r.void else ("-" if r.passes is None else ("PASS" if r.passes else "FAIL"))
        lines.append(f"{r.candidate:<25} {r.site:<13} {fmt(r.theory):>6}  {fmt(r.practical):>9}  {verdict}")
    document = score_sheet_pdf("Score sheet / cheng ji hui zong biao", lines,
                               msgspec.json.encode(sheet))

    async def body() -> AsyncIterator[bytes]:
        yield document

    row, new = await upload_record(db, actor, settings, archive, session, "score_sheet", body(),
                                   f"score-sheet-session-{session.id}-{hashlib.sha256(document).hexdigest()[:12]}.pdf")
    return row, not new, results


# ------------------------------------------------------------------------------------------- leaks
async def current_papers(db: AsyncSession) -> list[Paper]:
    """Each session's paper in force (sealed if any, else the latest assembled)."""
    rows = (await db.scalars(select(Paper).where(Paper.status == "assembled").order_by(Paper.id))).all()
    best: dict[int, Paper] = {}
    for p in rows:
        held = best.get(p.session_id)
        if held is None or (p.sealed_at is not None) >= (held.sealed_at is not None):
            best[p.session_id] = p
    return list(best.values())


def option_order(seen: list[str], options: list[str]) -> tuple[list[int], str]:
    if not seen:
        return [], ""
    index: dict[str, int] = {}
    for k, text in enumerate(options):
        index.setdefault(normalise_stem(text), k)
    order = [index.get(normalise_stem(text), -1) for text in seen]
    if -1 in order or len(set(order)) != len(order):
        return [], "the options seen do not all match the item's options: matched by stem only"
    if len(order) != len(options):
        return [], f"{len(order)} of {len(options)} options seen: matched by stem only"
    return order, ""


async def report_leak(db: AsyncSession, actor: Actor, data: LeakIn) -> LeakOut:
    papers = await current_papers(db)
    loaded = [await load_paper(db, p) for p in papers]
    by_key: dict[str, list[tuple[int, dict[str, Any], int]]] = defaultdict(list)
    for lp in loaded:
        for vid, content in lp.contents.items():
            entry = (vid, content, lp.item_ids[vid])
            bucket = by_key[stem_key(str(content.get("stem", "")))]
            if all(e[0] != vid for e in bucket):
                bucket.append(entry)
    resolved: list[ResolvedItem] = []
    leaked: list[delivery.LeakedItem] = []
    for i, item in enumerate(data.items):
        key = stem_key(item.stem)
        found = by_key.get(key, [])
        if not found:  # on no paper: the bank's current version, so that confirming retires it
            hit = (await db.execute(select(Item.id, ItemVersion.id).join(
                ItemVersion, (ItemVersion.item_id == Item.id) & (ItemVersion.version == Item.version))
                .where(Item.stem_key == key).limit(1))).first()
            if hit is None:
                resolved.append(ResolvedItem(index=i, version_id=None, item_id=None, option_order=[],
                                             reason="no item has this stem"))
            else:
                resolved.append(ResolvedItem(index=i, version_id=int(hit[1]), item_id=int(hit[0]), option_order=[],
                                             reason="this item is on no assembled paper"))
            continue
        best: tuple[int, dict[str, Any], int] = found[0]
        order, reason = option_order(list(item.options), list(best[1].get("options") or []))
        for cand in found[1:]:
            if not order:
                o2, r2 = option_order(list(item.options), list(cand[1].get("options") or []))
                if o2:
                    best, order, reason = cand, o2, r2
        resolved.append(ResolvedItem(index=i, version_id=best[0], item_id=best[2], option_order=order, reason=reason))
        leaked.append(delivery.LeakedItem(version_id=best[0], option_order=tuple(order)))
    deliveries: dict[str, Sequence[delivery.DeliveredItem]] = {}
    who: dict[str, tuple[int, Seat, int]] = {}
    for lp in loaded:
        seats = {s.candidate.id: s for s in await session_seats(db, lp.paper.session_id)}
        for cid, form in lp.assignment.items():
            seat = seats.get(cid)
            if seat is None:
                continue
            name = f"{lp.paper.session_id}:{seat.candidate.number}"
            deliveries[name] = delivery.deliver(lp.forms[form], lp.seed, seat.candidate.number)
            who[name] = (lp.paper.session_id, seat, form)
    found_matches = delivery.trace(leaked, deliveries, limit=20) if leaked else []
    matches = []
    for rank, m in enumerate(found_matches, start=1):
        session_id, seat, form = who[m.candidate]
        matches.append(LeakMatchOut(rank=rank, session_id=session_id, candidate=seat.candidate.number,
                                    site=seat.room.site_code, form=form, score=m.score,
                                    items_present=m.items_present, option_orders_matching=m.option_orders_matching,
                                    evidence=list(m.evidence)))
    row = Leak(source=data.source, content=msgspec.to_builtins(data.items),
               resolved=msgspec.to_builtins(resolved), matches=msgspec.to_builtins(matches), status="reported",
               reported_by=actor.label)
    db.add(row)
    await db.flush()
    out = leak_out(row)
    await record(db, actor, "leak.report", "leak", row.id, after=out,
                 detail={"items": len(data.items), "resolved": sum(1 for r in resolved if r.version_id),
                         "top": matches[0].candidate if matches else None})
    return out


def leak_out(row: Leak, retired: list[int] | None = None, voided: list[int] | None = None) -> LeakOut:
    return LeakOut(id=row.id, source=row.source, status=row.status,  # type: ignore[arg-type]
                   resolved=msgspec.convert(row.resolved, list[ResolvedItem]),
                   matches=msgspec.convert(row.matches, list[LeakMatchOut]), reported_by=row.reported_by,
                   reported_at=row.reported_at, confirmed_by=row.confirmed_by, confirmed_at=row.confirmed_at,
                   retired_items=retired or [], voided_sessions=voided or [])


async def get_leak(db: AsyncSession, leak_id: int) -> Leak:
    row = await get_or_404(db, Leak, leak_id, "leak")
    return row


async def confirm_leak(db: AsyncSession, actor: Actor, row: Leak) -> LeakOut:
    """Retire the leaked items and void the results of every session whose paper holds any of them (§29)."""
    from qbank.items.services import transition

    if row.status == "confirmed":
        raise conflict(f"leak {row.id} was confirmed by {row.confirmed_by}")
    versions = {int(r["version_id"]) for r in row.resolved if r.get("version_id")}
    item_ids = sorted({int(r["item_id"]) for r in row.resolved if r.get("item_id")})
    if not item_ids:
        raise conflict(f"leak {row.id} matched no item: nothing to retire or void")
    retired: list[int] = []
    for item_id in item_ids:
        item = await db.get(Item, item_id)
        if item is None or item.status == "retired":
            continue
        before = item.status
        await transition(db, actor, item, "retire")
        await record(db, actor, "item.retire", "item", item.id, before={"status": before},
                     after={"status": item.status}, detail={"version": item.version, "reason": f"leak {row.id}"})
        retired.append(item_id)
    voided: list[int] = []
    for paper in await current_papers(db):
        forms = (await db.scalars(select(PaperForm.items).where(PaperForm.paper_id == paper.id))).all()
        if not any(int(e["version_id"]) in versions for items in forms for e in items):
            continue
        if await db.get(VoidedResult, paper.session_id) is not None:
            continue
        reason = f"leak {row.id}: items of this session's paper were leaked (§29)"
        db.add(VoidedResult(session_id=paper.session_id, leak_id=row.id, reason=reason, voided_by=actor.label))
        await db.flush()
        await record(db, actor, "results.void", "session", paper.session_id, after={"void": True, "reason": reason},
                     detail={"leak": row.id})
        voided.append(paper.session_id)
    before_out = leak_out(row)
    row.status, row.confirmed_by, row.confirmed_at = "confirmed", actor.label, utcnow()
    await db.flush()
    out = leak_out(row, retired, voided)
    await record(db, actor, "leak.confirm", "leak", row.id, before=before_out, after=out,
                 detail={"retired_items": retired, "voided_sessions": voided})
    return out
