"""Items: validation, immutable versions, review workflow, duplicates, search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import anyio.to_thread
import msgspec
import numpy as np
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import Select, Table, Text, bindparam, func, insert, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from qbank.audit.models import AuditEntry
from qbank.audit.services import chain, new_entry, record
from qbank.blueprints.schemas import Point
from qbank.blueprints.services import point_index, require_level
from qbank.db import get_or_404, utcnow
from qbank.items.media import placeholder_errors
from qbank.items.models import Item, ItemVersion
from qbank.items.schemas import (
    LABELS,
    TRUE_FALSE_OPTIONS,
    FieldChange,
    ItemContent,
    ItemDiff,
    ItemIn,
    ItemOut,
    ItemPage,
    ItemPatch,
    ItemUpdate,
    ItemVersionOut,
)
from qbank.items.similarity import content_key, near_duplicate_pairs, stem_key
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.digest import digest
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict, not_found
from qbank.lib.validation import convert_or_errors

CONTENT_FIELDS: tuple[str, ...] = ItemContent.__struct_fields__
TRANSITIONS = {  # action: (allowed from, to)
    "submit": ({"draft"}, "in_review"),
    "approve": ({"in_review"}, "approved"),
    "reject": ({"in_review"}, "draft"),
    "retire": ({"draft", "in_review", "approved"}, "retired"),
}


def content_errors(item_type: str, content: ItemContent, points: dict[str, tuple[Point, list[str]]],
                   prefix: str = "") -> list[FieldError]:
    """Every reason this content is not a valid item of this type; empty when it is."""
    errors: list[FieldError] = []

    def err(field: str, reason: str) -> None:
        errors.append(FieldError(field=prefix + field, reason=reason))

    if not content.stem.strip():
        err("stem", "the stem is empty")
    texts = {"stem": content.stem, "explanation": content.explanation,
             **{f"options[{i}]": option for i, option in enumerate(content.options)}}
    for field, reason in placeholder_errors(texts, content.media):
        err(field, reason)
    if not points:
        err("point_code", "this occupation and level has no blueprint yet, so no appraisal point exists")
    elif content.point_code not in points:
        err("point_code", f"appraisal point {content.point_code} is not in this level's blueprint")
    if item_type == "practical_task":
        if content.practical is None:
            err("practical", "a practical task needs its preparation notice, tasks, marking sheet and duration")
        if content.options or content.answer:
            err("options", "a practical task has no options or answer key")
        return errors
    if content.practical is not None:
        err("practical", f"a {item_type} item has no practical task part")
    n = len(content.options)
    if item_type == "true_false" and n != 2:
        err("options", f"a true/false item has exactly 2 options, got {n}")
    elif not 2 <= n <= 8:
        err("options", f"an item has 2 to 8 options, got {n}")
    for i, option in enumerate(content.options):
        if not option.strip():
            err(f"options[{i}]", "the option is empty")
    if len(set(content.answer)) != len(content.answer):
        err("answer", "the answer key repeats an option")
    for label in content.answer:
        if label not in LABELS[:n]:
            err("answer", f"answer {label} is not among the options ({', '.join(LABELS[:n]) or 'none'})")
    correct = len(set(content.answer))
    if item_type in ("true_false", "single_choice") and correct != 1:
        err("answer", f"a {item_type} item has exactly one correct option, got {correct}")
    if item_type == "multiple_choice" and correct < 2:
        err("answer", f"a multiple_choice item has at least 2 correct options, got {correct}")
    return errors


def complete(item_type: str, content: ItemContent) -> None:
    """What every way in fills in alike (the API, PATCH/PUT and imports): a true/false item sent without
    options gets 正确 / 错误."""
    if item_type == "true_false" and not content.options:
        content.options = list(TRUE_FALSE_OPTIONS)


async def describe_items(db: AsyncSession, ids: list[int]) -> dict[int, str]:
    """"item 7", or "item 7, retired on 2026-11-29 (超纲)" for a retired one: how a duplicate is named."""
    rows = (await db.execute(select(Item.id, Item.status).where(Item.id.in_(ids)))).all() if ids else []
    retired = [str(item_id) for item_id, status in rows if status == "retired"]
    why: dict[str, tuple[Any, Any]] = {}
    if retired:
        for entity_id, at, detail in (await db.execute(
                select(AuditEntry.entity_id, AuditEntry.at, AuditEntry.detail).where(
                    AuditEntry.action == "item.retire", AuditEntry.entity_type == "item",
                    AuditEntry.entity_id.in_(retired)).order_by(AuditEntry.seq))).all():
            why[entity_id] = (at, (detail or {}).get("reason"))
    out = {}
    for item_id, status in rows:
        name = f"item {item_id}"
        if status == "retired":
            at, reason = why.get(str(item_id), (None, None))
            name += f", retired on {at:%Y-%m-%d}" if at is not None else ", retired"
            name += f" ({reason})" if reason else " (no reason given)"
        out[item_id] = name
    return out


async def refuse_duplicate(db: AsyncSession, existing: int | None) -> None:
    if existing is not None:
        name = (await describe_items(db, [existing]))[existing]
        raise conflict(f"the same question (stem and options) already exists as {name}", existing_item=existing)


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)


def content_of(data: ItemContent) -> dict[str, Any]:
    return {f: msgspec.to_builtins(getattr(data, f)) for f in CONTENT_FIELDS}


# The item's own columns in ItemOut (beside its version's content)
ITEM_OUT_COLUMNS = ("id", "occupation_code", "level", "type", "status", "version", "author", "maintainer", "reviewer",
                    "reject_reason", "near_duplicates", "times_used", "created_at", "updated_at")


def item_out_of(column: Callable[[str], Any], content: Any) -> ItemOut:
    """An item at a version from its columns (``column(name)``: an ORM row's attribute or a result row's value)
    and that version's stored content."""
    parsed = msgspec.convert(content, ItemContent)
    return ItemOut(**{f: getattr(parsed, f) for f in CONTENT_FIELDS},
                   **{name: column(name) for name in ITEM_OUT_COLUMNS if name != "near_duplicates"},
                   near_duplicates=list(column("near_duplicates")))


def item_out(item: Item, version: ItemVersion) -> ItemOut:
    return item_out_of(lambda name: getattr(item, name), version.content)


def version_out(row: ItemVersion) -> ItemVersionOut:
    content = msgspec.convert(row.content, ItemContent)
    return ItemVersionOut(**{f: getattr(content, f) for f in CONTENT_FIELDS}, item_id=row.item_id,
                          version=row.version, digest=row.digest, created_at=row.created_at,
                          created_by=row.created_by)


async def exact_duplicate(db: AsyncSession, occupation: str, level: int, key: str, exclude: int | None) -> int | None:
    query = select(Item.id).where(Item.occupation_code == occupation, Item.level == level, Item.content_key == key)
    if exclude is not None:
        query = query.where(Item.id != exclude)
    return await db.scalar(query.limit(1))


def _stored_marks(value: str | list[int] | None) -> list[int]:
    """An item's marks as the driver hands them over: JSON text (SQLite), or a list (asyncpg decodes JSON)."""
    if isinstance(value, str):
        return list(msgspec.json.decode(value) or [])
    return value or []


def _near_duplicate_marks(rows: Sequence[Any], changed: list[int]) -> tuple[dict[int, list[int]], set[int]]:
    """The new marks of every item whose marks change (id, stem, marks rows of the bank), and the changed items
    that now have marks. Pure CPU work over the whole bank: run in a thread."""
    if not rows:
        return {}, set()
    ids = [r[0] for r in rows]
    position = {item_id: i for i, item_id in enumerate(ids)}
    candidates = np.array([position[i] for i in changed if i in position], dtype=np.int64)
    found: dict[int, set[int]] = {i: set() for i in changed}
    for a, b, _ in near_duplicate_pairs([r[1] for r in rows], ids, candidates):
        found.setdefault(a, set()).add(b)
        found.setdefault(b, set()).add(a)
    previous = {r[0]: set(_stored_marks(r[2])) for r in rows}
    changed_set = set(changed)
    new_marks: dict[int, list[int]] = {}
    for item_id in set(found) | {i for i, prev in previous.items() if prev & changed_set}:
        marks = found.get(item_id, set())
        if item_id not in changed_set:  # keep its marks to untouched items, redo those to changed ones
            marks = (previous.get(item_id, set()) - changed_set) | marks
        if marks != previous.get(item_id, set()):
            new_marks[item_id] = sorted(marks)
    return new_marks, {i for i in changed if found.get(i)}


async def refresh_near_duplicates(db: AsyncSession, occupation: str, level: int, changed: list[int]) -> set[int]:
    """Recompute the near-duplicate marks of the changed items and of the items they resemble; the changed items
    that now have marks."""
    # The marks are read as their JSON text: decoding 50,000 of them as the rows arrive held the event loop for
    # a third of a second. Decoding and comparing (a bulk import: thousands of stems against the whole bank) is
    # CPU work of up to a second: in a thread, off the event loop; the result is already fetched.
    result = await db.execute(select(Item.id, Item.stem, type_coerce(Item.near_duplicates, Text)).where(
        Item.occupation_code == occupation, Item.level == level, Item.status != "retired"))
    new_marks, flagged = await anyio.to_thread.run_sync(lambda: _near_duplicate_marks(result.all(), changed))
    untracked: list[dict[str, Any]] = []
    for item_id, marks in new_marks.items():
        loaded = db.identity_map.get(identity_key(Item, item_id))
        if isinstance(loaded, Item):
            loaded.near_duplicates = marks
        else:  # not in this session (a bulk import's rows): one UPDATE by primary key for all of them
            untracked.append({"id": item_id, "near_duplicates": marks})
    if untracked:
        await db.execute(update(Item), untracked)
    await db.flush()
    return flagged


async def add_item(db: AsyncSession, actor: Actor, data: ItemIn,
                   points: dict[str, tuple[Point, list[str]]] | None = None, *,
                   batch_checked: bool = False) -> tuple[Item, ItemVersion]:
    """Create an item and its first version, after every check; does not refresh near duplicates.

    ``batch_checked``: the caller (a bulk import) has checked the level and the exact duplicates of the whole
    batch in this transaction already, so the two per-item queries are skipped and the version row is left
    for the next flush; the content checks still run."""
    check_occupation(actor, data.occupation_code)
    if not batch_checked:
        await require_level(db, data.occupation_code, data.level)
    if points is None:
        points = await point_index(db, data.occupation_code, data.level)
    complete(data.type, data)
    raise_if(content_errors(data.type, data, points))
    key = content_key(data.stem, data.options)
    if not batch_checked:
        await refuse_duplicate(db, await exact_duplicate(db, data.occupation_code, data.level, key, None))
    now = utcnow()
    item = Item(**_item_row(actor, data, now))
    db.add(item)
    await db.flush()
    version = ItemVersion(**_version_row(actor, item.id, content_of(data), now))
    db.add(version)
    if not batch_checked:
        await db.flush()
    return item, version


def _item_row(actor: Actor, data: ItemIn, now: datetime) -> dict[str, Any]:
    """A new item's row (draft, version 1); ``data`` already checked."""
    return dict(occupation_code=data.occupation_code, level=data.level, type=data.type, status="draft", version=1,
                stem=data.stem, stem_key=stem_key(data.stem), content_key=content_key(data.stem, data.options),
                point_code=data.point_code, author=actor.name, maintainer=data.maintainer or actor.name,
                near_duplicates=[], times_used=0, created_at=now, updated_at=now)


def _version_row(actor: Actor, item_id: int, content: dict[str, Any], now: datetime) -> dict[str, Any]:
    return dict(item_id=item_id, version=1, content=content, digest=digest(content), created_at=now,
                created_by=actor.label, created_by_token_id=actor.token_id)


async def insert_items(db: AsyncSession, actor: Actor, batch: Sequence[ItemIn]) -> list[tuple[int, str]]:
    """A bulk import's batch, already checked as a whole (``imports.services.check_rows``: content, level, exact
    duplicates): the items and their first versions in two multi-row inserts; (item id, version digest) in the
    batch's order. Near duplicates and the trail are the caller's (once per import, in the same batches)."""
    if not batch:
        return []
    now = utcnow()

    def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The items' rows and their versions' (item id to come): keys, contents and digests are CPU work that
        would hold the event loop for a tenth of a second per thousand items, so a thread makes them."""
        return ([_item_row(actor, data, now) for data in batch],
                [_version_row(actor, 0, content_of(data), now) for data in batch])

    item_rows, versions = await anyio.to_thread.run_sync(rows)
    # core inserts on the tables: no ORM bookkeeping per row
    items, versions_table = cast(Table, Item.__table__), cast(Table, ItemVersion.__table__)
    ids = list((await db.scalars(insert(items).returning(items.c.id, sort_by_parameter_order=True),
                                 item_rows)).all())
    for item_id, version in zip(ids, versions, strict=True):
        version["item_id"] = item_id
    await db.execute(insert(versions_table), versions)
    return [(item_id, version["digest"]) for item_id, version in zip(ids, versions, strict=True)]


async def create_item(db: AsyncSession, actor: Actor, data: ItemIn) -> tuple[Item, ItemVersion]:
    item, version = await add_item(db, actor, data)
    await refresh_near_duplicates(db, item.occupation_code, item.level, [item.id])
    return item, version


async def get_item(db: AsyncSession, actor: Actor, item_id: int) -> Item:
    item = await get_or_404(db, Item, item_id, "item")
    check_occupation(actor, item.occupation_code)
    return item


def _read_item_query() -> Select[Any]:
    items, versions = cast(Table, Item.__table__), cast(Table, ItemVersion.__table__)
    return (select(*(items.c[name] for name in ITEM_OUT_COLUMNS), versions.c.content)
            .join(versions, (versions.c.item_id == items.c.id) & (versions.c.version == items.c.version))
            .where(items.c.id == bindparam("item_id")))


# Built once, on the tables (no ORM objects): the hottest read of the service costs one cached statement
READ_ITEM = _read_item_query()


async def read_item(db: AsyncSession, actor: Actor, item_id: int) -> ItemOut:
    """An item at its current version: the item and that version in one query."""
    row = (await db.execute(READ_ITEM, {"item_id": item_id})).mappings().first()
    if row is None:
        raise not_found("item", item_id)
    check_occupation(actor, row["occupation_code"])
    return item_out_of(row.__getitem__, row["content"])


async def get_version(db: AsyncSession, item_id: int, version: int) -> ItemVersion:
    row = await db.scalar(select(ItemVersion).where(ItemVersion.item_id == item_id, ItemVersion.version == version))
    if row is None:
        raise not_found(f"version {version} of item", item_id)
    return row


async def update_item(db: AsyncSession, actor: Actor, item: Item, data: ItemContent,
                      maintainer: str | None) -> ItemVersion:
    """A change makes one new immutable version and sends the item back to draft for review; the same content
    again changes nothing."""
    if item.status == "retired":
        name = (await describe_items(db, [item.id]))[item.id]
        raise conflict(f"{name} and cannot be edited")
    points = await point_index(db, item.occupation_code, item.level)
    complete(item.type, data)
    raise_if(content_errors(item.type, data, points))
    key = content_key(data.stem, data.options)
    await refuse_duplicate(db, await exact_duplicate(db, item.occupation_code, item.level, key, item.id))
    current = await get_version(db, item.id, item.version)
    content = content_of(data)
    # Compared as full contents: a version written before a field existed lacks its key, not its value.
    unchanged = content == content_of(msgspec.convert(current.content, ItemContent))
    if unchanged and (maintainer is None or maintainer == item.maintainer):
        return current
    now = utcnow()
    if not unchanged:
        current = ItemVersion(item_id=item.id, version=item.version + 1, content=content, digest=digest(content),
                              created_at=now, created_by=actor.label, created_by_token_id=actor.token_id)
        db.add(current)
        item.version += 1
        item.status, item.reviewer, item.reject_reason = "draft", None, None
    item.stem, item.stem_key, item.content_key, item.point_code = data.stem, stem_key(data.stem), key, data.point_code
    if maintainer:
        item.maintainer = maintainer
    item.updated_at = now
    await db.flush()
    await refresh_near_duplicates(db, item.occupation_code, item.level, [item.id])
    return current


def merge_patch(current: dict[str, Any], patch: ItemPatch) -> ItemContent:
    """RFC 7396 on an item's content: members sent replace theirs, ``null`` removes one (its default applies),
    ``practical`` merges member by member; the result is checked as a whole content."""
    merged = dict(msgspec.to_builtins(msgspec.convert(current, ItemContent)))
    sent: dict[str, Any] = msgspec.to_builtins(patch)  # fields not sent are UNSET and left out
    sent.pop("maintainer", None)
    for field, value in sent.items():
        if value is None:
            merged.pop(field, None)
        elif field == "practical" and isinstance(merged.get(field), dict):
            merged[field] = {**merged[field], **value}
            merged[field] = {k: v for k, v in merged[field].items() if v is not None}
        else:
            merged[field] = value
    content, error = convert_or_errors(merged, ItemContent)
    if error is not None:
        raise bad_request(*error)
    assert isinstance(content, ItemContent)
    return content


async def versions_since_approval(db: AsyncSession, item: Item) -> list[ItemVersion]:
    """The item's versions made after its last approval (every version if it was never approved)."""
    query = select(ItemVersion).where(ItemVersion.item_id == item.id)
    if item.approved_version is not None:
        query = query.where(ItemVersion.version > item.approved_version)
    return list((await db.scalars(query.order_by(ItemVersion.version))).all())


def check_may_approve(item: Item, versions: Sequence[ItemVersion], actor: Actor) -> None:
    """Four eyes, by identity: nobody approves an item when they made any of its versions since its last approval
    (``versions``, from :func:`versions_since_approval`), whatever their role. Identity is the token id: names are
    for display only, so two tokens with the same name are two people. A version from before token ids were kept
    falls back to the name in its label. Every approval path (one item, or many at once) calls this."""
    for version in versions:
        if version.created_by_token_id is not None:
            own = version.created_by_token_id == actor.token_id
        else:
            own = version.created_by.rpartition("#")[0] == actor.name
        if own:
            raise PermissionDeniedException(
                f"{actor.label} made version {version.version} of item {item.id} since its last approval and may "
                "not approve it: another reviewer must (four eyes)")


def check_transition(item: Item, action: str, actor: Actor, versions: Sequence[ItemVersion] = ()) -> None:
    """Whether ``actor`` may do ``action`` to ``item`` now (409: its status; 403: four eyes, for approve with
    ``versions`` from :func:`versions_since_approval`). Every path, one item or many, calls this."""
    allowed, _ = TRANSITIONS[action]
    if item.status not in allowed:
        raise conflict(f"item {item.id} is {item.status}; {action} needs it to be {' or '.join(sorted(allowed))}")
    if action == "approve":
        check_may_approve(item, versions, actor)


def apply_transition(item: Item, action: str, actor: Actor, reason: str | None = None) -> None:
    """Move a checked item (:func:`check_transition`) to its new status, with who reviewed it and why."""
    item.status = TRANSITIONS[action][1]
    if action == "approve":
        item.reviewer, item.reject_reason, item.approved_version = actor.name, None, item.version
    elif action == "reject":
        item.reviewer, item.reject_reason = actor.name, reason
    item.updated_at = utcnow()


def status_entry(actor: Actor, item: Item, action: str, before: str, reason: str | None) -> AuditEntry:
    """The trail entry of one item's move through review (one per item, in bulk too)."""
    return new_entry(actor.label, actor.role.value, f"item.{action}", "item", item.id, before={"status": before},
                     after={"status": item.status}, detail={"version": item.version, "reason": reason})


async def transition(db: AsyncSession, actor: Actor, item: Item, action: str, reason: str | None = None) -> None:
    versions = await versions_since_approval(db, item) if action == "approve" else []
    check_transition(item, action, actor, versions)
    apply_transition(item, action, actor, reason)
    await db.flush()
    if action == "retire":
        await refresh_near_duplicates(db, item.occupation_code, item.level, [item.id])


SelectQ = TypeVar("SelectQ", bound=Select[Any])


def items_where(query: SelectQ, actor: Actor, *, occupation: str | None, level: int | None, point: str | None,
                item_type: str | None, text: str | None) -> SelectQ:
    """``query`` narrowed to the items the caller may see that match the filter: the one item filter of the
    search and of bulk review."""
    if occupation:
        check_occupation(actor, occupation)
        query = query.where(Item.occupation_code == occupation)
    elif not actor.may_touch(""):
        query = query.where(Item.occupation_code.in_(actor.occupations))
    if level is not None:
        query = query.where(Item.level == level)
    if point:
        query = query.where(Item.point_code == point)
    if item_type:
        query = query.where(Item.type == item_type)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(Item.stem.ilike(f"%{escaped}%", escape="\\")))
    return query


async def search_items(
    db: AsyncSession, actor: Actor, *, occupation: str | None, level: int | None, point: str | None,
    item_type: str | None, status: str | None, text: str | None, limit: int, offset: int,
) -> ItemPage:
    query = items_where(select(Item), actor, occupation=occupation, level=level, point=point, item_type=item_type,
                        text=text)
    if status:
        query = query.where(Item.status == status)
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    items = (await db.scalars(query.order_by(Item.id).limit(limit).offset(offset))).all()
    versions = {}
    if items:
        rows = (await db.scalars(select(ItemVersion).where(
            or_(*[(ItemVersion.item_id == i.id) & (ItemVersion.version == i.version) for i in items])))).all()
        versions = {v.item_id: v for v in rows}
    return ItemPage(items=[item_out(i, versions[i.id]) for i in items], total=total, limit=limit, offset=offset)


def diff_versions(a: ItemVersion, b: ItemVersion) -> ItemDiff:
    changes = [FieldChange(field=f, before=a.content.get(f), after=b.content.get(f))
               for f in CONTENT_FIELDS if a.content.get(f) != b.content.get(f)]
    return ItemDiff(item_id=a.item_id, from_version=a.version, to_version=b.version, changes=changes)



# ----------------------------------------------------------------------------------------------- use cases
async def write_item(db: AsyncSession, actor: Actor, data: ItemIn) -> ItemOut:
    """A new item: its first version, status draft."""
    item, version = await create_item(db, actor, data)
    out = item_out(item, version)
    await record(db, actor, "item.create", "item", item.id, after=version.content, detail={"version": 1})
    return out


async def edit_item(db: AsyncSession, actor: Actor, item_id: int, data: ItemUpdate | ItemPatch) -> ItemOut:
    """A change, whole (PUT, ``ItemUpdate``) or merged (PATCH, ``ItemPatch``): one new immutable version recorded
    with before, after and the fields that changed, and the item back to draft."""
    item = await get_item(db, actor, item_id)
    before = await get_version(db, item.id, item.version)
    before_content, before_version = before.content, before.version
    if isinstance(data, ItemPatch):
        content: ItemContent = merge_patch(before_content, data)
        maintainer = data.maintainer if isinstance(data.maintainer, str) else None
    else:
        content, maintainer = data, data.maintainer
    version = await update_item(db, actor, item, content, maintainer)
    if version.version != before_version:
        changed = [c.field for c in diff_versions(before, version).changes]
        await record(db, actor, "item.update", "item", item.id, before=before_content, after=version.content,
                     detail={"version": version.version, "changed": changed})
    return item_out(item, version)


async def change_status(db: AsyncSession, actor: Actor, item: Item, action: str, reason: str | None = None) -> None:
    """Move an item through review (submit, approve, reject, retire) and record it."""
    before = item.status
    await transition(db, actor, item, action, reason)
    await chain(db, [status_entry(actor, item, action, before, reason)])


async def review_item(db: AsyncSession, actor: Actor, item_id: int, action: str, reason: str | None = None) -> ItemOut:
    item = await get_item(db, actor, item_id)
    await change_status(db, actor, item, action, reason)
    return item_out(item, await get_version(db, item.id, item.version))
