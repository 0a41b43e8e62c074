"""xlsx as Excel and WPS write it: read by calamine when the sheet is plain, by openpyxl otherwise, with the same
items either way; a far stray cell, a formula error, an Excel escape."""

from __future__ import annotations

from typing import Any

from tests.qbank.helpers import Api, make_bank
from tests.qbank.test_imports import bank_items, comparable, post_import
from tests.qbank.xlsx_shapes import workbook

HEADER = ["题型/type", "题干/stem", "选项A/option_A", "选项B/option_B", "选项C/option_C", "答案/answer",
          "解析/explanation", "鉴定点/point_code", "难度系数/facility", "标签/tags"]
ROWS: list[list[Any]] = [
    HEADER,
    ["单选题", "粘贴自记事本的两行：\r\n第二行", "安培", "伏特", None, "A", "国际单位制", 1, 0.55, "基础；单位"],
    ["判断题", "安全电压一般不超过36伏。", None, None, None, "正确", None, "002", None, None],
    [None, None, None, None, None, None, None, None, None, None],  # an empty row is skipped
    ["多选题", "属于导体的是（ ）。", "铜", "铝", "橡胶", "A, B", "铜和铝", 3, "0.6", None],
]


async def test_a_plain_sheet_and_one_without_places_give_the_same_items(api: Api) -> None:
    admin = await api.admin()
    copies = []
    for placed in (True, False):  # calamine reads the first; the second (no r="..." anywhere) goes to openpyxl
        bank = await make_bank(api)
        r = await post_import(api, bank, workbook(ROWS, placed=placed), admin)
        assert r.status_code == 201, r.text
        assert r.json()["count"] == 3
        copies.append(comparable(await bank_items(api, bank)))
    assert copies[0] == copies[1]
    items = copies[0]
    # Excel stores the CR as _x000D_ (openpyxl alone read it so, into the stem); the service keeps line ends as LF
    pasted = items["粘贴自记事本的两行：\n第二行"]
    assert pasted["options"] == ["安培", "伏特"] and pasted["point_code"] == "001" and pasted["facility"] == 0.55
    assert pasted["tags"] == ["基础", "单位"] and pasted["explanation"] == "国际单位制"
    assert items["属于导体的是（ ）。"]["answer"] == ["A", "B"] and items["属于导体的是（ ）。"]["point_code"] == "003"
    assert items["安全电压一般不超过36伏。"]["answer"] == ["A"]


async def test_a_literal_escape_in_a_cell_is_kept_as_written(api: Api) -> None:
    bank = await make_bank(api)
    rows = [HEADER, ["单选题", "代码 _x0041_ 原样", "甲", "乙", None, "B", None, 1, None, None]]
    r = await post_import(api, bank, workbook(rows), await api.admin())  # stored as _x005F_x0041_
    assert r.status_code == 201, r.text
    assert [i["stem"] for i in await bank_items(api, bank)] == ["代码 _x0041_ 原样"]


async def test_a_stray_cell_far_away_is_read_without_holding_the_whole_area(api: Api) -> None:
    """A1 to XFD1048576 as one rectangle would be 512 GiB: calamine would abort the process that reads it."""
    bank = await make_bank(api)
    stray = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    r = await post_import(api, bank, workbook(ROWS[:3], extra=stray), await api.admin())
    assert r.status_code == 400, r.text
    assert {"field": "row 1048576: type", "reason": "the item type is empty"} in r.json()["errors"]
    assert await bank_items(api, bank) == []
    assert (await api.client.get("/health")).status_code == 200


async def test_a_formula_error_refuses_the_file_naming_the_cell(api: Api) -> None:
    """calamine reads #N/A as an empty cell and openpyxl as the text '#N/A': either would import a guess."""
    bank = await make_bank(api)
    rows = [HEADER, ["单选题", "电流的单位是（ ）。", "安培", "伏特", None, "A", None, 1, None, None]]
    error = '<row r="3"><c r="A3" t="s"><v>0</v></c><c r="B3" t="e"><v>#N/A</v></c></row>'
    for placed in (True, False):
        r = await post_import(api, bank, workbook(rows, placed=placed, extra=error if placed else error.replace(
            ' r="3"', "").replace(' r="A3"', "").replace(' r="B3"', "")), await api.admin())
        assert r.status_code == 400, r.text
        first = r.json()["errors"][0]
        assert first["field"] == ("cell B3" if placed else "sheet") and "formula error" in first["reason"], first
    assert await bank_items(api, bank) == []
