"""The service anchors the trail's committed head at a fixed cadence: ``QBANK_AUDIT_ANCHOR_ENTRIES`` new entries
or ``QBANK_AUDIT_ANCHOR_SECONDS`` after the last anchor (its signed time), whichever comes first, and at once when
the trail has no anchor yet (so the switch to keyed hashes is anchored at the first start after the upgrade). It
reads the head every couple of seconds (one small query) and never anchors uncommitted state. Before anchoring it
checks that the entries since the last anchor chain to it (links and keyed hashes): a head that does not — cut
back, or rewritten — is never anchored; that is logged as an error and ``GET /api/v1/audit/verify`` reports it.
Several instances may anchor the same head; that is harmless (``QBANK_AUDIT_ANCHORING=off`` leaves it to others).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from qbank.audit.anchors import Anchor, AnchorBook
from qbank.audit.models import AuditHead
from qbank.audit.services import HEAD_ID, walk_chain
from qbank.db import Database

log = structlog.get_logger("qbank.audit")


@dataclass
class Anchorer:
    database: Database
    book: AnchorBook
    _last: Anchor | None = None
    _loaded: bool = False

    async def _latest(self) -> Anchor | None:
        names = await self.book.names()
        return await self.book.read(names[-1][1]) if names else None

    def _due(self, seq: int) -> bool:
        settings, last = self.book.settings, self._last
        if last is None:
            return seq > 0
        if seq <= last.seq:
            return False
        waited = datetime.now(UTC) - last.at
        return seq - last.seq >= settings.audit_anchor_entries or waited >= timedelta(
            seconds=settings.audit_anchor_seconds)

    async def tick(self) -> int | None:
        """Anchor the head if it is due and chains to the last anchor; returns the seq anchored, if any."""
        async with self.database.session_maker() as db:
            head = await db.get(AuditHead, HEAD_ID)
            if head is None or head.seq == 0:
                return None
            seq, hash_, keyed_from = head.seq, head.hash, head.keyed_from
            if not self._loaded:
                self._last, self._loaded = await self._latest(), True
            if not self._due(seq):
                if self._last is not None and seq < self._last.seq:
                    log.error("the trail's head is behind its last anchor: rows were removed", head_seq=seq,
                              anchored_seq=self._last.seq)
                return None
            self._last = await self._latest()  # another instance, or a verify, may have anchored since
            if not self._due(seq):
                return None
            last = self._last
            bad, _, end_hash, end_seq = await walk_chain(db, keyed_from, after_seq=last.seq if last else 0,
                                                         after_hash=last.hash if last else "0" * 64)
        if bad is not None or (end_seq, end_hash) != (seq, hash_):
            log.error("the trail does not chain to its last anchor: not anchored", head_seq=seq,
                      anchored_seq=last.seq if last else 0, first_bad_seq=bad.first_bad_seq if bad else end_seq + 1,
                      reason=bad.reason if bad else "the head does not match the last entry")
            return None
        self._last = await self.book.write(seq, hash_, keyed_from)
        return seq

    async def run(self) -> None:
        """Tick until cancelled; a failing store is logged and tried again at the next tick."""
        poll = min(2.0, float(self.book.settings.audit_anchor_seconds))
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("anchoring the audit trail failed; trying again")
            await asyncio.sleep(poll)


@asynccontextmanager
async def keep_anchoring(anchorer: Anchorer) -> AsyncIterator[None]:
    """Run the anchorer in the background for as long as the context lasts (the service's lifespan)."""
    if not anchorer.book.settings.audit_anchoring:
        yield
        return
    task = asyncio.create_task(anchorer.run(), name="qbank-audit-anchoring")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
