from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post, put
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import record
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import ProblemError, problem_responses
from qbank.papers import services as svc
from qbank.papers.keys import centre_public_b64, parse_site_key
from qbank.papers.schemas import (
    AssemblyIn,
    CentreKeyOut,
    LeakIn,
    LeakOut,
    PaperOut,
    PracticalScoresIn,
    PracticalScoresOut,
    ReleaseOut,
    ResponsesIn,
    ResponsesOut,
    ResultsOut,
    ScoreSheetOut,
    SealOut,
    SiteKeyIn,
    SiteKeyOut,
)
from qbank.reviews.services import record_out
from qbank.sessions.controllers import check_session_access
from qbank.sessions.services import get_session, get_site

ADMIN = requires(Role.admin)
SITE_OR_ADMIN = requires(Role.site, Role.admin)
ANY_ROLE = requires(*Role)
PACKAGE_DOC = ("The site's sealed package (canonical JSON: AES-256-GCM ciphertext, the site's key share sealed to its "
               "X25519 key, the centre's Ed25519 signature), streamed from the retention archive with its digest "
               "checked. A site gets its own package any time after sealing; an admin names the site. Each fetch is "
               "in the audit trail. Open it with `qbank site unseal`.")


async def audit_apart(state: State, actor: Actor, action: str, entity_type: str, entity_id: object,
                      detail: dict[str, Any]) -> None:
    """A read that must be in the trail: its own short writing transaction (reads are not gated on SQLite)."""
    async with state.job_env.writing() as db:
        await record(db, actor, action, entity_type, entity_id, detail=detail)


class PaperController(Controller):
    tags = ["papers"]
    responses = problem_responses(400, 401, 403, 404)

    @put("/api/v1/sites/{code:str}/public-key", guards=[SITE_OR_ADMIN], status_code=200,
         summary="Register the site's X25519 public key (raw 32 bytes, base64); sealed papers are wrapped to it")
    async def put_site_key(self, code: str, data: SiteKeyIn, db_session: AsyncSession, actor: Actor) -> SiteKeyOut:
        if actor.role == Role.site and actor.site != code:
            raise PermissionDeniedException(f"site {actor.site} may not set site {code}'s key")
        site = await get_site(db_session, code)
        public = parse_site_key(data.public_key)
        from paperbuild.sealing import key_id, raw_public

        raw = raw_public(public)
        before = {"public_key": site.public_key}
        site.public_key = data.public_key.strip()
        await db_session.flush()
        out = SiteKeyOut(site=site.code, public_key=site.public_key, key_id=key_id(raw))
        await record(db_session, actor, "site.public_key", "site", site.code, before=before, after=out)
        return out

    @get("/api/v1/centre-key", guards=[ANY_ROLE],
         summary="The evaluation centre's Ed25519 public key (raw, base64): sites verify sealed packages with it")
    async def centre_key(self, state: State) -> CentreKeyOut:
        public, kid = centre_public_b64(state.settings)
        return CentreKeyOut(algorithm="Ed25519", public_key=public, key_id=kid)

    @post("/api/v1/sessions/{session_id:int}/papers", guards=[ADMIN], status_code=202,
          summary="Assemble the session's theory paper (a job: parallel forms or one form per candidate)",
          description="Runs paperbuild off the event loop over the approved item versions of the session's "
                      "occupation and level. Poll `GET /api/v1/jobs/{id}`; when no paper can be made the job fails "
                      "with the explanation rows, and `GET .../papers` answers 422 with them.",
          responses=problem_responses(409))
    async def assemble(self, session_id: int, data: AssemblyIn, db_session: AsyncSession, actor: Actor,
                       state: State) -> Response[JobOut]:
        session = await get_session(db_session, session_id)
        job: JobOut = await svc.request_assembly(db_session, actor, session, data)
        runner: JobRunner = state.job_runner
        return accepted(runner, job)

    @get("/api/v1/sessions/{session_id:int}/papers", guards=[ADMIN],
         summary="The session's assembled paper (admin only); 422 with the explanation rows when the last assembly "
                 "could not make one", responses=problem_responses(422))
    async def read_paper(self, session_id: int, db_session: AsyncSession) -> PaperOut:
        await get_session(db_session, session_id)
        out: PaperOut = await svc.read_paper(db_session, session_id)
        return out

    @post("/api/v1/sessions/{session_id:int}/seal", guards=[ADMIN], status_code=200,
          summary="Seal the paper: one signed, encrypted package per site in the retention archive",
          responses=problem_responses(409))
    async def seal(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State) -> SealOut:
        session = await get_session(db_session, session_id)
        return await svc.seal_session(db_session, actor, state.settings, state.store.archive, session)

    @get("/api/v1/sessions/{session_id:int}/package", guards=[SITE_OR_ADMIN], summary="Download a sealed package",
         description=PACKAGE_DOC, responses=problem_responses(409), media_type="application/json")
    async def package(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State,
                      site: str | None = Parameter(default=None, max_length=40, description="site (admins)"),
                      ) -> Stream:
        session = await check_session_access(db_session, actor, session_id)
        code = svc.site_for(actor, site)
        row = await svc.site_package(db_session, session, code)
        row_id, key, size, sha256 = row.id, row.archive_key, row.size, row.sha256
        await db_session.rollback()  # read only: give the connection back before the trail write and the stream
        await audit_apart(state, actor, "paper.package_fetch", "sealed_paper", row_id,
                          {"session": session_id, "site": code, "sha256": sha256})
        return Stream(svc.package_chunks(state.store.archive, key), media_type="application/json",
                      headers={"Content-Length": str(size), "X-Package-SHA256": sha256,
                               "Content-Disposition": f'attachment; filename="papers-{session_id}-{code}.json"'})

    @get("/api/v1/sessions/{session_id:int}/release", guards=[requires(Role.site)],
         summary="The centre's key share of the site's package: only from 15 minutes before the start to the end",
         responses=problem_responses(409))
    async def release(self, session_id: int, db_session: AsyncSession, actor: Actor, state: State,
                      site: str | None = Parameter(default=None, max_length=40, description="must be the caller"),
                      ) -> ReleaseOut:
        session = await check_session_access(db_session, actor, session_id)
        code = svc.site_for(actor, site)
        try:
            out = await svc.release_share(db_session, state.settings, session, code)
        except ProblemError as exc:
            if exc.status_code == 403:
                await db_session.rollback()
                await audit_apart(state, actor, "paper.release_refused", "session", session_id,
                                  {"site": code, "reason": exc.detail})
            raise
        await db_session.rollback()  # read only: give the connection back before the trail write
        await audit_apart(state, actor, "paper.release", "session", session_id,
                          {"site": code, "package": out.package_id})
        return out

    @post("/api/v1/sessions/{session_id:int}/responses", guards=[SITE_OR_ADMIN], status_code=201,
          summary="Candidates' theory responses (places as shown), scored at once on the 100-point scale",
          description="Accepted from the start to the end plus the session's grace minutes; each candidate once. "
                      "Multiple choice scores all-or-nothing.", responses=problem_responses(409))
    async def responses_in(self, session_id: int, data: ResponsesIn, db_session: AsyncSession, actor: Actor,
                           state: State) -> ResponsesOut:
        session = await check_session_access(db_session, actor, session_id)
        return await svc.accept_responses(db_session, actor, state.settings, session, data)

    @post("/api/v1/sessions/{session_id:int}/practical-scores", guards=[SITE_OR_ADMIN], status_code=201,
          summary="Practical scores: ≥ 3 evaluators' scores and the leader's final score per candidate",
          responses=problem_responses(409))
    async def practical(self, session_id: int, data: PracticalScoresIn, db_session: AsyncSession,
                        actor: Actor) -> PracticalScoresOut:
        session = await check_session_access(db_session, actor, session_id)
        return await svc.accept_practical(db_session, actor, session, data)

    @get("/api/v1/sessions/{session_id:int}/results", guards=[ADMIN],
         summary="Each candidate's theory and practical scores; passes when both are ≥ 60 (§21)")
    async def results(self, session_id: int, db_session: AsyncSession) -> ResultsOut:
        return await svc.session_results(db_session, await get_session(db_session, session_id))

    @post("/api/v1/sessions/{session_id:int}/score-sheet", guards=[ADMIN], status_code=201,
          summary="Build the score sheet (成绩汇总表) and keep it as a key-node record under legal hold (§22)",
          responses=problem_responses(409))
    async def score_sheet(self, session_id: int, db_session: AsyncSession, actor: Actor,
                          state: State) -> ScoreSheetOut:
        session = await get_session(db_session, session_id)
        row, already, results = await svc.build_score_sheet(db_session, actor, state.settings, state.store.archive,
                                                            session)
        return ScoreSheetOut(session_id=session.id, record=record_out(row, already), already_stored=already,
                             results=results.results)

    @post("/api/v1/leaks", guards=[ADMIN], status_code=201,
          summary="Trace leaked content (items as seen, options in the order seen) to candidates' papers, ranked")
    async def leak(self, data: LeakIn, db_session: AsyncSession, actor: Actor) -> LeakOut:
        return await svc.report_leak(db_session, actor, data)

    @get("/api/v1/leaks/{leak_id:int}", guards=[ADMIN], summary="A reported leak")
    async def read_leak(self, leak_id: int, db_session: AsyncSession) -> LeakOut:
        return svc.leak_out(await svc.get_leak(db_session, leak_id))

    @post("/api/v1/leaks/{leak_id:int}/confirm", guards=[ADMIN], status_code=200,
          summary="Confirm a leak: retire its items and void the results of sessions whose paper held them (§29)",
          responses=problem_responses(409))
    async def confirm(self, leak_id: int, db_session: AsyncSession, actor: Actor) -> LeakOut:
        return await svc.confirm_leak(db_session, actor, await svc.get_leak(db_session, leak_id))

