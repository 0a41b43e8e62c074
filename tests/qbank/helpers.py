"""Helpers shared by the service tests: an HTTP client with tokens of each role, banks, sites, exams, jobs.

Test modules import these from here (never from conftest or from one another)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from paperbuild import sealing
from qbank.lib.actors import Actor, Role


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


async def audit_count(api: Api, action: str, entity_id: object | None = None) -> int:
    """How many trail entries of ``action`` (for ``entity_id``) there are."""
    from sqlalchemy import func, select

    from qbank.audit.models import AuditEntry

    query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == str(entity_id))
    async with api.db() as db:
        return int(await db.scalar(query) or 0)


async def wait_job(api: Api, job_id: str, headers: dict[str, str] | None = None,
                   timeout: float = 60) -> dict[str, Any]:
    """Poll a job until it has ended (succeeded or failed); fails the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.client.get(f"/api/v1/jobs/{job_id}", headers=headers or await api.admin())
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        assert loop.time() < deadline, f"job still {job['status']} after {timeout} s: {job}"
        await asyncio.sleep(0.1)


@dataclass
class ImportAnswer:
    """An import's outcome read as one answer: 201 and the import when its job succeeded, the job's failure status
    (400, 409, …) and its error (a problem's fields: detail, errors, …) when it failed, or the POST's own answer
    when the import was refused before a job existed (401, 403, 404, 413, 400)."""

    status_code: int
    body: dict[str, Any]
    job: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return self.body

    @property
    def text(self) -> str:
        return msgspec.json.encode(self.body).decode()


async def import_file(api: Api, headers: dict[str, str], files: dict[str, Any], data: dict[str, str],
                      timeout: float = 120) -> ImportAnswer:
    """POST /api/v1/imports, then wait for its job."""
    r = await api.client.post("/api/v1/imports", headers=headers, files=files, data=data)
    if r.status_code != 202:
        return ImportAnswer(r.status_code, r.json(), headers=dict(r.headers))
    job = await wait_job(api, r.json()["id"], headers, timeout=timeout)
    if job["status"] == "succeeded":
        return ImportAnswer(201, job["result"], job)
    return ImportAnswer(job["error"].get("status", 500), job["error"], job)  # no status: the job crashed


async def get_package(api: Api, session_id: int, headers: dict[str, str], **params: str) -> httpx.Response:
    """GET …/package as a site's client does: the 307 is followed to the S3 server (without the bearer token),
    and the bytes must have the digest the centre named. Any other answer is returned as it is."""
    r = await api.client.get(f"/api/v1/sessions/{session_id}/package", headers=headers, params=params,
                             follow_redirects=False)
    if r.status_code != 307:
        return r
    assert r.headers["cache-control"] == "no-store" and "authorization" not in r.headers
    async with httpx.AsyncClient(timeout=30) as s3:
        got = await s3.get(r.headers["location"])
    assert got.status_code == 200, got.text
    assert hashlib.sha256(got.content).hexdigest() == r.headers["x-package-sha256"]
    return got


LAYOUT = {"name": "small theory", "duration_minutes": 60, "facility_min": 0.55, "facility_max": 0.70,
          "sections": [{"type": "single_choice", "count": 30, "points_per_item": 2},
                       {"type": "true_false", "count": 20, "points_per_item": 1},
                       {"type": "multiple_choice", "count": 10, "points_per_item": 2}]}
TYPES = ["true_false"] * 40 + ["single_choice"] * 75 + ["multiple_choice"] * 25
OPTION_WORDS = ["电阻", "电容", "电感", "电压", "电流", "功率", "频率", "相位"]


async def make_paper_bank(api: Api, points: int = 48, types: list[str] = TYPES,
                          starve_scope_02: bool = False) -> tuple[Bank, int]:
    """An occupation with a 48-point blueprint, the small layout and ``len(types)`` approved items (only 3 in
    scope 02, 40 % of the paper, when starved)."""
    admin = await api.admin()
    code = new_occupation_code()
    r = await api.client.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]},
                              headers=admin)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json=blueprint_body(points),
                              headers=admin)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/api/v1/occupations/{code}/levels/3/layouts", json=LAYOUT, headers=admin)
    assert r.status_code == 201, r.text
    layout_id = int(r.json()["id"])
    await add_approved_items(api, code, points, types, starve_scope_02)
    return Bank(occupation=code, level=3, points=[f"{i + 1:03d}" for i in range(points)]), layout_id


async def add_approved_items(api: Api, code: str, points: int = 48, types: list[str] = TYPES,
                             starve_scope_02: bool = False, batch: str = "") -> None:
    """``len(types)`` approved level-3 items of occupation ``code`` spread over its points (``batch`` keeps the
    stems of a second batch apart from the first's)."""
    from qbank.items.models import Item
    from qbank.items.schemas import ItemIn
    from qbank.items.services import add_item

    rng = random.Random(code + batch)
    writer = Actor(token_id=0, name="命题人", role=Role.admin)
    usable = [p for p in range(points) if not (starve_scope_02 and p % 3 == 2)]
    async with api.db() as db, db.begin():
        for i, t in enumerate(types):
            if t == "true_false":
                options, answer = ["正确", "错误"], [rng.choice("AB")]
            else:
                words = rng.sample(OPTION_WORDS, 4)
                options = [f"{w}{i}{batch}" for w in words]
                answer = ["A"] if t == "single_choice" else sorted(rng.sample("ABCD", rng.choice([2, 3])))
            point = usable[i % len(usable)] if i >= 3 or not starve_scope_02 else 3 * i + 2
            data = msgspec.convert({
                "occupation_code": code, "level": 3, "type": t,
                "stem": f"{code} {batch}第{i}题：下列说法中哪一项正确？",
                "options": options, "answer": answer, "point_code": f"{point + 1:03d}",
                "facility": round(rng.uniform(0.45, 0.80), 3)}, ItemIn)
            await add_item(db, writer, data)
        await db.execute(update(Item).where(Item.occupation_code == code).values(status="approved"))


@dataclass
class Exam:
    session_id: int
    sites: list[str]
    keys: dict[str, X25519PrivateKey]
    candidates: dict[str, str]  # number -> site


async def make_exam(api: Api, bank: Bank, per_site: int = 4, n_sites: int = 2, register_keys: bool = True) -> Exam:
    admin = await api.admin()
    sites = [await make_site(api) for _ in range(n_sites)]
    rooms = [{"site": s, "code": "T1", "kind": "theory", "desks": per_site, "camera_views": ["front"]} for s in sites]
    # the practical exam's room, whose assigned panel alone may give practical scores (§20)
    rooms.append({"site": sites[0], "code": "P1", "kind": "practical", "desks": per_site, "camera_views": ["wide"]})
    candidates = []
    owner: dict[str, str] = {}
    for k, s in enumerate(sites):
        for d in range(per_site):
            number = f"C{random.randrange(10**9):09d}{k}{d}"
            candidates.append({"number": number, "name": f"考生{k}{d}", "room": f"{s}/T1", "desk": d + 1})
            owner[number] = s
    body = {"occupation_code": bank.occupation, "level": 3, "title": "理论考试", "date": "2026-12-03",
            "start": "09:00:00", "end": "10:30:00", "grace_minutes": 15, "rooms": rooms, "candidates": candidates}
    r = await api.client.post("/api/v1/sessions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    session_id = int(r.json()["id"])
    keys: dict[str, X25519PrivateKey] = {}
    if register_keys:
        for s in sites:
            keys[s] = X25519PrivateKey.generate()
            pub = base64.b64encode(sealing.raw_public(keys[s].public_key())).decode()
            r = await api.client.put(f"/api/v1/sites/{s}/public-key", json={"public_key": pub},
                                     headers=await site_headers(api, s))
            assert r.status_code == 200, r.text
    return Exam(session_id=session_id, sites=sites, keys=keys, candidates=owner)


async def time_travel(api: Api, session_id: int, starts_in: timedelta, length: timedelta = timedelta(hours=1)) -> None:
    """Move the session's window so that it starts ``starts_in`` from now."""
    from qbank.sessions.models import ExamSession

    start = datetime.now(UTC) + starts_in
    async with api.db() as db, db.begin():
        await db.execute(update(ExamSession).where(ExamSession.id == session_id).values(
            starts_at=start, ends_at=start + length))


async def assemble(api: Api, exam: Exam, layout_id: int, **over: Any) -> dict[str, Any]:
    body = {"layout_id": layout_id, "mode": "parallel", "forms": 2, "seed": 7, "time_limit_s": 5} | over
    if body["mode"] == "per_candidate" and "forms" not in over:
        del body["forms"]  # one form per candidate
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers", json=body, headers=await api.admin())
    assert r.status_code == 202, r.text
    return await wait_job(api, r.json()["id"])
