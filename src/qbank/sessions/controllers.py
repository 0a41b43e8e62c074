from __future__ import annotations

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.sessions import services as svc
from qbank.sessions.models import ExamSession
from qbank.sessions.schemas import SessionIn, SessionOut, SiteIn, SiteOut
from qbank.settings import Settings

SESSION_READERS = requires(Role.admin, Role.supervisor, Role.site)


class SiteController(Controller):
    path = "/api/v1/sites"
    tags = ["sessions"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin)], summary="Register a test site", responses=problem_responses(409))
    async def create(self, data: SiteIn, db_session: AsyncSession, actor: Actor) -> SiteOut:
        return await svc.register_site(db_session, actor, data)

    @get("/", guards=[SESSION_READERS], summary="List test sites (a site sees itself)")
    async def list_sites(self, db_session: AsyncSession, actor: Actor) -> list[SiteOut]:
        return await svc.list_sites(db_session, actor)


class SessionController(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin)], summary="Schedule an exam session with its rooms and candidates",
          responses=problem_responses(404))
    async def create(self, data: SessionIn, db_session: AsyncSession, actor: Actor, settings: Settings) -> SessionOut:
        return await svc.schedule_session(db_session, actor, settings, data)

    @get("/", guards=[SESSION_READERS], summary="List exam sessions, newest first")
    async def list_sessions(self, db_session: AsyncSession, actor: Actor, settings: Settings) -> list[SessionOut]:
        return await svc.list_sessions(db_session, actor, settings)

    @get("/{session_id:int}", guards=[SESSION_READERS], summary="Read an exam session",
         responses=problem_responses(404))
    async def read(self, exam_session: ExamSession, db_session: AsyncSession, settings: Settings) -> SessionOut:
        return await svc.session_out(db_session, settings, exam_session)
