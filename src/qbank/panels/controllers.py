from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.panels import assignment, draws, people
from qbank.panels.jobs import request_assignment
from qbank.panels.roster import export_roster
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
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

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
    async def create(self, data: EvaluatorIn, db_session: AsyncSession, actor: Actor,
                     settings: Settings) -> EvaluatorOut:
        return await people.register_evaluator(db_session, settings, actor, data)

    @get("/", summary="List evaluators (masked id numbers)")
    async def list_evaluators(self, db_session: AsyncSession,
                              occupation: str | None = Parameter(default=None, max_length=20),
                              barred: bool | None = None) -> list[EvaluatorOut]:
        return await people.list_evaluators(db_session, occupation, barred)

    @get("/{evaluator_id:int}", summary="Read an evaluator", responses=problem_responses(404))
    async def read(self, evaluator_id: int, db_session: AsyncSession) -> EvaluatorOut:
        return await people.evaluator_out(db_session, await people.get_evaluator(db_session, evaluator_id))

    @patch("/{evaluator_id:int}", summary="Change an evaluator: certificates (replaced), integrity notes, barring",
           responses=problem_responses(404))
    async def update(self, evaluator_id: int, data: EvaluatorPatch, db_session: AsyncSession,
                     actor: Actor) -> EvaluatorOut:
        return await people.change_evaluator(db_session, actor, evaluator_id, data)


class SupervisorController(Controller):
    path = "/api/v1/supervisors"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Record an internal (staff) or external (district / city) quality supervisor",
          responses=problem_responses(404))
    async def create(self, data: SupervisorIn, db_session: AsyncSession, actor: Actor) -> SupervisorOut:
        return await people.register_supervisor(db_session, actor, data)

    @get("/", summary="List supervisors")
    async def list_supervisors(self, db_session: AsyncSession,
                               kind: str | None = Parameter(default=None, pattern="^(internal|external)$"),
                               ) -> list[SupervisorOut]:
        return await people.list_supervisors(db_session, kind)

    @get("/{supervisor_id:int}", summary="Read a supervisor", responses=problem_responses(404))
    async def read(self, supervisor_id: int, db_session: AsyncSession) -> SupervisorOut:
        return people.supervisor_out(await people.get_supervisor(db_session, supervisor_id))

    @patch("/{supervisor_id:int}", summary="Change a supervisor", responses=problem_responses(404))
    async def update(self, supervisor_id: int, data: SupervisorPatch, db_session: AsyncSession,
                     actor: Actor) -> SupervisorOut:
        return await people.change_supervisor(db_session, actor, supervisor_id, data)


class ConflictController(Controller):
    path = "/api/v1/conflicts"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Record a conflict (employer, training tie, declared relation) with a candidate",
          responses=problem_responses(404, 409))
    async def create(self, data: ConflictIn, db_session: AsyncSession, actor: Actor) -> ConflictOut:
        return await people.register_conflict(db_session, actor, data)

    @get("/", summary="Conflicts, by evaluator, supervisor or session")
    async def list_conflicts(self, db_session: AsyncSession,
                             evaluator_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             supervisor_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             session_id: int | None = Parameter(default=None, ge=1, le=2**31 - 1),
                             ) -> list[ConflictOut]:
        return await people.list_conflicts(db_session, evaluator_id, supervisor_id, session_id)

    @delete("/{conflict_id:int}", summary="Remove a conflict recorded by mistake (kept in the trail)",
            responses=problem_responses(404))
    async def remove(self, conflict_id: int, db_session: AsyncSession, actor: Actor) -> None:
        await people.remove_conflict(db_session, actor, conflict_id)


class PanelController(Controller):
    tags = ["panels"]
    responses = problem_responses(400, 401, 403)

    @post("/api/v1/assignments", guards=[ADMIN], status_code=202, responses=problem_responses(404),
          summary="Assign evaluator panels and internal supervisors to sessions (a job: poll /api/v1/jobs/{id})")
    async def assign(self, data: AssignmentIn, db_session: AsyncSession, actor: Actor,
                     job_runner: JobRunner) -> Response[JobOut]:
        return accepted(job_runner, await request_assignment(db_session, actor, data))

    @get("/api/v1/sessions/{session_id:int}/panels", guards=[PANEL_READERS], responses=problem_responses(404),
         summary="A session's panels (members, leader) and supervisors")
    async def read(self, exam_session: ExamSession, db_session: AsyncSession, settings: Settings) -> SessionPanelsOut:
        return await assignment.session_panels(db_session, settings, exam_session)

    @put("/api/v1/sessions/{session_id:int}/rooms/{room_id:int}/panel", guards=[ADMIN],
         responses=problem_responses(404), summary="Set a room's panel by hand (checked by the same rules)")
    async def set_panel(self, exam_session: ExamSession, room_id: int, data: ManualPanelIn, db_session: AsyncSession,
                        actor: Actor, settings: Settings) -> SessionPanelsOut:
        await assignment.set_manual_panel(db_session, settings, actor, exam_session, room_id, data)
        return await assignment.session_panels(db_session, settings, exam_session)

    @get("/api/v1/sessions/{session_id:int}/roster", guards=[ADMIN], responses=problem_responses(404),
         summary="The session's roster of evaluators and supervisors as xlsx", media_type=XLSX)
    async def roster(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor,
                     settings: Settings) -> Response[bytes]:
        body = await export_roster(db_session, settings, actor, exam_session)
        return Response(body, media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="roster-session-{exam_session.id}.xlsx"'})


class DrawController(Controller):
    path = "/api/v1/draws"
    tags = ["panels"]
    guards = [ADMIN]
    responses = problem_responses(400, 401, 403)

    @post("/", summary="Draw external supervisors for sessions (§26), seeded and published in the trail",
          responses=problem_responses(404))
    async def create(self, data: DrawIn, db_session: AsyncSession, actor: Actor, settings: Settings) -> DrawOut:
        return draws.draw_out(await draws.make_draw(db_session, settings, actor, data))

    @get("/{draw_id:int}", summary="A draw: its seed, request and result", responses=problem_responses(404))
    async def read(self, draw_id: int, db_session: AsyncSession) -> DrawOut:
        return await draws.get_draw(db_session, draw_id)

    @get("/{draw_id:int}/verify", summary="Re-run a draw from the trail and compare",
         responses=problem_responses(404, 409))
    async def verify(self, draw_id: int, db_session: AsyncSession) -> DrawVerification:
        return await draws.verify_draw(db_session, draw_id)
