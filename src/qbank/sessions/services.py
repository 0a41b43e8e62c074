"""Sites and exam sessions: rooms of one kind each, camera views, candidates at desks."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from litestar.exceptions import PermissionDeniedException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.blueprints.services import require_level
from qbank.db import get_or_404
from qbank.lib.actors import Actor, Role
from qbank.lib.problems import FieldError, ProblemError, conflict
from qbank.sessions.models import Candidate, ExamSession, Room, Site
from qbank.sessions.schemas import RoomOut, SessionIn, SessionOut, SiteIn, SiteOut
from qbank.settings import Settings

DEFENCE_LEVELS = {1, 2}  # §17(一): level 2 and above also need a defence / comprehensive review room


def site_out(row: Site) -> SiteOut:
    return SiteOut(code=row.code, name=row.name, has_public_key=row.public_key is not None,
                   has_signing_key=row.signing_key is not None, created_at=row.created_at)


async def create_site(db: AsyncSession, data: SiteIn) -> Site:
    if await db.get(Site, data.code) is not None:
        raise conflict(f"site {data.code} already exists")
    row = Site(code=data.code, name=data.name)
    db.add(row)
    await db.flush()
    return row


async def get_site(db: AsyncSession, code: str) -> Site:
    row = await get_or_404(db, Site, code, "site")
    return row


def session_errors(data: SessionIn, known_sites: set[str]) -> list[FieldError]:
    """Every reason this session plan cannot stand; empty when it can."""
    errors: list[FieldError] = []
    if data.end <= data.start:
        errors.append(FieldError(field="end", reason=f"the window ends ({data.end}) before it starts ({data.start})"))
    seen: dict[tuple[str, str], int] = {}
    for i, room in enumerate(data.rooms):
        if room.site not in known_sites:
            errors.append(FieldError(field=f"rooms[{i}].site", reason=f"site {room.site} does not exist"))
        key = (room.site, room.code)
        if key in seen:
            errors.append(FieldError(field=f"rooms[{i}].code", reason=(
                f"room {room.site}/{room.code} is listed twice (rooms[{seen[key]}]); a room is one kind only")))
        seen.setdefault(key, i)
        if len(set(room.camera_views)) != len(room.camera_views):
            errors.append(FieldError(field=f"rooms[{i}].camera_views", reason="camera views repeat"))
    if data.level in DEFENCE_LEVELS and not any(r.kind == "defence" for r in data.rooms):
        errors.append(FieldError(field="rooms", reason=f"a level {data.level} session needs a defence room"))
    rooms = {f"{r.site}/{r.code}": r for r in data.rooms}
    numbers = Counter(c.number for c in data.candidates)
    desks: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, cand in enumerate(data.candidates):
        found = rooms.get(cand.room)
        if numbers[cand.number] > 1:
            errors.append(FieldError(field=f"candidates[{i}].number", reason=f"candidate {cand.number} appears twice"))
        if found is None:
            errors.append(FieldError(field=f"candidates[{i}].room", reason=f"room {cand.room} is not in this session"))
            continue
        room = found
        if cand.desk > room.desks:
            errors.append(FieldError(field=f"candidates[{i}].desk", reason=(
                f"room {cand.room} has {room.desks} desks; desk {cand.desk} does not exist")))
        if room.kind == "theory":
            desks[(cand.room, cand.desk)].append(cand.number)
    for (room_key, desk), who in desks.items():
        if len(who) > 1:
            errors.append(FieldError(field="candidates", reason=(
                f"theory room {room_key} desk {desk} has {len(who)} candidates ({', '.join(who)}); "
                "one per desk (§17(一))")))
    return errors


async def create_session(db: AsyncSession, actor: Actor, settings: Settings, data: SessionIn) -> ExamSession:
    await require_level(db, data.occupation_code, data.level)
    codes = {r.site for r in data.rooms}
    known = set((await db.scalars(select(Site.code).where(Site.code.in_(codes)))).all())
    errors = session_errors(data, known)
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    tz = settings.tz
    session = ExamSession(
        occupation_code=data.occupation_code, level=data.level, title=data.title,
        starts_at=datetime.combine(data.date, data.start, tz).astimezone(UTC),
        ends_at=datetime.combine(data.date, data.end, tz).astimezone(UTC),
        grace_minutes=data.grace_minutes, note=data.note, created_by=actor.label)
    db.add(session)
    await db.flush()
    room_ids: dict[str, int] = {}
    for r in data.rooms:
        room = Room(session_id=session.id, site_code=r.site, code=r.code, kind=r.kind, desks=r.desks,
                    camera_views=list(r.camera_views))
        db.add(room)
        await db.flush()
        room_ids[f"{r.site}/{r.code}"] = room.id
    db.add_all(Candidate(session_id=session.id, room_id=room_ids[c.room], number=c.number, name=c.name, desk=c.desk,
                         id_tail=c.id_tail.upper() if c.id_tail else None)
               for c in data.candidates)
    await db.flush()
    return session


async def get_session(db: AsyncSession, session_id: int) -> ExamSession:
    row = await get_or_404(db, ExamSession, session_id, "session")
    return row


async def session_rooms(db: AsyncSession, session_id: int) -> list[Room]:
    return list((await db.scalars(select(Room).where(Room.session_id == session_id).order_by(Room.id))).all())


async def session_out(db: AsyncSession, settings: Settings, row: ExamSession) -> SessionOut:
    rooms = await session_rooms(db, row.id)
    counts = dict((await db.execute(select(Candidate.room_id, func.count()).where(
        Candidate.session_id == row.id).group_by(Candidate.room_id))).all())
    tz = settings.tz
    return SessionOut(
        id=row.id, occupation_code=row.occupation_code, level=row.level, title=row.title,
        starts_at=row.starts_at, ends_at=row.ends_at,
        local_start=row.starts_at.astimezone(tz).isoformat(), local_end=row.ends_at.astimezone(tz).isoformat(),
        grace_minutes=row.grace_minutes, sites=sorted({r.site_code for r in rooms}),
        rooms=[RoomOut(id=r.id, site=r.site_code, code=r.code, kind=r.kind, desks=r.desks,  # type: ignore[arg-type]
                       camera_views=list(r.camera_views), candidates=counts.get(r.id, 0)) for r in rooms],
        candidates=sum(counts.values()), note=row.note, created_by=row.created_by, created_at=row.created_at)


async def session_for(db: AsyncSession, actor: Actor, session_id: int) -> ExamSession:
    """The session, if this caller may see it: a site only sessions with a room at that site."""
    row = await get_session(db, session_id)
    if actor.role == Role.site:
        at_site = await db.scalar(select(Room.id).where(Room.session_id == row.id, Room.site_code == actor.site)
                                  .limit(1))
        if at_site is None:
            raise PermissionDeniedException(f"site {actor.site} has no room in session {session_id}")
    return row


async def register_site(db: AsyncSession, actor: Actor, data: SiteIn) -> SiteOut:
    row = await create_site(db, data)
    out = site_out(row)
    await record(db, actor, "site.create", "site", row.code, after=out)
    return out


async def list_sites(db: AsyncSession, actor: Actor) -> list[SiteOut]:
    """Every site; a site token sees itself."""
    query = select(Site).order_by(Site.code)
    if actor.role == Role.site:
        query = query.where(Site.code == actor.site)
    return [site_out(r) for r in (await db.scalars(query)).all()]


async def schedule_session(db: AsyncSession, actor: Actor, settings: Settings, data: SessionIn) -> SessionOut:
    row = await create_session(db, actor, settings, data)
    out = await session_out(db, settings, row)
    await record(db, actor, "session.create", "session", row.id, after=out)
    return out


async def list_sessions(db: AsyncSession, actor: Actor, settings: Settings, limit: int = 500) -> list[SessionOut]:
    """Sessions newest first; a site token sees those with a room at its site."""
    query = select(ExamSession).order_by(ExamSession.starts_at.desc(), ExamSession.id.desc())
    if actor.role == Role.site:
        query = query.where(ExamSession.id.in_(select(Room.session_id).where(Room.site_code == actor.site)))
    rows = (await db.scalars(query.limit(limit))).all()
    return [await session_out(db, settings, r) for r in rows]
