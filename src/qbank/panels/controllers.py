from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.panels import services as svc
from qbank.panels.models import Evaluator, PanelConflict, Supervisor, SupervisorDraw
from qbank.panels.schemas import (
    AssignmentIn,
    ConflictIn,
    ConflictOut,
    DrawIn,
    DrawOut,
    DrawVerification,
    EvaluatorIn,
    EvaluatorOut,
    EvaluatorPatch,
    ManualPanelIn,
    SessionPanelsOut,
    SupervisorIn,
    SupervisorOut,
    SupervisorPatch,
)
from qbank.sessions.controllers import check_session_access
from qbank.sessions.models import Candidate

ADMIN = requires(Role.admin)
PANEL_READERS = requires(Role.admin, Role.supervisor, Role.site)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class EvaluatorController(Controller):
    path = "/api/v1/evaluators"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Record an evaluator (id number stored encrypted, shown masked) with certificates",
          responses=problem_responses(409))
    async def create(self, data: EvaluatorIn, db_session: AsyncSession, actor: Actor, state: State) -> EvaluatorOut:
        row = await svc.create_evaluator(db_session, state.settings, actor, data)
        out = await svc.evaluator_out(db_session, row)
        await record(db_session, actor, "evaluator.create", "evaluator", row.id, after=out)
        return out

    @get("/", summary="List evaluators (masked id numbers)")
    async def list_evaluators(self, db_session: AsyncSession,
                              occupation: str | None = Parameter(default=None, max_length=20),
                              barred: bool | None = None) -> list[EvaluatorOut]:
        from qbank.panels.models import EvaluatorCertificate

        query = select(Evaluator).order_by(Evaluator.id)
        if occupation is not None:
            query = query.where(Evaluator.id.in_(select(EvaluatorCertificate.evaluator_id).where(
                EvaluatorCertificate.occupation_code == occupation)))
        if barred is not None:
            query = query.where(Evaluator.barred.is_(barred))
        rows = (await db_session.scalars(query.limit(2000))).all()
        return [await svc.evaluator_out(db_session, r) for r in rows]

    @get("/{evaluator_id:int}", summary="Read an evaluator", responses=problem_responses(404))
    async def read(self, evaluator_id: int, db_session: AsyncSession) -> EvaluatorOut:
        return await svc.evaluator_out(db_session, await svc.get_evaluator(db_session, evaluator_id))

    @patch("/{evaluator_id:int}", summary="Change an evaluator: certificates (replaced), integrity notes, barring",
           responses=problem_responses(404))
    async def update(self, evaluator_id: int, data: EvaluatorPatch, db_session: AsyncSession,
                     actor: Actor) -> EvaluatorOut:
        row = await svc.get_evaluator(db_session, evaluator_id)
        before = await svc.evaluator_out(db_session, row)
        await svc.patch_evaluator(db_session, row, data)
        out = await svc.evaluator_out(db_session, row)
        await record(db_session, actor, "evaluator.update", "evaluator", row.id, before=before, after=out)
        return out


class SupervisorController(Controller):
    path = "/api/v1/supervisors"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Record an internal (staff) or external (district / city) quality supervisor",
          responses=problem_responses(404))
    async def create(self, data: SupervisorIn, db_session: AsyncSession, actor: Actor) -> SupervisorOut:
        row = await svc.create_supervisor(db_session, actor, data)
        out = svc.supervisor_out(row)
        await record(db_session, actor, "supervisor.create", "supervisor", row.id, after=out)
        return out

    @get("/", summary="List supervisors")
    async def list_supervisors(self, db_session: AsyncSession,
                               kind: str | None = Parameter(default=None, pattern="^(internal|external)$"),
                               ) -> list[SupervisorOut]:
        query = select(Supervisor).order_by(Supervisor.id)
        if kind is not None:
            query = query.where(Supervisor.kind == kind)
        return [svc.supervisor_out(r) for r in (await db_session.scalars(query.limit(2000))).all()]

    @get("/{supervisor_id:int}", summary="Read a supervisor", responses=problem_responses(404))
    async def read(self, supervisor_id: int, db_session: AsyncSession) -> SupervisorOut:
        return svc.supervisor_out(await svc.get_supervisor(db_session, supervisor_id))

    @patch("/{supervisor_id:int}", summary="Change a supervisor", responses=problem_responses(404))
    async def update(self, supervisor_id: int, data: SupervisorPatch, db_session: AsyncSession,
                     actor: Actor) -> SupervisorOut:
        row = await svc.get_supervisor(db_session, supervisor_id)
        before = svc.supervisor_out(row)
        svc.patch_supervisor(row, data)
        await db_session.flush()
        out = svc.supervisor_out(row)
        await record(db_session, actor, "supervisor.update", "supervisor", row.id, before=before, after=out)
        return out


class ConflictController(Controller):
    path = "/api/v1/conflicts"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Record a conflict (employer, training tie, declared relation) with a candidate",
          responses=problem_responses(404, 409))
    async def create(self, data: ConflictIn, db_session: AsyncSession, actor: Actor) -> ConflictOut:
        row, cand = await svc.create_conflict(db_session, actor, data)
        out = svc.conflict_out(row, cand)
        await record(db_session, actor, "conflict.create", "panel_conflict", row.id, after=out)
        return out

    @get("/", summary="Conflicts, by evaluator, supervisor or session")
    async def list_conflicts(self, db_session: AsyncSession,
                             evaluator_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             supervisor_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             session_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             ) -> list[ConflictOut]:
        query = select(PanelConflict, Candidate).join(Candidate, Candidate.id == PanelConflict.candidate_id)
        if evaluator_id is not None:
            query = query.where(PanelConflict.evaluator_id == evaluator_id)
        if supervisor_id is not None:
            query = query.where(PanelConflict.supervisor_id == supervisor_id)
        if session_id is not None:
            query = query.where(Candidate.session_id == session_id)
        rows = (await db_session.execute(query.order_by(PanelConflict.id).limit(5000))).all()
        return [svc.conflict_out(k, c) for k, c in rows]

    @delete("/{conflict_id:int}", summary="Remove a conflict recorded by mistake (kept in the trail)",
            responses=problem_responses(404))
    async def remove(self, conflict_id: int, db_session: AsyncSession, actor: Actor) -> None:
        row = await db_session.get(PanelConflict, conflict_id)
        if row is None:
            from qbank.lib.problems import not_found

            raise not_found("conflict", conflict_id)
        cand = await db_session.get(Candidate, row.candidate_id)
        assert cand is not None
        before = svc.conflict_out(row, cand)
        await db_session.delete(row)
        await db_session.flush()
        await record(db_session, actor, "conflict.delete", "panel_conflict", conflict_id, before=before)


class PanelController(Controller):
    tags = ["panels"]
    responses = problem_responses(400, 401, 403)

    @post("/api/v1/assignments", guards=[ADMIN], status_code=202, responses=problem_responses(404),
          summary="Assign evaluator panels and internal supervisors to sessions (a job: poll /api/v1/jobs/{id})")
    async def assign(self, data: AssignmentIn, db_session: AsyncSession, actor: Actor,
                     state: State) -> Response[JobOut]:
        job = await svc.request_assignment(db_session, actor, data)
        return accepted(state.job_runner, job)

    @get("/api/v1/sessions/{session_id:int}/panels", guards=[PANEL_READERS], responses=problem_responses(404),
         summary="A session's panels (members, leader) and supervisors")
    async def read(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State) -> SessionPanelsOut:
        session = await check_session_access(db_session, actor, session_id)
        return await svc.session_panels(db_session, state.settings, session)

    @put("/api/v1/sessions/{session_id:int}/rooms/{room_id:int}/panel", guards=[ADMIN],
         responses=problem_responses(404), summary="Set a room's panel by hand (checked by the same rules)")
    async def set_panel(self, session_id: int, room_id: int, data: ManualPanelIn, db_session: AsyncSession,
                        actor: Actor, state: State) -> SessionPanelsOut:
        session = await check_session_access(db_session, actor, session_id)
        await svc.set_manual_panel(db_session, state.settings, actor, session, room_id, data)
        return await svc.session_panels(db_session, state.settings, session)

    @get("/api/v1/sessions/{session_id:int}/roster", guards=[ADMIN], responses=problem_responses(404),
         summary="The session's roster of evaluators and supervisors as xlsx", media_type=XLSX)
    async def roster(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State) -> Response[bytes]:
        session = await check_session_access(db_session, actor, session_id)
        body = await svc.roster_xlsx(db_session, state.settings, [session])
        await record(db_session, actor, "panels.roster_export", "session", session.id)
        return Response(body, media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="roster-session-{session.id}.xlsx"'})


class DrawController(Controller):
    path = "/api/v1/draws"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Draw external supervisors for sessions (§26), seeded and published in the trail",
          responses=problem_responses(404))
    async def create(self, data: DrawIn, db_session: AsyncSession, actor: Actor, state: State) -> DrawOut:
        return svc.draw_out(await svc.make_draw(db_session, state.settings, actor, data))

    @get("/{draw_id:int}", summary="A draw: its seed, request and result", responses=problem_responses(404))
    async def read(self, draw_id: int, db_session: AsyncSession) -> DrawOut:
        row = await db_session.get(SupervisorDraw, draw_id)
        if row is None:
            from qbank.lib.problems import not_found

            raise not_found("draw", draw_id)
        return svc.draw_out(row)

    @get("/{draw_id:int}/verify", summary="Re-run a draw from the trail and compare",
         responses=problem_responses(404, 409))
    async def verify(self, draw_id: int, db_session: AsyncSession) -> DrawVerification:
        return await svc.verify_draw(db_session, draw_id)
