"""One input policy on every text field, the same on SQLite and PostgreSQL: NUL and the C0 controls other than tab
and newline are refused with a 400 naming the field and nothing is stored; text is normalised to NFC (line breaks
to \\n); whatever is stored goes through the xlsx and QTI exports and back unchanged, and content stored before the
policy can never make an export fail with a 500 or write XML the importer refuses."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.qbank.helpers import Api, Bank, import_file, item_body, make_bank

DECOMPOSED = "Cafe\u0301 和 e\u0301"  # é as e + combining acute: NFC makes it one character
COMPOSED = unicodedata.normalize("NFC", DECOMPOSED)


@pytest.mark.parametrize("field, value, named", [
    ("stem", "电流\x00的单位", "stem"),
    ("stem", "电流\x07的单位", "stem"),
    ("options", ["安培", "伏\x1bt"], "options[1]"),
    ("explanation", "换页\x0c符", "explanation"),
    ("tags", ["基础", "垂直\x0b制表"], "tags[1]"),
    ("stimulus_set", "S\x01", "stimulus_set"),
])
async def test_refused_characters_in_an_item_are_a_400_naming_the_field(api: Api, field: str, value: Any,
                                                                        named: str) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    body = item_body(bank, value) if field == "stem" else item_body(bank, "电流的单位是（ ）。", **{field: value})
    r = await api.client.post("/api/v1/items", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == named, r.json()
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation}, headers=admin)
    assert r.json()["total"] == 0


async def test_refused_characters_anywhere_else_are_a_400(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post("/api/v1/tokens", json={"name": "王\x00老师", "role": "supervisor"}, headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name", r.text
    r = await api.client.post("/api/v1/occupations", json={"code": "1-01-01-02", "name": "电\x00工", "levels": [3]},
                              headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name", r.text
    assert (await api.client.get("/api/v1/occupations/1-01-01-02", headers=admin)).status_code == 404
    r = await api.client.get("/api/v1/items", params={"q": "a\x00b"}, headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "query.q", r.text
    r = await api.client.get("/api/v1/items?q=%FF%FE", headers=admin)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "query", r.text
    r = await api.client.post("/api/v1/sites", content=b'{"code": "S0000009", "name": "x\\ud800"}',
                              headers={**admin, "Content-Type": "application/json"})  # a lone surrogate
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body", r.text


async def test_text_is_normalised_to_nfc_and_line_breaks_to_newline(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    stem = f"{DECOMPOSED}\r\n第二行\r第三行\t制表"
    r = await api.client.post("/api/v1/items", json=item_body(bank, stem, options=[DECOMPOSED, "伏特"],
                                                              tags=[DECOMPOSED]), headers=admin)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["stem"] == f"{COMPOSED}\n第二行\n第三行\t制表"
    assert item["options"][0] == COMPOSED and item["tags"] == [COMPOSED]
    # the same text, composed or not, is the same question: a duplicate
    r = await api.client.post("/api/v1/items", json=item_body(bank, item["stem"], options=[COMPOSED, "伏特"]),
                              headers=admin)
    assert r.status_code == 409, r.text
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation, "q": DECOMPOSED},
                             headers=admin)
    assert r.json()["total"] == 1  # the query is normalised the same way


# ------------------------------------------------------------------------------------------- export and back
HARD = "<b>&amp;</b> \"引号\" 'single' ]]> =SUM(A1) _x0041_ 🔌 𠀀 " + COMPOSED + " \\ $ {x} %s"


def every_field(bank: Bank, n: int, item_type: str) -> dict[str, Any]:
    """An item of this type with every content field set, and text that formats find hard."""
    body: dict[str, Any] = {
        "occupation_code": bank.occupation, "level": bank.level, "type": item_type,
        "stem": f"第{n}题 {item_type} {HARD}\n第二行\t制表",
        "explanation": f"解析 {HARD}\n多行", "point_code": bank.points[n % len(bank.points)],
        "facility": 0.615 + n / 1000, "difficulty": ["易", "较易", "中等", "较难", "难"][n % 5],
        "enemy_groups": [f"互斥{n} <&>", "组 🔌"], "stimulus_set": f"题组 {n} \"x\"", "tags": ["标签 <a>", "=tag", "é"],
        "maintainer": f"维护人 {n} <李>",
    }
    if item_type == "true_false":
        body.update(options=["正确", "错误"], answer=["B"])
    elif item_type == "single_choice":
        body.update(options=[f"选项{k} {HARD}" for k in range(8)], answer=["H"])
    elif item_type == "multiple_choice":
        body.update(options=["甲 <x>", "乙\t制表", "丙\n换行", "丁 &"], answer=["A", "C", "D"])
    else:
        body["practical"] = {"preparation": f"准备 {HARD}\n工具清单", "tasks": [f"任务一 {HARD}", "任务二 <b>"],
                             "marking": [{"criterion": f"接线正确 {HARD}", "points": 6.5},
                                         {"criterion": "安全|文明", "points": 3.5}], "duration_minutes": 90}
    return body


CONTENT = ("type", "stem", "options", "answer", "explanation", "point_code", "facility", "difficulty",
           "enemy_groups", "stimulus_set", "tags", "practical", "maintainer")


async def bank_items(api: Api, bank: Bank) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation, "level": bank.level,
                                                      "limit": 500}, headers=await api.admin())
    assert r.status_code == 200, r.text
    return {i["stem"]: {k: i[k] for k in CONTENT} for i in r.json()["items"]}


async def test_every_field_of_every_item_type_goes_through_xlsx_and_qti_and_back(api: Api) -> None:
    bank = await make_bank(api, points=12)
    admin = await api.admin()
    types = ["true_false", "single_choice", "multiple_choice", "practical_task"]
    for n, item_type in enumerate(types * 2):
        r = await api.client.post("/api/v1/items", json=every_field(bank, n, item_type), headers=admin)
        assert r.status_code == 201, r.text
    original = await bank_items(api, bank)
    assert len(original) == 8
    for fmt in ("xlsx", "qti3"):
        r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                            "format": fmt}, headers=admin)
        assert r.status_code == 200, r.text
        if fmt == "qti3":
            from defusedxml import ElementTree

            with zipfile.ZipFile(io.BytesIO(r.content)) as z:
                for name in z.namelist():
                    ElementTree.fromstring(z.read(name))  # well-formed, every member
        target = await make_bank(api, points=12)
        answer = await import_file(api, admin, {"file": (f"bank.{fmt}", r.content)},
                                   {"occupation_code": target.occupation, "level": str(target.level)})
        assert answer.status_code == 201, answer.text
        expected = original if fmt == "xlsx" else as_html_reads(original)
        assert await bank_items(api, target) == expected


def as_html_reads(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a QTI round trip gives back: choice items only, and the text a candidate reads, whose whitespace an
    (X)HTML item body collapses line by line (docs/import-formats.md, "Round trips")."""
    from qbank.imports.text import normalise_line

    def reads(text: str) -> str:
        return "\n".join(line for line in (normalise_line(part) for part in text.split("\n")) if line)

    out = {}
    for item in items.values():
        if item["type"] == "practical_task":
            continue
        item = {**item, "stem": reads(item["stem"]), "options": [reads(o) for o in item["options"]]}
        out[item["stem"]] = item
    return out


async def test_content_stored_before_the_policy_never_breaks_an_export(api: Api) -> None:
    """A control character already in the database (SQLite stored NUL too, before the policy): the export answers a
    409 naming the item and field to fix, never a 500 or a file the importer refuses."""
    from qbank.items.models import Item, ItemVersion
    from qbank.lib.digest import digest

    bank = await make_bank(api)
    admin = await api.admin()
    r = await api.client.post("/api/v1/items", json=item_body(bank, "电流的单位是（ ）。"), headers=admin)
    item_id = r.json()["id"]
    async with api.db() as db, db.begin():
        version = await db.scalar(select(ItemVersion).where(ItemVersion.item_id == item_id))
        assert version is not None
        content = {**version.content, "options": ["安\x01培", "伏特", "欧姆", "瓦特"]}
        await db.execute(update(ItemVersion).where(ItemVersion.id == version.id).values(
            content=content, digest=digest(content)))
        await db.execute(update(Item).where(Item.id == item_id).values(maintainer="维护\x02人"))
    for fmt in ("xlsx", "qti3"):
        r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                            "format": fmt}, headers=admin)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["extra"]["items"] == [{"item": item_id, "fields": ["options[0]", "maintainer"]}], problem
    # fixing the item (a new version) makes the bank exportable again
    r = await api.client.patch(f"/api/v1/items/{item_id}", json={
        **{k: v for k, v in item_body(bank, "电流的单位是（ ）。").items() if k not in ("occupation_code", "level",
                                                                                    "type")},
        "maintainer": "维护人"}, headers=admin)
    assert r.status_code == 200, r.text
    r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level},
                             headers=admin)
    assert r.status_code == 200, r.text
