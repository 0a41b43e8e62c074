"""Schemathesis against the service's own OpenAPI, in-process over ASGI, with a token of each role, on SQLite and
PostgreSQL, as `--mode all` does: every operation gets generated requests, valid (positive) and invalid (negative)
ones, from each role: no answer may be a 5xx, every answer must match its documented status code, content type,
headers and schema, and invalid data must be refused with a 4xx. Bodies schemathesis does not make (not UTF-8,
NUL, deep nesting, broken multipart) go to every operation that takes a body."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import _pg_execute, _run, pg_admin_url, service_settings
from tests.qbank.helpers import blueprint_body

ROLES = ["admin", "author", "reviewer", "site", "supervisor"]
# Every check of `--mode all` that judges one answer: no 5xx, the documented status, content type, headers and
# schema, and invalid (negative) data refused with a 4xx.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
MAX_EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 4}  # per operation and role
OCCUPATION = "6-31-01-03"
SITE = "S0001"
# Revoking tokens would take the run's own tokens away; it is run last, so the rest keeps its token.
LAST = ("POST", "/api/v1/tokens/{token_id}/revoke")


@dataclass
class Target:
    backend: str
    app: Any
    headers: dict[str, dict[str, str]]
    schema: Any


async def _admin_token(database_url: str, secret: str) -> str:
    import msgspec

    from qbank.auth.schemas import TokenCreate
    from qbank.auth.services import create_token
    from qbank.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn, conn.begin():
            from sqlalchemy.ext.asyncio import AsyncSession

            data = msgspec.convert({"name": "fuzz-admin", "role": "admin"}, TokenCreate)
            created, _ = await create_token(AsyncSession(bind=conn), secret, data)
            return created.token
    finally:
        await engine.dispose()


def _seed(client: Any, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """A bank with a blueprint, a layout and approved items, a site, and a token of each role."""

    def ok(response: Any) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()

    ok(client.post("/api/v1/occupations", json={"code": OCCUPATION, "name": "电工", "levels": [3]}, headers=admin))
    bank = f"/api/v1/occupations/{OCCUPATION}/levels/3"
    ok(client.post(f"{bank}/blueprints", json=blueprint_body(), headers=admin))
    ok(client.post(f"{bank}/layouts", headers=admin, json={"name": "卷A", "duration_minutes": 90, "sections": [
        {"type": "single_choice", "count": 2, "points_per_item": 50}]}))
    ok(client.post("/api/v1/sites", json={"code": SITE, "name": "考点一"}, headers=admin))
    headers = {"admin": admin}
    for role, extra in (("author", {"occupations": [OCCUPATION]}), ("reviewer", {"occupations": [OCCUPATION]}),
                        ("site", {"site": SITE}), ("supervisor", {})):
        token = ok(client.post("/api/v1/tokens", json={"name": f"fuzz-{role}", "role": role, **extra},
                               headers=admin))["token"]
        headers[role] = {"Authorization": f"Bearer {token}"}
    stems = ["电流的单位是什么", "变压器铁芯为什么用硅钢片", "兆欧表摇柄转速应为多少", "漏电保护器动作电流选多大"]
    for i, stem in enumerate(stems):
        item = ok(client.post("/api/v1/items", headers=headers["author"], json={
            "occupation_code": OCCUPATION, "level": 3, "type": "single_choice", "stem": stem,
            "options": ["甲", "乙", "丙", "丁"], "answer": ["A"], "point_code": f"{i + 1:03d}"}))
        if i < 3:
            ok(client.post(f"/api/v1/items/{item['id']}/submit", headers=headers["author"]))
            ok(client.post(f"/api/v1/items/{item['id']}/approve", headers=admin))
    return headers


@pytest.fixture(scope="module", params=[pytest.param("sqlite", id="sqlite"),
                                        pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg)])
def target(request: pytest.FixtureRequest, s3_server: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from sqlalchemy.engine import make_url

    from qbank.db import upgrade
    from qbank.server.app import create_app

    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    drop: Any = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
    else:
        admin_url = pg_admin_url()
        if not admin_url:
            pytest.fail("QBANK_TEST_PG_URL is not set: run the tests through scripts/test")
        base = make_url(admin_url)
        name = f"qbank_fuzz_{secrets.token_hex(6)}"
        dsn = dict(host=base.host, port=base.port or 5432, user=base.username, password=base.password,
                   database=base.database or "postgres")
        _run(_pg_execute(dsn, f'CREATE DATABASE "{name}"'))
        drop = lambda: _run(_pg_execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))  # noqa: E731
        url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        settings_ = service_settings(url, s3_server, Path(tmp))
        app = create_app(settings_)  # type: ignore[arg-type]
        admin = {"Authorization": f"Bearer {_run(_admin_token(url, settings_.token_secret))}"}  # type: ignore[attr-defined]
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
        with schemathesis_asgi.get_client(app) as client:
            headers = _seed(client, admin)
        try:
            yield Target(backend=request.param, app=app, headers=headers, schema=schema)
        finally:
            schemathesis_asgi.shutdown_lifespans()  # the app's engine and S3 store close on its own loop
    finally:
        if drop is not None:
            drop()


def _strategy(operation: Any, mode: GenerationMode) -> Any:
    """Generated cases; where a path names an occupation or a site, half of them name the seeded one."""
    strategy = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in {"code": OCCUPATION, "occupation": OCCUPATION, "site": SITE}.items() if k in names}
    if fixed and mode is GenerationMode.POSITIVE:
        strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return strategy


def test_values_the_database_refuses_are_a_clear_400(target: Target) -> None:
    """Ids beyond the database's integers, and NUL in text on PostgreSQL (which refuses it): 400, nothing stored.

    (Runs before the fuzzing, which may revoke the admin token.)"""
    admin = target.headers["admin"]
    with schemathesis_asgi.get_client(target.app) as client:
        for url in (f"/api/v1/items/{2**80}", f"/api/v1/blueprints/{2**40}"):
            r = client.get(url, headers=admin)
            assert r.status_code in (400, 404), r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        if target.backend == "postgresql":
            r = client.post("/api/v1/occupations", json={"code": "1-01-01-01", "name": "电\x00工", "levels": [3]},
                            headers=admin)
            assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text
            assert client.get("/api/v1/occupations/1-01-01-01", headers=admin).status_code == 404
            r = client.get("/api/v1/items", params={"q": "a\x00b"}, headers=admin)
            assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text


MALFORMED_BODIES: dict[str, tuple[str, bytes]] = {
    "invalid UTF-8": ("application/json", b'{"name": "\xff\xfe\xfd", "code": "\xe7\x94"}'),
    "NUL and controls": ("application/json", b'{"name": "a\\u0000b", "note": "\\u0007", "stem": "\\u001b"}'),
    "lone surrogate": ("application/json", b'{"name": "\\ud800"}'),
    "nested too deep": ("application/json", b"[" * 100_000),
    "byte order mark": ("application/json", b"\xef\xbb\xbf{}"),
    "not JSON": ("application/json", b"<xml/>"),
    "multipart without boundary": ("multipart/form-data", b"--x\r\nContent-Disposition: form-data\r\n\r\n\xff"),
    "truncated multipart": ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="file"; '
                            b'filename="a\x00.xlsx"\r\n\r\nPK\x03\x04'),
}


def test_malformed_bodies_to_every_operation_are_a_4xx(target: Target) -> None:
    """Bodies schemathesis does not make (not UTF-8, NUL, nesting, broken multipart) to every operation that takes
    one, from every role: a 4xx problem details answer each time, never a 5xx."""
    operations = [result.ok() for result in target.schema.get_all_operations()]
    with_body = [op for op in operations if op.definition.raw.get("requestBody")]
    assert len(with_body) > 15
    failures = []
    with schemathesis_asgi.get_client(target.app) as client:
        for operation in with_body:
            path = re.sub(r"\{[^}]+\}", lambda m: {"{code}": OCCUPATION, "{occupation}": OCCUPATION,
                                                   "{site}": SITE}.get(m.group(0), "1"), operation.path)
            for role in ROLES:
                for name, (content_type, body) in MALFORMED_BODIES.items():
                    r = client.request(operation.method.upper(), path, data=body,
                                       headers={**target.headers[role], "Content-Type": content_type})
                    problem = r.headers.get("content-type", "").startswith("application/problem+json")
                    if not 400 <= r.status_code < 500 or not problem:
                        failures.append(f"{operation.method.upper()} {path} as {role}, {name}: {r.status_code} "
                                        f"{r.text[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_conforms(target: Target, role: str) -> None:
    if target.backend == "postgresql" and os.environ.get("QBANK_FUZZ_PG") == "0":
        pytest.skip("QBANK_FUZZ_PG=0: the PostgreSQL fuzz run (1–3.5 min) is switched off")
    operations = [result.ok() for result in target.schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) == LAST)
    assert len(operations) > 15
    headers = target.headers[role]
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES[mode], deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=_strategy(operation, mode))
            def run(case: Any) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Unsatisfiable:  # nothing about it can be made invalid (GET /health: no parameters, no token)
                assert mode is GenerationMode.NEGATIVE, operation.path
            except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: {exc}")
    assert not failures, f"{len(failures)} failing operation(s) for role {role}:\n\n" + "\n\n".join(failures)
