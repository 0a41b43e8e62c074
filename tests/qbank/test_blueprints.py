from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.qbank.helpers import Api, blueprint_body, make_bank, new_occupation_code


async def audit_count(api: Api) -> int:
    r = await api.client.get("/api/v1/audit", params={"limit": 1}, headers=await api.admin())
    return int(r.json()["total"])


async def test_occupation_blueprint_and_versions(api: Api) -> None:
    bank = await make_bank(api, points=12)
    admin = await api.admin()
    r = await api.client.get(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", headers=admin)
    [bp] = r.json()
    assert bp["version"] == 1 and bp["points"] == 12
    codes = {w["code"] for w in bp["warnings"]}
    assert "few_points" in codes  # 12 < 200: a warning, not a refusal
    assert bp["shares"] == {"X": 83.33, "Y": 8.33, "Z": 8.33}
    assert "share_Z" in codes and "share_X" not in codes  # 8.3 % Z > 5 %; 83.3 % X is enough
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints",
                              json=blueprint_body(15), headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 2
    r = await api.client.put(f"/api/v1/blueprints/{bp['id']}", json=blueprint_body(9), headers=admin)
    assert r.status_code == 200 and r.json()["points"] == 9


def broken(mutate: Any) -> dict[str, Any]:
    body = copy.deepcopy(blueprint_body(12))
    mutate(body)
    return body


BAD_BLUEPRINTS = {
    "top weights": (broken(lambda b: b["scopes"][1].update(weight=30)), "scopes", "sum to 90"),
    "child weights": (broken(lambda b: b["scopes"][0]["children"][0].update(weight=20)),
                      "scopes[0].children", "not its weight 60"),
    "duplicate scope code": (broken(lambda b: b["scopes"][1].update(code="01")), "scopes[1].code", "duplicate"),
    "duplicate point code": (broken(lambda b: b["scopes"][1]["points"][0].update(code="001")),
                             "scopes[1].points[0].code", "duplicate point code 001"),
    "empty scope": (broken(lambda b: b["scopes"][1].update(points=[])), "scopes[1]", "empty"),
    "bad importance": (broken(lambda b: b["scopes"][1]["points"][0].update(importance="W")),
                       "scopes[1].points[0].importance", "'W' is not one of X, Y, Z"),
}


@pytest.mark.parametrize("case", sorted(BAD_BLUEPRINTS))
async def test_bad_blueprints_are_refused(api: Api, case: str) -> None:
    bank = await make_bank(api)
    body, field, reason = BAD_BLUEPRINTS[case]
    before = await audit_count(api)
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", json=body,
                              headers=await api.admin())
    assert r.status_code == 400, r.text
    problem = r.json()
    assert any(e["field"].startswith(field) and reason in e["reason"] for e in problem["errors"]), problem
    r = await api.client.get(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", headers=await api.admin())
    assert len(r.json()) == 1  # nothing stored
    assert await audit_count(api) == before


async def test_unknown_occupation_and_level(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post(f"/api/v1/occupations/{new_occupation_code()}/levels/3/blueprints",
                              json=blueprint_body(), headers=admin)
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]
    code = new_occupation_code()
    await api.client.post("/api/v1/occupations", json={"code": code, "name": "x", "levels": [5]}, headers=admin)
    r = await api.client.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json=blueprint_body(),
                              headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "level"
    r = await api.client.post("/api/v1/occupations", json={"code": "44-1", "name": "x", "levels": [5]},
                              headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"


LEVEL3 = {"name": "level-3 theory", "duration_minutes": 90, "facility_min": 0.60, "facility_max": 0.65,
          "sections": [{"type": "true_false", "count": 40, "points_per_item": 0.5},
                       {"type": "single_choice", "count": 140, "points_per_item": 0.5},
                       {"type": "multiple_choice", "count": 10, "points_per_item": 1}]}


async def test_layouts(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    url = f"/api/v1/occupations/{bank.occupation}/levels/3/layouts"
    r = await api.client.post(url, json=LEVEL3, headers=admin)
    assert r.status_code == 201 and r.json()["total_points"] == 100
    assert (await api.client.post(url, json=LEVEL3, headers=admin)).status_code == 409
    bad = copy.deepcopy(LEVEL3) | {"name": "short"}
    bad["sections"][2]["count"] = 5
    r = await api.client.post(url, json=bad, headers=admin)
    assert r.status_code == 400 and "not 100" in r.json()["detail"]
    bad["sections"][2]["count"] = 0
    r = await api.client.post(url, json=bad, headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"].startswith("sections")
    assert len((await api.client.get(url, headers=admin)).json()) == 1


async def test_example_layout_ships_as_data(api: Api) -> None:
    import json
    from pathlib import Path

    example = json.loads((Path(__file__).parents[2] / "examples" / "layout-level3.json").read_text())
    bank = await make_bank(api)
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/layouts", json=example,
                              headers=await api.admin())
    assert r.status_code == 201 and r.json()["total_points"] == 100


async def test_share_warnings_do_not_refuse(api: Api) -> None:
    bank = await make_bank(api)
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints",
                              json=blueprint_body(12, ("X", "Y", "Z")), headers=await api.admin())
    assert r.status_code == 201
    messages = {w["code"]: w["message"] for w in r.json()["warnings"]}
    assert set(messages) == {"share_X", "share_Y", "share_Z", "few_points"}
    assert "33.33 %" in messages["share_X"] and ">= 80 %" in messages["share_X"]
