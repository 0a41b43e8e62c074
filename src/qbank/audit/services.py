"""The hash-chained audit trail: every write appends who, what, entity, before/after digest, time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.models import AuditEntry, AuditHead
from qbank.audit.schemas import AuditEntryOut, AuditPage, AuditVerification
from qbank.db import Database, utcnow
from qbank.lib.actors import Actor
from qbank.lib.digest import GENESIS as GENESIS  # the chain's start, also for the bulk import's trail rows
from qbank.lib.digest import chain_hash, digest

HEAD_ID = 1


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    body = {
        "seq": entry.seq, "at": _at_text(entry.at), "actor": entry.actor, "role": entry.role,
        "action": entry.action, "entity_type": entry.entity_type, "entity_id": entry.entity_id,
        "before": entry.before_digest, "after": entry.after_digest, "detail": entry.detail,
    }
    return chain_hash(prev_hash, body)


async def record(
    db: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    *,
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction; the head row is locked until that commits."""
    head = await db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        db.add(head)
        await db.flush()
    entry = AuditEntry(
        seq=head.seq + 1, at=utcnow(), actor=actor.label, role=actor.role.value, action=action,
        entity_type=entity_type, entity_id=str(entity_id),
        before_digest=None if before is None else digest(before),
        after_digest=None if after is None else digest(after),
        detail=detail or {}, prev_hash=head.hash,
    )
    entry.hash = entry_hash(head.hash, entry)
    db.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    await db.flush()
    return entry


async def verify(db: AsyncSession, batch: int = 2000,
                 progress: Callable[[int], Awaitable[None]] | None = None) -> AuditVerification:
    """Recompute the chain from the start and name the first row that does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = (await db.scalars(
            select(AuditEntry).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(batch)
        )).all()
        if not rows:
            break
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                return AuditVerification(ok=False, entries=count, first_bad_seq=expected_seq,
                                         reason=f"entry {expected_seq} is missing (next present is {row.seq})")
            if row.prev_hash != prev:
                return AuditVerification(ok=False, entries=count, first_bad_seq=row.seq,
                                         reason="its link to the previous entry does not match")
            if entry_hash(prev, row) != row.hash:
                return AuditVerification(ok=False, entries=count, first_bad_seq=row.seq,
                                         reason="its content does not match its hash (edited after writing)")
            prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
        if progress is not None:
            await progress(count)
    head = await db.get(AuditHead, HEAD_ID)
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return AuditVerification(ok=False, entries=count, first_bad_seq=last_seq + 1,
                                 reason=f"the chain ends at {last_seq} but its head says {head.seq}: rows were removed")
    return AuditVerification(ok=True, entries=count)


async def count_entries(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def record_apart(database: Database, actor: Actor, action: str, entity_type: str, entity_id: object,
                       detail: dict[str, Any]) -> None:
    """A read that must be in the trail, in its own short writing transaction (reads are not gated on SQLite):
    call it after the read's own session gave its connection back."""
    async with database.writing() as db:
        await record(db, actor, action, entity_type, entity_id, detail=detail)


async def list_entries(db: AsyncSession, limit: int, offset: int, entity_type: str | None,
                       entity_id: str | None) -> AuditPage:
    """The trail oldest first, optionally for one entity type or entity; ``total`` counts the whole trail."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    rows = (await db.scalars(query.limit(limit).offset(offset))).all()
    items = [AuditEntryOut(seq=r.seq, at=r.at, actor=r.actor, role=r.role, action=r.action,
                           entity_type=r.entity_type, entity_id=r.entity_id, before_digest=r.before_digest,
                           after_digest=r.after_digest, detail=r.detail, hash=r.hash) for r in rows]
    return AuditPage(items=items, total=await count_entries(db), limit=limit, offset=offset)
