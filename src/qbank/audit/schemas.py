from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class AuditEntryOut(msgspec.Struct, kw_only=True):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, Any]
    hash: str
    prev_hash: str


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class AuditVerification(msgspec.Struct, kw_only=True):
    """The chain recomputed from the start (keyed hashes from ``keyed_from`` on) and compared with the anchors kept
    outside the database; ``unanchored``: entries after the last anchor (before this check anchored the head)."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    keyed_from: int = 1
    anchors: int = 0
    last_anchor_seq: int | None = None
    last_anchor_at: datetime | None = None
    unanchored: int = 0
    anchored_now: int | None = None
    anchor_error: str | None = None
