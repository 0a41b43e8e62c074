"""Evaluator panels and supervisors in the service, on SQLite and PostgreSQL: records, the assignment job, panels by
hand and every bad input, the roster, the external supervisor draw and its verification."""

from __future__ import annotations

import io
import random
from typing import Any

from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from sqlalchemy import select, text

from tests.qbank.helpers import Api, id_number, make_bank, make_site, wait_job


async def make_evaluator(api: Api, occupation: str, level: int = 3, until: str = "2028-12-31",
                         name: str | None = None, **over: Any) -> dict[str, Any]:
    body = {"name": name or f"考评员{random.randrange(10**6)}", "id_number": id_number(), "employer": "成都技师学院",
            "certificates": [{"occupation_code": occupation, "level": level, "valid_until": until}], **over}
    r = await api.client.post("/api/v1/evaluators", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_supervisor(api: Api, kind: str = "internal", **over: Any) -> dict[str, Any]:
    r = await api.client.post("/api/v1/supervisors", json={"kind": kind, "name": f"督导{random.randrange(10**6)}",
                                                           **over}, headers=await api.admin())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_session(api: Api, occupation: str, site: str, *, date: str = "2026-12-03", start: str = "09:00:00",
                       end: str = "12:00:00", rooms: int = 2, per_room: int = 3) -> dict[str, Any]:
    room_list = [{"site": site, "code": f"P{k}", "kind": "practical", "desks": per_room, "camera_views": ["wide"]}
                 for k in range(rooms)]
    cands = [{"number": f"{site}-{date}-{start[:2]}-{k}-{d}", "name": f"考生{k}{d}", "room": f"{site}/P{k}",
              "desk": d + 1} for k in range(rooms) for d in range(per_room)]
    body = {"occupation_code": occupation, "level": 3, "title": "技能操作考核", "date": date, "start": start,
            "end": end, "rooms": room_list, "candidates": cands}
    r = await api.client.post("/api/v1/sessions", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def trail_tail(api: Api, n: int = 50) -> list[dict[str, Any]]:
    admin = await api.admin()
    total = (await api.client.get("/api/v1/audit", headers=admin, params={"limit": 1})).json()["total"]
    page = await api.client.get("/api/v1/audit", headers=admin, params={"limit": n, "offset": max(total - n, 0)})
    return page.json()["items"]  # type: ignore[no-any-return]


async def panels_of(api: Api, session_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/sessions/{session_id}/panels", headers=await api.admin())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_evaluator_records_encrypted_masked_audited(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    number = id_number()
    r = await api.client.post("/api/v1/evaluators", headers=admin, json={
        "name": "王建国", "id_number": number, "employer": "成都技师学院", "integrity_notes": "",
        "certificates": [{"occupation_code": bank.occupation, "level": 3, "valid_until": "2028-06-30"}]})
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["id_number"] == number[:3] + "*" * 11 + number[-4:]
    async with api.db() as db:
        stored = (await db.execute(text("SELECT id_number_enc, id_number_masked FROM evaluator WHERE id = :i"),
                                   {"i": ev["id"]})).one()
    assert number not in stored[0] and stored[0].startswith("v1:")
    from qbank.panels.people import decrypt_id

    assert decrypt_id(api.app.state.settings, stored[0]) == number
    again = await api.client.post("/api/v1/evaluators", headers=admin, json={"name": "王建国", "id_number": number})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    bad = await api.client.post("/api/v1/evaluators", headers=admin,
                                json={"name": "x", "id_number": number[:17] + ("0" if number[17] != "0" else "1")})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "id_number"
    r = await api.client.patch(f"/api/v1/evaluators/{ev['id']}", headers=admin,
                               json={"barred": True, "integrity_notes": "2026-05 评分不规范"})
    assert r.status_code == 200 and r.json()["barred"] is True
    for role in ("author", "site", "supervisor"):
        assert (await api.client.get("/api/v1/evaluators", headers=await api.headers(
            role, occupations=(bank.occupation,) if role == "author" else (),
            site=await make_site(api) if role == "site" else None))).status_code == 403
    entries = await trail_tail(api)
    assert any(e["action"] == "evaluator.update" and e["entity_id"] == str(ev["id"]) for e in entries)


async def test_assignment_job_panels_roster(api: Api) -> None:
    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    s1 = await make_session(api, bank.occupation, site, date="2026-12-07")
    s2 = await make_session(api, bank.occupation, site, date="2026-12-08")
    # a name and an employer a spreadsheet would take as an escape and a formula: the roster keeps them as text
    evs = [await make_evaluator(api, bank.occupation, level=2 if i < 3 else 3, name=f"王_x0041_{i}",
                                employer='=HYPERLINK("http://example.invalid","单位")') for i in range(8)]
    await make_evaluator(api, bank.occupation, level=4)  # not certified for level 3
    await make_evaluator(api, bank.occupation, until="2026-12-01")  # expired
    sup = await make_supervisor(api)
    cand = f"{site}-2026-12-07-09-0-0"
    r = await api.client.post("/api/v1/conflicts", headers=admin, json={
        "evaluator_id": evs[0]["id"], "session_id": s1["id"], "candidate": cand, "kind": "employer",
        "note": "同一单位"})
    assert r.status_code == 201, r.text
    r = await api.client.post("/api/v1/assignments", headers=admin,
                              json={"sessions": [s1["id"], s2["id"]], "seed": 1, "time_limit_s": 5})
    assert r.status_code == 202, r.text
    job = await wait_job(api, r.json()["id"], admin)
    assert job["status"] == "succeeded", job
    assert job["result"]["stats"]["max_load"] == 2  # 12 seats over 8 evaluators
    ids = {e["id"] for e in evs}
    p1 = await panels_of(api, s1["id"])
    room0 = next(p for p in p1["panels"] if p["room"].endswith("/P0"))
    assert evs[0]["id"] not in [m["evaluator_id"] for m in room0["members"]]  # recused
    for p in p1["panels"] + (await panels_of(api, s2["id"]))["panels"]:
        members = {m["evaluator_id"] for m in p["members"]}
        assert len(members) == 3 and members <= ids and p["leader_id"] in members
    assert [s["supervisor_id"] for s in p1["supervisors"] if s["kind"] == "internal"] != []
    assert all("*" in m["id_number"] for p in p1["panels"] for m in p["members"])
    r = await api.client.get(f"/api/v1/sessions/{s1['id']}/roster", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[0][6] == "role" and sum(1 for x in rows if str(x[6]).startswith("组长")) == 2
    assert sum(1 for x in rows if str(x[6]).startswith("考评员")) == 4
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    employers = [row[9] for row in sheet.iter_rows(min_row=2) if str(row[6].value).startswith(("组长", "考评员"))]
    assert len(employers) == 6 and all(c.data_type == "s" and c.value.startswith("=HYPERLINK") for c in employers)
    shown = CalamineWorkbook.from_filelike(io.BytesIO(r.content)).get_sheet_by_index(0).to_python()
    assert sorted(str(row[7]) for row in shown if str(row[6]).startswith(("组长", "考评员"))) == sorted(
        m["name"] for p in p1["panels"] for m in p["members"])  # as Excel shows them: 王_x0041_0, not 王A0
    del sup


async def test_assignment_that_cannot_hold_says_who_is_short(api: Api) -> None:
    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    s = await make_session(api, bank.occupation, site, date="2026-12-09", rooms=1)
    evs = [await make_evaluator(api, bank.occupation) for _ in range(4)]
    for ev in evs[:2]:
        r = await api.client.post("/api/v1/conflicts", headers=admin, json={
            "evaluator_id": ev["id"], "session_id": s["id"], "candidate": f"{site}-2026-12-09-09-0-1",
            "kind": "relation"})
        assert r.status_code == 201
    await make_supervisor(api)
    r = await api.client.post("/api/v1/assignments", headers=admin, json={"sessions": [s["id"]], "time_limit_s": 3})
    job = await wait_job(api, r.json()["id"], admin)
    assert job["status"] == "failed"
    [reason] = job["error"]["reasons"]
    assert reason["message"].startswith(f"occupation {bank.occupation} level 3 on 2026-12-09 09:00–12:00")
    assert reason["message"].endswith("4 certified evaluators, 2 conflicted, 3 needed")
    assert (await panels_of(api, s["id"]))["panels"][0]["members"] == []
    r = await api.client.post("/api/v1/assignments", headers=admin, json={"sessions": [10**8]})
    assert r.status_code == 404


async def test_manual_panels_and_every_bad_one(api: Api) -> None:
    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    s = await make_session(api, bank.occupation, site, date="2026-12-10", rooms=1)
    other = await make_session(api, bank.occupation, await make_site(api), date="2026-12-10", start="10:00:00",
                               end="11:30:00", rooms=1)
    good = [await make_evaluator(api, bank.occupation) for _ in range(4)]
    low = await make_evaluator(api, bank.occupation, level=4)
    expired = await make_evaluator(api, bank.occupation, until="2026-11-30")
    conflicted = await make_evaluator(api, bank.occupation)
    r = await api.client.post("/api/v1/conflicts", headers=admin, json={
        "evaluator_id": conflicted["id"], "session_id": s["id"], "candidate": f"{site}-2026-12-10-09-0-2",
        "kind": "training", "note": "培训机构学员"})
    assert r.status_code == 201
    room = s["rooms"][0]["id"]
    url = f"/api/v1/sessions/{s['id']}/rooms/{room}/panel"
    ids = [e["id"] for e in good]
    r = await api.client.put(url, headers=admin, json={"members": ids[:3], "leader": ids[0]})
    assert r.status_code == 200, r.text
    assert r.json()["panels"][0]["leader_id"] == ids[0]
    before = await panels_of(api, s["id"])
    cases = {
        "uncertified level": ({"members": [*ids[:2], low["id"]], "leader": ids[0]}, "members", "level 3 or higher"),
        "expired": ({"members": [*ids[:2], expired["id"]], "leader": ids[0]}, "members", "expired on 2026-11-30"),
        "panel of 2": ({"members": ids[:2], "leader": ids[0]}, "members", "a panel of 2"),
        "conflicted": ({"members": [*ids[:2], conflicted["id"]], "leader": ids[0]}, "members", "conflict"),
        "leader not on panel": ({"members": ids[:3], "leader": ids[3]}, "leader", "not on the panel"),
        "unknown evaluator": ({"members": [*ids[:2], 10**8], "leader": ids[0]}, "members", "do not exist"),
    }
    for name, (body, field, words) in cases.items():
        r = await api.client.put(url, headers=admin, json=body)
        assert r.status_code == 400, (name, r.text)
        assert any(e["field"] == field and words in e["reason"] for e in r.json()["errors"]), (name, r.json())
    # overlapping sessions for one person: ids[0] marks room P0 of s (09:00–12:00); other runs 10:00–11:30
    oroom = other["rooms"][0]["id"]
    r = await api.client.put(f"/api/v1/sessions/{other['id']}/rooms/{oroom}/panel", headers=admin,
                             json={"members": [ids[0], ids[3], conflicted["id"]], "leader": ids[3]})
    assert r.status_code == 400 and "two places at once" in r.text, r.text
    assert (await panels_of(api, other["id"]))["panels"][0]["members"] == []
    assert await panels_of(api, s["id"]) == before  # nothing changed
    r = await api.client.put(url, headers=await api.headers("supervisor"), json={"members": ids[:3], "leader": ids[0]})
    assert r.status_code == 403


async def test_practical_scores_only_from_the_panel(api: Api) -> None:
    from qbank.panels.assignment import check_practical_scorers

    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    s = await make_session(api, bank.occupation, site, date="2026-12-11", rooms=1)
    evs = [await make_evaluator(api, bank.occupation, name=f"评{i}{random.randrange(10**6)}") for i in range(4)]
    room = s["rooms"][0]["id"]
    async with api.db() as db:
        assert "no assigned evaluator panel" in (await check_practical_scorers(db, s["id"], room, [], "x"))[0]
        assert await check_practical_scorers(db, s["id"], room, [], "x", require_panel=False) == []
    r = await api.client.put(f"/api/v1/sessions/{s['id']}/rooms/{room}/panel", headers=admin,
                             json={"members": [e["id"] for e in evs[:3]], "leader": evs[1]["id"]})
    assert r.status_code == 200
    names = [e["name"] for e in evs]
    async with api.db() as db:
        assert await check_practical_scorers(db, s["id"], room, names[:3], names[1]) == []
        outsider = await check_practical_scorers(db, s["id"], room, [names[0], names[1], names[3]], names[1])
        assert len(outsider) == 1 and "is not on the assigned panel" in outsider[0]
        wrong_leader = await check_practical_scorers(db, s["id"], room, names[:3], names[0])
        assert wrong_leader == [f"the final score comes from the panel's leader {names[1]!r}, not {names[0]!r}"]
    body = {"scores": [{"candidate": f"{site}-2026-12-11-09-0-0", "final_score": 80, "leader": names[1],
                        "evaluators": [{"name": n, "score": 80} for n in (names[0], names[1], names[3])]}]}
    r = await api.client.post(f"/api/v1/sessions/{s['id']}/practical-scores", headers=admin, json=body)
    if r.status_code != 404:  # the papers issue's endpoint: scores from someone not on the panel are refused
        assert r.status_code == 400 and "not on the assigned panel" in r.text, r.text


async def test_external_supervisor_draw_published_and_verified(api: Api) -> None:
    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    sessions = [await make_session(api, bank.occupation, site, date=f"2026-12-{14 + i}", rooms=1) for i in range(4)]
    pool = [await make_supervisor(api, "external", organisation="成华区人社局") for _ in range(5)]
    conflicted = pool[0]
    r = await api.client.post("/api/v1/conflicts", headers=admin, json={
        "supervisor_id": conflicted["id"], "session_id": sessions[0]["id"],
        "candidate": f"{site}-2026-12-14-09-0-0", "kind": "relation"})
    assert r.status_code == 201
    body = {"sessions": [s["id"] for s in sessions], "inspect": 3, "per_session": 2, "seed": 20261214,
            "pool": [p["id"] for p in pool]}
    r = await api.client.post("/api/v1/draws", headers=admin, json=body)
    assert r.status_code == 201, r.text
    draw = r.json()
    assert draw["seed"] == "20261214" and len(draw["result"]["inspected"]) == 3
    again = (await api.client.post("/api/v1/draws", headers=admin, json=body)).json()
    assert again["result"] == draw["result"]  # same published seed and request, same draw
    for d in draw["result"]["drawn"]:
        assert len(d["supervisors"]) == 2
        if d["session"] == str(sessions[0]["id"]):
            assert f"x{conflicted['id']}" not in d["supervisors"]
    r = await api.client.get(f"/api/v1/draws/{draw['id']}/verify", headers=admin)
    assert r.status_code == 200 and r.json()["same"] is True, r.text
    entries = await trail_tail(api)
    published = [e for e in entries if e["action"] == "supervisors.draw" and e["entity_id"] == str(draw["id"])]
    assert published and published[0]["detail"]["seed"] == "20261214"
    inspected = draw["result"]["inspected"][0]
    p = await panels_of(api, int(inspected))
    assert sum(1 for s in p["supervisors"] if s["kind"] == "external") == 2
    from qbank.panels.models import SupervisorDraw

    async with api.db() as db, db.begin():  # edit the stored draw behind the service's back
        row = (await db.scalars(select(SupervisorDraw).where(SupervisorDraw.id == draw["id"]))).one()
        row.result = {**row.result, "inspected": []}
    r = await api.client.get(f"/api/v1/draws/{draw['id']}/verify", headers=admin)
    assert r.json()["same"] is False and "edited after publishing" in r.json()["reason"]
    r = await api.client.post("/api/v1/draws", headers=admin, json={**body, "inspect": 9})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "inspect"


async def test_cli_assignments_run_and_draw_verify(api: Api, database_url: str) -> None:
    import anyio.to_thread
    from click.testing import CliRunner

    from qbank.server.cli import main

    bank = await make_bank(api)
    site = await make_site(api)
    s = await make_session(api, bank.occupation, site, date="2026-12-21", rooms=1)
    for _ in range(3):
        await make_evaluator(api, bank.occupation)
    await make_supervisor(api)
    x = await make_supervisor(api, "external")
    r = await api.client.post("/api/v1/draws", headers=await api.admin(),
                              json={"sessions": [s["id"]], "pool": [x["id"]]})
    assert r.status_code == 201, r.text
    env = {"QBANK_DATABASE_URL": database_url, "QBANK_TOKEN_SECRET": "test-token-secret",
           "QBANK_DATA_DIR": str(api.app.state.settings.data_dir), "QBANK_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    out = await anyio.to_thread.run_sync(lambda: runner.invoke(
        main, ["assignments", "run", "--session", str(s["id"]), "--time-limit", "3"], env=env))
    assert out.exit_code == 0, out.output
    assert "1 panel(s)" in out.output
    assert len((await panels_of(api, s["id"]))["panels"][0]["members"]) == 3
    out = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["draw", "verify", str(r.json()["id"])], env=env))
    assert out.exit_code == 0 and '"same": true' in out.output, out.output
