"""Whether a workbook's sheet may be read with calamine, and its rows when it may; where it holds error cells.

calamine (Rust, via python-calamine) reads a sheet about ten times faster than openpyxl, but it holds the sheet
as one dense rectangle from its first to its last cell: two cells at A1 and XFD1048576 ask for 512 GiB, and
the process aborts. It also reads an error cell (``#N/A``) as empty, which would drop what the writer sees. So
the sheet's XML is scanned first, a stream of regular expressions over its bytes: every row and every cell must
say where it is (``r="..."``), no cell may hold an error, and the area those places span must stay under
``DENSE_CELLS``. Anything else — and anything calamine cannot open — goes to openpyxl's streaming reader,
whose rows and errors are the reference."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from python_calamine import CalamineWorkbook, SheetTypeEnum

from qbank.imports.safety import Limits, parse_xml, read_member
from qbank.lib.problems import ProblemError

DENSE_CELLS = 4_000_000  # calamine's cells of 32 bytes: 128 MB at most
CHUNK = 4 * 1024 * 1024
_TAG = rb"<(?:[A-Za-z_][\w.-]*:)?"
ROW_TAG = re.compile(_TAG + rb"row[\s>/]")
ROW_PLACE = re.compile(_TAG + rb'row\s[^>]*?\br="([0-9]{1,7})"')
CELL_TAG = re.compile(_TAG + rb"c[\s>/]")
CELL_COLUMN = re.compile(_TAG + rb'c\s[^>]*?\br="([A-Z]{1,3})[0-9]{1,7}"')
ERROR_CELL = re.compile(_TAG + rb'c\s[^>]*?\bt="e"[^>]*>')
CELL_PLACE = re.compile(rb'\sr="([A-Z]{1,3}[0-9]{1,7})"')
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


class SheetScan(msgspec.Struct, kw_only=True):
    plain: bool  # every row and cell placed, the area bounded: calamine may read it
    error_cells: list[str]  # where a cell holds a formula error (#N/A, #REF!, ...) instead of a value
    unplaced_errors: int = 0  # error cells that do not say where they are


def _scan(archive: zipfile.ZipFile, member: str) -> SheetScan:
    rows = placed_rows = cells = last_row = unplaced_errors = 0
    columns: set[bytes] = set()
    error_cells: list[str] = []
    with archive.open(member) as handle:
        carry = b""
        while True:
            chunk = handle.read(CHUNK)
            text = carry + chunk
            if chunk:  # a tag is never cut: keep what follows the last '>' for the next chunk
                cut = text.rfind(b">") + 1
                text, carry = text[:cut], text[cut:]
            for tag in ERROR_CELL.findall(text):
                place = CELL_PLACE.search(tag)
                if place:
                    error_cells.append(place.group(1).decode())
                else:
                    unplaced_errors += 1
            rows += len(ROW_TAG.findall(text))
            places = ROW_PLACE.findall(text)
            placed_rows += len(places)
            last_row = max([last_row, *map(int, places)])
            cells += len(CELL_TAG.findall(text))
            found = CELL_COLUMN.findall(text)
            columns.update(found)
            cells -= len(found)
            if not chunk:
                break
    width = max(map(_column_number, columns), default=0)
    plain = rows == placed_rows and cells == 0 and not error_cells and not unplaced_errors
    return SheetScan(plain=plain and last_row * width <= DENSE_CELLS, error_cells=error_cells,
                     unplaced_errors=unplaced_errors)


def _sheet_member(archive: zipfile.ZipFile, name: str) -> str | None:
    """The archive member holding the sheet called ``name``, by the workbook's relationships."""
    limits = Limits()
    try:
        book = parse_xml(read_member(archive, "xl/workbook.xml", limits), "xl/workbook.xml")
        rels = parse_xml(read_member(archive, "xl/_rels/workbook.xml.rels", limits), "workbook relationships")
    except ProblemError:
        return None
    rel_id = next((sheet.get(f"{{{REL_NS}}}id") for sheet in book.iter()
                   if sheet.tag.rsplit("}", 1)[-1] == "sheet" and sheet.get("name") == name), None)
    target = next((rel.get("Target") for rel in rels.iter() if rel.get("Id") == rel_id and rel_id), None)
    if not target:
        return None
    member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return member if member in archive.namelist() else None


class SheetRead(msgspec.Struct, kw_only=True):
    rows: Iterator[tuple[int, list[Any]]] | None  # read by calamine; None: the sheet is openpyxl's to read
    scan: SheetScan | None  # None when the sheet could not be found and scanned


def read_sheet(archive: zipfile.ZipFile, data: bytes, names: Sequence[str]) -> SheetRead:
    """The sheet called one of ``names`` (else the first worksheet): scanned, then read by calamine when it is
    plain (rows numbered, cells from column A)."""
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = [m.name for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        name = next((n for n in names if n in book.sheet_names), sheets[0] if sheets else None)
        member = _sheet_member(archive, name) if name in sheets else None
        scan = _scan(archive, member) if member is not None and name is not None else None
        if scan is None or not scan.plain or name is None:
            return SheetRead(rows=None, scan=scan)
        sheet = book.get_sheet_by_name(name)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        return SheetRead(rows=None, scan=None)  # openpyxl reads it, or says in its words why it cannot
    return SheetRead(rows=_rows(sheet), scan=scan)


def _rows(sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    start = sheet.start
    if start is None:
        return
    first_row, first_column = start
    pad: list[Any] = [None] * first_column
    for number, row in enumerate(sheet.iter_rows(), start=first_row + 1):
        yield number, pad + row if pad else row
