"""Reads that must be in the trail (package fetches): fetches that arrive together share one writing transaction
of the trail, each answered only once its own entry is committed; when the trail cannot be written no link is
handed out and nothing of the refused fetches is stored."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
from sqlalchemy import text

from tests.qbank.helpers import Api, assemble, make_exam, make_paper_bank, site_headers


async def sealed_exam(api: Api) -> tuple[int, dict[str, str]]:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=2)
    job = await assemble(api, exam, layout_id)
    assert job["status"] == "succeeded", job
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=await api.admin())
    assert r.status_code == 200, r.text
    return exam.session_id, await site_headers(api, exam.sites[0])


async def trail_after(api: Api, seq: int) -> list[dict[str, Any]]:
    admin = await api.admin()
    r = await api.client.get("/api/v1/audit", params={"limit": 1000, "offset": seq}, headers=admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def trail_length(api: Api) -> int:
    r = await api.client.get("/api/v1/audit", params={"limit": 1}, headers=await api.admin())
    return int(r.json()["total"])


async def fetch_all(api: Api, session_id: int, headers: dict[str, str], n: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(
        api.client.get(f"/api/v1/sessions/{session_id}/package", headers=headers, follow_redirects=False)
        for _ in range(n))))


async def test_concurrent_fetches_each_have_their_entry_in_the_one_chain(api: Api) -> None:
    session_id, mine = await sealed_exam(api)
    before = await trail_length(api)
    answers = await fetch_all(api, session_id, mine, 40)
    assert [r.status_code for r in answers] == [307] * 40, [r.text for r in answers if r.status_code != 307][:2]
    entries = await trail_after(api, before)
    fetches = [e for e in entries if e["action"] == "paper.package_fetch"]
    assert len(fetches) == 40
    assert all(e["detail"]["by"] == "presigned link" and e["detail"]["session"] == session_id for e in fetches)
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(entries))
    r = await api.client.get("/api/v1/audit/verify", headers=await api.admin())
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


REFUSE = {
    "sqlite": ["CREATE TRIGGER refuse_fetch BEFORE INSERT ON audit_entry WHEN NEW.action = 'paper.package_fetch' "
               "BEGIN SELECT RAISE(ABORT, 'trail refused'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_fetch() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'trail refused'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_fetch BEFORE INSERT ON audit_entry FOR EACH ROW "
        "WHEN (NEW.action = 'paper.package_fetch') EXECUTE FUNCTION refuse_fetch()"],
}
ALLOW = {"sqlite": ["DROP TRIGGER refuse_fetch"],
         "postgresql": ["DROP TRIGGER refuse_fetch ON audit_entry", "DROP FUNCTION refuse_fetch()"]}


async def test_a_trail_that_cannot_be_written_hands_out_no_link_and_stores_nothing(api: Api) -> None:
    session_id, mine = await sealed_exam(api)
    before = await trail_length(api)
    async with api.db() as db, db.begin():
        for statement in REFUSE[api.backend]:
            await db.execute(text(statement))
    try:
        answers = await fetch_all(api, session_id, mine, 12)
    finally:
        async with api.db() as db, db.begin():
            for statement in ALLOW[api.backend]:
                await db.execute(text(statement))
    assert all(r.status_code >= 500 and "location" not in r.headers for r in answers), [
        (r.status_code, r.headers.get("location")) for r in answers]
    assert all("trail refused" not in r.text for r in answers)  # the database's words stay in the log
    assert not [e for e in await trail_after(api, before) if e["action"] == "paper.package_fetch"]
    # the trail is whole and takes the next fetches
    answers = await fetch_all(api, session_id, mine, 3)
    assert [r.status_code for r in answers] == [307] * 3
    r = await api.client.get("/api/v1/audit/verify", headers=await api.admin())
    assert r.json()["ok"] is True, r.text
