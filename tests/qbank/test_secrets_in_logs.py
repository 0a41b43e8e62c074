"""Secrets never leave the process through the log: `qbank serve` as a real process (SQLite and PostgreSQL) answers
a 500 to a request that carries a real admin token (and an id number and the token in the query string); its log
holds the error with a plain traceback and none of the secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import update

from qbank.server.logging import Redactor
from tests.conftest import running_service
from tests.qbank.helpers import blueprint_body, id_number, new_occupation_code


def _serve_and_fail(data: Path, s3_server: Any, database_url: str) -> tuple[str, str, str]:
    """Start the service, make a token and an item, break the item's stored version, read it: (token, id number,
    the service's log)."""
    with running_service(data, s3_server, QBANK_DATABASE_URL=database_url, QBANK_LOG_LEVEL="INFO",
                         QBANK_TOKEN_SECRET="logs-test-token-secret") as (url, env):
        qbank = str(Path(sys.executable).with_name("qbank"))
        made = subprocess.run([qbank, "token", "create", "--role", "admin", "--name", "centre", "--json"], env=env,
                              capture_output=True, text=True, check=True)
        token = json.loads(made.stdout)["token"]
        auth = {"Authorization": f"Bearer {token}"}
        code = new_occupation_code()
        person = id_number()
        with httpx.Client(base_url=url, timeout=30, headers=auth) as http:
            assert http.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]}).is_success
            assert http.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json=blueprint_body()).is_success
            r = http.post("/api/v1/items", json={
                "occupation_code": code, "level": 3, "type": "single_choice", "stem": f"{code} 电流的单位",
                "options": ["安培", "伏特"], "answer": ["A"], "point_code": "001"})
            assert r.status_code == 201, r.text
            item_id = r.json()["id"]
            _break_version(database_url, item_id)
            http.cookies.set("qbank_review_session", token)
            r = http.get(f"/api/v1/items/{item_id}", params={"q": token, "who": person})
            assert r.status_code == 500, r.text
            assert token not in r.text
    return token, person, (data / "serve.log").read_text()


def _break_version(database_url: str, item_id: int) -> None:
    """Stored content the service cannot read back: an unhandled error (a 500) on the next read of the item."""
    import asyncio

    from qbank.db import create_engine
    from qbank.items.models import ItemVersion

    async def go() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(update(ItemVersion).where(ItemVersion.item_id == item_id).values(
                    content={"stem": 42}))
        finally:
            await engine.dispose()

    asyncio.run(go())


async def test_a_500_with_a_real_token_leaves_no_secret_in_the_log(database_url: str, s3_server: Any,
                                                                  tmp_path: Path) -> None:
    url = database_url if database_url.startswith("postgresql") else f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    token, person, log = await anyio.to_thread.run_sync(_serve_and_fail, tmp_path, s3_server, url)
    assert "unhandled error" in log and "Traceback (most recent call last)" in log, log[-3000:]
    assert "ValidationError" in log  # the cause is there ...
    secret_part = token.removeprefix("qb_")
    lines = [line for line in log.splitlines() if secret_part in line or person in line
             or "logs-test-token-secret" in line]
    assert not lines, "\n".join(lines)  # ... but not the token, the id number or the token secret
    assert "─ locals ─" not in log and "frame.f_locals" not in log  # plain tracebacks: no local variables
    assert "GET /api/v1/items/" in log  # the access log went through the same redacting handler


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer qb_abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    ("[(b'authorization', b'Bearer sometoken-value'), (b'cookie', b'qbank_review_session=s3cr3tsession')]",
     "s3cr3tsession"),
    ("GET /x?X-Amz-Credential=qbank%2F2026&X-Amz-Signature=deadbeefcafe1234", "deadbeefcafe1234"),
    ("candidate 11010519491231002X failed", "11010519491231002X"),
    ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIL\n-----END PRIVATE KEY-----", "MC4CAQAwBQYDK2VwBCIEIL"),
    ("the secret is configured-secret-value", "configured-secret-value"),
])
def test_the_redactor_removes_each_kind_of_secret(text: str, secret: str) -> None:
    redactor = Redactor(["configured-secret-value"])
    assert secret not in redactor.text(text)
    event = redactor(None, "error", {"event": text, "headers": {"Authorization": "x", "accept": "json"},
                                     "token": "qb_x", "nested": [{"cookie": "a=b"}]})
    assert secret not in str(event)
    assert event["headers"] == {"Authorization": "[redacted]", "accept": "json"}
    assert event["token"] == "[redacted]" and event["nested"] == [{"cookie": "[redacted]"}]
