from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Evaluator(Base):
    """An evaluator (考评员, §17(三)): the id number is stored encrypted (AES-256-GCM) and shown masked."""

    __tablename__ = "evaluator"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_number_hmac: Mapped[str] = mapped_column(String(64), unique=True)  # finds a second record of one person
    id_number_masked: Mapped[str] = mapped_column(String(24))
    employer: Mapped[str] = mapped_column(String(200), default="")
    integrity_notes: Mapped[str] = mapped_column(Text, default="")  # the integrity file (诚信档案)
    barred: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvaluatorCertificate(Base):
    __tablename__ = "evaluator_certificate"
    __table_args__ = (UniqueConstraint("evaluator_id", "occupation_code", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("evaluator.id"), index=True)
    occupation_code: Mapped[str] = mapped_column(String(20))
    level: Mapped[int]
    valid_until: Mapped[date] = mapped_column(Date())
    number: Mapped[str] = mapped_column(String(60), default="")


class Supervisor(Base):
    """A quality supervisor: internal (staff of the institution, §17(四)) or external (district or city, §26)."""

    __tablename__ = "supervisor"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # internal / external
    name: Mapped[str] = mapped_column(String(120))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("evaluator.id"), default=None)  # the same person
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PanelConflict(Base):
    """A tie between an evaluator or supervisor and a candidate: employer, training, a declared relation."""

    __tablename__ = "panel_conflict"
    __table_args__ = (UniqueConstraint("evaluator_id", "supervisor_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("evaluator.id"), index=True, default=None)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("supervisor.id"), index=True, default=None)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # employer / training / relation / other
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PanelMember(Base):
    """One evaluator on the panel of one practical room; one of each room's members is its leader."""

    __tablename__ = "panel_member"
    __table_args__ = (UniqueConstraint("room_id", "evaluator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"), index=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("evaluator.id"), index=True)
    leader: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(10))  # solver / manual
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SessionSupervisor(Base):
    """The internal supervisor of a session (one), and the external supervisors drawn for it."""

    __tablename__ = "session_supervisor"
    __table_args__ = (UniqueConstraint("session_id", "supervisor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("supervisor.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # internal / external
    draw_id: Mapped[int | None] = mapped_column(ForeignKey("supervisor_draw.id"), default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SupervisorDraw(Base):
    """A published draw of external supervisors: the whole request (seed included) and the result."""

    __tablename__ = "supervisor_draw"

    id: Mapped[int] = mapped_column(primary_key=True)
    seed: Mapped[str] = mapped_column(String(24))  # up to 2**63, as text (PostgreSQL BIGINT is signed)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    audit_seq: Mapped[int | None] = mapped_column(default=None)  # the trail entry that publishes it
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
