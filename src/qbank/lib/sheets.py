"""Text in xlsx cells, as Excel means it, for every sheet the service writes or reads with openpyxl.

A cell's text escapes characters as ``_xHHHH_`` (Excel writes a cell's CR as ``_x000D_``) and a literal ``_xHHHH_``
as ``_x005F_xHHHH_``; calamine reads them so, openpyxl reads and writes the text raw. And a string that starts with
``=`` is a formula to openpyxl: written as it is, a name or a stem like ``=HYPERLINK(…)`` would run when the sheet
is opened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from openpyxl.cell import WriteOnlyCell

STORED_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
TO_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|\r")


def _stored(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return match.group() if 0xD800 <= code <= 0xDFFF else chr(code)  # half a surrogate pair is no text: kept


def read_cells(row: Sequence[Any]) -> list[Any]:
    """A row as openpyxl read it, its text unescaped as Excel means it."""
    return [STORED_ESCAPE.sub(_stored, v) if isinstance(v, str) and "_x" in v else v for v in row]


def text_cell(sheet: Any, value: Any) -> Any:
    """A cell for ``sheet.append`` (write-only or not) holding ``value``: text escaped as Excel reads it, and text
    that starts with '=' kept as text, so that no formula runs when the sheet is opened."""
    if isinstance(value, str):
        value = TO_ESCAPE.sub(lambda m: "_x005F_" if m.group() == "_" else "_x000D_", value)
    cell = WriteOnlyCell(sheet, value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    return cell
