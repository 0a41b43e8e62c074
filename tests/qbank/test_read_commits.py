"""A GET, HEAD or OPTIONS request whose session wrote nothing ends without a commit; one whose session wrote (a flush,
an object added, any statement that is not a SELECT) is committed before its answer, as every other request is."""

from __future__ import annotations

import secrets
from pathlib import Path

import anyio.to_thread
from litestar import get
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evidence import LocalS3Server
from qbank.blueprints.models import Occupation
from tests.conftest import service_settings
from tests.qbank.helpers import Api


@get("/test/reads/add/{code:str}")
async def add_in_a_get(code: str, db_session: AsyncSession) -> dict[str, str]:
    db_session.add(Occupation(code=code, name="读中写", levels=[3]))
    return {"added": code}


@get("/test/reads/flush/{code:str}")
async def flush_in_a_get(code: str, db_session: AsyncSession) -> dict[str, str]:
    db_session.add(Occupation(code=code, name="读中写", levels=[3]))
    await db_session.flush()
    return {"flushed": code}


@get("/test/reads/rename/{code:str}")
async def statement_in_a_get(code: str, db_session: AsyncSession) -> dict[str, str]:
    await db_session.execute(text("UPDATE occupation SET name = '改名' WHERE code = :code"), {"code": code})
    return {"renamed": code}


@get("/test/reads/read/{code:str}")
async def read_in_a_get(code: str, db_session: AsyncSession) -> dict[str, str | None]:
    return {"name": await db_session.scalar(select(Occupation.name).where(Occupation.code == code))}


async def test_a_get_that_wrote_is_committed(tmp_path: Path, s3_server: LocalS3Server) -> None:
    from qbank.db import create_engine, upgrade
    from qbank.server.app import create_app

    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    await anyio.to_thread.run_sync(upgrade, url)
    app = create_app(service_settings(url, s3_server, tmp_path))  # type: ignore[arg-type]
    for handler in (add_in_a_get, flush_in_a_get, statement_in_a_get, read_in_a_get):
        app.register(handler)
    engine = create_engine(url)
    try:
        async with AsyncTestClient(app=app) as client:
            api = Api(client=client, app=app, backend="sqlite", db=async_sessionmaker(engine, expire_on_commit=False))
            admin = await api.admin()
            added, flushed = f"T{secrets.token_hex(4)}", f"T{secrets.token_hex(4)}"
            for path in (f"/test/reads/add/{added}", f"/test/reads/flush/{flushed}", f"/test/reads/rename/{added}"):
                r = await client.get(path, headers=admin)
                assert r.status_code == 200, r.text
            r = await client.get(f"/test/reads/read/{added}", headers=admin)
            assert r.json() == {"name": "改名"}
            async with api.db() as db:
                names = dict((await db.execute(select(Occupation.code, Occupation.name).where(
                    Occupation.code.in_([added, flushed])))).tuples().all())
            assert names == {added: "改名", flushed: "读中写"}
    finally:
        await engine.dispose()
