"""Bulk review: submit, approve or reject many items in one transaction, each item checked by the single-item
rules (:func:`~qbank.items.services.check_transition`), one trail entry per item, in a few queries whatever the
number of items."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence

from litestar.exceptions import PermissionDeniedException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qbank.audit.services import chain
from qbank.items.models import Item, ItemVersion
from qbank.items.schemas import (
    BULK_LIMIT,
    BulkReviewIn,
    BulkReviewOut,
    BulkReviewProblem,
    ItemFilter,
    ItemReviewResult,
)
from qbank.items.services import TRANSITIONS, apply_transition, check_transition, items_where, status_entry
from qbank.lib.actors import Actor, Role, check_occupation
from qbank.lib.problems import FieldError, ProblemError, bad_request

ROLES = {"submit": (Role.admin, Role.author), "approve": (Role.admin, Role.reviewer),
         "reject": (Role.admin, Role.reviewer)}
CHUNK = 500  # ids per IN (…): well under every database's parameter limit
Progress = Callable[[int, int], Awaitable[None] | None]


async def chosen_ids(db: AsyncSession, actor: Actor, data: BulkReviewIn) -> list[int]:
    """The items the request names, or those its filter finds in the status the action needs."""
    if (data.ids is None) == (data.filter is None):
        raise bad_request("ids", "name the items by ids or choose them by a filter (one of the two)")
    if data.action == "reject" and not data.reason:
        raise bad_request("reason", "a rejection gives its reason")
    if data.ids is not None:
        twice = sorted(i for i, n in Counter(data.ids).items() if n > 1)
        if twice:
            raise bad_request("ids", f"items named more than once: {', '.join(map(str, twice[:20]))}")
        return list(data.ids)
    f = data.filter or ItemFilter()
    query = items_where(select(Item.id).where(Item.status.in_(sorted(TRANSITIONS[data.action][0]))), actor,
                        occupation=f.occupation, level=f.level, point=f.point, item_type=f.type, text=f.q)
    ids = list((await db.scalars(query.order_by(Item.id).limit(BULK_LIMIT + 1))).all())
    if len(ids) > BULK_LIMIT:
        raise bad_request("filter", f"the filter finds more than {BULK_LIMIT:,} items; narrow it (or send them in "
                                    "several requests)")
    return ids


async def versions_since_approvals(db: AsyncSession, items: Sequence[Item]) -> dict[int, list[ItemVersion]]:
    """Every item's versions made since its last approval (all of them if never approved), in one query per
    chunk: what four eyes looks at."""
    out: dict[int, list[ItemVersion]] = defaultdict(list)
    for start in range(0, len(items), CHUNK):
        ids = [i.id for i in items[start:start + CHUNK]]
        rows = (await db.scalars(
            select(ItemVersion).join(Item, Item.id == ItemVersion.item_id)
            .where(ItemVersion.item_id.in_(ids), ItemVersion.version > func.coalesce(Item.approved_version, 0))
            .order_by(ItemVersion.item_id, ItemVersion.version))).all()
        for v in rows:
            out[v.item_id].append(v)
    return out


async def review_items(db: AsyncSession, actor: Actor, data: BulkReviewIn,
                       progress: Progress | None = None) -> BulkReviewOut:
    """Check every chosen item, then change those that pass (all or none in mode all_or_nothing) with one trail
    entry each. ``progress(done, total)`` is called as items are checked (the CLI's progress bar)."""
    if actor.role not in ROLES[data.action]:
        raise PermissionDeniedException(f"a {actor.role.value} token may not {data.action} items")
    ids = await chosen_ids(db, actor, data)
    items: dict[int, Item] = {}
    for start in range(0, len(ids), CHUNK):
        rows = (await db.scalars(select(Item).where(Item.id.in_(ids[start:start + CHUNK])))).all()
        items.update({i.id: i for i in rows})
        if progress is not None:
            await _call(progress, len(items) // 2, len(ids))
    versions = await versions_since_approvals(db, list(items.values())) if data.action == "approve" else {}
    results: list[ItemReviewResult] = []
    passed: list[Item] = []
    for item_id in ids:
        item = items.get(item_id)
        if item is None:
            results.append(ItemReviewResult(id=item_id, ok=False, status=None, version=None,
                                            reason=f"item {item_id} does not exist"))
            continue
        try:
            check_occupation(actor, item.occupation_code)
            check_transition(item, data.action, actor, versions.get(item.id, []))
        except (ProblemError, PermissionDeniedException) as exc:
            results.append(ItemReviewResult(id=item_id, ok=False, status=item.status, version=item.version,
                                            reason=f"item {item_id}: {exc.detail}"))
            continue
        passed.append(item)
        results.append(ItemReviewResult(id=item_id, ok=True, status=item.status, version=item.version))
    refused = len(results) - len(passed)
    if refused and data.mode == "all_or_nothing":
        detail = (f"{refused} of {len(ids)} items cannot be {past(data.action)}; nothing was changed (mode "
                  "all_or_nothing; per_item changes the others). " + "; ".join(
                      r.reason for r in results if not r.ok)[:2000])
        raise ProblemError(409, detail, body=BulkReviewProblem(
            title="Conflict", status=409, detail=detail, results=results,
            errors=[FieldError(field=f"items.{r.id}", reason=r.reason) for r in results if not r.ok]))
    entries = []
    after = TRANSITIONS[data.action][1]
    for item in passed:
        before = item.status
        apply_transition(item, data.action, actor, data.reason)
        entries.append(status_entry(actor, item, data.action, before, data.reason))
    for r in results:
        if r.ok:
            r.status = after
    if entries:
        await db.flush()
        await chain(db, entries)
    if progress is not None:
        await _call(progress, len(ids), len(ids))
    return BulkReviewOut(action=data.action, mode=data.mode, matched=len(ids), changed=len(passed), refused=refused,
                         results=results)


def past(action: str) -> str:
    return {"submit": "submitted", "approve": "approved", "reject": "rejected"}[action]


async def _call(progress: Progress, done: int, total: int) -> None:
    out = progress(done, total)
    if out is not None:
        await out
