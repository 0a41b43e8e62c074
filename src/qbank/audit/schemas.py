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


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class AuditVerification(msgspec.Struct, kw_only=True):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
