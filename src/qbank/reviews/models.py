from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class KeyNodeRecord(Base):
    """A scan of a key-node paper (§22: registration form, commitment, sign-in sheet, room record, score sheet,
    supervision form) kept permanently in the retention archive under legal hold."""

    __tablename__ = "key_node_record"
    __table_args__ = (UniqueConstraint("session_id", "category", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    category: Mapped[str] = mapped_column(String(30))
    archive_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(60))
    filename: Mapped[str | None] = mapped_column(String(200), default=None)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    legal_hold: Mapped[bool] = mapped_column(default=True)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Incident(Base):
    """A supervisor's mark: at this time, in this room and camera view, this kind of breach (§29–§31)."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"))
    view: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    category: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    marked_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignOff(Base):
    """The one review sign-off of a session; its supervision form (质量督导表) is a key-node record."""

    __tablename__ = "sign_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), unique=True)
    supervisor: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str] = mapped_column(String(8))  # pass / fail
    video_verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    form_record_id: Mapped[int] = mapped_column(ForeignKey("key_node_record.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
