"""What the parsers hand to the import service, and what the import answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from qbank.lib.problems import FieldError

ImportFormat = Literal["xlsx", "qti", "moodle"]
ExportFormat = Literal["qti3", "xlsx"]
TRUE_FALSE_OPTIONS = ["正确", "错误"]


class ParsedItem(msgspec.Struct, kw_only=True):
    """One item as read from a file: where it was, its type and its fields (not yet validated)."""

    position: str  # "row 7", "item q-12", "question 3": the prefix of every error about it
    type: str
    fields: dict[str, Any]


class ParseResult(msgspec.Struct, kw_only=True):
    items: list[ParsedItem] = []
    errors: list[FieldError] = []


class ImportOut(msgspec.Struct, kw_only=True):
    format: Annotated[str, msgspec.Meta(examples=["xlsx"])]
    sha256: Annotated[str, msgspec.Meta(description="SHA-256 of the imported file")]
    count: Annotated[int, msgspec.Meta(examples=[190])]
    first_id: int | None
    last_id: int | None
    item_ids: list[int]
    near_duplicates: Annotated[int, msgspec.Meta(description="imported items flagged as near duplicates")]
