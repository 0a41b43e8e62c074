from __future__ import annotations

from litestar import Controller, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.blueprints import services as svc
from qbank.blueprints.schemas import BlueprintIn, BlueprintOut, LayoutIn, LayoutOut, OccupationIn, OccupationOut
from qbank.lib.actors import Actor, Role, check_occupation, requires
from qbank.lib.problems import problem_responses

BANK_READERS = requires(Role.admin, Role.author, Role.reviewer)
LEVEL = Parameter(ge=1, le=5, description="level 1–5")
BANK_PATH = "/api/v1/occupations/{code:str}/levels/{level:int}"


class OccupationController(Controller):
    path = "/api/v1/occupations"
    tags = ["blueprints"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin)], summary="Define an occupation", responses=problem_responses(409))
    async def create(self, data: OccupationIn, db_session: AsyncSession, actor: Actor) -> OccupationOut:
        return await svc.define_occupation(db_session, actor, data)

    @get("/", guards=[BANK_READERS], summary="List occupations")
    async def list_occupations(self, db_session: AsyncSession, actor: Actor) -> list[OccupationOut]:
        return await svc.list_occupations(db_session, actor)

    @get("/{code:str}", guards=[BANK_READERS], summary="Read an occupation", responses=problem_responses(404))
    async def read(self, code: str, db_session: AsyncSession, actor: Actor) -> OccupationOut:
        check_occupation(actor, code)
        return svc.occupation_out(await svc.get_occupation(db_session, code))

    @post("/{code:str}/levels/{level:int}/blueprints", guards=[requires(Role.admin)],
          summary="Add a blueprint version (鉴定要素细目表)", responses=problem_responses(404))
    async def add_blueprint(self, code: str, data: BlueprintIn, db_session: AsyncSession, actor: Actor,
                            level: int = LEVEL) -> BlueprintOut:
        return await svc.add_blueprint(db_session, actor, code, level, data)

    @get("/{code:str}/levels/{level:int}/blueprints", guards=[BANK_READERS],
         summary="List the blueprint versions of a level", responses=problem_responses(404))
    async def list_blueprints(self, code: str, db_session: AsyncSession, actor: Actor,
                              level: int = LEVEL) -> list[BlueprintOut]:
        return await svc.list_blueprints(db_session, actor, code, level)

    @post("/{code:str}/levels/{level:int}/layouts", guards=[requires(Role.admin)],
          summary="Add a paper layout", responses=problem_responses(404, 409))
    async def add_layout(self, code: str, data: LayoutIn, db_session: AsyncSession, actor: Actor,
                         level: int = LEVEL) -> LayoutOut:
        return await svc.add_layout(db_session, actor, code, level, data)

    @get("/{code:str}/levels/{level:int}/layouts", guards=[BANK_READERS], summary="List the layouts of a level",
         responses=problem_responses(404))
    async def list_layouts(self, code: str, db_session: AsyncSession, actor: Actor,
                           level: int = LEVEL) -> list[LayoutOut]:
        return await svc.list_layouts(db_session, actor, code, level)


class BlueprintController(Controller):
    path = "/api/v1/blueprints"
    tags = ["blueprints"]
    responses = problem_responses(400, 401, 403, 404)

    @get("/{blueprint_id:int}", guards=[BANK_READERS], summary="Read a blueprint version")
    async def read(self, blueprint_id: int, db_session: AsyncSession, actor: Actor) -> BlueprintOut:
        row = await svc.get_blueprint(db_session, blueprint_id)
        check_occupation(actor, row.occupation_code)
        return svc.blueprint_out(row)

    @put("/{blueprint_id:int}", guards=[requires(Role.admin)], summary="Correct a blueprint no paper has used",
         responses=problem_responses(409))
    async def replace(self, blueprint_id: int, data: BlueprintIn, db_session: AsyncSession,
                      actor: Actor) -> BlueprintOut:
        return await svc.correct_blueprint(db_session, actor, blueprint_id, data)


class LayoutController(Controller):
    path = "/api/v1/layouts"
    tags = ["blueprints"]
    responses = problem_responses(400, 401, 403, 404)

    @get("/{layout_id:int}", guards=[BANK_READERS], summary="Read a layout")
    async def read(self, layout_id: int, db_session: AsyncSession, actor: Actor) -> LayoutOut:
        row = await svc.get_layout(db_session, layout_id)
        check_occupation(actor, row.occupation_code)
        return svc.layout_out(row)
