from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import RetentionArchive
from qbank.blueprints.schemas import ItemType
from qbank.items import services as svc
from qbank.items.media import ACCEPTED, media_link, store_media
from qbank.items.review import review_items
from qbank.items.schemas import (
    BULK_REVIEW_DOC,
    BulkReviewIn,
    BulkReviewOut,
    BulkReviewProblem,
    ItemDiff,
    ItemIn,
    ItemOut,
    ItemPage,
    ItemPatch,
    ItemUpdate,
    ItemVersionOut,
    MediaLink,
    MediaOut,
    RejectIn,
    RetireIn,
    Status,
)
from qbank.lib.actors import Actor, Role, requires
from qbank.lib.inputs import upload_filename
from qbank.lib.problems import problem_responses
from qbank.settings import Settings

WRITERS = requires(Role.admin, Role.author)
REVIEWERS = requires(Role.admin, Role.reviewer)
READERS = requires(Role.admin, Role.author, Role.reviewer)
MERGE_PATCH = "application/merge-patch+json"


class ItemController(Controller):
    path = "/api/v1/items"
    tags = ["items"]
    responses = problem_responses(400, 401, 403, 404)

    @post("/", guards=[WRITERS], summary="Write an item (first version, status draft)",
          responses=problem_responses(409))
    async def create(self, data: ItemIn, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.write_item(db_session, actor, data)

    @get("/", guards=[READERS], summary="Search items")
    async def search(
        self, db_session: AsyncSession, actor: Actor,
        occupation: str | None = Parameter(default=None, description="occupation code"),
        level: int | None = Parameter(default=None, ge=1, le=5),
        point: str | None = Parameter(default=None, pattern=r"^\d{3}$", description="appraisal point code"),
        type: ItemType | None = None,
        status: Status | None = None,
        q: str | None = Parameter(default=None, max_length=200, description="text in the stem"),
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0),
    ) -> ItemPage:
        return await svc.search_items(db_session, actor, occupation=occupation, level=level, point=point,
                                      item_type=type, status=status, text=q, limit=limit, offset=offset)

    @post("/review", guards=[READERS], status_code=200,
          summary="Submit, approve or reject many items at once (by ids or a filter), each checked as one",
          description=BULK_REVIEW_DOC,
          responses={**problem_responses(409, schema=BulkReviewProblem,
                                         description="mode all_or_nothing: an item was refused; nothing changed")})
    async def review_many(self, data: BulkReviewIn, db_session: AsyncSession, actor: Actor) -> BulkReviewOut:
        return await review_items(db_session, actor, data)

    @get("/{item_id:int}", guards=[READERS], summary="Read an item at its current version")
    async def read(self, item_id: int, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.read_item(db_session, actor, item_id)

    @patch("/{item_id:int}", guards=[WRITERS], summary="Change some fields of an item (JSON Merge Patch)",
           description="The body is a JSON Merge Patch (RFC 7396, `application/merge-patch+json`; plain "
                       "`application/json` is read the same way): only the fields sent change, `null` puts a field "
                       "back to its default, `practical` merges field by field. A change makes one new version "
                       "(the diff and the trail list exactly the fields that changed) and sends the item back to "
                       "draft; sending what is already there changes nothing.",
           responses=problem_responses(409))
    async def update(self, item_id: int, db_session: AsyncSession, actor: Actor,
                     data: Annotated[ItemPatch, Body(media_type=MERGE_PATCH, examples=[
                         Example(summary="harder, nothing else", value={"difficulty": "较难", "facility": 0.45}),
                         Example(summary="a new stem, the rest as it is",
                                 value={"stem": "电流的国际单位是（ ）。"})])]) -> ItemOut:
        return await svc.edit_item(db_session, actor, item_id, data)

    @put("/{item_id:int}", guards=[WRITERS], summary="Replace an item's content as a whole",
         description="Every content field as sent; a field left out takes its default (use PATCH to change some "
                     "fields). One new version when anything changed, back to draft.",
         responses=problem_responses(409))
    async def replace(self, item_id: int, data: ItemUpdate, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.edit_item(db_session, actor, item_id, data)

    @get("/{item_id:int}/versions", guards=[READERS], summary="Every version of an item")
    async def versions(self, item_id: int, db_session: AsyncSession, actor: Actor) -> list[ItemVersionOut]:
        item = await svc.get_item(db_session, actor, item_id)
        return [svc.version_out(await svc.get_version(db_session, item.id, v)) for v in range(1, item.version + 1)]

    @get("/{item_id:int}/versions/{version:int}", guards=[READERS], summary="One version of an item")
    async def version(self, item_id: int, version: int, db_session: AsyncSession, actor: Actor) -> ItemVersionOut:
        item = await svc.get_item(db_session, actor, item_id)
        return svc.version_out(await svc.get_version(db_session, item.id, version))

    @get("/{item_id:int}/diff", guards=[READERS], summary="What changed between two versions")
    async def diff(self, item_id: int, db_session: AsyncSession, actor: Actor,
                   from_version: Annotated[int, QueryParameter(name="from", ge=1)],
                   to_version: Annotated[int, QueryParameter(name="to", ge=1)]) -> ItemDiff:
        item = await svc.get_item(db_session, actor, item_id)
        a = await svc.get_version(db_session, item.id, from_version)
        b = await svc.get_version(db_session, item.id, to_version)
        return svc.diff_versions(a, b)

    @post("/{item_id:int}/submit", guards=[WRITERS], status_code=200, summary="Send a draft to review",
          responses=problem_responses(409))
    async def submit(self, item_id: int, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.review_item(db_session, actor, item_id, "submit")

    @post("/{item_id:int}/approve", guards=[REVIEWERS], status_code=200,
          summary="Approve an item in review (not one's own)", responses=problem_responses(409))
    async def approve(self, item_id: int, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.review_item(db_session, actor, item_id, "approve")

    @post("/{item_id:int}/reject", guards=[REVIEWERS], status_code=200,
          summary="Reject an item in review back to draft, with a reason", responses=problem_responses(409))
    async def reject(self, item_id: int, data: RejectIn, db_session: AsyncSession, actor: Actor) -> ItemOut:
        return await svc.review_item(db_session, actor, item_id, "reject", data.reason)

    @post("/{item_id:int}/retire", guards=[REVIEWERS], status_code=200, summary="Retire an item, with a reason",
          description="The reason (optional, kept in the trail) is what a later import of the same question is "
                      "told: `retired on 2026-11-29 (超出新版标准)`.", responses=problem_responses(409))
    async def retire(self, item_id: int, db_session: AsyncSession, actor: Actor,
                     data: RetireIn | None = None) -> ItemOut:
        return await svc.review_item(db_session, actor, item_id, "retire", data.reason if data else None)


class MediaUpload(msgspec.Struct):
    file: UploadFile


class MediaController(Controller):
    path = "/api/v1/media"
    tags = ["items"]
    responses = problem_responses(400, 401, 403)

    @post("/", guards=[requires(Role.admin, Role.author)], summary="Upload an image, a sound or a video for items",
          description=f"Accepted (judged from the bytes): {ACCEPTED}; at most QBANK_MAX_UPLOAD_BYTES. The key goes "
                      "into an item's `media`; its text shows it where `{{media:SHA256}}` stands.",
          responses=problem_responses(413))
    async def upload(
        self, settings: Settings, archive: RetentionArchive, actor: Actor, db_session: AsyncSession,
        data: Annotated[MediaUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MediaOut:
        limit = settings.max_upload_bytes
        content = await data.file.read(limit + 1)
        return await store_media(db_session, actor, archive, content, limit, upload_filename(data.file))

    @get("/link", guards=[requires(Role.admin, Role.author, Role.reviewer)],
         summary="A short-lived link to view an image", responses=problem_responses(404))
    async def link(self, archive: RetentionArchive,
                   key: str = Parameter(pattern=r"^media/[0-9a-f]{2}/[0-9a-f]{64}$", description="media key")
                   ) -> MediaLink:
        return await media_link(archive, key)
