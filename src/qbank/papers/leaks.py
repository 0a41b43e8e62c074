"""Leak tracing (§29): leaked content matched to candidates' papers; confirming retires items, voids results."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paperbuild import delivery
from qbank.audit.services import record
from qbank.db import get_or_404, utcnow
from qbank.items.models import Item, ItemVersion
from qbank.items.services import change_status
from qbank.items.similarity import normalise_stem, stem_key
from qbank.lib.actors import Actor
from qbank.lib.problems import conflict
from qbank.papers.models import (
    Leak,
    Paper,
    PaperForm,
    VoidedResult,
)
from qbank.papers.schemas import (
    LeakIn,
    LeakMatchOut,
    LeakOut,
    ResolvedItem,
)
from qbank.papers.services import Seat, load_paper, session_seats

log = structlog.get_logger("qbank.papers")


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
        await change_status(db, actor, item, "retire", f"leak {row.id}")
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
