"""The ``exam_session`` dependency: the session named in the path, if the caller may see it (a site only sessions
with a room at that site); 404 when it does not exist, 403 when the caller may not see it."""

from __future__ import annotations

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.lib.actors import Actor
from qbank.sessions.models import ExamSession
from qbank.sessions.services import session_for


async def provide_exam_session(session_id: int, db_session: AsyncSession, actor: Actor) -> ExamSession:
    return await session_for(db_session, actor, session_id)


SESSION_DEPENDENCIES: dict[str, Provide] = {"exam_session": Provide(provide_exam_session)}
