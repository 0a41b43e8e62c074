from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Redirect, Stream
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.db import Database
from qbank.jobs.schemas import JobOut
from qbank.jobs.services import JobRunner, accepted
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.problems import problem_responses
from qbank.papers import bundles, leaks, scoring, sealing
from qbank.papers.jobs import discard_paper, request_assembly, request_continue
from qbank.papers.keys import centre_public_b64
from qbank.papers.schemas import (
    PAPER_STATUS_DOC,
    AssemblyIn,
    AssemblyProblem,
    BundleOut,
    CentreKeyOut,
    ContinueIn,
    LeakIn,
    LeakOut,
    PaperOut,
    PracticalScoresIn,
    PracticalScoresOut,
    ReleaseOut,
    ResponseBundleDoc,
    ResponsesIn,
    ResponsesOut,
    ResultsOut,
    ScoreSheetOut,
    SealOut,
    SigningKeyIn,
    SigningKeyOut,
    SiteKeyIn,
    SiteKeyOut,
)
from qbank.papers.services import paper_out, read_paper, session_paper
from qbank.reviews.services import record_out
from qbank.sessions.models import ExamSession
from qbank.settings import Settings

ADMIN = requires(Role.admin)
SITE_OR_ADMIN = requires(Role.site, Role.admin)
ANY_ROLE = requires(*Role)
PACKAGE_DOC = ("The site's sealed package (canonical JSON: AES-256-GCM ciphertext, the site's key share sealed to its "
               "X25519 key, the centre's Ed25519 signature): by default a 307 to a short-lived presigned GET on the "
               "S3 server, which sends the bytes (`delivery=stream`: through the service, its digest checked as it "
               "streams); either way the site verifies the signature and the digest. A site gets its own package "
               "any time after sealing; an admin names the site. Each fetch is "
               "in the audit trail. Open it with `qbank site unseal`.")

BUNDLE_DOC = ("The body is the bundle's canonical JSON exactly as the station signed it (format "
              "`qbank-response-bundle/1`: answers as places shown, each candidate's answer log, the proctor's "
              "hash-chained log, incidents; Ed25519 over all but `signature`). Verified against the site's registered "
              "signing key, the session, the site's package, the window plus grace, the room's roster and forms and "
              "the log's chain; then scored as `POST .../responses`, kept as a key-node record under legal hold, its "
              "incidents shown in the session's supervision view. 201 when new; the same bytes again answer 200 with "
              "`already_received: true` and change nothing; another bundle under a used id is refused (409). A site "
              "token sends its own site's bundles; an admin any site's (carried from an offline site).")


class PaperController(Controller):
    tags = ["papers"]
    responses = problem_responses(400, 401, 403, 404)

    @put("/api/v1/sites/{code:str}/public-key", guards=[SITE_OR_ADMIN], status_code=200,
         summary="Register the site's X25519 public key (raw 32 bytes, base64); sealed papers are wrapped to it")
    async def put_site_key(self, code: str, data: SiteKeyIn, db_session: AsyncSession, actor: Actor) -> SiteKeyOut:
        return await sealing.register_site_key(db_session, actor, code, data.public_key)

    @put("/api/v1/sites/{code:str}/signing-key", guards=[SITE_OR_ADMIN], status_code=200,
         summary="Register the site's Ed25519 signing key (raw 32 bytes, base64): response bundles are verified "
                 "with it",
         description="`qbank site keygen` prints it (derived from the site's key file); `qbank station serve` "
                     "registers it when it starts. The same key again changes nothing.",
         responses=problem_responses(404))
    async def put_signing_key(self, code: str, data: SigningKeyIn, db_session: AsyncSession,
                              actor: Actor) -> SigningKeyOut:
        return await sealing.register_signing_key(db_session, actor, code, data.signing_key)

    @get("/api/v1/centre-key", guards=[ANY_ROLE],
         summary="The evaluation centre's Ed25519 public key (raw, base64): sites verify sealed packages with it")
    async def centre_key(self, settings: Settings) -> CentreKeyOut:
        public, kid = centre_public_b64(settings)
        return CentreKeyOut(algorithm="Ed25519", public_key=public, key_id=kid)

    @post("/api/v1/sessions/{session_id:int}/papers", guards=[ADMIN], status_code=202,
          summary="Assemble the session's theory paper (a job: parallel forms or one form per candidate)",
          description="Runs paperbuild off the event loop over the approved item versions of the session's "
                      "occupation and level. Poll `GET /api/v1/jobs/{id}`. Only a complete paper is a paper: a "
                      "run that ends short (time, infeasible) stores a `partial` paper with the forms made (the job "
                      "fails with `paper_status: partial` and the shortfall), one that makes no form a `failed` "
                      "paper with the explanation rows; `GET .../papers` answers 422 for both. In mode "
                      "`per_candidate` leave `forms` out: a number other than the session's candidates is a 400.",
          responses=problem_responses(409))
    async def assemble(self, exam_session: ExamSession, data: AssemblyIn, db_session: AsyncSession, actor: Actor,
                       job_runner: JobRunner) -> Response[JobOut]:
        return accepted(job_runner, await request_assembly(db_session, actor, exam_session, data))

    @get("/api/v1/sessions/{session_id:int}/papers", guards=[ADMIN],
         summary="The session's assembled paper (admin only); 422 with the explanation rows when the paper in "
                 "force is partial or failed",
         description="The paper in force is the sealed one, else the latest assembly not discarded. " + PAPER_STATUS_DOC
                     + " The 422 body (`AssemblyProblem`) carries at its top level the paper's status, the forms "
                       "made, the shortfall and the engine's explanation rows (`ExplanationRowOut`: zh and en text, "
                       "demand and supply in one unit, score points 分; appraisal points are called 鉴定点).",
         responses=problem_responses(422, schema=AssemblyProblem,
                                     description="the paper in force is partial or failed"))
    async def read_paper(self, exam_session: ExamSession, db_session: AsyncSession) -> PaperOut:
        return await read_paper(db_session, exam_session.id)

    @get("/api/v1/sessions/{session_id:int}/papers/{paper_id:int}", guards=[ADMIN],
         summary="One assembly of the session, whatever its status (a partial paper's forms made and shortfall)",
         description=PAPER_STATUS_DOC)
    async def read_one_paper(self, exam_session: ExamSession, paper_id: int, db_session: AsyncSession) -> PaperOut:
        return await paper_out(db_session, await session_paper(db_session, exam_session.id, paper_id))

    @post("/api/v1/sessions/{session_id:int}/papers/{paper_id:int}/continue", guards=[ADMIN], status_code=202,
          summary="Continue a partial paper with more time (a job): its forms are kept, the missing ones made",
          description="The same request and seed as the first run, with `time_limit_s` for the rest. The paper "
                      "becomes `assembled` when every form is made, or stays `partial` with more forms. 409 for a "
                      "paper that is not partial (a complete one has nothing to continue), one replaced by a later "
                      "assembly, or one already being continued.",
          responses=problem_responses(409))
    async def continue_paper(self, exam_session: ExamSession, paper_id: int, db_session: AsyncSession,
                             actor: Actor, job_runner: JobRunner, data: ContinueIn | None = None) -> Response[JobOut]:
        job = await request_continue(db_session, actor, exam_session, paper_id, data or ContinueIn())
        return accepted(job_runner, job)

    @post("/api/v1/sessions/{session_id:int}/papers/{paper_id:int}/discard", guards=[ADMIN], status_code=200,
          summary="Discard a partial or failed paper: it is no longer the session's paper in force",
          description="The session's paper in force becomes its previous assembly that was not discarded (if any). "
                      "409 for an assembled or sealed paper.", responses=problem_responses(409))
    async def discard(self, exam_session: ExamSession, paper_id: int, db_session: AsyncSession,
                      actor: Actor) -> PaperOut:
        return await discard_paper(db_session, actor, exam_session, paper_id)

    @post("/api/v1/sessions/{session_id:int}/seal", guards=[ADMIN], status_code=200,
          summary="Seal the paper: one signed, encrypted package per site in the retention archive",
          responses=problem_responses(409))
    async def seal(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor, settings: Settings,
                   archive: RetentionArchive) -> SealOut:
        return await sealing.seal_session(db_session, actor, settings, archive, exam_session)

    @get("/api/v1/sessions/{session_id:int}/package", guards=[SITE_OR_ADMIN], summary="Download a sealed package",
         description=PACKAGE_DOC, media_type="application/json", responses={
             **problem_responses(409),
             307: ResponseSpec(None, description="`Location`: a presigned GET of the package on the S3 server, "
                                                 "valid 5 minutes; `X-Package-SHA256`: its digest")})
    async def package(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor, database: Database,
                      archive: RetentionArchive,
                      site: str | None = Parameter(default=None, max_length=40, description="site (admins)"),
                      delivery: Literal["redirect", "stream"] = Parameter(
                          default="redirect", description="redirect (307 to the S3 server) or stream (the bytes "
                                                          "through the service, for a site that cannot reach S3)"),
                      ) -> Response[Any]:
        if delivery == "redirect":
            fetch, url = await sealing.package_link(db_session, database, actor, archive, exam_session, site)
            return Redirect(url, status_code=307, headers={"X-Package-SHA256": fetch.sha256,
                                                           "Cache-Control": "no-store"})
        fetch, reader = await sealing.fetch_package(db_session, database, actor, archive, exam_session, site)
        return Stream(sealing.package_chunks(reader), media_type="application/json",
                      headers={"Content-Length": str(fetch.size), "X-Package-SHA256": fetch.sha256,
                               "Content-Disposition": f'attachment; filename="{fetch.filename}"'})

    @get("/api/v1/sessions/{session_id:int}/release", guards=[requires(Role.site)],
         summary="The centre's key share of the site's package: only from 15 minutes before the start to the end",
         responses=problem_responses(409))
    async def release(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor, database: Database,
                      settings: Settings,
                      site: str | None = Parameter(default=None, max_length=40, description="must be the caller"),
                      ) -> ReleaseOut:
        return await sealing.release_to_site(db_session, database, actor, settings, exam_session, site)

    @post("/api/v1/sessions/{session_id:int}/responses", guards=[SITE_OR_ADMIN], status_code=201,
          summary="Candidates' theory responses (places as shown), scored at once on the 100-point scale",
          description="Accepted from the start to the end plus the session's grace minutes; each candidate once. "
                      "Multiple choice scores all-or-nothing.", responses=problem_responses(409))
    async def responses_in(self, exam_session: ExamSession, data: ResponsesIn, db_session: AsyncSession,
                           actor: Actor, settings: Settings) -> ResponsesOut:
        return await scoring.accept_responses(db_session, actor, settings, exam_session, data)

    @post("/api/v1/sessions/{session_id:int}/response-bundles", guards=[SITE_OR_ADMIN], status_code=201,
          summary="One room's signed response bundle from the exam station: verified, scored, kept (§22)",
          description=BUNDLE_DOC, request_max_body_size=bundles.BODY_LIMIT,
          responses=problem_responses(409, 413))
    async def response_bundle(self, exam_session: ExamSession, data: ResponseBundleDoc,
                              request: Request[Any, Any, Any], db_session: AsyncSession, actor: Actor,
                              settings: Settings, archive: RetentionArchive) -> Response[BundleOut]:
        # ``data`` documents and checks the shape; the signature is verified over the bytes exactly as sent
        out = await bundles.receive_bundle(db_session, actor, settings, archive, exam_session, await request.body())
        return Response(out, status_code=200 if out.already_received else 201)

    @post("/api/v1/sessions/{session_id:int}/practical-scores", guards=[SITE_OR_ADMIN], status_code=201,
          summary="Practical scores: ≥ 3 evaluators' scores and the leader's final score per candidate",
          responses=problem_responses(409))
    async def practical(self, exam_session: ExamSession, data: PracticalScoresIn, db_session: AsyncSession,
                        actor: Actor) -> PracticalScoresOut:
        return await scoring.accept_practical(db_session, actor, exam_session, data)

    @get("/api/v1/sessions/{session_id:int}/results", guards=[ADMIN],
         summary="Each candidate's theory and practical scores; passes when both are ≥ 60 (§21)")
    async def results(self, exam_session: ExamSession, db_session: AsyncSession) -> ResultsOut:
        return await scoring.session_results(db_session, exam_session)

    @post("/api/v1/sessions/{session_id:int}/score-sheet", guards=[ADMIN], status_code=201,
          summary="Build the score sheet (成绩汇总表) and keep it as a key-node record under legal hold (§22)",
          responses=problem_responses(409))
    async def score_sheet(self, exam_session: ExamSession, db_session: AsyncSession, actor: Actor,
                          settings: Settings, archive: RetentionArchive) -> ScoreSheetOut:
        row, already, results = await scoring.build_score_sheet(db_session, actor, settings, archive, exam_session)
        return ScoreSheetOut(session_id=exam_session.id, record=record_out(row, already), already_stored=already,
                             results=results.results)

    @post("/api/v1/leaks", guards=[ADMIN], status_code=201,
          summary="Trace leaked content (items as seen, options in the order seen) to candidates' papers, ranked")
    async def leak(self, data: LeakIn, db_session: AsyncSession, actor: Actor) -> LeakOut:
        return await leaks.report_leak(db_session, actor, data)

    @get("/api/v1/leaks/{leak_id:int}", guards=[ADMIN], summary="A reported leak")
    async def read_leak(self, leak_id: int, db_session: AsyncSession) -> LeakOut:
        return leaks.leak_out(await leaks.get_leak(db_session, leak_id))

    @post("/api/v1/leaks/{leak_id:int}/confirm", guards=[ADMIN], status_code=200,
          summary="Confirm a leak: retire its items and void the results of sessions whose paper held them (§29)",
          responses=problem_responses(409))
    async def confirm(self, leak_id: int, db_session: AsyncSession, actor: Actor) -> LeakOut:
        return await leaks.confirm_leak(db_session, actor, await leaks.get_leak(db_session, leak_id))
