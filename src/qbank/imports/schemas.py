"""What the parsers hand to the import service, and what the import answers."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import msgspec

from qbank.lib.problems import FieldError

# `qti` is the name older clients used for either QTI version: still accepted on input, documented as an alias.
ImportFormat = Literal["xlsx", "moodle", "qti3", "qti21", "qti"]
ExportFormat = Literal["qti3", "moodle", "xlsx"]
IMPORT_FORMATS: tuple[str, ...] = ("xlsx", "moodle", "qti3", "qti21", "qti")


class Origin(msgspec.Struct, kw_only=True):
    """Where the file puts a question, for the point map: its category (Moodle), identifier, label, metadata."""

    category: str | None = None  # Moodle category path as the file writes it
    identifiers: list[str] = []  # QTI item and resource identifiers, Moodle idnumber
    label: str | None = None  # QTI label
    metadata: list[tuple[str, str]] = []  # (element name, text) of the manifest resource's metadata
    implied_point: str | None = None  # a point the file implies: a 3-digit label or category segment
    implied_by: str = ""  # what implied it, for the placement count


class ParsedItem(msgspec.Struct, kw_only=True):
    """One question as read from a file: how the file names it, its type and its fields (not yet validated).
    ``fields`` has ``point_code`` only when the file names the point explicitly (a column, qbank metadata, a
    ``point:`` tag); the point map and the file-wide point place the others."""

    position: str  # "row 7", 'question "熔断器" (no. 3)', 'item q-12 "Title"': the prefix of every error about it
    type: str
    fields: dict[str, Any]
    origin: Origin = msgspec.field(default_factory=Origin)


class MediaFile(msgspec.Struct, kw_only=True):
    """A medium the file carries (a Moodle <file>, a package member), once however many questions use it."""

    sha256: str
    name: str
    data: bytes
    used_by: list[str] = []  # positions of the questions that show it


class ParseResult(msgspec.Struct, kw_only=True):
    items: list[ParsedItem] = []
    errors: list[FieldError] = []
    positions: list[str] = []  # every question of the file, refused ones included: what counts are of
    media: dict[str, MediaFile] = {}
    format: str = ""  # the format read: xlsx, moodle, qti3, qti21 (or qti for a package mixing versions)
    left_out: dict[str, int] = {}  # what the candidate never sees, left out on purpose, by kind: how many

    def error(self, position: str | None, field: str, reason: str) -> None:
        self.errors.append(FieldError(field=f"{position}: {field}" if position else field, reason=reason))

    def carry(self, name: str, data: bytes, position: str) -> str:
        """Register a medium the question at ``position`` shows; its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        medium = self.media.setdefault(sha, MediaFile(sha256=sha, name=name, data=data))
        if position not in medium.used_by:
            medium.used_by.append(position)
        return sha

    def leave_out(self, counts: dict[str, int]) -> None:
        for kind, n in counts.items():
            self.left_out[kind] = self.left_out.get(kind, 0) + n


class ExportItem(msgspec.Struct, kw_only=True):
    """One item as an export writes it: its id, type, current content and maintainer."""

    id: int
    type: str
    content: dict[str, Any]
    maintainer: str


class Placement(msgspec.Struct, kw_only=True):
    """How many questions one rule placed on an appraisal point."""

    rule: Annotated[str, msgspec.Meta(examples=["point_map category $course$/电工/安全用电"])]
    point_code: Annotated[str | None, msgspec.Meta(
        examples=["005"], description="the point the rule names (null: points named in the file, various)")]
    count: Annotated[int, msgspec.Meta(ge=0, examples=[12])]


class ImportOut(msgspec.Struct, kw_only=True):
    format: Annotated[str, msgspec.Meta(examples=["moodle"], description="the format read: xlsx, moodle, qti3, qti21")]
    sha256: Annotated[str, msgspec.Meta(description="SHA-256 of the imported file")]
    count: Annotated[int, msgspec.Meta(examples=[190])]
    first_id: int | None
    last_id: int | None
    item_ids: list[int]
    near_duplicates: Annotated[int, msgspec.Meta(description="imported items flagged as near duplicates")]
    placed: Annotated[list[Placement], msgspec.Meta(
        description="how many questions each source of appraisal points placed: the file itself, each point_map "
                    "rule (0 when it matched nothing), the file-wide point")] = []
    media: Annotated[int, msgspec.Meta(ge=0, description="media the items carry (images, sounds, videos)")] = 0
    left_out: Annotated[dict[str, int], msgspec.Meta(
        description="what no candidate reads, left out of stems and options on purpose, by kind: how many "
                    "(feedback, tooltips, rubrics for scorers …)", examples=[{"tooltips": 2}])] = {}
    rows: Annotated[int, msgspec.Meta(ge=0, description="questions (rows) the file holds: parsed and checked")] = 0
