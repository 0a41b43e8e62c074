from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Site(Base):
    """A test site (考点); its X25519 public key receives sealed papers, its Ed25519 signing key signs the response
    bundles of its exam station."""

    __tablename__ = "site"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str | None] = mapped_column(String(100), default=None)
    signing_key: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExamSession(Base):
    """One exam of an occupation and level in a time window, at one or more sites."""

    __tablename__ = "exam_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    occupation_code: Mapped[str] = mapped_column(ForeignKey("occupation.code"), index=True)
    level: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    grace_minutes: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Room(Base):
    """An exam room of one kind at one site, with the camera views its recordings must cover."""

    __tablename__ = "room"
    __table_args__ = (UniqueConstraint("session_id", "site_code", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("site.code"))
    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))
    desks: Mapped[int]
    camera_views: Mapped[list[Any]] = mapped_column(JSON)


class Candidate(Base):
    """A candidate at a desk; ``id_tail`` (the last six characters of the resident id number, no more) lets them
    sign in at the exam station with their admission number."""

    __tablename__ = "candidate"
    __table_args__ = (UniqueConstraint("session_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"))
    number: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    desk: Mapped[int]
    id_tail: Mapped[str | None] = mapped_column(String(6), default=None)
