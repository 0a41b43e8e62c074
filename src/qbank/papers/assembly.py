"""Assembly: the engine's view of the bank, the checks before a job, and storing what the engine made."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import paperbuild as pb
from qbank.audit.services import record
from qbank.blueprints.models import Blueprint as BlueprintRow
from qbank.blueprints.models import Layout as LayoutRow
from qbank.blueprints.schemas import BlueprintIn, LayoutIn
from qbank.blueprints.services import current_blueprint, engine_blueprint
from qbank.db import utcnow
from qbank.items.models import Item, ItemVersion
from qbank.jobs.kinds import JobFailed
from qbank.lib.actors import Actor
from qbank.lib.problems import bad_request, conflict
from qbank.papers.models import (
    Paper,
    PaperAssignment,
    PaperForm,
)
from qbank.papers.schemas import (
    AssemblyIn,
)
from qbank.papers.services import Seat, session_seats
from qbank.sessions.models import ExamSession

log = structlog.get_logger("qbank.papers")

MAX_PARALLEL_FORMS = 50
ENGINE_TYPES = {"true_false": "tf", "single_choice": "single", "multiple_choice": "multiple"}
QBANK_TYPES = {v: k for k, v in ENGINE_TYPES.items()}


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
                        explanation=[service_row("blueprint", "blueprint",
                                                 "no blueprint exists for this occupation and level",
                                                 "该职业（工种）和等级还没有鉴定要素细目表")])
    blueprint, _ = engine_blueprint(msgspec.convert({"scopes": bp_row.scopes}, BlueprintIn))
    points = {p.code: p for p in blueprint.points}
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
    """The engine's rows as stored (and given by the API as ``ExplanationRowOut``): both languages, one unit."""
    if expl is None:
        return []
    return [{"group": g, "kind": r.kind, "key": r.key, "message": r.message_en, "message_en": r.message_en,
             "message_zh": r.message_zh, "demand": r.demand, "supply": r.supply, "unit": r.unit}
            for g, rows in enumerate(expl.groups) for r in rows]


def service_row(kind: str, key: str, en: str, zh: str) -> dict[str, Any]:
    """A row the service adds itself (no blueprint, bad input, no time), in the engine rows' shape."""
    return {"group": 0, "kind": kind, "key": key, "message": en, "message_en": en, "message_zh": zh,
            "demand": None, "supply": None, "unit": ""}


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
    if data.mode == "per_candidate":
        if data.forms is not None and data.forms != len(seats):
            raise bad_request("forms", f"one form per candidate: the session has {len(seats)} candidates, so "
                                       f"{data.forms} forms cannot be assigned one each; leave forms out")
        return layout, len(seats)
    forms = 2 if data.forms is None else data.forms
    if forms > MAX_PARALLEL_FORMS:
        raise bad_request("forms", f"at most {MAX_PARALLEL_FORMS} parallel forms; for more, use mode per_candidate")
    return layout, forms


def assign_forms(seats: list[Seat], mode: str, n_forms: int) -> dict[int, int]:
    if mode == "per_candidate":
        return {s.candidate.id: i for i, s in enumerate(seats)}
    return {s.candidate.id: (s.candidate.desk - 1) % n_forms for s in seats}


async def store_failed(db: AsyncSession, actor: Actor, paper: Paper, rows: list[dict[str, Any]], detail: str,
                       status: str, bank: BankInput) -> None:
    """A run that made no form: the paper row keeps the explanation rows, for GET …/papers to answer 422 with."""
    paper.status = "failed"
    paper.explanation, paper.detail = rows, detail
    paper.report = {"status": status, "items_in_pool": len(bank.records), "items_off_blueprint": bank.skipped}
    db.add(paper)
    await db.flush()
    await record(db, actor, "paper.assemble_failed", "paper", paper.id,
                 after={"explanation": rows}, detail={"session": paper.session_id, "job": paper.job_id})


def finite(x: float | None) -> float | None:
    """JSON has no NaN or infinity (PostgreSQL refuses them): a figure the run did not reach is null."""
    return x if x is None or math.isfinite(x) else None


def run_report(result: pb.AssemblyResult, bank: BankInput) -> dict[str, Any]:
    stats = result.stats
    return {
        "status": result.status.value, "method": stats.method, "wall_time_s": stats.wall_time,
        "time_to_first_form_s": stats.time_to_first_form, "time_to_last_form_s": stats.time_to_last_form,
        "objective": finite(stats.objective), "bound": finite(stats.bound), "requested": result.requested,
        "continued_from": result.continued_from,
        "max_pairwise_shared": result.max_pairwise_shared, "max_item_use": result.max_item_use,
        "items_in_pool": len(bank.records), "items_off_blueprint": bank.skipped,
        "messages": list(result.messages), "blueprint_version": bank.blueprint_row.version,
        "shortfall": msgspec.to_builtins(result.shortfall) if result.shortfall else None}


async def store_forms(db: AsyncSession, paper: Paper, forms: tuple[pb.Form, ...], layout: pb.Layout,
                      bank: BankInput) -> dict[int, int]:
    """The paper's forms (those of an earlier partial run replaced: the forms kept come back unchanged);
    returns each item version's appearances."""
    section_of = {s.item_type: (i, s.points_per_item) for i, s in enumerate(layout.sections)}
    type_of = {r["id"]: r["type"] for r in bank.records}
    await db.execute(delete(PaperForm).where(PaperForm.paper_id == paper.id))
    uses: dict[int, int] = defaultdict(int)
    for form in forms:
        items = []
        for vid in form.items:
            section, points = section_of[type_of[int(vid)]]
            items.append({"version_id": int(vid), "section": section, "points": points})
            uses[int(vid)] += 1
        items.sort(key=lambda e: e["section"])  # stable: the engine's order within each section
        db.add(PaperForm(paper_id=paper.id, form_index=form.index, items=items,
                         report=msgspec.to_builtins(form.report)))
    await db.flush()
    return uses


async def store_partial(db: AsyncSession, actor: Actor, paper: Paper, result: pb.AssemblyResult,
                        layout: pb.Layout, bank: BankInput) -> None:
    """A run that ended short: the forms made and why the rest is missing; no candidate gets a form, no item's
    use is counted (it is not a paper until it is continued to the end)."""
    assert result.shortfall is not None
    paper.status = "partial"
    paper.report = run_report(result, bank)
    paper.explanation = explanation_rows(result.explanation)
    paper.detail = result.shortfall.message_en
    db.add(paper)
    await db.flush()
    await store_forms(db, paper, result.partial_forms, layout, bank)
    await record(db, actor, "paper.assemble_partial", "paper", paper.id, after=paper.report,
                 detail={"session": paper.session_id, "job": paper.job_id, "made": result.shortfall.made,
                         "requested": result.shortfall.requested, "reason": result.shortfall.reason})


async def store_assembled(db: AsyncSession, actor: Actor, paper: Paper, result: pb.AssemblyResult, layout: pb.Layout,
                          bank: BankInput, seats: list[Seat], n_forms: int) -> None:
    """The forms, each candidate's form, the items' use counts, and the trail entries of a paper that was made
    (a new one, or a partial one continued to the end)."""
    paper.status = "assembled"
    paper.report = run_report(result, bank)
    paper.explanation, paper.detail = None, ""
    db.add(paper)
    await db.flush()
    uses = await store_forms(db, paper, result.forms, layout, bank)
    for candidate_id, form_index in assign_forms(seats, paper.mode, n_forms).items():
        db.add(PaperAssignment(paper_id=paper.id, candidate_id=candidate_id, form_index=form_index))
    bp = await db.get(BlueprintRow, bank.blueprint_row.id)
    if bp is not None and bp.used_at is None:
        bp.used_at = utcnow()
        await record(db, actor, "blueprint.used", "blueprint", bp.id, detail={"paper": paper.id})
    await count_uses(db, uses)
    await record(db, actor, "paper.assemble", "paper", paper.id, after=paper.report,
                 detail={"session": paper.session_id, "job": paper.job_id, "forms": n_forms, "mode": paper.mode,
                         "items": len(uses), "continued_from": result.continued_from})


async def count_uses(db: AsyncSession, uses: dict[int, int]) -> None:
    """Add each item's appearances on the new paper to its times used (by item, over its versions)."""
    item_ids = dict((await db.execute(select(ItemVersion.id, ItemVersion.item_id).where(
        ItemVersion.id.in_(list(uses))))).all())
    by_item: dict[int, int] = defaultdict(int)
    for vid, n in uses.items():
        by_item[item_ids[vid]] += n
    for item_id, n in sorted(by_item.items()):  # one order for every writer: concurrent assemblies never deadlock
        await db.execute(update(Item).where(Item.id == item_id).values(times_used=Item.times_used + n))
    await db.flush()
