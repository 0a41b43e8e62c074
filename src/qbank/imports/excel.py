"""The Excel template item writers fill in: one sheet, a header row, one item per row.

Read with calamine, or openpyxl in read-only mode; written in write-only mode. The columns are listed in
docs/import-formats.md; COLUMNS below is the single source of both."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from qbank.imports.safety import UNREADABLE, Limits, open_zip, too_many_rows
from qbank.imports.schemas import ExportItem, ParsedItem, ParseResult
from qbank.imports.xlsx_layout import read_sheet
from qbank.items.schemas import LABELS
from qbank.lib.problems import FieldError, bad_request
from qbank.lib.sheets import read_cells, text_cell

# key, Chinese header. The header cell reads "题型/type"; either half alone is accepted too.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("type", "题型"), ("stem", "题干"),
    *((f"option_{label}", f"选项{label}") for label in LABELS),
    ("answer", "答案"), ("explanation", "解析"), ("point_code", "鉴定点"), ("facility", "难度系数"),
    ("difficulty", "难度"), ("enemy_groups", "互斥组"), ("stimulus_set", "题组"), ("tags", "标签"),
    ("maintainer", "维护人"), ("language", "语言"), ("media", "媒体"),
    # practical tasks only
    ("preparation", "准备通知"), ("tasks", "操作任务"), ("marking", "评分标准"), ("duration_minutes", "考核时长"),
)
REQUIRED = ("type", "stem")  # 鉴定点 may be left to the file-wide point
TYPE_NAMES = {
    "true_false": "true_false", "判断": "true_false", "判断题": "true_false",
    "single_choice": "single_choice", "单选": "single_choice", "单选题": "single_choice",
    "单项选择题": "single_choice",
    "multiple_choice": "multiple_choice", "多选": "multiple_choice", "多选题": "multiple_choice",
    "多项选择题": "multiple_choice",
    "practical_task": "practical_task", "实操": "practical_task", "实操题": "practical_task",
    "操作技能": "practical_task",
}
TRUE_FALSE_ANSWERS = {"正确": "A", "对": "A", "√": "A", "T": "A", "TRUE": "A",
                      "错误": "B", "错": "B", "×": "B", "F": "B", "FALSE": "B"}
LIST_SEPARATORS = re.compile(r"[,，;；、\n]")
ANSWER_NOISE = re.compile(r"[\s,，、;；]+")
SHEET_NAMES = ("items", "试题")


HEADER_KEYS: dict[str, str] = {
    name.lower(): key for key, chinese in COLUMNS
    for name in (key, chinese, *((key.removeprefix("option_"),) if key.startswith("option_") else ()))
}


def _header_key(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    for half in re.split(r"[/／]", text):
        key = HEADER_KEYS.get(half.strip().lower())
        if key:
            return key
    return "?" + text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if not isinstance(value, str) else value.strip()


def _split(value: Any) -> list[str]:
    return [part.strip() for part in LIST_SEPARATORS.split(_text(value)) if part.strip()]


def _row_item(row_no: int, cells: dict[str, Any], errors: list[FieldError]) -> ParsedItem | None:
    position = f"row {row_no}"

    def err(field: str, reason: str) -> None:
        errors.append(FieldError(field=f"{position}: {field}", reason=reason))

    raw_type = _text(cells.get("type"))
    item_type = TYPE_NAMES.get(raw_type) or TYPE_NAMES.get(raw_type.lower())
    if item_type is None:
        err("type", f"unknown item type {raw_type!r} (判断题/true_false, 单选题/single_choice, 多选题/multiple_choice, "
                    "实操题/practical_task)" if raw_type else "the item type is empty")
        return None
    fields: dict[str, Any] = {"stem": _text(cells.get("stem"))}
    point = cells.get("point_code")
    if _text(point):
        fields["point_code"] = f"{int(point):03d}" if isinstance(point, int | float) and \
            float(point).is_integer() else _text(point)
    for key in ("explanation", "difficulty", "maintainer", "language"):
        if _text(cells.get(key)):
            fields[key] = _text(cells.get(key))
    if _text(cells.get("stimulus_set")):
        fields["stimulus_set"] = _text(cells.get("stimulus_set"))
    for key in ("enemy_groups", "tags", "media"):
        fields[key] = _split(cells.get(key))
    facility = cells.get("facility")
    if facility is not None and _text(facility):
        try:
            fields["facility"] = float(facility)
        except (TypeError, ValueError):
            err("facility", f"{_text(facility)!r} is not a number between 0 and 1")
    if item_type == "practical_task":
        fields["practical"] = _practical(cells, err)
        for label in LABELS:
            if _text(cells.get(f"option_{label}")):
                fields.setdefault("options", []).append(_text(cells.get(f"option_{label}")))
        if _text(cells.get("answer")):
            fields["answer"] = list(_text(cells.get("answer")))
        return ParsedItem(position=position, type=item_type, fields=fields)
    options: list[str] = []
    gap: str | None = None
    for label in LABELS:
        value = _text(cells.get(f"option_{label}"))
        if not value:
            gap = gap or label
            continue
        if gap is not None:
            err(f"option_{label}", f"option {label} follows the empty option {gap}")
        options.append(value)
    answer_text = ANSWER_NOISE.sub("", _text(cells.get("answer"))).upper()
    if item_type == "true_false" and answer_text in TRUE_FALSE_ANSWERS:
        answer_text = TRUE_FALSE_ANSWERS[answer_text]
    if not answer_text:
        err("answer", "the answer key is empty (letters such as A or AC)")
    elif not re.fullmatch(r"[A-H]+", answer_text):
        err("answer", f"{_text(cells.get('answer'))!r} is not an answer key: letters A–H such as A or AC")
    fields["options"] = options
    fields["answer"] = list(answer_text) if re.fullmatch(r"[A-H]+", answer_text) else []
    for key in ("preparation", "tasks", "marking", "duration_minutes"):
        if _text(cells.get(key)):
            err(key, f"column {key} is for practical tasks only")
    return ParsedItem(position=position, type=item_type, fields=fields)


def _practical(cells: dict[str, Any], err: Any) -> dict[str, Any]:
    marking = []
    for n, line in enumerate(_text(cells.get("marking")).splitlines(), start=1):
        if not line.strip():
            continue
        criterion, sep, points = line.rpartition("|")
        try:
            marking.append({"criterion": criterion.strip(), "points": float(points)})
        except ValueError:
            err("marking", f"line {n} {line!r} is not 'criterion|points'")
        if not sep:
            err("marking", f"line {n} {line!r} is not 'criterion|points'")
    duration = cells.get("duration_minutes")
    minutes: Any = duration
    try:
        minutes = int(float(_text(duration)))
    except ValueError:
        err("duration_minutes", f"{_text(duration)!r} is not a number of minutes")
    return {"preparation": _text(cells.get("preparation")),
            "tasks": [t.strip() for t in _text(cells.get("tasks")).splitlines() if t.strip()],
            "marking": marking, "duration_minutes": minutes}


def parse_excel(data: bytes, limits: Limits) -> ParseResult:
    """Every row of the first sheet (or the sheet named items/试题) as a ParsedItem, or its errors.

    Read with calamine when the sheet is plainly laid out (every row and cell placed, no error cells, a bounded
    area: see ``xlsx_layout``), with openpyxl's streaming reader otherwise; both give the same rows, calamine
    about ten times faster."""
    archive = open_zip(data, limits, "workbook")
    try:
        sheet_read = read_sheet(archive, data, SHEET_NAMES)
    finally:
        archive.close()
    result = _read_rows(data, sheet_read.rows, limits)
    scan = sheet_read.scan
    if scan is not None and (scan.error_cells or scan.unplaced_errors):
        # calamine reads an error as an empty cell, openpyxl as the text "#N/A": either would import a guess
        result.errors[:0] = [FieldError(field=f"cell {place}", reason=(
            "holds a formula error (such as #N/A or #REF!) instead of a value: put the value in the cell or "
            "clear it")) for place in scan.error_cells]
        if scan.unplaced_errors:
            result.errors.insert(0, FieldError(field="sheet", reason=(
                f"{scan.unplaced_errors} cell(s) hold a formula error (such as #N/A or #REF!) instead of a value")))
    return result


def _read_rows(data: bytes, plain: Iterator[tuple[int, list[Any]]] | None, limits: Limits) -> ParseResult:
    if plain is not None:
        return _parse_rows(plain, limits)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, *UNREADABLE) as exc:
        raise bad_request("file", f"not a readable xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheet = next((workbook[n] for n in SHEET_NAMES if n in workbook.sheetnames), workbook.worksheets[0])
        rows = sheet.iter_rows(values_only=True)
        return _parse_rows(((n, read_cells(row)) for n, row in enumerate(rows, start=1)), limits)
    except UNREADABLE as exc:  # a sheet is read lazily, row by row: a damaged member shows itself here
        raise bad_request("file", f"not a readable xlsx workbook ({type(exc).__name__}: {exc})") from exc
    finally:
        with contextlib.suppress(*UNREADABLE):
            workbook.close()


def _parse_rows(rows: Iterator[tuple[int, Sequence[Any]]], limits: Limits) -> ParseResult:
    """The header (row 1), then one item per non-empty row; ``rows`` pairs each row's number with its cells from
    column A on."""
    first = next(rows, None)
    if first is None:
        raise bad_request("file", "the sheet is empty: the first row must hold the column headers")
    header = first[1] if first[0] == 1 else ()
    result = ParseResult(format="xlsx")
    keys = [_header_key(v) for v in header]
    for col, key in enumerate(keys, start=1):
        if key and key.startswith("?"):
            result.errors.append(FieldError(field=f"row 1: column {col}", reason=(
                f"unknown header {key[1:]!r}; see docs/import-formats.md for the columns")))
    missing = [k for k in REQUIRED if k not in keys]
    if missing:
        result.errors.append(FieldError(field="row 1", reason=f"missing column(s): {', '.join(missing)}"))
        return result
    for row_no, row in rows:
        if row is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        cells = {k: v for k, v in zip(keys, row, strict=False) if k and not k.startswith("?")}
        result.positions.append(f"row {row_no}")
        if len(result.positions) > limits.max_rows:  # stop reading: time and memory stay bounded
            raise too_many_rows(len(result.positions), limits, "rows")
        item = _row_item(row_no, cells, result.errors)
        if item is not None:
            result.items.append(item)
    return result


def write_excel(items: Iterable[ExportItem], chinese_headers: bool = False) -> bytes:
    """The template filled with items; reads back into the same items (media by their archive keys: an xlsx
    carries no media of its own, so they are found again only in this service's archive)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("items")
    sheet.append([chinese if chinese_headers else f"{chinese}/{key}" for key, chinese in COLUMNS])
    for item in items:
        item_type, content, maintainer = item.type, item.content, item.maintainer
        options = list(content.get("options") or [])
        practical = content.get("practical") or {}
        row: dict[str, Any] = {
            "type": item_type, "stem": content["stem"], "answer": "".join(content.get("answer") or []),
            "explanation": content.get("explanation") or None, "point_code": content["point_code"],
            "facility": content.get("facility"), "difficulty": content.get("difficulty"),
            "enemy_groups": ",".join(content.get("enemy_groups") or []) or None,
            "stimulus_set": content.get("stimulus_set"), "tags": ",".join(content.get("tags") or []) or None,
            "maintainer": maintainer, "language": content.get("language"),
            "media": ",".join(content.get("media") or []) or None,
        }
        for label, option in zip(LABELS, options, strict=False):
            row[f"option_{label}"] = option
        if practical:
            row["preparation"] = practical.get("preparation") or None
            row["tasks"] = "\n".join(practical.get("tasks") or [])
            row["marking"] = "\n".join(f"{m['criterion']}|{m['points']:g}" for m in practical.get("marking") or [])
            row["duration_minutes"] = practical.get("duration_minutes")
        sheet.append([text_cell(sheet, row.get(key)) for key, _ in COLUMNS])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
