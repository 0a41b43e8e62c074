from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Occupation(Base):
    __tablename__ = "occupation"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    levels: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Blueprint(Base):
    """One version of a 鉴定要素细目表 for an occupation and level; immutable once a paper used it."""

    __tablename__ = "blueprint"
    __table_args__ = (UniqueConstraint("occupation_code", "level", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occupation_code: Mapped[str] = mapped_column(ForeignKey("occupation.code"), index=True)
    level: Mapped[int]
    version: Mapped[int]
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Layout(Base):
    """A paper layout: sections by item type, points, duration and target facility. Data, never code."""

    __tablename__ = "layout"
    __table_args__ = (UniqueConstraint("occupation_code", "level", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occupation_code: Mapped[str] = mapped_column(ForeignKey("occupation.code"), index=True)
    level: Mapped[int]
    name: Mapped[str] = mapped_column(String(120))
    sections: Mapped[list[Any]] = mapped_column(JSON)
    duration_minutes: Mapped[int]
    facility_min: Mapped[float]
    facility_max: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
