"""Responses and practical scores in the window, results on the 100-point scale (§21), the score sheet (§22)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from paperbuild import delivery
from qbank.audit.services import record
from qbank.db import utcnow
from qbank.lib.actors import Actor, Role
from qbank.lib.pdf import table_pdf
from qbank.lib.problems import FieldError, ProblemError, conflict
from qbank.panels.assignment import check_practical_scorers
from qbank.papers.models import (
    PracticalScore,
    TheoryResponse,
    VoidedResult,
)
from qbank.papers.schemas import (
    PracticalScoresIn,
    PracticalScoresOut,
    ResponsesIn,
    ResponsesOut,
    ResultOut,
    ResultsOut,
    ScoredOut,
)
from qbank.papers.sealing import session_doc
from qbank.papers.services import Seat, load_paper, local, sealed_paper, session_seats
from qbank.reviews.models import KeyNodeRecord
from qbank.reviews.services import upload_record
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

log = structlog.get_logger("qbank.papers")

PASS_MARK = 60.0
MIN_EVALUATORS = 3


def check_open(settings: Settings, session: ExamSession, what: str) -> None:
    now = utcnow()
    closes = session.ends_at + timedelta(minutes=session.grace_minutes)
    if now < session.starts_at:
        raise ProblemError(403, f"{what} of session {session.id} are accepted from "
                                f"{local(settings, session.starts_at)}")
    if now > closes:
        raise ProblemError(403, f"{what} of session {session.id} were accepted until {local(settings, closes)} "
                                f"(the end plus {session.grace_minutes} minutes' grace); "
                                f"it is now {local(settings, now)}",
                           extra={"closed_at": local(settings, closes)})


async def seats_by_number(db: AsyncSession, actor: Actor, session_id: int, numbers: list[str],
                          field: Callable[[int], str]) -> dict[str, Seat]:
    seats = {s.candidate.number: s for s in await session_seats(db, session_id)}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, number in enumerate(numbers):
        if number not in seats:
            errors.append(FieldError(field=field(i), reason=f"candidate {number} is not in session {session_id}"))
        if number in seen:
            errors.append(FieldError(field=field(i), reason=f"candidate {number} appears twice in this request"))
        seen.add(number)
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    if actor.role == Role.site:
        foreign = [n for n in numbers if seats[n].room.site_code != actor.site]
        if foreign:
            raise PermissionDeniedException(f"candidates {', '.join(foreign[:10])} do not sit at site {actor.site}")
    return seats


async def accept_responses(db: AsyncSession, actor: Actor, settings: Settings, session: ExamSession,
                           data: ResponsesIn) -> ResponsesOut:
    """Responses sent now: accepted in the window (plus grace), then scored by :func:`score_responses`."""
    check_open(settings, session, "responses")
    return await score_responses(db, actor, session, data)


async def score_responses(db: AsyncSession, actor: Actor, session: ExamSession, data: ResponsesIn,
                          detail: dict[str, Any] | None = None) -> ResponsesOut:
    """Check, score and keep candidates' responses (each candidate once, only items of their own paper, places as
    shown); the caller has checked when they were given. In the trail as ``responses.receive``."""
    paper = await sealed_paper(db, session.id)
    numbers = [r.candidate for r in data.responses]
    seats = await seats_by_number(db, actor, session.id, numbers, lambda i: f"responses[{i}].candidate")
    ids = [seats[n].candidate.id for n in numbers]
    done = set((await db.scalars(select(TheoryResponse.candidate_id).where(
        TheoryResponse.candidate_id.in_(ids)))).all())
    if done:
        twice = [n for n in numbers if seats[n].candidate.id in done]
        raise conflict(f"responses of candidate(s) {', '.join(twice[:10])} were already received; they are final",
                       candidates=twice)
    loaded = await load_paper(db, paper)
    errors: list[FieldError] = []
    parsed: list[tuple[Seat, int, dict[int, Sequence[int]], list[delivery.DeliveredItem]]] = []
    for i, entry in enumerate(data.responses):
        seat = seats[entry.candidate]
        form = loaded.assignment.get(seat.candidate.id)
        if form is None:
            errors.append(FieldError(field=f"responses[{i}].candidate", reason="this candidate has no paper"))
            continue
        items = {it.version_id: it for it in loaded.forms[form]}
        answers: dict[int, Sequence[int]] = {}
        for raw, places in entry.answers.items():
            where = f"responses[{i}].answers.{raw}"
            try:
                vid = int(raw)
            except ValueError:
                errors.append(FieldError(field=where, reason="a key is an item version id (an integer)"))
                continue
            it = items.get(vid)
            if it is None:
                errors.append(FieldError(field=where, reason=f"item version {raw} is not on this candidate's paper"))
                continue
            if len(set(places)) != len(places) or any(p >= it.options for p in places):
                errors.append(FieldError(field=where, reason=(
                    f"places are distinct option positions 0–{it.options - 1} as shown; got {places}")))
                continue
            answers[vid] = list(places)
        parsed.append((seat, form, answers, delivery.deliver(loaded.forms[form], loaded.seed, seat.candidate.number)))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    scored: list[ScoredOut] = []
    for seat, form, answers, delivered in parsed:
        points = delivery.score(loaded.forms[form], delivered, answers)
        db.add(TheoryResponse(session_id=session.id, candidate_id=seat.candidate.id, paper_id=paper.id,
                              form_index=form, answers={str(k): v for k, v in answers.items()}, score=points,
                              received_by=actor.label))
        scored.append(ScoredOut(candidate=seat.candidate.number, form=form, answered=len(answers), score=points))
    await db.flush()
    out = ResponsesOut(session_id=session.id, accepted=len(scored), scores=scored)
    await record(db, actor, "responses.receive", "session", session.id, after=out,
                 detail={"candidates": numbers[:500], "paper": paper.id, **(detail or {})})
    return out


async def accept_practical(db: AsyncSession, actor: Actor, session: ExamSession,
                           data: PracticalScoresIn) -> PracticalScoresOut:
    numbers = [s.candidate for s in data.scores]
    seats = await seats_by_number(db, actor, session.id, numbers, lambda i: f"scores[{i}].candidate")
    errors: list[FieldError] = []
    for i, s in enumerate(data.scores):
        names = [e.name.strip() for e in s.evaluators]
        if len(set(names)) < MIN_EVALUATORS or len(set(names)) != len(names):
            errors.append(FieldError(field=f"scores[{i}].evaluators", reason=(
                f"a panel of at least {MIN_EVALUATORS} distinct evaluators marks a practical exam (§20); "
                f"got {len(set(names))} distinct of {len(names)}")))
        if s.leader.strip() not in names:
            errors.append(FieldError(field=f"scores[{i}].leader",
                                     reason=f"the leader {s.leader!r} is not one of the evaluators"))
        # §20: only the assigned panel scores, and its leader gives the final score
        for reason in await check_practical_scorers(db, session.id, seats[s.candidate].room.id, names, s.leader):
            errors.append(FieldError(field=f"scores[{i}].evaluators", reason=reason))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    ids = [seats[n].candidate.id for n in numbers]
    done = set((await db.scalars(select(PracticalScore.candidate_id).where(
        PracticalScore.candidate_id.in_(ids)))).all())
    if done:
        twice = [n for n in numbers if seats[n].candidate.id in done]
        raise conflict(f"practical scores of candidate(s) {', '.join(twice[:10])} were already recorded",
                       candidates=twice)
    for s in data.scores:
        db.add(PracticalScore(session_id=session.id, candidate_id=seats[s.candidate].candidate.id,
                              evaluators=[msgspec.to_builtins(e) for e in s.evaluators], leader=s.leader.strip(),
                              score=s.final_score, recorded_by=actor.label))
    await db.flush()
    out = PracticalScoresOut(session_id=session.id, accepted=len(data.scores))
    await record(db, actor, "practical_scores.record", "session", session.id, after=msgspec.to_builtins(data),
                 detail={"candidates": numbers[:500]})
    return out


async def session_results(db: AsyncSession, session: ExamSession) -> ResultsOut:
    seats = await session_seats(db, session.id)
    theory = dict((await db.execute(select(TheoryResponse.candidate_id, TheoryResponse.score).where(
        TheoryResponse.session_id == session.id))).all())
    practical = dict((await db.execute(select(PracticalScore.candidate_id, PracticalScore.score).where(
        PracticalScore.session_id == session.id))).all())
    void = await db.get(VoidedResult, session.id)
    results = []
    for s in seats:
        t, p = theory.get(s.candidate.id), practical.get(s.candidate.id)
        passes = None if void is not None or t is None or p is None else (t >= PASS_MARK and p >= PASS_MARK)
        results.append(ResultOut(candidate=s.candidate.number, name=s.candidate.name, site=s.room.site_code,
                                 theory=t, practical=p, passes=passes, void=void is not None))
    return ResultsOut(session_id=session.id, void=void is not None, void_reason=void.reason if void else None,
                      results=results)



async def build_score_sheet(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                            session: ExamSession) -> tuple[KeyNodeRecord, bool, ResultsOut]:
    """The score sheet (成绩汇总表) as a key-node record under legal hold, stored by the reviews domain."""
    results = await session_results(db, session)
    sheet = {"form": "成绩汇总表", "session": session_doc(settings, session), "pass_mark": PASS_MARK,
             "void": results.void, "void_reason": results.void_reason,
             "results": [msgspec.to_builtins(r) for r in results.results]}

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    subtitle = [f"考试 Session {session.id}    职业 Occupation {session.occupation_code}    等级 Level {session.level}",
                f"{local(settings, session.starts_at)} – {local(settings, session.ends_at)}    "
                f"合格线 Pass mark {PASS_MARK:g}"]
    if results.void:
        subtitle.append(f"成绩无效 RESULTS VOID: {results.void_reason or ''}")
    verdicts = {True: "合格 pass", False: "不合格 fail", None: "-"}
    rows = [[r.candidate, r.name, r.site, fmt(r.theory), fmt(r.practical),
             "无效 void" if r.void else verdicts[r.passes]] for r in results.results]
    document = table_pdf("成绩汇总表 Score sheet", subtitle,
                         ["准考证号 Number", "姓名 Name", "考点 Site", "理论 Theory", "技能 Practical", "结果 Result"],
                         rows, [40, 150, 250, 340, 410, 490], msgspec.json.encode(sheet), "score-sheet.json")

    async def body() -> AsyncIterator[bytes]:
        yield document

    row, new = await upload_record(db, actor, settings, archive, session, "score_sheet", body(),
                                   f"score-sheet-session-{session.id}-{hashlib.sha256(document).hexdigest()[:12]}.pdf")
    return row, not new, results
