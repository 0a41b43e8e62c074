"""The service under test, once per database backend (PostgreSQL marked ``pg``), driven over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.conftest import service_settings
from tests.qbank.browsers import CHROMIUM, CHROMIUM_ARGS
from tests.qbank.helpers import Api

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg)]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_database_url"))


@pytest.fixture(scope="session")
async def api(database_url: str, s3_server: object, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    from qbank.db import create_engine, upgrade
    from qbank.server.app import create_app

    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    url = database_url
    settings = service_settings(url, s3_server, tmp_path_factory.mktemp(f"data-{backend}"))
    await anyio.to_thread.run_sync(upgrade, url)
    app = create_app(settings)  # type: ignore[arg-type]
    engine = create_engine(url)  # the service's own engine factory (SQLite pragmas included)
    async with AsyncTestClient(app=app) as client:
        yield Api(client=client, app=app, backend=backend, db=async_sessionmaker(engine, expire_on_commit=False))
    await engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: scripts/setup --browser (scripts/test) installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
