"""The Litestar application: settings, database, evidence store, job runner, auth, errors and every domain's routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from qbank.audit.anchoring import Anchorer, keep_anchoring
from qbank.audit.anchors import AnchorBook
from qbank.auth.guards import PUBLIC_PATHS, BearerTokenMiddleware
from qbank.db import Database, WriteGateMiddleware
from qbank.jobs.kinds import JobEnv
from qbank.jobs.lease import cancel_task, release_held_jobs, supervise_jobs, take_back_lost_jobs
from qbank.jobs.services import InProcessRunner, JobRunner, QueueRunner
from qbank.jobs.worker import service_queue
from qbank.lib.headers import SecurityHeaders
from qbank.lib.inputs import InputPolicyMiddleware, PolicyRequest
from qbank.lib.keys import trail_session_info
from qbank.lib.limits import Limiters
from qbank.lib.problems import declare_controller_problems, http_exception_handler, internal_error_handler
from qbank.lib.proxies import TrustedProxyMiddleware
from qbank.review_page.controllers import REVIEW_PATHS, review_stores, review_template_config
from qbank.server.commit import CommitBeforeAnswerMiddleware
from qbank.server.domains import STARTUP_CHECKS, dependencies, job_kinds, route_handlers
from qbank.server.health import health, ready
from qbank.settings import Settings, load_settings, parse_networks
from qbank.storage import evidence_store, sweep_leftovers


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    database, engine = Database.open(settings.database_url, trail_session_info(settings))
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        before_send_handler="autocommit",
        session_config=AsyncSessionConfig(expire_on_commit=False, info=trail_session_info(settings)),
    )

    @asynccontextmanager
    async def storage_lifespan(app: Litestar) -> AsyncIterator[None]:
        async with evidence_store(settings) as store:
            app.state.store = store
            await sweep_leftovers(settings, store)
            yield

    @asynccontextmanager
    async def jobs_lifespan(app: Litestar) -> AsyncIterator[None]:
        env = JobEnv(settings=settings, database=database, kinds=job_kinds(), store=app.state.store)
        runner: JobRunner
        if settings.job_queue_url:
            queue = service_queue(settings)
            await queue.connect()
            runner = QueueRunner(queue)
        else:
            runner = InProcessRunner(env, settings.job_concurrency)
        app.state.job_runner = runner
        await take_back_lost_jobs(env, runner)  # first: the domains' checks see what is still really running
        for startup_check in STARTUP_CHECKS:  # e.g. re-queue recordings whose analysis was lost
            await startup_check(env, runner)
        supervision = asyncio.get_running_loop().create_task(supervise_jobs(env, runner))
        try:
            yield
        finally:
            await cancel_task(supervision)
            await runner.close()
            await release_held_jobs(env)
            if settings.job_queue_url:
                await queue.disconnect()

    @asynccontextmanager
    async def anchoring_lifespan(app: Litestar) -> AsyncIterator[None]:  # the trail's head, signed, outside the db
        async with keep_anchoring(Anchorer(database, AnchorBook(app.state.store.archive, settings))):
            yield

    @asynccontextmanager
    async def engine_lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    app = Litestar(
        route_handlers=[health, ready, *route_handlers(settings)],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        dependencies=dependencies(),
        middleware=[TrustedProxyMiddleware(parse_networks(settings.trusted_proxies)),
                    DefineMiddleware(WriteGateMiddleware, gate=database.gate),
                    DefineMiddleware(CommitBeforeAnswerMiddleware, settings=settings,
                                     scope_key=db_config.session_scope_key),
                    DefineMiddleware(BearerTokenMiddleware, exclude=[*PUBLIC_PATHS, *REVIEW_PATHS]),
                    InputPolicyMiddleware()],
        request_class=PolicyRequest,  # JSON bodies and forms under the input policy (qbank.lib.text)
        exception_handlers={HTTPException: http_exception_handler, Exception: internal_error_handler},
        lifespan=[engine_lifespan, storage_lifespan, jobs_lifespan, anchoring_lifespan],
        state=State({"settings": settings, "database": database, "limiters": Limiters.of(settings)}),
        before_send=[SecurityHeaders(lambda: media_origins(settings, app.state.store.endpoint))],
        template_config=review_template_config(),  # the supervisor review page (/review)
        stores=review_stores(settings),
        openapi_config=OpenAPIConfig(
            title="qbank: question bank, paper assembly and video audit",
            version="0.1.0",
            description="Item writers keep the bank; the centre defines blueprints and layouts. "
            "Every endpoint but /health and /schema needs `Authorization: Bearer <token>`; "
            "create tokens with `qbank token create`.",
            components=Components(security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", description="qbank API token")}),
            security=[{"BearerToken": []}],
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            path="/schema",
        ),
        debug=False,
        logging_config=None,  # logging is configured once for the process (qbank.server.logging), redacted
    )
    declare_controller_problems(app, everywhere=(429,))  # any authenticated call may meet the rate limit
    return app


def media_origins(settings: Settings, endpoint: str) -> list[str]:
    """Where presigned links point (the S3 server browsers reach): the review page's CSP lets footage come from it."""
    return [f"{'https' if settings.s3_secure else 'http'}://{settings.s3_public_endpoint or endpoint}"]
