from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Job(Base):
    """Long work (assembly, video analysis, contact sheets): its state, progress and result.

    A runner claims a queued job by setting ``runner`` (its process: :func:`qbank.jobs.lease.runner_identity`) and
    renews ``lease_until`` while it works; a running job whose runner is gone goes back to the queue until it has
    had ``QBANK_JOB_ATTEMPTS`` runs (``attempts``), then fails saying why."""

    __tablename__ = "job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # who asked: qbank.lib.actors.Actor
    subject: Mapped[str] = mapped_column(String(120), default="", index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    runner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
