from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class ApiToken(Base):
    """A bearer token: only its HMAC is stored; the token itself is shown once at creation."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    occupations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    site_code: Mapped[str | None] = mapped_column(String(40), default=None)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
