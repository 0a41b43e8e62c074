from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.sessions import services as svc
from qbank.sessions.models import ExamSession, Room, Site
from qbank.sessions.schemas import SessionIn, SessionOut, SiteIn, SiteOut

SESSION_READERS = requires(Role.admin, Role.supervisor, Role.site)


async def check_session_access(db: AsyncSession, actor: Actor, session_id: int) -> ExamSession:
    """The session, if this caller may see it: a site only sessions with a room at that site."""
    row = await svc.get_session(db, session_id)
    if actor.role == Role.site:
        at_site = await db.scalar(select(Room.id).where(Room.session_id == row.id, Room.site_code == actor.site)
                                  .limit(1))
        if at_site is None:
            raise PermissionDeniedException(f"site {actor.site} has no room in session {session_id}")
    return row


class SiteController(Controller):
    path = "/api/v1/sites"
    tags = ["sessions"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin)], summary="Register a test site", responses=problem_responses(409))
    async def create(self, data: SiteIn, db_session: AsyncSession, actor: Actor) -> SiteOut:
        row = await svc.create_site(db_session, data)
        out = svc.site_out(row)
        await record(db_session, actor, "site.create", "site", row.code, after=out)
        return out

    @get("/", guards=[SESSION_READERS], summary="List test sites (a site sees itself)")
    async def list_sites(self, db_session: AsyncSession, actor: Actor) -> list[SiteOut]:
        query = select(Site).order_by(Site.code)
        if actor.role == Role.site:
            query = query.where(Site.code == actor.site)
        return [svc.site_out(r) for r in (await db_session.scalars(query)).all()]


class SessionController(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin)], summary="Schedule an exam session with its rooms and candidates",
          responses=problem_responses(404))
    async def create(self, data: SessionIn, db_session: AsyncSession, actor: Actor, state: State) -> SessionOut:
        row = await svc.create_session(db_session, actor, state.settings, data)
        out = await svc.session_out(db_session, state.settings, row)
        await record(db_session, actor, "session.create", "session", row.id, after=out)
        return out

    @get("/", guards=[SESSION_READERS], summary="List exam sessions, newest first")
    async def list_sessions(self, db_session: AsyncSession, actor: Actor, state: State) -> list[SessionOut]:
        query = select(ExamSession).order_by(ExamSession.starts_at.desc(), ExamSession.id.desc())
        if actor.role == Role.site:
            query = query.where(ExamSession.id.in_(select(Room.session_id).where(Room.site_code == actor.site)))
        rows = (await db_session.scalars(query.limit(500))).all()
        return [await svc.session_out(db_session, state.settings, r) for r in rows]

    @get("/{session_id:int}", guards=[SESSION_READERS], summary="Read an exam session",
         responses=problem_responses(404))
    async def read(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State) -> SessionOut:
        row = await check_session_access(db_session, actor, session_id)
        return await svc.session_out(db_session, state.settings, row)
