"""The request's transaction commits before its answer starts.

advanced-alchemy's ``autocommit`` commits in ``before_send``, as the response starts, and when that commit fails
(a full disk, a database that went away, a serialization failure) it logs the error at debug level and sends the
2xx anyway: the client is told "stored" about something that was not. Here the commit happens first; when it
fails the answer is the problem it was (507, 503, else 500) and the handler's body is dropped.

A GET (HEAD, OPTIONS) whose session wrote nothing is not committed at all (its read transaction ends when the
session closes): most requests are such reads, and a commit costs them a database round trip. "Wrote" is
judged conservatively: any flush, and any statement through the session that is not a SELECT."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import structlog
from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from qbank.db import SAFE_METHODS
from qbank.lib.problems import PROBLEM_JSON, ProblemError, outage_problem, problem_of

log = structlog.get_logger("qbank.errors")

WROTE = "qbank.wrote"  # Session.info: this session flushed or ran a statement that may write


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _: UOWTransaction) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not state.is_select:  # DML, and text() too: whatever it does may write
        state.session.info[WROTE] = True


def needs_commit(method: str, session: Any) -> bool:
    """Whether the request's transaction must commit before its answer (see the module's words)."""
    return method not in SAFE_METHODS or bool(session.info.get(WROTE) or session.new or session.dirty
                                               or session.deleted)


class CommitBeforeAnswerMiddleware:
    """``scope_key``: where the SQLAlchemy config keeps the request's session (unique per config in a process)."""

    def __init__(self, app: Any, settings: Any, scope_key: str) -> None:
        self.app = app
        self.settings = settings
        self.scope_key = scope_key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = False

        async def send_after_commit(message: Any) -> None:
            nonlocal refused
            if refused:
                return  # the body of an answer that could not be given
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                session = get_aa_scope_state(scope, self.scope_key)
                if session is not None and needs_commit(scope["method"], session):
                    try:
                        await session.commit()
                    except Exception as exc:
                        refused = True
                        with contextlib.suppress(Exception):
                            await session.rollback()
                        await self.refuse(send, scope, exc)
                        return
            await send(message)

        await self.app(scope, receive, send_after_commit)

    async def refuse(self, send: Any, scope: Any, exc: Exception) -> None:
        problem = outage_problem(exc, self.settings) or ProblemError(
            500, "the service failed; the error is in its log")
        log.error("the request's transaction did not commit", path=scope.get("path"), status=problem.status_code,
                  error=f"{type(exc).__name__}: {exc}"[:500])
        body = msgspec.json.encode(problem_of(problem))
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in (problem.headers or {}).items()]
        await send({"type": "http.response.start", "status": problem.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
