"""The Litestar application: one place that wires settings, database, auth, errors and controllers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import structlog
from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qbank.audit.controllers import AuditController
from qbank.auth.controllers import TokenController
from qbank.auth.guards import PUBLIC_PATHS, BearerTokenMiddleware
from qbank.banks.controllers import BankController
from qbank.blueprints.controllers import BlueprintController, LayoutController, OccupationController
from qbank.db import WriteGate, WriteGateMiddleware, create_engine
from qbank.imports.controllers import ImportController
from qbank.items.controllers import ItemController
from qbank.items.media import MediaController
from qbank.jobs.controllers import JobController
from qbank.jobs.services import InProcessRunner, JobEnv, JobRunner, QueueRunner
from qbank.jobs.worker import service_queue
from qbank.lib.actors import provide_actor
from qbank.lib.problems import declare_controller_problems, http_exception_handler, internal_error_handler
from qbank.panels.controllers import (
    ConflictController,
    DrawController,
    EvaluatorController,
    PanelController,
    SupervisorController,
)
from qbank.papers.controllers import PaperController
from qbank.recordings.controllers import RecordingController
from qbank.review_page.controllers import (
    REVIEW_PATHS,
    review_route_handlers,
    review_stores,
    review_template_config,
)
from qbank.reviews.controllers import ReviewController, delete_recording
from qbank.sessions.controllers import SessionController, SiteController
from qbank.settings import Settings, load_settings
from qbank.storage import evidence_store

log = structlog.get_logger("qbank")


class Health(msgspec.Struct):
    status: str
    database: str


@get("/health", summary="Liveness and database check", tags=["health"])
async def health(db_session: AsyncSession) -> Health:
    await db_session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    engine = create_engine(settings.database_url)
    gate = WriteGate(settings.database_url)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        before_send_handler="autocommit",
        session_config=AsyncSessionConfig(expire_on_commit=False),
    )

    @asynccontextmanager
    async def storage_lifespan(app: Litestar) -> AsyncIterator[None]:
        async with evidence_store(settings) as store:
            app.state.store = store
            yield

    @asynccontextmanager
    async def jobs_lifespan(app: Litestar) -> AsyncIterator[None]:
        env = JobEnv(settings=settings, session_maker=session_maker, store=app.state.store, gate=gate)
        runner: JobRunner
        if settings.job_queue_url:
            queue = service_queue(settings)
            await queue.connect()
            runner = QueueRunner(queue)
        else:
            runner = InProcessRunner(env, settings.job_concurrency)
        app.state.job_env, app.state.job_runner = env, runner
        try:
            yield
        finally:
            await runner.close()
            if settings.job_queue_url:
                await queue.disconnect()

    @asynccontextmanager
    async def engine_lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    app = Litestar(
        route_handlers=[health, TokenController, AuditController, OccupationController, BlueprintController,
                        LayoutController, ItemController, MediaController,
                        SiteController, SessionController, JobController, RecordingController, BankController,
                        ImportController, ReviewController, delete_recording, *review_route_handlers(settings),
                        PaperController, EvaluatorController, SupervisorController, ConflictController,
                        PanelController, DrawController],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
        middleware=[DefineMiddleware(WriteGateMiddleware, gate=gate),
                    DefineMiddleware(BearerTokenMiddleware, exclude=[*PUBLIC_PATHS, *REVIEW_PATHS])],
        exception_handlers={HTTPException: http_exception_handler, Exception: internal_error_handler},
        lifespan=[engine_lifespan, storage_lifespan, jobs_lifespan],
        state=State({"settings": settings, "session_maker": session_maker}),
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
    )
    declare_controller_problems(app)
    return app
