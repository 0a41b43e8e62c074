from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class ImportUpload(Base):
    """A file sent to ``POST /api/v1/imports``, kept in the database so that whichever runner takes the import job
    (the service, or a `qbank worker` on another machine) reads the same bytes; ``sha256`` is checked before
    parsing. ``data`` is dropped when the job ends; a refused import keeps its full list of problems (``report``,
    gzip'd CSV) for the author to download."""

    __tablename__ = "import_upload"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the import job's id
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    point_map: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    report: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    problems: Mapped[int] = mapped_column(default=0)  # how many problems the report lists
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
