"""Response bundles from a site's exam station: verified (the site's signature, the site, the session, its package,
the window plus grace, the room's roster and forms, the log's hash chain), scored as any responses, kept as a
key-node record, the proctor's incidents into the supervision view. The same bundle twice is answered from what
was kept; another bundle under the same id is refused."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import msgspec
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from paperbuild.sealing import SealError, read_document, verify_document
from qbank.audit.services import record
from qbank.db import utcnow
from qbank.lib.actors import Actor, Role
from qbank.lib.digest import chain_break
from qbank.lib.problems import FieldError, ProblemError, conflict
from qbank.papers.keys import parse_signing_key
from qbank.papers.models import ResponseBundle
from qbank.papers.schemas import (
    BUNDLE_FORMAT,
    BundleOut,
    CandidateAnswers,
    ResponseBundleDoc,
    ResponsesIn,
)
from qbank.papers.scoring import score_responses
from qbank.papers.sealing import RELEASE_LEAD, site_package
from qbank.papers.services import load_paper, local, sealed_paper, session_seats
from qbank.reviews.services import StationIncident, add_station_incidents, keep_document
from qbank.sessions.models import ExamSession, Room, Site
from qbank.sessions.services import get_site
from qbank.settings import Settings

CATEGORY = "response_bundle"
BODY_LIMIT = 64 * 1024 * 1024  # 200 candidates' answers and answer logs are a few MB
CLOCK_SKEW = timedelta(minutes=5)  # a site's clock may be this far off the centre's


def refused(detail: str, status: int = 400, field: str = "body") -> ProblemError:
    return ProblemError(status, f"bundle refused: {detail}", errors=[FieldError(field=field, reason=detail)])


async def signed_bundle(db: AsyncSession, actor: Actor, data: bytes) -> tuple[Site, ResponseBundleDoc]:
    """The bundle, if the site it names signed exactly these bytes with its registered key (a site token only
    its own site's bundles; an admin any site's, e.g. carried from an offline site)."""
    try:
        claimed = read_document(data)
    except SealError as exc:
        raise refused(exc.reason) from None
    site_code = claimed.get("site")
    if not isinstance(site_code, str):
        raise refused("it names no site", field="site")
    if actor.role == Role.site and site_code != actor.site:
        raise PermissionDeniedException(f"bundle refused: it is from site {site_code}; site {actor.site} submits "
                                        "only its own bundles")
    site = await get_site(db, site_code)
    if not site.signing_key:
        raise ProblemError(409, f"bundle refused: site {site.code} has registered no signing key "
                                f"(PUT /api/v1/sites/{site.code}/signing-key); nothing was changed")
    try:
        document = verify_document(data, parse_signing_key(site.signing_key, f"sites.{site.code}.signing_key"))
    except SealError as exc:
        raise refused(f"{exc.reason} (site {site.code}'s registered signing key)", field="signature") from None
    try:
        bundle = msgspec.convert(document, ResponseBundleDoc)
    except msgspec.ValidationError as exc:
        raise refused(f"not a response bundle: {exc}") from None
    if bundle.format != BUNDLE_FORMAT:
        raise refused(f"unknown format {bundle.format!r} (expected {BUNDLE_FORMAT})", field="format")
    return site, bundle


def check_times(settings: Settings, session: ExamSession, bundle: ResponseBundleDoc) -> tuple[datetime, datetime]:
    """Every time the station stamped lies in the session's window (start minus the release lead, end plus
    grace, each widened by the clock skew allowed); returns those bounds."""
    earliest = session.starts_at - RELEASE_LEAD - CLOCK_SKEW
    latest = session.ends_at + timedelta(minutes=session.grace_minutes) + CLOCK_SKEW
    if utcnow() < session.starts_at - RELEASE_LEAD:
        raise refused(f"session {session.id} starts at {local(settings, session.starts_at)}; no bundle comes "
                      "before its window", status=403)
    if bundle.started_at < session.starts_at - CLOCK_SKEW:
        raise refused(f"room {bundle.room} started at {local(settings, bundle.started_at)}, before the session "
                      f"starts ({local(settings, session.starts_at)})", field="started_at")
    stamps: list[tuple[str, datetime]] = [("ended_at", bundle.ended_at)]
    for i, c in enumerate(bundle.candidates):
        if c.submitted_at is not None:
            stamps.append((f"candidates[{i}].submitted_at", c.submitted_at))
        stamps += [(f"candidates[{i}].log[{k}].at", e.at) for k, e in enumerate(c.log)]
    late = [(f, at) for f, at in stamps if not earliest <= at <= latest]
    if late:
        field, at = late[0]
        raise refused(f"{len(late)} time(s) lie outside the session's window and grace "
                      f"({local(settings, earliest)} – {local(settings, latest)}), e.g. {field} "
                      f"{local(settings, at)}", field=field)
    return earliest, latest


async def check_room(db: AsyncSession, session: ExamSession, site: Site, bundle: ResponseBundleDoc) -> Room:
    """The bundle is for the site's package in force and names exactly the room's candidates, each on their form."""
    package = await site_package(db, session, site.code)
    if bundle.package_id != package.package_id:
        raise ProblemError(409, f"bundle refused: it was made with package {bundle.package_id}, but site "
                                f"{site.code}'s package of session {session.id} is {package.package_id}")
    seats = [s for s in await session_seats(db, session.id) if s.room.site_code == site.code
             and s.room.code == bundle.room and s.room.kind == "theory"]
    if not seats:
        raise refused(f"session {session.id} has no theory room {site.code}/{bundle.room} with candidates",
                      field="room")
    loaded = await load_paper(db, await sealed_paper(db, session.id))
    by_number = {s.candidate.number: s for s in seats}
    errors: list[FieldError] = []
    for i, c in enumerate(bundle.candidates):
        seat = by_number.get(c.number)
        if seat is None:
            errors.append(FieldError(field=f"candidates[{i}].number",
                                     reason=f"candidate {c.number} does not sit in room {bundle.room}"))
        elif loaded.assignment.get(seat.candidate.id) != c.form:
            errors.append(FieldError(field=f"candidates[{i}].form", reason=(
                f"candidate {c.number} sits form {loaded.assignment.get(seat.candidate.id)}, not form {c.form}")))
    listed = [c.number for c in bundle.candidates]
    missing = sorted(set(by_number) - set(listed))
    if missing:
        errors.append(FieldError(field="candidates", reason=f"the room's candidates {', '.join(missing[:10])} are "
                                                            "missing (a bundle holds the whole room)"))
    if len(set(listed)) != len(listed):
        errors.append(FieldError(field="candidates", reason="a candidate appears twice"))
    if errors:
        raise ProblemError(400, "bundle refused: " + "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]),
                           errors=errors)
    return seats[0].room


async def receive_bundle(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                         session: ExamSession, data: bytes) -> BundleOut:
    """Verify, score and keep one room's bundle (see the module's docstring); the same bytes again answer what was
    answered the first time with ``already_received``; nothing changes on any refusal."""
    site, bundle = await signed_bundle(db, actor, data)
    if bundle.session != session.id:
        raise refused(f"it is for session {bundle.session}, not session {session.id}", status=409,
                      field="session")
    sha256 = hashlib.sha256(data).hexdigest()
    kept = await db.scalar(select(ResponseBundle).where(ResponseBundle.bundle_id == bundle.bundle_id))
    if kept is not None:
        if kept.sha256 != sha256 or kept.session_id != session.id:
            raise conflict(f"bundle refused: another bundle with id {bundle.bundle_id} was received at "
                           f"{local(settings, kept.received_at)}; a bundle id is used once (replayed or altered)",
                           bundle_id=bundle.bundle_id)
        out = msgspec.convert(kept.result, BundleOut)
        out.already_received = True
        return out
    earliest, latest = check_times(settings, session, bundle)
    reason = chain_break(bundle.log)
    if reason is not None:
        raise refused(f"the station's log does not hold together: {reason}", field="log")
    room = await check_room(db, session, site, bundle)
    submitted = [c for c in bundle.candidates if c.status == "submitted"]
    scores = []
    detail = {"bundle": bundle.bundle_id, "room": bundle.room}
    if submitted:
        responses = ResponsesIn(responses=[CandidateAnswers(candidate=c.number, answers=c.answers)
                                           for c in submitted])
        scores = (await score_responses(db, actor, session, responses, detail)).scores
    kept_record = await keep_document(db, actor, settings, archive, session, CATEGORY, data, "application/json",
                                      f"response-bundle-{session.id}-{site.code}-{bundle.room}-{bundle.bundle_id}.json")
    added, note = await add_station_incidents(
        db, actor, settings, session, room,
        [StationIncident(at=i.at, category=i.category, note=i.note, by=i.by) for i in bundle.incidents],
        f"exam station {site.code}/{bundle.room}, bundle {bundle.bundle_id[:12]}", earliest, latest)
    now = utcnow()
    out = BundleOut(bundle_id=bundle.bundle_id, session_id=session.id, site=site.code, room=bundle.room,
                    sha256=sha256, accepted=len(scores), absent=[c.number for c in bundle.candidates
                                                                 if c.status == "absent"],
                    scores=scores, incidents_added=len(added), incidents_note=note, record_id=kept_record.id,
                    record_key=kept_record.archive_key, received_at=now)
    row = ResponseBundle(bundle_id=bundle.bundle_id, session_id=session.id, site_code=site.code, room_id=room.id,
                         sha256=sha256, size=len(data), record_id=kept_record.id,
                         result=msgspec.to_builtins(out), received_by=actor.label, received_at=now)
    db.add(row)
    await db.flush()
    await record(db, actor, "responses.bundle", "response_bundle", row.id, after=out,
                 detail={"session": session.id, "site": site.code, "room": bundle.room, "sha256": sha256})
    return out
