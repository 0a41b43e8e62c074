"""Import (all or nothing) and export of a bank.

Import runs in three steps: parse the file (pure, per-format), validate every row (pure: the items
domain's own ``content_errors``, duplicates within the file and against the bank), and only when no row
is bad create every item through ``add_item`` in the caller's transaction, refresh near duplicates once,
and write the audit trail (one entry per item, chained in one batch, plus one entry for the import)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.models import AuditEntry
from qbank.audit.services import chain, record
from qbank.blueprints.schemas import Point
from qbank.blueprints.services import point_index, require_level
from qbank.db import utcnow
from qbank.imports.excel import parse_excel, write_excel
from qbank.imports.moodle import parse_moodle
from qbank.imports.qti import parse_qti, write_qti3
from qbank.imports.safety import Limits, check_size, open_zip
from qbank.imports.schemas import ImportOut, ParsedItem, ParseResult
from qbank.items.models import Item, ItemVersion
from qbank.items.schemas import ItemIn
from qbank.items.services import add_item, content_errors, refresh_near_duplicates
from qbank.items.similarity import stem_key
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict
from qbank.lib.text import TextRefused, clean_tree, refused_fields

Progress = Callable[[str, int, int], None]  # (phase, done, total)
_AT = re.compile(r"\s*-\s*at `\$\.?([^`]*)`\s*$")


def detect_format(data: bytes, limits: Limits) -> str:
    """xlsx, qti or moodle, from the bytes themselves."""
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        with open_zip(data, limits) as archive:
            names = archive.namelist()
        if any(n.rsplit("/", 1)[-1] == "imsmanifest.xml" for n in names):
            return "qti"
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        raise bad_request("file", "a zip archive that is neither an xlsx workbook nor a QTI package "
                                  "(no imsmanifest.xml)")
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") and b"<quiz" in data[:65536]:
        return "moodle"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise bad_request("file", "an old .xls workbook: save it as .xlsx")
    raise bad_request("file", "unrecognised file: expected an xlsx workbook, a QTI 2.1/3.0 zip package or "
                              "a Moodle XML file")


def parse_file(data: bytes, fmt: str, limits: Limits) -> ParseResult:
    if fmt == "xlsx":
        return parse_excel(data, limits)
    if fmt == "qti":
        return parse_qti(data, limits)
    if fmt == "moodle":
        return parse_moodle(data)
    raise bad_request("format", f"unknown import format {fmt!r}")


def validate_rows(parsed: ParseResult, occupation: str, level: int,
                  points: dict[str, tuple[Point, list[str]]], bank_keys: dict[str, int]) -> tuple[
                      list[tuple[ParsedItem, ItemIn]], list[FieldError]]:
    """Every row checked the way ``add_item`` checks one item; pure, so every bad row is listed."""
    errors = list(parsed.errors)
    good: list[tuple[ParsedItem, ItemIn]] = []
    seen: dict[str, str] = {}
    for row in parsed.items:
        prefix = f"{row.position}: "
        try:  # the one input policy (qbank.lib.text), as for JSON bodies
            fields = clean_tree(row.fields)
        except TextRefused as exc:
            errors.append(FieldError(field=prefix + exc.field, reason=exc.reason))
            continue
        try:
            item = msgspec.convert({**fields, "occupation_code": occupation, "level": level, "type": row.type},
                                   ItemIn)
        except msgspec.ValidationError as exc:
            message = str(exc)
            match = _AT.search(message)
            field = (match.group(1) or "row") if match else "row"
            errors.append(FieldError(field=prefix + field, reason=_AT.sub("", message)))
            continue
        row_errors = content_errors(item.type, item, points, prefix=prefix)
        key = stem_key(item.stem)
        if item.stem.strip():
            if key in seen:
                row_errors.append(FieldError(field=prefix + "stem", reason=f"the same stem as {seen[key]}"))
            elif key in bank_keys:
                row_errors.append(FieldError(field=prefix + "stem", reason=(
                    f"the same stem already exists as item {bank_keys[key]}")))
            seen.setdefault(key, row.position)
        if row_errors:
            errors.extend(row_errors)
        else:
            good.append((row, item))
    return good, errors


async def _record_items(db: AsyncSession, actor: Actor, created: list[tuple[Item, ItemVersion]],
                        file_sha: str) -> None:
    """One ``item.create`` entry per item, chained in one batch under one lock of the head."""
    await chain(db, [AuditEntry(at=utcnow(), actor=actor.label, role=actor.role.value, action="item.create",
                                entity_type="item", entity_id=str(item.id), before_digest=None,
                                after_digest=version.digest, detail={"version": 1, "import": file_sha})
                     for item, version in created])


async def import_items(db: AsyncSession, actor: Actor, data: bytes, occupation: str, level: int, *,
                       fmt: str | None = None, filename: str | None = None, limits: Limits | None = None,
                       progress: Progress | None = None) -> ImportOut:
    """Import every item of the file or none; raises ProblemError 400 listing every bad row."""
    limits = limits or Limits()
    check_size(data, limits)
    check_occupation(actor, occupation)
    await require_level(db, occupation, level)
    fmt = fmt or detect_format(data, limits)
    parsed = parse_file(data, fmt, limits)
    if not parsed.items and not parsed.errors:
        raise bad_request("file", "the file holds no items")
    points = await point_index(db, occupation, level)
    bank_keys = {key: item_id for key, item_id in (await db.execute(select(Item.stem_key, Item.id).where(
        Item.occupation_code == occupation, Item.level == level))).all()}
    good, errors = validate_rows(parsed, occupation, level, points, bank_keys)
    if errors:
        rows = len({e.field.split(":", 1)[0] for e in errors})
        raise ProblemError(400, f"{rows} bad row(s) of {len(parsed.items)}: nothing was imported; "
                                + "; ".join(f"{e.field}: {e.reason}" for e in errors[:3])
                                + (" …" if len(errors) > 3 else ""),
                           errors=errors, extra={"format": fmt, "rows": len(parsed.items)})
    sha = hashlib.sha256(data).hexdigest()
    created: list[tuple[Item, ItemVersion]] = []
    total = len(good)
    try:
        for n, (_, item_in) in enumerate(good, start=1):
            created.append(await add_item(db, actor, item_in, points, batch_checked=True))
            if progress is not None and (n % 200 == 0 or n == total):
                progress("create", n, total)
        await db.flush()
    except IntegrityError as exc:  # a concurrent writer added one of these stems after the check
        raise ProblemError(409, "another write added one of these stems while the import ran; nothing was "
                                "imported, try again") from exc
    ids = [item.id for item, _ in created]
    if progress is not None:
        progress("near-duplicates", 0, 1)
    await refresh_near_duplicates(db, occupation, level, ids)
    await _record_items(db, actor, created, sha)
    out = ImportOut(format=fmt, sha256=sha, count=len(ids), first_id=min(ids, default=None),
                    last_id=max(ids, default=None), item_ids=ids,
                    near_duplicates=sum(1 for item, _ in created if item.near_duplicates))
    await record(db, actor, "import.create", "import", sha, after={"item_ids": ids}, detail={
        "count": out.count, "sha256": sha, "first_id": out.first_id, "last_id": out.last_id, "format": fmt,
        "filename": filename, "occupation": occupation, "level": level})
    if progress is not None:
        progress("near-duplicates", 1, 1)
    return out


async def select_items(db: AsyncSession, actor: Actor, occupation: str, level: int, *, status: str | None = None,
                       point: str | None = None, item_type: str | None = None,
                       ids: list[int] | None = None) -> list[tuple[Item, dict[str, Any]]]:
    """The bank's items (filtered) with their current version's content, in id order."""
    check_occupation(actor, occupation)
    await require_level(db, occupation, level)
    query = select(Item, ItemVersion.content).join(ItemVersion, (ItemVersion.item_id == Item.id) & (
        ItemVersion.version == Item.version)).where(Item.occupation_code == occupation, Item.level == level)
    if status:
        query = query.where(Item.status == status)
    if point:
        query = query.where(Item.point_code == point)
    if item_type:
        query = query.where(Item.type == item_type)
    if ids:
        query = query.where(Item.id.in_(ids))
    rows = [(item, content) for item, content in (await db.execute(query.order_by(Item.id))).all()]
    if ids:  # named ids that are not there: say which, rather than export fewer items than asked
        missing = sorted(set(ids) - {item.id for item, _ in rows})
        if missing:
            raise bad_request("ids", f"items {missing[:20]} are not in {occupation} level {level}")
    return rows


EXPORT_MEDIA = {"qti3": ("application/zip", "zip"),
                "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")}


def check_exportable(rows: list[tuple[Item, dict[str, Any]]]) -> None:
    """Text stored before the input policy may hold characters no xlsx or XML file can carry: a 409 naming each
    item and field to fix, rather than a failed or malformed export."""
    bad = [{"item": item.id, "fields": fields} for item, content in rows
           if (fields := refused_fields(content) + refused_fields(item.maintainer, "maintainer"))]
    if bad:
        raise conflict(f"{len(bad)} item(s) hold control characters that an export cannot carry (stored before "
                       "the input policy); change them and export again", items=bad[:100])


def export_bytes(rows: list[tuple[Item, dict[str, Any]]], fmt: str, title: str) -> tuple[bytes, int]:
    """The file and how many items it holds (QTI holds choice items only; practical tasks stay out)."""
    check_exportable(rows)
    if fmt == "xlsx":
        return write_excel((i.type, c, i.maintainer) for i, c in rows), len(rows)
    choice = [(i, c) for i, c in rows if i.type != "practical_task"]
    return write_qti3(((i.id, i.type, c, i.maintainer) for i, c in choice), title), len(choice)
