"""Papers of exam sessions: assemblies, forms of item versions, candidates' forms, sealed packages per site,
responses and scores, voided results and leaks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qbank.db import Base, UTCDateTime, utcnow


class Paper(Base):
    """One assembly attempt of a session's theory paper; the latest attempt is what GET answers with.

    ``status`` is ``assembled`` (forms stored) or ``failed`` (``explanation`` holds the rows that cannot hold
    together). ``delivery_seed`` is the secret from which each candidate's item and option orders derive."""

    __tablename__ = "paper"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    layout_id: Mapped[int] = mapped_column(ForeignKey("layout.id"))
    blueprint_id: Mapped[int | None] = mapped_column(ForeignKey("blueprint.id"), default=None)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
    delivery_seed: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PaperForm(Base):
    """One form of a paper: item versions in delivery order (``items``: [{version_id, section, points}])."""

    __tablename__ = "paper_form"
    __table_args__ = (UniqueConstraint("paper_id", "form_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id"), index=True)
    form_index: Mapped[int]
    items: Mapped[list[Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class PaperAssignment(Base):
    """Which form a candidate sits."""

    __tablename__ = "paper_assignment"
    __table_args__ = (UniqueConstraint("paper_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    form_index: Mapped[int]


class SealedPaper(Base):
    """A site's sealed package in the retention archive and the centre's key share, released in the window."""

    __tablename__ = "sealed_paper"
    __table_args__ = (UniqueConstraint("paper_id", "site_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("site.code"))
    package_id: Mapped[str] = mapped_column(String(40))
    archive_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    centre_share: Mapped[str] = mapped_column(String(64))  # hex
    site_key_id: Mapped[str] = mapped_column(String(16))
    candidates: Mapped[int]
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TheoryResponse(Base):
    """A candidate's answers as sent by the site (places as shown) and the theory score on the 100-point scale."""

    __tablename__ = "theory_response"
    __table_args__ = (UniqueConstraint("candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id"))
    form_index: Mapped[int]
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float]
    received_by: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PracticalScore(Base):
    """A practical exam's marks: ≥ 3 evaluators' scores and the leader's final score."""

    __tablename__ = "practical_score"
    __table_args__ = (UniqueConstraint("candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    evaluators: Mapped[list[Any]] = mapped_column(JSON)
    leader: Mapped[str] = mapped_column(String(120))
    score: Mapped[float]
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Leak(Base):
    """Leaked content as reported, the item versions it resolved to, the ranked candidates; confirmed or not."""

    __tablename__ = "leak"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[list[Any]] = mapped_column(JSON)
    resolved: Mapped[list[Any]] = mapped_column(JSON)
    matches: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="reported")
    reported_by: Mapped[str] = mapped_column(String(200))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class VoidedResult(Base):
    """A session whose results are void (§29: a leaked paper voids results)."""

    __tablename__ = "voided_result"

    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), primary_key=True)
    leak_id: Mapped[int | None] = mapped_column(ForeignKey("leak.id"), default=None)
    reason: Mapped[str] = mapped_column(Text)
    voided_by: Mapped[str] = mapped_column(String(200))
    voided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResponseBundle(Base):
    """A signed response bundle from a site's exam station: one room's answers, answer logs, the proctor's log and
    incidents. Its bytes are a key-node record (``record_id``); ``result`` is what the centre answered, given again
    when the station sends the same bundle twice (it retries until it hears an answer)."""

    __tablename__ = "response_bundle"

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[str] = mapped_column(String(40), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_session.id"), index=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("site.code"))
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[int] = mapped_column(ForeignKey("key_node_record.id"))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_by: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
