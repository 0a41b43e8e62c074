from __future__ import annotations

from typing import Any

import pytest

from tests.qbank.helpers import Api, Bank, item_body, make_bank


async def author_of(api: Api, bank: Bank, name: str = "张老师") -> dict[str, str]:
    return await api.headers("author", name, (bank.occupation,))


async def reviewer_of(api: Api, bank: Bank, name: str = "李老师") -> dict[str, str]:
    return await api.headers("reviewer", name, (bank.occupation,))


async def audit_total(api: Api) -> int:
    r = await api.client.get("/api/v1/audit", params={"limit": 1}, headers=await api.admin())
    return int(r.json()["total"])


async def test_item_versions_history_and_diff(api: Api) -> None:
    bank = await make_bank(api)
    author = await author_of(api, bank)
    r = await api.client.post("/api/v1/items", json=item_body(bank, "电流的单位是（ ）。"), headers=author)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["status"] == "draft" and item["version"] == 1 and item["author"] == "张老师"
    r = await api.client.patch(f"/api/v1/items/{item['id']}", headers=author, json={
        "stem": "电流的国际单位是（ ）。", "options": ["安培", "伏特", "欧姆"], "answer": ["A"],
        "point_code": bank.points[1], "facility": 0.7})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["point_code"] == bank.points[1]
    r = await api.client.get(f"/api/v1/items/{item['id']}/versions", headers=author)
    assert [v["version"] for v in r.json()] == [1, 2]
    assert r.json()[0]["stem"] == "电流的单位是（ ）。"  # the old version never changes
    r = await api.client.get(f"/api/v1/items/{item['id']}/diff", params={"from": 1, "to": 2}, headers=author)
    changed = {c["field"]: c for c in r.json()["changes"]}
    assert set(changed) == {"stem", "options", "point_code", "facility"}
    assert changed["facility"]["before"] == 0.6 and changed["facility"]["after"] == 0.7
    r = await api.client.get(f"/api/v1/items/{item['id']}/versions/7", headers=author)
    assert r.status_code == 404


async def test_review_workflow(api: Api) -> None:
    bank = await make_bank(api)
    author, reviewer = await author_of(api, bank), await reviewer_of(api, bank)
    item = (await api.client.post("/api/v1/items", json=item_body(bank, "电压的单位是？"), headers=author)).json()
    url = f"/api/v1/items/{item['id']}"
    assert (await api.client.post(f"{url}/approve", headers=reviewer)).status_code == 409  # still a draft
    assert (await api.client.post(f"{url}/submit", headers=author)).json()["status"] == "in_review"
    r = await api.client.post(f"{url}/reject", json={"reason": "选项有误"}, headers=reviewer)
    assert r.json()["status"] == "draft" and r.json()["reject_reason"] == "选项有误"
    assert (await api.client.post(f"{url}/reject", json={"reason": ""}, headers=reviewer)).status_code == 400
    await api.client.post(f"{url}/submit", headers=author)
    r = await api.client.post(f"{url}/approve", headers=reviewer)
    assert r.json()["status"] == "approved" and r.json()["reviewer"] == "李老师"
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation, "status": "approved"},
                             headers=reviewer)
    assert [i["id"] for i in r.json()["items"]] == [item["id"]]
    assert (await api.client.post(f"{url}/retire", headers=reviewer)).json()["status"] == "retired"
    before = await audit_total(api)
    r = await api.client.patch(url, json={"stem": "改了"}, headers=author)
    assert r.status_code == 409 and "retired" in r.json()["detail"]
    r = await api.client.put(url, json={"stem": "改了", "point_code": bank.points[0]}, headers=author)
    assert r.status_code == 409 and "retired" in r.json()["detail"]
    assert (await api.client.get(url, headers=author)).json()["stem"] == "电压的单位是？"
    assert await audit_total(api) == before


async def test_reviewer_may_not_approve_own_item(api: Api) -> None:
    bank = await make_bank(api)
    as_author = await author_of(api, bank, "王五")
    as_reviewer = await reviewer_of(api, bank, "王五")
    item = (await api.client.post("/api/v1/items", json=item_body(bank, "电阻的单位是？"), headers=as_author)).json()
    await api.client.post(f"/api/v1/items/{item['id']}/submit", headers=as_author)
    r = await api.client.post(f"/api/v1/items/{item['id']}/approve", headers=as_reviewer)
    assert r.status_code == 403 and "may not approve" in r.json()["detail"]
    assert (await api.client.get(f"/api/v1/items/{item['id']}", headers=as_author)).json()["status"] == "in_review"


def bad_items(bank: Bank) -> dict[str, tuple[dict[str, Any], str, str]]:
    return {
        "unknown point": (item_body(bank, "s1", point_code="999"), "point_code", "not in this level's blueprint"),
        "one option": (item_body(bank, "s2", options=["甲"]), "options", "2 to 8 options"),
        "nine options": (item_body(bank, "s3", options=list("甲乙丙丁戊己庚辛壬")), "options", "2 to 8"),
        "answer not an option": (item_body(bank, "s4", options=["甲", "乙"], answer=["C"]), "answer",
                                 "not among the options"),
        "answer not a label": (item_body(bank, "s4b", answer=["Z"]), "answer[0]",
                               "'Z' is not one of A, B, C, D, E, F, G, H"),
        "multiple with one": (item_body(bank, "s5", type="multiple_choice", answer=["A"]), "answer",
                              "at least 2 correct"),
        "single with two": (item_body(bank, "s5b", answer=["A", "B"]), "answer", "exactly one correct"),
        "empty stem": (item_body(bank, "   "), "stem", "empty"),
        "long stem": (item_body(bank, "长" * 10_001), "stem", "too long: at most 10000 characters"),
        "facility above 1": (item_body(bank, "s6", facility=1.5), "facility", "at most 1"),
        "facility below 0": (item_body(bank, "s7", facility=-0.1), "facility", "at least 0"),
        "true_false with 3": (item_body(bank, "s8", type="true_false", options=["对", "错", "不知道"]), "options",
                              "exactly 2"),
        "bad difficulty": (item_body(bank, "s9", difficulty="超难"), "difficulty", "'超难' is not one of "),
        "unknown level": (item_body(bank, "s10", level=7), "level", ""),
    }


@pytest.mark.parametrize("case", [
    "unknown point", "one option", "nine options", "answer not an option", "answer not a label",
    "multiple with one", "single with two", "empty stem", "long stem", "facility above 1", "facility below 0",
    "true_false with 3", "bad difficulty", "unknown level"])
async def test_bad_items_are_refused(api: Api, case: str) -> None:
    bank = await make_bank(api)
    body, field, reason = bad_items(bank)[case]
    before = await audit_total(api)
    r = await api.client.post("/api/v1/items", json=body, headers=await author_of(api, bank))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation}, headers=await api.admin())
    assert r.json()["total"] == 0
    assert await audit_total(api) == before


async def test_unknown_occupation_item(api: Api) -> None:
    bank = await make_bank(api)
    body = item_body(bank, "x") | {"occupation_code": "9-99-99-98"}
    r = await api.client.post("/api/v1/items", json=body, headers=await api.admin())
    assert r.status_code == 404 and "occupation 9-99-99-98" in r.json()["detail"]


async def test_scoped_tokens(api: Api) -> None:
    bank, other = await make_bank(api), await make_bank(api)
    author = await author_of(api, bank)
    r = await api.client.post("/api/v1/items", json=item_body(other, "越权"), headers=author)
    assert r.status_code == 403 and other.occupation in r.json()["detail"]
    theirs = (await api.client.post("/api/v1/items", json=item_body(other, "他人的题"),
                                    headers=await author_of(api, other, "赵六"))).json()
    assert (await api.client.get(f"/api/v1/items/{theirs['id']}", headers=author)).status_code == 403
    r = await api.client.get("/api/v1/items", headers=author)
    assert theirs["id"] not in [i["id"] for i in r.json()["items"]]
    r = await api.client.post("/api/v1/items", json=item_body(bank, "审核员不写题"),
                              headers=await reviewer_of(api, bank))
    assert r.status_code == 403


async def test_exact_and_near_duplicates(api: Api) -> None:
    bank = await make_bank(api)
    author = await author_of(api, bank)
    first = (await api.client.post("/api/v1/items", json=item_body(bank, "三相异步电动机的转速与电源频率成正比。"),
                                   headers=author)).json()
    r = await api.client.post("/api/v1/items", json=item_body(bank, " 三相异步电动机的转速，与电源频率成正比 "),
                              headers=author)
    assert r.status_code == 409 and str(first["id"]) in r.json()["detail"]
    assert r.json()["extra"]["existing_item"] == first["id"]
    r = await api.client.post("/api/v1/items", json=item_body(
        bank, "三相异步电动机的转速与电源的频率成正比。"), headers=author)
    assert r.status_code == 201
    near = r.json()
    assert near["near_duplicates"] == [first["id"]]
    r = await api.client.get(f"/api/v1/items/{first['id']}", headers=author)
    assert r.json()["near_duplicates"] == [near["id"]]
    r = await api.client.post("/api/v1/items", json=item_body(bank, "变压器的铁心用硅钢片叠成以减少涡流损耗。"),
                              headers=author)
    assert r.json()["near_duplicates"] == []


async def test_search_and_pagination(api: Api) -> None:
    bank = await make_bank(api)
    author = await author_of(api, bank)
    for i in range(7):
        body = item_body(bank, f"第{i}题：接地电阻测量方法编号{i * 7919}", point_code=bank.points[i % 2],
                         type="true_false" if i % 2 else "single_choice",
                         options=["对", "错"] if i % 2 else ["甲", "乙", "丙"])
        assert (await api.client.post("/api/v1/items", json=body, headers=author)).status_code == 201
    base = {"occupation": bank.occupation}
    r = await api.client.get("/api/v1/items", params=base | {"limit": 3, "offset": 3}, headers=author)
    assert r.json()["total"] == 7 and len(r.json()["items"]) == 3
    r = await api.client.get("/api/v1/items", params=base | {"type": "true_false"}, headers=author)
    assert r.json()["total"] == 3
    r = await api.client.get("/api/v1/items", params=base | {"point": bank.points[0], "level": 3}, headers=author)
    assert r.json()["total"] == 4
    r = await api.client.get("/api/v1/items", params=base | {"q": "编号7919"}, headers=author)
    assert [i["stem"] for i in r.json()["items"]] == ["第1题：接地电阻测量方法编号7919"]
    r = await api.client.get("/api/v1/items", params=base | {"q": "100%_"}, headers=author)
    assert r.json()["total"] == 0


async def test_practical_task(api: Api) -> None:
    bank = await make_bank(api)
    body = item_body(bank, "照明电路安装", type="practical_task", options=[], answer=[], practical={
        "preparation": "考场准备：配电板一块", "tasks": ["安装单控照明电路", "通电试验"],
        "marking": [{"criterion": "接线正确", "points": 60}, {"criterion": "安全文明", "points": 40}],
        "duration_minutes": 60})
    r = await api.client.post("/api/v1/items", json=body, headers=await author_of(api, bank))
    assert r.status_code == 201, r.text
    assert r.json()["practical"]["duration_minutes"] == 60
    r = await api.client.post("/api/v1/items", json=body | {"stem": "另一题", "practical": None},
                              headers=await author_of(api, bank))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "practical"


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


async def test_media_through_the_archive(api: Api) -> None:
    import httpx

    bank = await make_bank(api)
    author = await author_of(api, bank)
    r = await api.client.post("/api/v1/media", files={"file": ("circuit.png", PNG, "image/png")}, headers=author)
    assert r.status_code == 201, r.text
    media = r.json()
    assert media["content_type"] == "image/png" and media["size"] == len(PNG)
    again = await api.client.post("/api/v1/media", files={"file": ("copy.png", PNG, "image/png")}, headers=author)
    assert again.json()["key"] == media["key"] and again.json()["already_stored"] is True
    r = await api.client.post("/api/v1/items", json=item_body(bank, "如图所示电路", media=[media["key"]]),
                              headers=author)
    assert r.status_code == 201 and r.json()["media"] == [media["key"]]
    r = await api.client.get("/api/v1/media/link", params={"key": media["key"]}, headers=author)
    assert r.status_code == 200
    async with httpx.AsyncClient() as s3:
        assert (await s3.get(r.json()["url"])).content == PNG
    from tests.qbank import bank_files as bf

    for name, data, content_type in (("hum.wav", bf.wav(), "audio/wav"), ("tone.mp3", bf.ffmpeg_media("mp3"),
                                     "audio/mpeg"), ("clip.mp4", bf.ffmpeg_media("mp4"), "video/mp4")):
        r = await api.client.post("/api/v1/media", files={"file": (name, data, "application/octet-stream")},
                                  headers=author)
        assert r.status_code == 201 and r.json()["content_type"] == content_type, r.text
    r = await api.client.post("/api/v1/media", files={"file": ("x.png", b"not an image", "image/png")},
                              headers=author)
    assert r.status_code == 400 and "not a medium items may carry" in r.json()["detail"]
    r = await api.client.get("/api/v1/media/link", params={"key": "media/00/" + "0" * 64}, headers=author)
    assert r.status_code == 404


MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


async def test_patch_is_a_merge_patch_and_put_replaces(api: Api) -> None:
    import json

    bank = await make_bank(api)
    author = await author_of(api, bank)
    body = item_body(bank, "电阻串联后总电阻（ ）。", options=["增大", "减小", "不变"], difficulty="较难", facility=0.4,
                     explanation="串联电阻相加", tags=["电路"], practical=None)
    item = (await api.client.post("/api/v1/items", json=body, headers=author)).json()
    url = f"/api/v1/items/{item['id']}"

    # only the field sent changes: difficulty stays 较难, the explanation stays
    r = await api.client.patch(url, content=json.dumps({"facility": 0.45}), headers=author | MERGE_PATCH)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["version"] == 2 and after["facility"] == 0.45 and after["difficulty"] == "较难"
    assert after["explanation"] == "串联电阻相加" and after["options"] == ["增大", "减小", "不变"]
    r = await api.client.get(f"{url}/diff", params={"from": 1, "to": 2}, headers=author)
    assert r.json()["changes"] == [{"field": "facility", "before": 0.4, "after": 0.45}]
    trail = await api.client.get("/api/v1/audit", params={"entity_type": "item", "entity_id": str(item["id"])},
                                 headers=await api.admin())
    assert trail.json()["items"][-1]["detail"] == {"version": 2, "changed": ["facility"]}

    # null puts a field back to its default; the same content again makes no version
    r = await api.client.patch(url, content=json.dumps({"explanation": None, "tags": None}),
                               headers=author | MERGE_PATCH)
    assert r.json()["version"] == 3 and r.json()["explanation"] == "" and r.json()["tags"] == []
    r = await api.client.patch(url, content=json.dumps({"facility": 0.45}), headers=author | MERGE_PATCH)
    assert r.status_code == 200 and r.json()["version"] == 3
    # plain application/json reads the same way
    r = await api.client.patch(url, json={"stem": "电阻串联后，总电阻（ ）。"}, headers=author)
    assert r.json()["version"] == 4 and r.json()["difficulty"] == "较难"

    # refusals name the field and change nothing
    for patch, field, words in (({"stem": None}, "stem", "expected text, got null"),
                                ({"difficulty": "很难"}, "difficulty", "'很难' is not one of"),
                                ({"occupation_code": "1-01-01-01"}, "occupation_code", "is not a field here"),
                                ({"answer": ["D"]}, "answer", "not among the options")):
        r = await api.client.patch(url, content=json.dumps(patch), headers=author | MERGE_PATCH)
        assert r.status_code == 400, (patch, r.text)
        assert any(e["field"] == field and words in e["reason"] for e in r.json()["errors"]), r.json()
    assert (await api.client.get(url, headers=author)).json()["version"] == 4

    # PUT replaces the whole content: what is left out takes its default
    r = await api.client.put(url, json={"stem": "电阻串联后，总电阻（ ）。", "options": ["增大", "减小"],
                                        "answer": ["A"], "point_code": bank.points[0]}, headers=author)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 5 and r.json()["difficulty"] == "中等" and r.json()["facility"] == 0.6
    changed = {c["field"] for c in (await api.client.get(f"{url}/diff", params={"from": 4, "to": 5},
                                                         headers=author)).json()["changes"]}
    assert changed == {"options", "facility", "difficulty"}


async def test_practical_part_merges_field_by_field(api: Api) -> None:
    import json

    bank = await make_bank(api)
    author = await author_of(api, bank)
    body = item_body(bank, "照明电路安装（合并）", type="practical_task", options=[], answer=[], practical={
        "preparation": "配电板", "tasks": ["安装"], "marking": [{"criterion": "正确", "points": 100}],
        "duration_minutes": 60})
    item = (await api.client.post("/api/v1/items", json=body, headers=author)).json()
    r = await api.client.patch(f"/api/v1/items/{item['id']}", content=json.dumps({"practical": {
        "duration_minutes": 90}}), headers=author | MERGE_PATCH)
    assert r.status_code == 200, r.text
    assert r.json()["practical"] == {"preparation": "配电板", "tasks": ["安装"],
                                     "marking": [{"criterion": "正确", "points": 100.0}], "duration_minutes": 90}


async def test_true_false_items_need_no_options_over_the_api(api: Api) -> None:
    import json

    bank = await make_bank(api)
    author = await author_of(api, bank)
    body = item_body(bank, "带电作业必须两人进行。", type="true_false", options=[], answer=["A"])
    del body["options"]
    r = await api.client.post("/api/v1/items", json=body, headers=author)
    assert r.status_code == 201, r.text
    assert r.json()["options"] == ["正确", "错误"]
    url = f"/api/v1/items/{r.json()['id']}"
    r = await api.client.put(url, json={"stem": "带电作业必须两人以上进行。", "answer": ["B"],
                                        "point_code": bank.points[0]}, headers=author)
    assert r.status_code == 200 and r.json()["options"] == ["正确", "错误"], r.text
    r = await api.client.patch(url, content=json.dumps({"options": None}), headers=author | MERGE_PATCH)
    assert r.status_code == 200 and r.json()["options"] == ["正确", "错误"], r.text


async def test_messages_name_fields_and_values(api: Api) -> None:
    bank = await make_bank(api)
    author = await author_of(api, bank)
    item = (await api.client.post("/api/v1/items", json=item_body(bank, "电感的单位是？"), headers=author)).json()
    r = await api.client.get(f"/api/v1/items/{item['id']}/diff", headers=author)
    assert r.status_code == 400 and r.json()["errors"][0]["reason"] == "the query parameter is required", r.text
    assert r.json()["errors"][0]["field"] in ("from", "to")
    r = await api.client.get(f"/api/v1/items/{item['id']}/diff", params={"to": 1}, headers=author)
    assert r.json()["errors"] == [{"field": "from", "reason": "the query parameter is required"}], r.text
    r = await api.client.get("/api/v1/items", params={"status": "live"}, headers=author)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "query.status",
                                   "reason": "'live' is not one of approved, draft, in_review, retired"}], r.text
    r = await api.client.post(f"/api/v1/items/{item['id']}/approve", headers=author)
    assert r.status_code == 403 and r.json()["detail"].startswith("an author token may not do this"), r.text
