"""The hash-chained audit trail: every write appends who, what, entity, before/after digest, time.

Each entry's hash covers the hash before it and its own content, keyed (HMAC-SHA256) with the trail key that the
database does not hold (:func:`qbank.lib.keys.trail_key`; sessions carry it in ``Session.info``). Entries written
before keyed hashes (``seq < audit_head.keyed_from``) keep plain SHA-256. The head is anchored outside the database
(:mod:`qbank.audit.anchors`); :func:`verify` checks the chain and then the database against the anchors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import anyio.to_thread
import msgspec
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.anchors import AnchorBook, AnchorInvalid
from qbank.audit.models import AuditEntry, AuditHead
from qbank.audit.schemas import AuditEntryOut, AuditPage, AuditVerification
from qbank.db import Database, utcnow
from qbank.lib.actors import Actor
from qbank.lib.digest import GENESIS as GENESIS  # the chain's start, also for the bulk import's trail rows
from qbank.lib.digest import canonical_json, chain_hash, digest
from qbank.lib.keys import TRAIL_KEY_INFO, process_trail_key

HEAD_ID = 1


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trail_key_of(db: AsyncSession) -> bytes:
    """The session's trail key (``Session.info``), else the one this process opened its database with; never a
    guess: with neither, the entry is refused."""
    key = db.info.get(TRAIL_KEY_INFO) or process_trail_key()
    if not isinstance(key, bytes):
        raise RuntimeError("this database session carries no trail key: open sessions with "
                           "Session.info = qbank.lib.keys.trail_session_info(settings)")
    return key


def entry_hash(prev_hash: str, entry: AuditEntry, key: bytes | None) -> str:
    """The entry's hash: HMAC-SHA256 under ``key``, or plain SHA-256 (``key=None``) for entries written before
    keyed hashes."""
    body = {
        "seq": entry.seq, "at": _at_text(entry.at), "actor": entry.actor, "role": entry.role,
        "action": entry.action, "entity_type": entry.entity_type, "entity_id": entry.entity_id,
        "before": entry.before_digest, "after": entry.after_digest, "detail": entry.detail,
    }
    if key is None:  # entries from before the trail key (see AuditHead.keyed_from)
        return chain_hash(prev_hash, body)
    return hmac.new(key, prev_hash.encode() + canonical_json(body), hashlib.sha256).hexdigest()


async def chain(db: AsyncSession, entries: list[AuditEntry], *, bulk: bool = False) -> None:
    """Append ``entries`` in order in the caller's transaction, under one lock of the head (held until commit):
    each gets its seq, its link to the one before and its keyed hash. ``bulk``: one multi-row core insert (a bulk
    import's batches); the entries stay out of the session."""
    key = trail_key_of(db)
    head = await db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS, keyed_from=1)
        db.add(head)
        await db.flush()
    seq, prev, keyed_from = head.seq, head.hash, head.keyed_from

    def link() -> tuple[int, str]:
        last_seq, last_hash = seq, prev
        for entry in entries:
            entry.seq, entry.prev_hash = last_seq + 1, last_hash
            entry.hash = entry_hash(last_hash, entry, key if entry.seq >= keyed_from else None)
            last_seq, last_hash = entry.seq, entry.hash
        return last_seq, last_hash

    # A bulk batch's entries are nobody else's yet: their keyed hashes are made in a thread, off the event loop
    head.seq, head.hash = await anyio.to_thread.run_sync(link) if bulk else link()
    if bulk and entries:
        table = cast(Table, AuditEntry.__table__)
        columns = [c.key for c in table.columns if c.key != "id"]
        await db.execute(insert(table), [{c: getattr(e, c) for c in columns} for e in entries])
    else:
        db.add_all(entries)
    await db.flush()


def new_entry(actor_label: str, role: str, action: str, entity_type: str, entity_id: object, *,
              before: Any = None, after: Any = None, detail: dict[str, Any] | None = None) -> AuditEntry:
    """An entry not yet chained (see :func:`chain`)."""
    return AuditEntry(at=utcnow(), actor=actor_label, role=role, action=action, entity_type=entity_type,
                      entity_id=str(entity_id), before_digest=None if before is None else digest(before),
                      after_digest=None if after is None else digest(after), detail=detail or {})


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
    entry = new_entry(actor.label, actor.role.value, action, entity_type, entity_id, before=before, after=after,
                      detail=detail)
    await chain(db, [entry])
    return entry


async def walk_chain(db: AsyncSession, keyed_from: int, batch: int = 2000,
                     progress: Callable[[int], Awaitable[None]] | None = None, *, after_seq: int = 0,
                     after_hash: str = GENESIS) -> tuple[AuditVerification | None, int, str, int]:
    """Recompute the chain from the entry after ``after_seq`` (whose hash is ``after_hash``; the start by default):
    (the first bad row's verdict or None, entries checked, last hash, last seq)."""
    key = trail_key_of(db)
    prev, expected_seq, count, last_seq = after_hash, after_seq + 1, 0, after_seq
    while True:
        rows = (await db.scalars(
            select(AuditEntry).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(batch)
        )).all()
        if not rows:
            return None, count, prev, last_seq
        for row in rows:
            count += 1
            bad: str | None = None
            if row.seq != expected_seq:
                return AuditVerification(ok=False, entries=count, first_bad_seq=expected_seq, keyed_from=keyed_from,
                                         reason=f"entry {expected_seq} is missing (next present is {row.seq})"
                                         ), count, prev, last_seq
            if row.prev_hash != prev:
                bad = "its link to the previous entry does not match"
            elif entry_hash(prev, row, key if row.seq >= keyed_from else None) != row.hash:
                bad = "its content does not match its hash (edited after writing)"
            if bad is not None:
                return AuditVerification(ok=False, entries=count, first_bad_seq=row.seq, keyed_from=keyed_from,
                                         reason=bad), count, prev, last_seq
            prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
        if progress is not None:
            await progress(count)


async def verify(db: AsyncSession, book: AnchorBook | None = None, batch: int = 2000,
                 progress: Callable[[int], Awaitable[None]] | None = None) -> AuditVerification:
    """Recompute the chain from the start and name the first row that does not hold; then, with ``book``, compare
    the database with the anchors (rows removed or rewritten before the last anchor) and anchor the head."""
    head = await db.get(AuditHead, HEAD_ID)
    keyed_from = head.keyed_from if head is not None else 1
    bad, count, prev, last_seq = await walk_chain(db, keyed_from, batch, progress)
    outcome = bad or AuditVerification(ok=True, entries=count, keyed_from=keyed_from)
    if bad is None and head is not None and (head.seq != last_seq or head.hash != prev):
        outcome = AuditVerification(ok=False, entries=count, first_bad_seq=last_seq + 1, keyed_from=keyed_from,
                                    reason=f"the chain ends at {last_seq} but its head says {head.seq}: "
                                           "rows were removed")
    if book is not None:
        outcome = await against_anchors(db, book, outcome, last_seq, prev)
    return outcome


async def against_anchors(db: AsyncSession, book: AnchorBook, outcome: AuditVerification, last_seq: int,
                          last_hash: str) -> AuditVerification:
    """The database against the anchors of this centre key: the highest anchored entry must be there with the
    anchored hash (then every entry before it is as it was: they are chained); if not, the anchors are searched for
    the last one that still holds. A sound trail gets its head anchored."""
    try:
        names = await book.names()
        by_seq: dict[int, list[str]] = {}
        for seq, name in names:
            by_seq.setdefault(seq, []).append(name)
        seqs = sorted(by_seq)

        async def mismatch(seq: int) -> tuple[str | None, Any]:
            anchors = [await book.read(name) for name in by_seq[seq]]
            row = await db.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
            for anchor in anchors:
                when = anchor.at.isoformat()
                if anchor.keyed_from != outcome.keyed_from:
                    return (f"keyed hashes start at {outcome.keyed_from} in the database but at {anchor.keyed_from} "
                            "in the anchors: the switch was moved"), anchor
                if row is None:
                    return f"entry {seq}, anchored at {when}, is not in the database: rows were removed", anchor
                if row.hash != anchor.hash:
                    return f"entry {seq} differs from its anchor of {when}: rows were rewritten", anchor
            return None, anchors[-1]

        last = None
        if seqs:
            problem, last = await mismatch(seqs[-1])
            if problem is not None:
                low, high, good = 0, len(seqs) - 1, 0  # the last anchor that holds: the trail is sound up to it
                while low < high:
                    middle = (low + high) // 2
                    if (await mismatch(seqs[middle]))[0] is None:
                        good, low = seqs[middle], middle + 1
                    else:
                        high = middle
                found = (f"{problem}; the trail matches its anchors up to entry {good}, so entries {good + 1} to "
                         f"{seqs[-1]} were removed or rewritten before the last anchor")
                outcome = msgspec.structs.replace(
                    outcome, ok=False, first_bad_seq=good + 1 if outcome.ok else outcome.first_bad_seq,
                    reason=found if outcome.ok else f"{outcome.reason}; and against the anchors: {found}")
        anchored = seqs[-1] if seqs else 0
        outcome = msgspec.structs.replace(
            outcome, anchors=len(names), last_anchor_seq=anchored or None,
            last_anchor_at=last.at if last is not None else None, unanchored=max(last_seq - anchored, 0))
        if outcome.ok and last_seq > anchored:
            written = await book.write(last_seq, last_hash, outcome.keyed_from)
            outcome = msgspec.structs.replace(outcome, anchored_now=written.seq, last_anchor_seq=written.seq,
                                              last_anchor_at=written.at)
    except AnchorInvalid as exc:
        return msgspec.structs.replace(outcome, ok=False, reason=f"an anchor is not one the centre signed: {exc}")
    except Exception as exc:  # the store is unreachable or refuses: the chain's own verdict stands, said so
        return msgspec.structs.replace(outcome, anchor_error=f"the anchors could not be read or written: "
                                                             f"{type(exc).__name__}: {exc}")
    return outcome


async def record_beside(database: Database, actor_label: str, role: str, action: str, entity_type: str,
                        entity_id: object, detail: dict[str, Any]) -> None:
    """An entry in a short transaction of its own, for a request that already holds the write gate (a POST) and
    whose own transaction may roll back because it answers a refusal (failed sign-ins must stay in the trail)."""
    async with database.session_maker() as db, db.begin():
        await chain(db, [new_entry(actor_label, role, action, entity_type, entity_id, detail=detail)])


async def count_entries(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def record_apart(database: Database, actor: Actor, action: str, entity_type: str, entity_id: object,
                       detail: dict[str, Any]) -> None:
    """A read that must be in the trail, in a short writing transaction of its own (reads are not gated on
    SQLite): call it after the read's own session gave its connection back. Returns once the entry is committed.

    Entries of reads that arrive together share that transaction (:class:`GroupCommit`): a burst of package
    fetches costs one head lock and one commit, not one each."""
    entry = new_entry(actor.label, actor.role.value, action, entity_type, entity_id, detail=detail)
    await GroupCommit.of(database).append(entry)


class GroupCommit:
    """Chains and commits the entries handed to it in batches, in the order they came, each batch in one writing
    transaction; :meth:`append` returns once its entry's batch committed and raises what that commit raised
    (nothing of a failed batch is stored). One per database and event loop."""

    MAX_BATCH = 200
    _instances: ClassVar[weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, GroupCommit]]] = (
        weakref.WeakKeyDictionary())

    def __init__(self, database: Database) -> None:
        self.database = database
        self.pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, database: Database) -> GroupCommit:
        loop = asyncio.get_running_loop()
        per_loop = cls._instances.setdefault(database.session_maker, {})
        if loop not in per_loop:
            per_loop.clear()  # a loop that ended (tests, CLI runs) leaves nothing waiting on it
            per_loop[loop] = cls(database)
        return per_loop[loop]

    async def append(self, entry: AuditEntry) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((entry, done))
        if self.writer is None:
            self.writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        batch: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        try:
            while self.pending:  # nothing can arrive between the last check and the end: no await in between
                batch, self.pending = self.pending[:self.MAX_BATCH], self.pending[self.MAX_BATCH:]
                try:
                    async with self.database.writing() as db:
                        await chain(db, [entry for entry, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
                batch = []
        except BaseException:  # cancelled (the service stops): whoever waits hears so instead of waiting forever
            for _, done in [*batch, *self.pending]:
                done.cancel()
            self.pending = []
            raise
        finally:
            self.writer = None


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
                           after_digest=r.after_digest, detail=r.detail, hash=r.hash, prev_hash=r.prev_hash)
             for r in rows]
    return AuditPage(items=items, total=await count_entries(db), limit=limit, offset=offset)
