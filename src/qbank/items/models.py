from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Item(Base):
    """The item's identity, status and who answers for it; its content lives in immutable versions."""

    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("occupation_code", "level", "content_key"),
        Index("ix_item_bank", "occupation_code", "level", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occupation_code: Mapped[str] = mapped_column(ForeignKey("occupation.code"))
    level: Mapped[int]
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(default=1)
    # Copies of the current version's fields for search; the version row stays the source of truth.
    stem: Mapped[str] = mapped_column(Text)
    stem_key: Mapped[str] = mapped_column(String(64))  # normalised stem: leaked stems are matched on it
    content_key: Mapped[str] = mapped_column(String(64))  # normalised stem and options: exact duplicates
    point_code: Mapped[str] = mapped_column(String(3))
    author: Mapped[str] = mapped_column(String(120))
    maintainer: Mapped[str] = mapped_column(String(120))
    reviewer: Mapped[str | None] = mapped_column(String(120), default=None)
    reject_reason: Mapped[str | None] = mapped_column(Text, default=None)
    near_duplicates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    times_used: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ItemVersion(Base):
    """One immutable version of an item's content; papers point here, never at the item row."""

    __tablename__ = "item_version"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    version: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
