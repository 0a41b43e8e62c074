from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
from sqlalchemy import text

from tests.qbank.helpers import Api, make_bank, site_headers


async def test_health_and_docs_need_no_token(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}
    r = await api.client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/items" in r.json()["paths"]


async def test_missing_wrong_and_revoked_tokens_are_refused(api: Api) -> None:
    r = await api.client.get("/api/v1/occupations")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "bearer token" in r.json()["detail"]
    r = await api.client.get("/api/v1/occupations", headers={"Authorization": "Bearer qb_nonsense"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]

    admin = await api.admin()
    r = await api.client.post("/api/v1/tokens", json={"name": "temp", "role": "admin"}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert (await api.client.get("/api/v1/occupations", headers=mine)).status_code == 200
    r = await api.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert (await api.client.get("/api/v1/occupations", headers=mine)).status_code == 401
    r = await api.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=admin)
    assert r.status_code == 409


async def test_a_token_revoked_elsewhere_stops_working_within_a_second(api: Api, tmp_path: Any) -> None:
    """Tokens that authenticated are cached for a moment; a revocation by another process (here `qbank token
    revoke`, as another instance would) reaches this one within a second."""
    from click.testing import CliRunner

    from qbank.server.cli import main

    admin = await api.admin()
    r = await api.client.post("/api/v1/tokens", json={"name": "cached", "role": "admin"}, headers=admin)
    created = r.json()
    mine = {"Authorization": f"Bearer {created['token']}"}
    for _ in range(3):  # the first looks the token up, the others may be answered from the cache
        assert (await api.client.get("/api/v1/occupations", headers=mine)).status_code == 200
    env = {"QBANK_DATABASE_URL": str(api.app.state.settings.database_url), "QBANK_DATA_DIR": str(tmp_path),
           "QBANK_TOKEN_SECRET": "test-token-secret"}
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, ["token", "revoke", str(created["id"])],
                                                                       env=env))
    assert result.exit_code == 0, result.output
    await asyncio.sleep(1.0)
    r = await api.client.get("/api/v1/occupations", headers=mine)
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]


async def test_tokens_are_stored_hashed(api: Api) -> None:
    token = await api.token("supervisor", "hash-check")
    async with api.db() as db:
        stored = (await db.execute(text("SELECT token_hash FROM api_token WHERE name = 'hash-check'"))).scalar_one()
    assert token not in stored and len(stored) == 64


async def test_roles_are_enforced(api: Api) -> None:
    site = await site_headers(api)
    r = await api.client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=site)
    assert r.status_code == 403 and "needs: admin" in r.json()["detail"]
    r = await api.client.get("/api/v1/items", headers=site)
    assert r.status_code == 403
    supervisor = await api.headers("supervisor")
    assert (await api.client.get("/api/v1/audit/verify", headers=supervisor)).status_code == 403


async def test_scoped_token_needs_occupation(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post("/api/v1/tokens", json={"name": "a", "role": "author"}, headers=admin)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "occupations"


async def test_audit_chain_detects_an_edited_row(api: Api) -> None:
    admin = await api.admin()
    await make_bank(api)
    r = await api.client.get("/api/v1/audit/verify", headers=admin)
    assert r.status_code == 200 and r.json()["ok"] is True, r.json()
    r = await api.client.get("/api/v1/audit", params={"entity_type": "blueprint"}, headers=admin)
    entry = r.json()["items"][-1]
    assert entry["action"] == "blueprint.create" and entry["actor"].startswith("centre-admin#")
    async with api.db() as db, db.begin():
        original = (await db.execute(text("SELECT actor FROM audit_entry WHERE seq = :s"),
                                     {"s": entry["seq"]})).scalar_one()
        await db.execute(text("UPDATE audit_entry SET actor = 'someone-else' WHERE seq = :s"), {"s": entry["seq"]})
    try:
        r = await api.client.get("/api/v1/audit/verify", headers=admin)
        body = r.json()
        assert body["ok"] is False and body["first_bad_seq"] == entry["seq"], body
        assert "edited" in body["reason"]
    finally:
        async with api.db() as db, db.begin():
            await db.execute(text("UPDATE audit_entry SET actor = :a WHERE seq = :s"),
                             {"a": original, "s": entry["seq"]})
    r = await api.client.get("/api/v1/audit/verify", headers=admin)
    assert r.json()["ok"] is True
