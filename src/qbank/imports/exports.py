"""Export of a bank, or a selection of it: the xlsx template, a QTI 3.0 package or Moodle XML, with media."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.blueprints.schemas import BlueprintIn
from qbank.blueprints.services import current_blueprint, require_level, walk
from qbank.imports.excel import write_excel
from qbank.imports.moodle import write_moodle
from qbank.imports.qti_export import write_qti3
from qbank.imports.schemas import ExportItem
from qbank.items.media import fetch_media
from qbank.items.models import Item, ItemVersion
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import bad_request

EXPORT_MEDIA = {"qti3": ("application/zip", "zip"), "moodle": ("application/xml", "xml"),
                "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")}


async def select_items(db: AsyncSession, actor: Actor, occupation: str, level: int, *, status: str | None = None,
                       point: str | None = None, item_type: str | None = None,
                       ids: list[int] | None = None) -> list[ExportItem]:
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
    rows = [ExportItem(id=item.id, type=item.type, content=content, maintainer=item.maintainer)
            for item, content in (await db.execute(query.order_by(Item.id))).all()]
    if ids:  # named ids that are not there: say which, rather than export fewer items than asked
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise bad_request("ids", f"items {missing[:20]} are not in {occupation} level {level}")
    return rows


async def moodle_categories(db: AsyncSession, occupation: str, level: int) -> dict[str, str]:
    """Point code → Moodle category path through the blueprint's scopes: ``$course$/top/<occupation> L3/01
    基础知识/01.01 电工基础/001 鉴定点1`` (a last segment that starts with the point code places on import)."""
    blueprint = await current_blueprint(db, occupation, level)
    if blueprint is None:
        return {}
    scopes = msgspec.convert({"scopes": blueprint.scopes}, BlueprintIn).scopes
    names: dict[str, str] = {}
    out: dict[str, str] = {}
    for _, scope, codes in walk(scopes):
        names[scope.code] = scope.name
        base = "/".join(f"{code} {names.get(code, '')}".strip().replace("/", "／") for code in codes)
        for point in scope.points:
            out[point.code] = f"$course$/top/{occupation} L{level}/{base}/{point.code} " \
                              f"{point.name.replace('/', '／')}"
    return out


async def export_file(db: AsyncSession, archive: RetentionArchive | None, rows: list[ExportItem], fmt: str,
                      occupation: str, level: int) -> tuple[bytes, int]:
    """The file and how many items it holds (QTI and Moodle hold choice items only: practical tasks stay out)."""
    if fmt == "xlsx":
        return write_excel(rows), len(rows)
    choice = [row for row in rows if row.type != "practical_task"]
    keys = [key for row in choice for key in row.content.get("media") or []]
    if keys and archive is None:
        raise bad_request("format", "the items carry media and this process has no evidence archive configured")
    media: dict[str, tuple[bytes, str]] = {}
    if keys and archive is not None:
        media = {key.rsplit("/", 1)[-1]: blob for key, blob in (await fetch_media(archive, keys)).items()}
    if fmt == "moodle":
        return write_moodle(choice, media, await moodle_categories(db, occupation, level)), len(choice)
    return write_qti3(choice, f"{occupation} level {level}", media), len(choice)

