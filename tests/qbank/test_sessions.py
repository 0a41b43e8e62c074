from __future__ import annotations

from typing import Any

import pytest

from tests.qbank.helpers import Api, make_bank, make_site, site_headers


def session_body(occupation: str, level: int, sites: list[str], **over: Any) -> dict[str, Any]:
    rooms = []
    candidates = []
    for s in sites:
        rooms.append({"site": s, "code": "T101", "kind": "theory", "desks": 3, "camera_views": ["front", "back"]})
        rooms.append({"site": s, "code": "P201", "kind": "practical", "desks": 2, "camera_views": ["wide"]})
        for desk in (1, 2, 3):
            candidates.append({"number": f"{s}-{desk}", "name": f"考生{desk}", "room": f"{s}/T101", "desk": desk})
    body = {"occupation_code": occupation, "level": level, "title": "电工三级认定", "date": "2026-12-03",
            "start": "09:00:00", "end": "10:30:00", "grace_minutes": 15, "rooms": rooms, "candidates": candidates}
    body.update(over)
    return body


async def test_session_with_sites_rooms_and_candidates(api: Api) -> None:
    bank = await make_bank(api)
    a, b = await make_site(api), await make_site(api)
    admin = await api.admin()
    r = await api.client.post("/api/v1/sessions", json=session_body(bank.occupation, 3, [a, b]), headers=admin)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["sites"] == sorted([a, b]) and session["candidates"] == 6
    assert session["starts_at"].startswith("2026-12-03T01:00:00")  # 09:00 Asia/Shanghai
    assert session["local_start"] == "2026-12-03T09:00:00+08:00"
    assert {(room["code"], room["candidates"]) for room in session["rooms"]} == {("T101", 3), ("P201", 0)}

    site_a = await site_headers(api, a)
    assert (await api.client.get(f"/api/v1/sessions/{session['id']}", headers=site_a)).status_code == 200
    other = await site_headers(api)
    r = await api.client.get(f"/api/v1/sessions/{session['id']}", headers=other)
    assert r.status_code == 403
    assert session["id"] not in [s["id"] for s in (await api.client.get("/api/v1/sessions", headers=other)).json()]
    r = await api.client.get("/api/v1/sites", headers=site_a)
    assert [s["code"] for s in r.json()] == [a]


def bad_sessions(occupation: str, site: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    base = session_body(occupation, 3, [site])
    two_at_one_desk = session_body(occupation, 3, [site])
    two_at_one_desk["candidates"][1]["desk"] = 1
    no_desk = session_body(occupation, 3, [site])
    no_desk["candidates"][2]["desk"] = 9
    twice = session_body(occupation, 3, [site])
    twice["rooms"].append(dict(twice["rooms"][0], kind="practical"))
    return {
        "two at one desk": (two_at_one_desk, "candidates", "one per desk"),
        "theory room lacking seats": (no_desk, "candidates[2].desk", "has 3 desks"),
        "room of two kinds": (twice, "rooms[2].code", "one kind only"),
        "level 2 without defence": (base | {"level": 2}, "rooms", "needs a defence room"),
        "ends before it starts": (base | {"start": "11:00:00"}, "end", "before it starts"),
        "unknown site": (session_body(occupation, 3, ["NOSUCHSITE"]), "rooms[0].site", "does not exist"),
        "unknown room": (base | {"candidates": [{"number": "1", "name": "x", "room": f"{site}/X9", "desk": 1}]},
                         "candidates[0].room", "not in this session"),
    }


@pytest.mark.parametrize("case", ["two at one desk", "theory room lacking seats", "room of two kinds",
                                  "level 2 without defence", "ends before it starts", "unknown site", "unknown room"])
async def test_bad_session_plans_are_refused(api: Api, case: str) -> None:
    bank = await make_bank(api)
    site = await make_site(api)
    admin = await api.admin()
    body, field, reason = bad_sessions(bank.occupation, site)[case]
    before = len((await api.client.get("/api/v1/sessions", headers=admin)).json())
    r = await api.client.post("/api/v1/sessions", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert any(e["field"] == field and reason in e["reason"] for e in r.json()["errors"]), r.json()
    assert len((await api.client.get("/api/v1/sessions", headers=admin)).json()) == before


async def test_level_2_with_defence_room(api: Api) -> None:
    bank = await make_bank(api, level=2)
    site = await make_site(api)
    body = session_body(bank.occupation, 2, [site])
    body["rooms"].append({"site": site, "code": "D301", "kind": "defence", "desks": 1, "camera_views": ["front"]})
    r = await api.client.post("/api/v1/sessions", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text


async def test_site_tokens_name_an_existing_site(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post("/api/v1/tokens", json={"name": "x", "role": "site"}, headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "site"
    r = await api.client.post("/api/v1/tokens", json={"name": "x", "role": "site", "site": "NOPE"}, headers=admin)
    assert r.status_code == 400 and "does not exist" in r.json()["detail"]
    site = await make_site(api)
    r = await api.client.post("/api/v1/tokens", json={"name": "x", "role": "site", "site": site}, headers=admin)
    assert r.status_code == 201 and r.json()["site"] == site
