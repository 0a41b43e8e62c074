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
    "top weights": (broken(lambda b: b["scopes"][1].update(weight=30)), "scopes", "weigh 90 % together, not 100"),
    "child weights": (broken(lambda b: b["scopes"][0]["children"][0].update(weight=20)),
                      "scopes[0]", "(01.01, 01.02) weigh 50 % together, not scope 01's 60 %"),
    "negative weight": (broken(lambda b: b["scopes"][1].update(weight=-1)), "scopes[1].weight", "at least 0"),
    "a rest nobody takes": (broken(lambda b: b["scopes"][0]["children"][1].update(weight=0)),
                            "scopes[0]", "not scope 01's 60 %"),
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


def published(body: dict[str, Any]) -> dict[str, Any]:
    """Weights as published tables give them: 01 = 60 % split into 01.01 = 60 % and 01.02 = 0 (not examined);
    02 without a weight of its own (it takes the rest: 40 %), its two sub-scopes without weights either."""
    body = copy.deepcopy(body)
    body["scopes"][0]["children"][0]["weight"] = 60
    body["scopes"][0]["children"][1]["weight"] = 0
    points = body["scopes"][1].pop("points")
    del body["scopes"][1]["weight"]
    body["scopes"][1]["children"] = [
        {"code": "02.01", "name": "相关知识一", "weight": None, "points": points[:3]},
        {"code": "02.02", "name": "相关知识二", "points": points[3:]}]
    return body


async def test_weights_as_published_zero_and_none(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints",
                              json=published(blueprint_body(12)), headers=admin)
    assert r.status_code == 201, r.text
    weights = r.json()["weights"]
    assert weights["01.01"] == 60 and weights["01.02"] == 0 and weights["02"] == 40
    assert weights["02.01"] == 30 and weights["02.02"] == 10  # the rest shared by appraisal points: 3 and 1
    assert r.json()["scopes"][1]["weight"] is None


async def test_every_bad_scope_is_listed(api: Api) -> None:
    bank = await make_bank(api)
    body: dict[str, Any] = {"scopes": []}
    for k in range(6):  # six top scopes of 16 % and 4 %, each split into sub-scopes that add up to 1 % too few
        code = f"{k + 1:02d}"
        kids = [{"code": f"{code}.{j + 1:02d}", "name": f"范围{k}{j}", "weight": (16 if k < 5 else 20) / 2 - 0.5,
                 "points": [{"code": f"{10 * k + j + 1:03d}", "name": f"鉴定点{k}{j}", "importance": "X"}]}
                for j in range(2)]
        body["scopes"].append({"code": code, "name": f"范围{k}", "weight": 16 if k < 5 else 20, "children": kids})
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", json=body,
                              headers=await api.admin())
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert sorted(e["field"] for e in errors) == [f"scopes[{k}].weight" for k in range(6)], errors
    assert "6 error(s)" in r.json()["detail"] and "1 more" in r.json()["detail"]


async def test_the_level3_example_blueprint_is_accepted(api: Api) -> None:
    import json
    from pathlib import Path

    example = json.loads((Path(__file__).parents[2] / "examples" / "blueprint-level3.json").read_text())
    bank = await make_bank(api)
    r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", json=example,
                              headers=await api.admin())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["points"] >= 400 and "few_points" not in {w["code"] for w in out["warnings"]}
    assert abs(sum(out["weights"][s["code"]] for s in out["scopes"]) - 100) < 1e-4
    assert 0 in out["weights"].values()  # sub-scopes weighted 0 are accepted
