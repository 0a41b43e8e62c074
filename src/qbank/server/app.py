"""The Litestar application: settings, database, evidence store, job runner, auth, errors and every domain's routes."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from qbank.auth.cache import TokenCache
from qbank.auth.guards import PUBLIC_PATHS, BearerTokenMiddleware
from qbank.db import Database, WriteGateMiddleware
from qbank.lib.headers import SecurityHeaders
from qbank.lib.inputs import InputPolicyMiddleware, PolicyRequest
from qbank.lib.keys import trail_session_info
from qbank.lib.limits import Limiters
from qbank.lib.problems import declare_controller_problems, http_exception_handler, internal_error_handler
from qbank.lib.proxies import TrustedProxyMiddleware
from qbank.review_page.controllers import REVIEW_PATHS, review_stores, review_template_config
from qbank.server.commit import CommitBeforeAnswerMiddleware
from qbank.server.domains import dependencies, route_handlers
from qbank.server.health import health, ready
from qbank.server.lifespans import anchoring, disposing, evidence, frozen_heap, jobs
from qbank.settings import Settings, load_settings, parse_networks


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
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
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """The service: its lifespans (:mod:`qbank.server.lifespans`) start the evidence store, the job runner and the
    trail's anchoring; every domain's routes and dependencies come from :mod:`qbank.server.domains`."""
    settings = settings or load_settings()
    database, engine = Database.open(settings.database_url, trail_session_info(settings))
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        # commits are CommitBeforeAnswerMiddleware's (before the answer starts); here the session is only closed
        before_send_handler=None,
        session_config=AsyncSessionConfig(expire_on_commit=False, info=trail_session_info(settings)),
    )

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
        lifespan=[disposing(engine), evidence(settings), jobs(settings, database), anchoring(settings, database),
                  frozen_heap()],
        state=State({"settings": settings, "database": database, "limiters": Limiters.of(settings),
                     "token_cache": TokenCache(settings.token_cache_s)}),
        before_send=[SecurityHeaders(lambda: media_origins(settings, app.state.store.endpoint))],
        template_config=review_template_config(),  # the supervisor review page (/review)
        stores=review_stores(settings),
        openapi_config=openapi_config(),
        debug=False,
        logging_config=None,  # logging is configured once for the process (qbank.server.logging), redacted
    )
    declare_controller_problems(app, everywhere=(429,))  # any authenticated call may meet the rate limit
    return app


def media_origins(settings: Settings, endpoint: str) -> list[str]:
    """Where presigned links point (the S3 server browsers reach): the review page's CSP lets footage come from it."""
    return [f"{'https' if settings.s3_secure else 'http'}://{settings.s3_public_endpoint or endpoint}"]
