from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobOut(msgspec.Struct, kw_only=True):
    id: str
    kind: str
    status: JobStatus
    progress: float
    message: str
    subject: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = 0  # runs started; more than one when a runner died while running it
