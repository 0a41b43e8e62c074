"""The service under test, once per database backend, driven over HTTP with tokens of each role."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import service_settings

BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Api:
    """An HTTP client on the service plus tokens of each role, made through the service's own code."""

    client: AsyncTestClient[Litestar]
    app: Litestar
    backend: str
    # The app runs on the test client's own loop; tests reach the database through their own engine.
    db: async_sessionmaker[AsyncSession]
    _tokens: dict[tuple[str, str, tuple[str, ...], str], dict[str, str]] = field(default_factory=dict)

    async def token(self, role: str, name: str | None = None, occupations: tuple[str, ...] = (),
                    site: str | None = None) -> str:
        from qbank.auth.schemas import TokenCreate
        from qbank.auth.services import create_token

        async with self.db() as db, db.begin():
            data = msgspec.convert({"name": name or f"{role}-{random.randrange(10**9)}", "role": role,
                                    "occupations": list(occupations), "site": site}, TokenCreate)
            created, _ = await create_token(db, self.app.state.settings.token_secret, data)
        return created.token

    async def headers(self, role: str, name: str | None = None, occupations: tuple[str, ...] = (),
                      site: str | None = None) -> dict[str, str]:
        key = (role, name or "", occupations, site or "")
        if key not in self._tokens:
            self._tokens[key] = {"Authorization": f"Bearer {await self.token(role, name, occupations, site)}"}
        return self._tokens[key]

    async def admin(self) -> dict[str, str]:
        return await self.headers("admin", "centre-admin")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_database_url"))


@pytest.fixture(scope="session")
async def api(database_url: str, s3_server: object, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    from qbank.server.app import create_app
    from qbank.db import create_engine, upgrade

    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    url = database_url
    settings = service_settings(url, s3_server, tmp_path_factory.mktemp(f"data-{backend}"))
    await anyio.to_thread.run_sync(upgrade, url)
    app = create_app(settings)  # type: ignore[arg-type]
    engine = create_engine(url)  # the service's own engine factory (SQLite pragmas included)
    async with AsyncTestClient(app=app) as client:
        yield Api(client=client, app=app, backend=backend, db=async_sessionmaker(engine, expire_on_commit=False))
    await engine.dispose()


def new_occupation_code() -> str:
    r = random.randrange(10**7)
    s = f"{r:07d}"
    return f"{s[0]}-{s[1:3]}-{s[3:5]}-{s[5:7]}"


def blueprint_body(points: int = 12, importance: tuple[str, ...] = ("X",) * 8 + ("Y", "Z")) -> dict[str, Any]:
    """Two top scopes (60/40), the first split 30/30; points spread over the three leaves."""
    leaves: list[list[dict[str, Any]]] = [[], [], []]
    for i in range(points):
        leaves[i % 3].append({"code": f"{i + 1:03d}", "name": f"鉴定点{i + 1}",
                              "importance": importance[i % len(importance)]})
    return {"scopes": [
        {"code": "01", "name": "基础知识", "weight": 60, "children": [
            {"code": "01.01", "name": "电工基础", "weight": 30, "points": leaves[0]},
            {"code": "01.02", "name": "安全知识", "weight": 30, "points": leaves[1]},
        ]},
        {"code": "02", "name": "相关知识", "weight": 40, "points": leaves[2]},
    ]}


@dataclass
class Bank:
    occupation: str
    level: int
    points: list[str]


async def make_bank(api: Api, level: int = 3, points: int = 12) -> Bank:
    admin = await api.admin()
    code = new_occupation_code()
    r = await api.client.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [5, 4, 3, 2, 1]},
                              headers=admin)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/api/v1/occupations/{code}/levels/{level}/blueprints",
                              json=blueprint_body(points), headers=admin)
    assert r.status_code == 201, r.text
    return Bank(occupation=code, level=level, points=[f"{i + 1:03d}" for i in range(points)])


def item_body(bank: Bank, stem: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "occupation_code": bank.occupation, "level": bank.level, "type": "single_choice", "stem": stem,
        "options": ["安培", "伏特", "欧姆", "瓦特"], "answer": ["A"], "point_code": bank.points[0],
        "facility": 0.6, "difficulty": "中等",
    }
    body.update(over)
    return body


async def make_site(api: Api, code: str | None = None) -> str:
    code = code or f"S{random.randrange(10**8):08d}"
    r = await api.client.post("/api/v1/sites", json={"code": code, "name": f"考点{code}"}, headers=await api.admin())
    assert r.status_code == 201, r.text
    return code


async def site_headers(api: Api, site: str | None = None) -> dict[str, str]:
    """Headers of a site token (a site is made when none is named)."""
    site = site or await make_site(api)
    return await api.headers("site", f"site-{site}", site=site)


def id_number(rng: random.Random | None = None) -> str:
    """A resident id number (GB 11643) with a valid check character."""
    rng = rng or random.Random()
    body = "".join(str(rng.randrange(10)) for _ in range(17))
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
