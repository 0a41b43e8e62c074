from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Recording(Base):
    """One recording of one camera view of one room, kept in the retention archive by its SHA-256."""

    __tablename__ = "recording"
    __table_args__ = (UniqueConstraint("room_id", "view", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"), index=True)
    view: Mapped[str] = mapped_column(String(30))
    claimed_start: Mapped[datetime] = mapped_column(UTCDateTime())
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    archive_key: Mapped[str] = mapped_column(String(200))
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # uploaded → analysing → analysed; corrupt files are kept and say why
    status: Mapped[str] = mapped_column(String(12), default="uploaded")
    corrupt_reason: Mapped[str | None] = mapped_column(Text, default=None)
    duration: Mapped[float | None] = mapped_column(default=None)
    probe: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    contact_sheet_key: Mapped[str | None] = mapped_column(String(200), default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class RecordingUpload(Base):
    """A recording a site sends straight to storage: presigned parts (no retention) to its content-addressed key,
    or to a staging key when that key holds a stored object already; then completed here, where what it claims is
    checked against the stored bytes before anything is locked (:mod:`evidence.staged`)."""

    __tablename__ = "recording_upload"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: the site's handle on its upload
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"))
    view: Mapped[str] = mapped_column(String(30))
    claimed_start: Mapped[datetime] = mapped_column(UTCDateTime())
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    part_size: Mapped[int] = mapped_column(BigInteger)
    upload_key: Mapped[str] = mapped_column("staging_key", String(200))  # where the parts go (content or staging key)
    s3_upload_id: Mapped[str] = mapped_column(String(400))
    # open → stored (recording_id set), or open → refused (``refusal`` says why; its parts and bytes are removed)
    status: Mapped[str] = mapped_column(String(12), default="open")
    refusal: Mapped[str | None] = mapped_column(Text, default=None)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recording.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
