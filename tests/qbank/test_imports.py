"""Import (xlsx, QTI 2.1/3.0, Moodle XML) all or nothing, export and round trip, hostile files, the CLI."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import anyio.to_thread
from click.testing import CliRunner
from openpyxl import Workbook

from qbank.imports.excel import COLUMNS
from tests.qbank.helpers import (
    Api,
    Bank,
    ImportAnswer,
    audit_count,
    import_file,
    item_body,
    make_bank,
    wait_job,
)

CONTENT = ("stem", "options", "answer", "explanation", "point_code", "facility", "difficulty", "enemy_groups",
           "stimulus_set", "tags", "media", "practical")
HEADER = [f"{chinese}/{key}" for key, chinese in COLUMNS]


def xlsx(rows: list[dict[str, Any]], header: list[str] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "items"
    ws.append(header or HEADER)
    keys = [k for k, _ in COLUMNS]
    for row in rows:
        ws.append([row.get(k) for k in keys])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def good_rows(prefix: str = "") -> list[dict[str, Any]]:
    return [
        {"type": "判断题", "stem": f"{prefix}安全电压一般不超过36伏。", "answer": "正确", "point_code": 1},
        {"type": "single_choice", "stem": f"{prefix}电流的单位是（ ）。", "option_A": "安培", "option_B": "伏特",
         "option_C": "欧姆", "option_D": "瓦特", "answer": "A", "point_code": "002", "facility": 0.71,
         "difficulty": "较易", "explanation": "国际单位制", "enemy_groups": "单位,电流", "stimulus_set": "S1",
         "tags": "基础；单位"},
        {"type": "多选题", "stem": f"{prefix}属于导体的是（ ）。", "option_A": "铜", "option_B": "铝",
         "option_C": "橡胶", "answer": "A, B", "point_code": "003", "facility": "0.55", "difficulty": "中等"},
        {"type": "practical_task", "stem": f"{prefix}安装一盏单控照明灯。", "point_code": "004",
         "preparation": "备齐工具", "tasks": "接线\n通电试验", "marking": "接线正确|6\n安全文明|4",
         "duration_minutes": 60},
    ]


def package(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


QTI21_ITEM = """<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="{id}" title="t" label="{point}"
    adaptive="false" timeDependent="false">
  <responseDeclaration identifier="RESPONSE" cardinality="{card}" baseType="identifier">
    <correctResponse>{values}</correctResponse>
  </responseDeclaration>
  <itemBody><p>{stem}</p>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="{maxc}">{choices}</choiceInteraction>
  </itemBody>
  <modalFeedback outcomeIdentifier="FEEDBACK" identifier="X" showHide="show">{why}</modalFeedback>
</assessmentItem>"""


def qti21(items: list[dict[str, Any]]) -> bytes:
    files: dict[str, bytes | str] = {}
    resources = []
    for it in items:
        choices = "".join(f'<simpleChoice identifier="c{i}">{o}</simpleChoice>' for i, o in enumerate(it["options"]))
        values = "".join(f"<value>c{i}</value>" for i in it["correct"])
        files[f"items/{it['id']}.xml"] = QTI21_ITEM.format(
            id=it["id"], point=it["point"], card="multiple" if len(it["correct"]) > 1 else "single", values=values,
            stem=it["stem"], maxc=0 if len(it["correct"]) > 1 else 1, choices=choices, why=it.get("why", ""))
        resources.append(f'<resource identifier="r-{it["id"]}" type="imsqti_item_xmlv2p1" '
                         f'href="items/{it["id"]}.xml"><file href="items/{it["id"]}.xml"/></resource>')
    files["imsmanifest.xml"] = ('<?xml version="1.0"?><manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" '
                                f'identifier="m"><organizations/><resources>{"".join(resources)}</resources></manifest>')
    return package(files)


MOODLE = """<?xml version="1.0" encoding="UTF-8"?>
<quiz>
  <question type="category"><category><text>$course$/电工/005</text></category></question>
  <question type="multichoice">
    <name><text>q1</text></name>
    <questiontext format="html"><text><![CDATA[<p>熔断器在电路中起（ ）保护作用。</p>]]></text></questiontext>
    <generalfeedback format="html"><text>短路保护</text></generalfeedback>
    <single>true</single>
    <answer fraction="100"><text>短路</text></answer>
    <answer fraction="0"><text>欠压</text></answer>
    <answer fraction="0"><text>失压</text></answer>
    <tags><tag><text>facility:0.7</text></tag><tag><text>基础</text></tag></tags>
  </question>
  <question type="multichoice">
    <name><text>q2</text></name>
    <questiontext format="html"><text>常用的绝缘材料有（ ）。</text></questiontext>
    <single>false</single>
    <answer fraction="50"><text>橡胶</text></answer>
    <answer fraction="50"><text>陶瓷</text></answer>
    <answer fraction="-100"><text>铜</text></answer>
    <tags><tag><text>point:006</text></tag><tag><text>enemy:绝缘</text></tag></tags>
  </question>
  <question type="truefalse">
    <name><text>q3</text></name>
    <questiontext format="moodle_auto_format"><text>带电作业必须两人进行。</text></questiontext>
    <answer fraction="100"><text>true</text></answer>
    <answer fraction="0"><text>false</text></answer>
  </question>
</quiz>"""


async def post_import(api: Api, bank: Bank, data: bytes, headers: dict[str, str], name: str = "bank.xlsx",
                      **form: Any) -> ImportAnswer:
    return await import_file(api, headers, {"file": (name, data)},
                             {"occupation_code": bank.occupation, "level": str(bank.level), **form})


async def bank_items(api: Api, bank: Bank) -> list[dict[str, Any]]:
    r = await api.client.get("/api/v1/items", params={"occupation": bank.occupation, "level": bank.level,
                                                      "limit": 500}, headers=await api.admin())
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def audit_total(api: Api) -> int:
    """Trail entries but the import requests themselves (``job.submit``: the stored file and its job)."""
    r = await api.client.get("/api/v1/audit", params={"limit": 1}, headers=await api.admin())
    return int(r.json()["total"]) - await audit_count(api, "job.submit")


def comparable(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["stem"]: {k: i[k] for k in (*CONTENT, "type", "maintainer")} for i in items}


async def test_xlsx_import_then_export_and_reimport_gives_identical_items(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "赵老师", (bank.occupation,))
    audit_before = await audit_total(api)
    r = await post_import(api, bank, xlsx(good_rows()), author)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["format"] == "xlsx" and out["count"] == 4 and len(out["item_ids"]) == 4
    assert await audit_total(api) == audit_before + 5  # one per item and one for the import
    items = {i["stem"]: i for i in await bank_items(api, bank)}
    tf = items["安全电压一般不超过36伏。"]
    assert tf["type"] == "true_false" and tf["options"] == ["正确", "错误"] and tf["answer"] == ["A"]
    assert tf["point_code"] == "001" and tf["author"] == "赵老师" and tf["status"] == "draft"
    single = items["电流的单位是（ ）。"]
    assert single["enemy_groups"] == ["单位", "电流"] and single["tags"] == ["基础", "单位"]
    assert single["facility"] == 0.71 and single["stimulus_set"] == "S1" and single["explanation"] == "国际单位制"
    assert items["属于导体的是（ ）。"]["answer"] == ["A", "B"]
    practical = items["安装一盏单控照明灯。"]["practical"]
    assert practical["tasks"] == ["接线", "通电试验"] and practical["marking"][1] == {"criterion": "安全文明",
                                                                                  "points": 4.0}
    r = await api.client.get("/api/v1/audit/verify", headers=await api.admin())
    assert r.json()["ok"] is True, r.json()

    original = comparable(await bank_items(api, bank))
    for fmt in ("xlsx", "qti3"):
        r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                            "format": fmt}, headers=author)
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"].startswith("attachment")
        target = await make_bank(api)  # another occupation with the same blueprint points
        r = await post_import(api, target, r.content, await api.admin(), name=f"export.{fmt}")
        assert r.status_code == 201, r.text
        copied = comparable(await bank_items(api, target))
        expected = original if fmt == "xlsx" else {s: v for s, v in original.items() if v["type"] != "practical_task"}
        assert copied == expected
    # a selection: one type, or a list of ids
    r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": bank.level,
                                                        "format": "qti3", "ids": out["item_ids"][:2]}, headers=author)
    assert r.status_code == 200 and r.headers["x-item-count"] == "2"


async def test_qti21_and_moodle_packages_import(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    data = qti21([
        {"id": "q-1", "point": "001", "stem": "三相电源的相位差是（ ）。", "options": ["120°", "90°", "60°"],
         "correct": [0], "why": "三相对称"},
        {"id": "q-2", "point": "002", "stem": "属于基本电工仪表的是（ ）。", "options": ["万用表", "兆欧表", "锤子"],
         "correct": [0, 1]},
        {"id": "q-3", "point": "003", "stem": "电气设备外壳应可靠接地。", "options": ["正确", "错误"], "correct": [0]},
    ])
    r = await post_import(api, bank, data, admin, name="qti21.zip", format="qti")  # the old name: either version
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "qti21"
    items = {i["stem"]: i for i in await bank_items(api, bank)}
    assert items["三相电源的相位差是（ ）。"]["explanation"] == "三相对称"
    assert items["属于基本电工仪表的是（ ）。"]["type"] == "multiple_choice"
    assert items["属于基本电工仪表的是（ ）。"]["answer"] == ["A", "B"]
    assert items["电气设备外壳应可靠接地。"]["type"] == "true_false"

    r = await post_import(api, bank, MOODLE.encode(), admin, name="quiz.xml", format="moodle")
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "moodle" and r.json()["count"] == 3
    items = {i["stem"]: i for i in await bank_items(api, bank)}
    fuse = items["熔断器在电路中起（ ）保护作用。"]
    assert fuse["point_code"] == "005" and fuse["facility"] == 0.7 and fuse["tags"] == ["基础"]
    assert fuse["explanation"] == "短路保护" and fuse["answer"] == ["A"]
    insulation = items["常用的绝缘材料有（ ）。"]
    assert insulation["type"] == "multiple_choice" and insulation["answer"] == ["A", "B"]
    assert insulation["point_code"] == "006" and insulation["enemy_groups"] == ["绝缘"]
    assert items["带电作业必须两人进行。"]["type"] == "true_false"


async def test_one_bad_row_imports_nothing_and_every_bad_row_is_listed(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "钱老师", (bank.occupation,))
    existing = await api.client.post("/api/v1/items", json=item_body(bank, "已经在库里的题。"), headers=author)
    assert existing.status_code == 201
    rows = [
        *good_rows(),
        {"type": "single_choice", "stem": "鉴定点不存在。", "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "999"},  # row 6
        {"type": "single_choice", "stem": "只有一个选项。", "option_A": "甲", "answer": "A", "point_code": "001"},
        {"type": "single_choice", "stem": "答案不在选项中。", "option_A": "甲", "option_B": "乙", "answer": "D",
         "point_code": "001"},  # row 8
        {"type": "multiple_choice", "stem": "多选只有一个正确。", "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "001"},
        {"type": "single_choice", "stem": "", "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "001"},  # row 10
        {"type": "single_choice", "stem": "长" * 10_001, "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "001"},
        {"type": "single_choice", "stem": "难度系数越界。", "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "001", "facility": 1.5},  # row 12
        {"type": "true_false", "stem": "安全电压一般不超过36伏！", "answer": "A", "point_code": "001"},  # dup of row 2
        {"type": "single_choice", "stem": "已经在库里的题", "option_A": "安培", "option_B": "伏特", "option_C": "欧姆",
         "option_D": "瓦特", "answer": "B", "point_code": "001"},  # row 14: the bank has it (another key: still it)
        {"type": "问答题", "stem": "未知题型。", "point_code": "001"},
    ]
    before_items, before_audit = len(await bank_items(api, bank)), await audit_total(api)
    r = await post_import(api, bank, xlsx(rows), author)
    assert r.status_code == 400, r.text
    problem = r.json()
    fields = [e["field"] for e in problem["errors"]]
    assert {f.split(":")[0] for f in fields} == {f"row {n}" for n in range(6, 16)}
    for field in ("row 6: point_code", "row 7: options", "row 8: answer", "row 9: answer", "row 10: stem",
                  "row 11: stem", "row 12: facility", "row 13: stem", "row 14: stem", "row 15: type"):
        assert field in fields, (field, fields)
    reasons = {e["field"]: e["reason"] for e in problem["errors"]}
    assert "row 2" in reasons["row 13: stem"] and str(existing.json()["id"]) in reasons["row 14: stem"]
    assert "nothing was imported" in problem["detail"]
    assert len(await bank_items(api, bank)) == before_items and await audit_total(api) == before_audit


async def test_counts_include_rows_refused_while_reading_and_reasons_are_words(api: Api) -> None:
    bank = await make_bank(api)
    rows = [
        {"type": "问答题", "stem": "未知题型。", "point_code": "001"},  # refused while reading
        {"type": "single_choice", "stem": "鉴定点写成两位。", "option_A": "甲", "option_B": "乙", "answer": "A",
         "point_code": "12"},
        {"type": "判断题", "stem": "好的一行。", "answer": "对", "point_code": "001"},
    ]
    r = await post_import(api, bank, xlsx(rows), await api.admin())
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["detail"].startswith("2 of 3 row(s) refused: nothing was imported")
    assert problem["extra"] == {"format": "xlsx", "rows": 3, "refused": 2}
    reasons = {e["field"]: e["reason"] for e in problem["errors"]}
    assert reasons["row 3: point_code"] == ("does not have the required form (3-digit appraisal point code of the "
                                            "level's blueprint, e.g. '001')")
    raw = ("Expected `", "regex", "Object missing", "Invalid enum", "`")
    assert not any(w in reason for reason in reasons.values() for w in raw), reasons
    assert sum(1 for e in problem["errors"] if e["field"].startswith("row 3:")) == 1  # named once
    r = await post_import(api, bank, xlsx(rows[:1]), await api.admin())  # once "1 bad row(s) of 0"
    assert r.json()["detail"].startswith("1 of 1 row(s) refused: nothing was imported; row 2: type: unknown item "
                                         "type '问答题'"), r.text

    # no 鉴定点 column at all: every row says what is missing, in words, and the file-wide point places them
    header = [h for h in HEADER if not h.startswith("鉴定点")]
    r = await post_import(api, bank, xlsx([rows[2]], header=header), await api.admin())
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "row 2: point_code", "reason": (
        "no appraisal point: the 鉴定点 column is empty, no point_map rule matches and no file-wide point was "
        "given")}]
    r = await post_import(api, bank, xlsx([rows[2]], header=header), await api.admin(), point="003")
    assert r.status_code == 201, r.text
    assert r.json()["placed"] == [{"rule": "file-wide point", "point_code": "003", "count": 1}]

    moodle = MOODLE.replace('type="truefalse"', 'type="essay"').replace('<question type="multichoice">\n'
                                                                          '    <name><text>q2</text>',
                                                                          '<question type="matching">\n'
                                                                          '    <name><text>q2</text>')
    r = await post_import(api, bank, moodle.encode(), await api.admin(), name="quiz.xml")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("2 of 3 question(s) refused")
    assert [e["field"] for e in r.json()["errors"]] == ["question 'q2' (no. 2): type", "question 'q3' (no. 3): type"]


async def test_a_retired_duplicate_says_when_and_why(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    reviewer = await api.headers("reviewer", "退役审核", (bank.occupation,))
    r = await api.client.post("/api/v1/items", json=item_body(bank, "电流的单位是（ ）。"), headers=admin)
    item_id = r.json()["id"]
    r = await api.client.post(f"/api/v1/items/{item_id}/retire", json={"reason": "超出新版标准"}, headers=reviewer)
    assert r.status_code == 200 and r.json()["status"] == "retired", r.text
    tf = (await api.client.post("/api/v1/items", json=item_body(bank, "接地线可以用缠绕法连接。", type="true_false",
                                                                options=[], answer=["B"]), headers=admin)).json()
    rows = [{"type": "single_choice", "stem": "电流的单位是（　）", "option_A": "瓦特", "option_B": "安培",
             "option_C": "欧姆", "option_D": "伏特", "answer": "B", "point_code": "001"},  # options shuffled
            {"type": "判断题", "stem": "接地线可以用缠绕法连接", "answer": "错", "point_code": "002"}]
    r = await post_import(api, bank, xlsx(rows), admin)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][1] == {"field": "row 3: stem", "reason": (
        f"the same question (stem and options) already exists as item {tf['id']}")}
    reason = r.json()["errors"][0]["reason"]
    day = r"\d{4}-\d{2}-\d{2}"
    assert re.fullmatch(rf"the same question \(stem and options\) already exists as item {item_id}, retired on "
                        rf"{day} \(超出新版标准\)", reason), reason
    r = await api.client.post("/api/v1/items", json=item_body(bank, "电流的单位是（ ）"), headers=admin)
    assert r.status_code == 409 and "retired on" in r.json()["detail"] and "超出新版标准" in r.json()["detail"]
    # the same stem with other options is another question (the docs: exact duplicates are stem and options)
    r = await api.client.post("/api/v1/items", json=item_body(bank, "电流的单位是（ ）。", options=["A", "B"]),
                              headers=admin)
    assert r.status_code == 201, r.text


async def test_hostile_and_refused_inputs_change_nothing(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    before_audit = await audit_total(api)
    xxe = ('<?xml version="1.0"?><!DOCTYPE quiz [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           '<quiz><question type="truefalse"><questiontext><text>&xxe;</text></questiontext></question></quiz>')
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                        for i in range(1, 10))
              + ']><quiz><question type="truefalse"><questiontext><text>&lol9;</text></questiontext>'
                '</question></quiz>')
    bomb_out = io.BytesIO()
    with zipfile.ZipFile(bomb_out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("imsmanifest.xml", "<manifest/>")
        z.writestr("items/zeros.xml", b"\0" * (16 * 1024 * 1024))
    broken_xlsx = package({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "not xml at all"})
    traversal = package({"imsmanifest.xml": "<manifest/>", "../../etc/cron.d/evil": "x"})
    manifest_escape = package({"imsmanifest.xml": '<manifest><resources><resource identifier="r" '
                               'type="imsqti_item_xmlv3p0" href="../outside.xml"/></resources></manifest>'})
    cases: list[tuple[str, bytes, int, str]] = [
        ("malformed xlsx", broken_xlsx, 400, "xlsx"),
        ("truncated xlsx", xlsx(good_rows())[:3000], 400, "zip"),
        ("not a known format", b"hello, world", 400, "unrecognised"),
        ("external entity", xxe.encode(), 400, "external entity"),
        ("billion laughs", laughs.encode(), 400, "entity"),
        ("zip bomb", bomb_out.getvalue(), 400, "zip bomb"),
        ("path traversal member", traversal, 400, "unsafe path"),
        ("manifest href outside", manifest_escape, 400, "outside the package"),
    ]
    for name, data, status, words in cases:
        r = await post_import(api, bank, data, admin, name="upload.bin")
        assert r.status_code == status, (name, r.text)
        body = r.json()
        assert r.job is not None and r.job["status"] == "failed", name  # the file's content is the job's
        assert words in body["detail"], (name, body)
    settings = api.app.state.settings
    limit = settings.max_import_bytes
    settings.max_import_bytes = 10_000
    try:
        r = await post_import(api, bank, b"x" * 200_000, admin)
        assert r.status_code == 413 and "limited to 10000" in r.json()["detail"], r.text
        r = await post_import(api, bank, xlsx(good_rows()) + b"\0" * 20_000, admin)  # the form itself is small
        assert r.status_code == 413, r.text
    finally:
        settings.max_import_bytes = limit
    data = xlsx(good_rows())
    other = await api.headers("author", "孙老师", ("9-99-99-99",))
    assert (await post_import(api, bank, data, other)).status_code == 403
    assert (await post_import(api, bank, data, await api.headers("reviewer", "周老师", (bank.occupation,)))
            ).status_code == 403
    assert (await api.client.post("/api/v1/imports", files={"file": ("a.xlsx", data)},
                                  data={"occupation_code": bank.occupation, "level": "3"})).status_code == 401
    r = await post_import(api, Bank(occupation="8-88-88-88", level=3, points=[]), data, admin)
    assert r.status_code == 404, r.text
    assert await bank_items(api, bank) == [] and await audit_total(api) == before_audit
    r = await api.client.get("/api/v1/exports", params={"occupation": bank.occupation, "level": 3}, headers=other)
    assert r.status_code == 403


async def test_cli_import_and_export(api: Api, s3_server: Any, tmp_path: Any) -> None:
    from qbank.server.cli import main

    bank = await make_bank(api)
    env = {
        "QBANK_DATABASE_URL": str(api.app.state.settings.database_url),
        "QBANK_DATA_DIR": str(tmp_path), "QBANK_TOKEN_SECRET": "test-token-secret",
        "QBANK_S3_ENDPOINT": s3_server.endpoint, "QBANK_S3_ACCESS_KEY": s3_server.access_key,
        "QBANK_S3_SECRET_KEY": s3_server.secret_key,
    }
    runner = CliRunner()
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([*good_rows("命令行"), {"type": "single_choice", "stem": "坏行", "answer": "A",
                                                 "point_code": "001"}]))
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "import", str(bad), "--occupation", bank.occupation, "--level", "3"], env=env))
    assert result.exit_code == 1, result.output
    assert "row 6: options" in result.output and "nothing was imported" in result.output
    assert await bank_items(api, bank) == []
    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx(good_rows("命令行")))
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "import", str(good), "--occupation", bank.occupation, "--level", "3", "--author", "吴老师"], env=env))
    assert result.exit_code == 0, result.output
    assert "imported 4 items" in result.output
    items = await bank_items(api, bank)
    assert len(items) == 4 and {i["author"] for i in items} == {"吴老师"}
    out = tmp_path / "export.zip"
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "export", "--occupation", bank.occupation, "--level", "3", "--format", "qti3", "-o", str(out)], env=env))
    assert result.exit_code == 0, result.output
    assert "exported 3 items" in result.output and zipfile.is_zipfile(out)

    # a Moodle course bank with pictures and a sound, placed by a point map; then out as Moodle XML
    from tests.qbank import bank_files as bf

    course, point_map = tmp_path / "course.xml", tmp_path / "map.csv"
    course.write_bytes(bf.moodle_bank())
    point_map.write_bytes(bf.MOODLE_POINT_MAP)
    other = await make_bank(api)
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "import", str(course), "--occupation", other.occupation, "--level", "3", "--point", "7"], env=env))
    assert result.exit_code == 2 and "not a 3-digit appraisal point code" in result.output, result.output
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "import", str(course), "--occupation", other.occupation, "--level", "3"], env=env))
    assert result.exit_code == 1 and "4 of 4 question(s) refused" in result.output, result.output
    assert "question '串联电流' (no. 3): point_code: no appraisal point" in result.output
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "import", str(course), "--occupation", other.occupation, "--level", "3", "--point-map", str(point_map)],
        env=env))
    assert result.exit_code == 0, result.output
    assert "imported 4 items (moodle)" in result.output and "4 media" in result.output
    assert "1 placed by point_map identifier E-104 → 004" in result.output
    out = tmp_path / "export.xml"
    result = await anyio.to_thread.run_sync(lambda: runner.invoke(main, [
        "export", "--occupation", other.occupation, "--level", "3", "--format", "moodle", "-o", str(out)], env=env))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "exported 4 items" in result.output and text.count('<file name="') == 4
    assert f"$course$/top/{other.occupation} L3/01 基础知识/01.01 电工基础/001 鉴定点1" in text


async def test_the_shipped_template_imports_one_item_of_each_type(api: Api) -> None:
    from pathlib import Path

    from openpyxl import load_workbook

    template = Path(__file__).resolve().parents[2] / "examples" / "items-template.xlsx"
    sheet = load_workbook(template, read_only=True).worksheets[0]
    header = next(sheet.iter_rows(values_only=True))
    assert header[:4] == ("题型", "题干", "选项A", "选项B") and all(not str(h).isascii() for h in header)
    bank = await make_bank(api)
    r = await post_import(api, bank, template.read_bytes(), await api.admin(), name="items-template.xlsx")
    assert r.status_code == 201, r.text
    items = await bank_items(api, bank)
    assert sorted(i["type"] for i in items) == ["multiple_choice", "practical_task", "single_choice", "true_false"]
    tf = next(i for i in items if i["type"] == "true_false")
    assert tf["options"] == ["正确", "错误"] and tf["answer"] == ["A"] and tf["maintainer"] == "张老师"
    practical = next(i for i in items if i["type"] == "practical_task")["practical"]
    assert practical["duration_minutes"] == 60 and len(practical["marking"]) == 3


async def test_an_import_is_a_job_that_only_its_author_polls(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "郑老师", (bank.occupation,))
    r = await api.client.post("/api/v1/imports", headers=author, files={"file": ("bank.xlsx", xlsx(good_rows("轮询")))},
                              data={"occupation_code": bank.occupation, "level": str(bank.level)})
    assert r.status_code == 202 and r.json()["kind"] == "item_import", r.text
    job = await wait_job(api, r.json()["id"], author)
    assert job["status"] == "succeeded", job
    assert job["result"]["items_written"] == 4 and job["result"]["rows"] == 4
    assert "4 rows parsed, 4 rows checked" in job["message"]
    # another author of the same occupation (and a supervisor) cannot tell the job exists
    for other in (await api.headers("author", "冯老师", (bank.occupation,)), await api.headers("supervisor")):
        assert (await api.client.get(f"/api/v1/jobs/{job['id']}", headers=other)).status_code == 404
        assert (await api.client.get(f"/api/v1/imports/{job['id']}/report", headers=other)).status_code in (403, 404)
    assert (await api.client.get(f"/api/v1/jobs/{job['id']}", headers=await api.admin())).status_code == 200
    # a succeeded import has no problem report
    assert (await api.client.get(f"/api/v1/imports/{job['id']}/report", headers=author)).status_code == 404


async def test_a_file_replaced_between_upload_and_parse_fails_the_job(api: Api) -> None:
    from sqlalchemy import update

    from qbank.imports.models import ImportUpload

    bank = await make_bank(api)
    author = await api.headers("author", "陈老师", (bank.occupation,))
    async with api.app.state.job_runner.paused():  # the job stays queued while its stored file is replaced
        r = await api.client.post("/api/v1/imports", headers=author,
                                  files={"file": ("bank.xlsx", xlsx(good_rows("替换")))},
                                  data={"occupation_code": bank.occupation, "level": str(bank.level)})
        assert r.status_code == 202, r.text
        async with api.db() as db, db.begin():
            upload_id = r.json()["params"]["upload"]
            await db.execute(update(ImportUpload).where(ImportUpload.id == upload_id).values(
                data=xlsx(good_rows("换过的"))))
    job = await wait_job(api, r.json()["id"], author)
    assert job["status"] == "failed" and job["error"]["status"] == 409, job
    assert "not the one uploaded" in job["error"]["detail"] and r.json()["params"]["sha256"] in job["error"]["detail"]
    assert await bank_items(api, bank) == []


async def test_refused_imports_list_200_problems_and_keep_the_full_report(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "褚老师", (bank.occupation,))
    rows = [{"type": "single_choice", "stem": f"只有一个选项的题{n}。", "option_A": "甲", "answer": "A",
             "point_code": "001"} for n in range(260)]
    r = await post_import(api, bank, xlsx(rows), author)
    assert r.status_code == 400 and r.job is not None, r.text
    error = r.json()
    assert len(error["errors"]) == 200 and error["problems"] == 260 and error["extra"]["refused"] == 260
    assert error["errors"][0]["field"] == "row 2: options"
    report = await api.client.get(error["report"], headers=author)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = report.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "where,problem" and len(lines) == 261 and lines[-1].startswith("row 261: options,")
    other = await api.headers("author", "卫老师", (bank.occupation,))
    assert (await api.client.get(error["report"], headers=other)).status_code == 404
    assert (await api.client.get(error["report"], headers=await api.admin())).status_code == 200
    assert await bank_items(api, bank) == []


async def test_a_file_over_the_row_cap_is_refused_without_reading_on(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    settings = api.app.state.settings
    cap = settings.import_max_rows
    settings.import_max_rows = 3
    try:
        r = await post_import(api, bank, xlsx(good_rows("上限")), admin)
    finally:
        settings.import_max_rows = cap
    assert r.status_code == 400 and "more than 3 rows" in r.json()["detail"], r.text
    assert "QBANK_IMPORT_MAX_ROWS" in r.json()["detail"]
    assert await bank_items(api, bank) == []


async def test_a_large_file_is_read_in_a_worker_process(api: Api) -> None:
    import random

    bank = await make_bank(api)
    admin = await api.admin()
    rng = random.Random(3)
    pool = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    rows = [{"type": "single_choice", "stem": f"第{n}题：" + "".join(rng.choices(pool, k=30)) + "（ ）。",
             "option_A": "甲", "option_B": "乙", "answer": "A", "point_code": f"{n % 12 + 1:03d}",
             "explanation": "".join(rng.choices(pool, k=4000))} for n in range(80)]
    data = xlsx(rows)
    assert len(data) > 512 * 1024  # over what a thread reads: the worker process reads it
    r = await post_import(api, bank, data, admin)
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 80 and r.json()["rows"] == 80
    items = await bank_items(api, bank)
    assert len(items) == 80 and {len(i["explanation"]) for i in items} == {4000}
    bad = xlsx([{**rows[0], "stem": "重复的题。"}, *rows[1:], {**rows[1], "stem": "重复的题。"}])
    r = await post_import(api, bank, bad, admin)
    assert r.status_code == 400 and r.json()["problems"] >= 80, r.text  # the bank has them: refused in the process
    # media an xlsx names by key are checked against the archive after the worker process: found, and not found
    from tests.qbank.test_items import PNG

    r_media = await api.client.post("/api/v1/media", files={"file": ("circuit.png", PNG, "image/png")},
                                    headers=admin)
    assert r_media.status_code == 201, r_media.text
    key, missing = r_media.json()["key"], "media/00/" + "0" * 64
    other = await make_bank(api)
    shown = [{**row, "stem": f"另{n}：{row['stem']}", "media": key if n == 5 else None} for n, row in enumerate(rows)]
    r = await post_import(api, other, xlsx([*shown, {**shown[7], "stem": "缺图的题。", "media": missing}]), admin)
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["row 82: media"] and missing in r.json()["errors"][0]["reason"]
    r = await post_import(api, other, xlsx(shown), admin)
    assert r.status_code == 201 and r.json()["media"] == 1, r.text
    assert [i["media"] for i in await bank_items(api, other) if i["media"]] == [[key]]
