"""Workbooks written the way Excel and WPS write them (shared strings, escaped characters, places on every row and
cell), by hand, so that tests control what a reader meets; not openpyxl's own output."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.sax.saxutils import escape

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def column(n: int) -> str:
    letters = ""
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def workbook(rows: list[list[Any]], *, placed: bool = True, extra: str = "", sheet: str = "items") -> bytes:
    """One sheet of ``rows`` (text as shared strings written as Excel stores it: a cell's CR as _x000D_, a
    literal _xHHHH_ as _x005F_xHHHH_; numbers as numbers; None as no cell). ``placed=False`` leaves out every
    ``r`` attribute, as some writers do; ``extra`` is raw XML appended to the sheet data."""
    strings: list[str] = []
    body = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row, start=1):
            if value is None:
                if not placed:  # without places, an empty cell keeps the next one's column
                    cells.append("<c/>")
                continue
            place = f' r="{column(c)}{r}"' if placed else ""
            if isinstance(value, str):
                stored = value.replace("_x", "_x005F_x").replace("\r", "_x000D_")
                strings.append(stored)
                cells.append(f'<c{place} t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f"<c{place}><v>{value}</v></c>")
        body.append(f'<row{f" r={chr(34)}{r}{chr(34)}" if placed else ""}>{"".join(cells)}</row>')
    sst = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in strings)
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
            'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="'
            f'{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{REL}"><sheets><sheet name="'
            f'{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="'
            f'{REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{REL}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>{"".join(body)}{extra}'
            '</sheetData></worksheet>'),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}" count="{len(strings)}" uniqueCount="'
            f'{len(strings)}">{sst}</sst>'),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode())
    return out.getvalue()
