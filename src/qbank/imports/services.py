"""Import (all or nothing) of a bank's questions, in three stages, run by the import job (``imports.jobs``):

1. ``read_file`` (pure): detect the format and parse every question, with the media it shows;
2. ``check_parsed`` (pure, with what ``check_inputs`` read from the database) then ``finish_check``: place
   questions on appraisal points (``points.place``), check media (type and size, as ``POST /api/v1/media``),
   every question the way ``add_item`` checks one (the items domain's own ``content_errors``), duplicates within
   the file and against the bank; every bad question is listed, named as the file names it, and nothing is
   written. ``read_and_check`` runs the pure part in a worker process;
3. ``write_import``: the items in multi-row batches (``items.services.insert_items``) with their trail entries
   chained in the same batches, media into the archive, near duplicates refreshed once, one entry for the
   import; all in one transaction."""

from __future__ import annotations

import gc
from typing import Any

import anyio.to_thread
import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ObjectNotFound, RetentionArchive
from qbank.audit.models import AuditEntry
from qbank.audit.services import chain, record
from qbank.blueprints.schemas import Point
from qbank.blueprints.services import point_index
from qbank.db import utcnow
from qbank.imports.excel import parse_excel
from qbank.imports.moodle import parse_moodle
from qbank.imports.points import Rule, place, rule_errors
from qbank.imports.qti import parse_qti
from qbank.imports.safety import Limits, check_size, open_zip, too_many_rows
from qbank.imports.schemas import ImportOut, ParsedItem, ParseResult, Placement
from qbank.items.media import ACCEPTED, put_media, sniff_media
from qbank.items.models import Item
from qbank.items.schemas import ItemIn
from qbank.items.services import complete, content_errors, describe_items, insert_items, refresh_near_duplicates
from qbank.items.similarity import content_key
from qbank.lib.actors import Actor, check_occupation
from qbank.lib.problems import FieldError, ProblemError, bad_request
from qbank.lib.text import TextRefused, clean_tree
from qbank.lib.validation import convert_or_errors


class Checked(msgspec.Struct, kw_only=True):
    """A file that passed every check: what ``write_import`` writes."""

    parsed: ParseResult  # its questions as read are left out: only what is written is kept
    items: list[ItemIn]
    placed: list[Placement]
    points: dict[str, tuple[Point, list[str]]]


def detect_format(data: bytes, limits: Limits) -> str:
    """xlsx, qti or moodle, from the bytes themselves (which QTI version: from the package's items)."""
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
    raise bad_request("file", "unrecognised file: expected an xlsx workbook, a QTI 2.1/2.2/3.0 zip package or "
                              "a Moodle XML file")


QTI_NAMES = {"qti3": "QTI 3.0", "qti21": "QTI 2.1/2.2"}


def read_file(data: bytes, fmt: str | None, limits: Limits) -> ParseResult:
    """Stage 1: every question of the file (refused ones among the errors), in the format asked or detected."""
    check_size(data, limits)
    fmt = fmt or detect_format(data, limits)
    if fmt == "xlsx":
        parsed = parse_excel(data, limits)
    elif fmt in ("qti", "qti3", "qti21"):
        parsed = parse_qti(data, limits)
        if fmt != "qti" and parsed.format != fmt:
            found = QTI_NAMES.get(parsed.format, "QTI 2.x and 3.0")
            raise bad_request("format", f"format {fmt} ({QTI_NAMES[fmt]}) was asked, but the package holds "
                                        f"{found} items; send format qti (either) or leave it out")
    elif fmt == "moodle":
        parsed = parse_moodle(data)
    else:
        raise bad_request("format", f"unknown import format {fmt!r}: xlsx, moodle, qti3, qti21 (or qti: either)")
    if not parsed.positions and not parsed.errors:
        raise bad_request("file", "the file holds no items")
    if len(parsed.positions) > limits.max_rows:
        raise too_many_rows(len(parsed.positions), limits)
    return parsed


def _media_errors(parsed: ParseResult, media_limit: int) -> dict[str, str]:
    """Each medium's type by SHA-256; errors (to every question that shows it) for those not accepted."""
    types: dict[str, str] = {}
    for sha, medium in parsed.media.items():
        kind = sniff_media(medium.data)
        if len(medium.data) > media_limit:
            reason = f"{medium.name!r} has {len(medium.data)} bytes; media are limited to {media_limit} bytes " \
                     "(QBANK_MAX_UPLOAD_BYTES)"
        elif kind is None:
            reason = f"{medium.name!r} is not a medium items may carry ({ACCEPTED})"
        else:
            types[sha] = kind
            continue
        for position in medium.used_by:
            parsed.error(position, "media", reason)
    return types


async def _archive_errors(parsed: ParseResult, archive: RetentionArchive | None) -> None:
    """Media an xlsx names by key must already be in this service's archive (an xlsx carries none)."""
    if parsed.format != "xlsx":
        return
    for item in parsed.items:
        for key in item.fields.get("media") or []:
            try:
                if archive is None:
                    raise ObjectNotFound(key)
                await anyio.to_thread.run_sync(archive.stat, key)
            except (ObjectNotFound, ValueError):
                parsed.error(item.position, "media", f"{key} is not in this service's archive (upload it with "
                                                     "POST /api/v1/media first)")


def check_rows(parsed: ParseResult, occupation: str, level: int, points: dict[str, tuple[Point, list[str]]],
               bank_keys: dict[str, int]) -> tuple[list[ItemIn], dict[str, int]]:
    """Every question checked the way ``add_item`` checks one; pure, so every bad question is listed, each of
    its fields once (a field already refused while reading is not refused again). Returns the good questions and
    those that repeat an item of the bank (position → item id), which the caller names."""
    good: list[ItemIn] = []
    in_bank: dict[str, int] = {}
    seen: dict[str, str] = {}
    said = {e.field for e in parsed.errors}
    erred = {p for e in parsed.errors for p in _prefixes(e.field)}  # positions that have an error
    for row in parsed.items:
        try:  # the one input policy (qbank.lib.text), as for JSON bodies
            cleaned = clean_tree(row.fields)
        except TextRefused as exc:
            parsed.error(row.position, exc.field, exc.reason)
            said.add(f"{row.position}: {exc.field}")
            erred.add(row.position)
            continue
        # A question the point map could not place is refused for that already; check the rest of it too.
        fields = {"point_code": next(iter(points), "000"), **cleaned}
        converted, error = convert_or_errors(
            {**fields, "occupation_code": occupation, "level": level, "type": row.type}, ItemIn)
        row_errors: list[FieldError] = []
        if error is not None:
            row_errors.append(FieldError(field=error[0], reason=error[1]))
        else:
            assert isinstance(converted, ItemIn)
            item = converted
            complete(item.type, item)
            row_errors = content_errors(item.type, item, points)
            key = content_key(item.stem, item.options)
            if item.stem.strip():
                if key in seen:
                    row_errors.append(FieldError(field="stem", reason=(
                        f"the same question (stem and options) as {seen[key]}")))
                elif key in bank_keys:
                    in_bank[row.position] = bank_keys[key]
                seen.setdefault(key, row.position)
        fresh = [e for e in row_errors if f"{row.position}: {e.field}" not in said]
        for e in fresh:
            parsed.error(row.position, e.field, e.reason)
            said.add(f"{row.position}: {e.field}")
            erred.add(row.position)
        if not row_errors and row.position not in in_bank and row.position not in erred:
            good.append(item)
    return good, in_bank


def _prefixes(field: str) -> list[str]:
    """What ``field`` starts with before each ': ' — the positions it may belong to (``row 7: answer`` belongs
    to ``row 7``; a position may hold ': ' itself). Set lookups instead of every question against every error."""
    out = []
    at = field.find(": ")
    while at != -1:
        out.append(field[:at])
        at = field.find(": ", at + 1)
    return out


def refusal(parsed: ParseResult) -> ProblemError:
    """The 400 that lists every error; counts are of the file's questions (refused while parsing included)."""
    errors = parsed.errors
    positions = set(parsed.positions)
    # every question against every error took minutes for a file of 50,000 bad rows, on the event loop
    owners = [positions.intersection(_prefixes(e.field)) for e in errors]
    bad_set = set().union(*owners)
    bad = [p for p in parsed.positions if p in bad_set]
    word = "row(s)" if parsed.format == "xlsx" else "question(s)"
    file_level = sum(1 for owner in owners if not owner)
    head = f"{len(bad)} of {len(parsed.positions)} {word} refused" if bad else "the file is refused"
    if bad and file_level:
        head += f", and {file_level} problem(s) with the file itself"
    return ProblemError(400, f"{head}: nothing was imported; "
                             + "; ".join(f"{e.field}: {e.reason}" for e in errors[:3])
                             + (" …" if len(errors) > 3 else ""),
                        errors=errors, extra={"format": parsed.format, "rows": len(parsed.positions),
                                              "refused": len(bad)})


class CheckInputs(msgspec.Struct, kw_only=True):
    """What checking a file needs from the database, read before the file is (so the pure stages can run in a
    worker process): the level's points, its items by content key, the file-wide point and the point map."""

    occupation: str
    level: int
    points: dict[str, tuple[Point, list[str]]]
    bank: dict[str, int]  # content key → item id, of the level's items
    file_point: str | None = None
    rules: list[Rule] = []
    media_limit: int


class Staged(msgspec.Struct, kw_only=True, tag=True):
    """Stages 1 and 2 done without the database: the file read, its questions placed and checked."""

    parsed: ParseResult
    good: list[ItemIn]  # what the good questions write
    in_bank: dict[str, int]  # position → the bank's item it repeats
    placed: list[Placement]


class Refused(msgspec.Struct, kw_only=True, tag=True):
    """A ProblemError as plain data, to cross a process boundary."""

    status: int
    detail: str
    errors: list[FieldError] = []
    extra: dict[str, Any] = {}

    @classmethod
    def of(cls, exc: ProblemError) -> Refused:
        return cls(status=exc.status_code, detail=exc.detail, errors=exc.errors, extra=exc.problem_extra)

    def problem(self) -> ProblemError:
        return ProblemError(self.status, self.detail, errors=self.errors, extra=self.extra)


async def check_inputs(db: AsyncSession, occupation: str, level: int, *, file_point: str | None = None,
                       rules: list[Rule] | None = None, media_limit: int) -> CheckInputs:
    points = await point_index(db, occupation, level)
    bank = {key: item_id for key, item_id in (await db.execute(select(Item.content_key, Item.id).where(
        Item.occupation_code == occupation, Item.level == level))).all()}
    return CheckInputs(occupation=occupation, level=level, points=points, bank=bank, file_point=file_point,
                       rules=rules or [], media_limit=media_limit)


def check_parsed(parsed: ParseResult, inputs: CheckInputs) -> Staged:
    """Stage 2 without the database: points placed, media and every question checked (pure)."""
    points = inputs.points
    if inputs.rules and parsed.format == "xlsx":
        raise bad_request("point_map", "a point map places Moodle and QTI questions (categories, identifiers, "
                                       "labels, metadata); an xlsx names its points in the 鉴定点 column")
    if inputs.file_point is not None and inputs.file_point not in points:
        parsed.error(None, "point", f"appraisal point {inputs.file_point} is not in this level's blueprint")
    parsed.errors.extend(rule_errors(inputs.rules, set(points)))
    placed = place(parsed, inputs.rules, inputs.file_point)
    _media_errors(parsed, inputs.media_limit)
    good, in_bank = check_rows(parsed, inputs.occupation, inputs.level, points, inputs.bank)
    return Staged(parsed=parsed, good=good, in_bank=in_bank, placed=placed)


def read_and_check(data: bytes, fmt: str | None, limits: Limits, inputs: CheckInputs) -> Staged | Refused:
    """Stages 1 and 2 as far as they go without the database or the archive."""
    try:
        return check_parsed(read_file(data, fmt, limits), inputs)
    except ProblemError as exc:
        return Refused.of(exc)


Packed = tuple[bytes, list[bytes], list[bytes]]  # the outcome without its lists; what the good questions write;
# the questions as read that name media
PACK = 250  # questions per MessagePack chunk: decoding one holds the event loop a few milliseconds


def read_and_check_packed(data: bytes, fmt: str | None, limits: Limits, inputs: CheckInputs) -> Packed:
    """:func:`read_and_check` for a worker process (``JobContext.isolated``): its outcome as MessagePack chunks,
    which the service decodes a chunk at a time (:func:`unpack_staged`). A pickled outcome would be rebuilt on
    the service's event loop, object by object (seconds for 50,000 questions); one big MessagePack document would
    hold the interpreter lock, and so the event loop, as long.

    The garbage collector is paused meanwhile: the outcome is a million objects built at once, which its full
    passes walked again and again (a third of the time for 50,000 questions); it resumes when they are packed."""
    gc.disable()
    try:
        return _packed(read_and_check(data, fmt, limits, inputs))
    finally:
        gc.enable()


def _packed(outcome: Staged | Refused) -> Packed:
    if isinstance(outcome, Refused):
        return msgspec.msgpack.encode(outcome), [], []
    good, items = outcome.good, outcome.parsed.items
    outcome.good, outcome.parsed.items = [], []
    # Past the check the service looks at the questions as read only for the media they name (an xlsx names
    # archive keys): the others are not sent, so 100,000 of them are not decoded and held there for nothing.
    items = [item for item in items if item.fields.get("media")]
    encode = msgspec.msgpack.encode
    return (encode(outcome), [encode(good[i:i + PACK]) for i in range(0, len(good), PACK)],
            [encode(items[i:i + PACK]) for i in range(0, len(items), PACK)])


async def unpack_staged(packed: Packed) -> Staged | Refused:
    """The outcome, decoded on the event loop a chunk at a time (1-2 ms each), with a turn for other requests
    after each."""
    head, good, items = packed
    outcome = msgspec.msgpack.decode(head, type=Staged | Refused)
    if isinstance(outcome, Staged):
        for chunk in good:
            outcome.good.extend(msgspec.msgpack.decode(chunk, type=list[ItemIn]))
            await anyio.sleep(0)
        for chunk in items:
            outcome.parsed.items.extend(msgspec.msgpack.decode(chunk, type=list[ParsedItem]))
            await anyio.sleep(0)
    return outcome


async def finish_check(db: AsyncSession, archive: RetentionArchive | None, staged: Staged,
                       inputs: CheckInputs) -> Checked:
    """The rest of stage 2: media an xlsx names are in the archive, repeats of the bank named; a ProblemError
    lists every problem of the file."""
    parsed = staged.parsed
    await _archive_errors(parsed, archive)
    names = await describe_items(db, sorted(set(staged.in_bank.values())))
    for position, item_id in staged.in_bank.items():
        parsed.error(position, "stem", f"the same question (stem and options) already exists as {names[item_id]}")
    if parsed.errors:
        raise refusal(parsed)
    # The questions as read are not needed once checked: 100,000 of them held 300 MB of the service's memory
    # through the write.
    items, staged.good, parsed.items = staged.good, [], []
    return Checked(parsed=parsed, items=items, placed=staged.placed, points=inputs.points)


BATCH = 1000  # items per multi-row insert; their trail entries are chained in the same batch


def trail_entries(actor: Actor, sha: str, batch: list[tuple[int, str]]) -> list[AuditEntry]:
    """One ``item.create`` entry per new item (a thousand objects a batch: made in a thread, not on the loop)."""
    now = utcnow()
    return [AuditEntry(at=now, actor=actor.label, role=actor.role.value, action="item.create", entity_type="item",
                       entity_id=str(item_id), before_digest=None, after_digest=version_digest,
                       detail={"version": 1, "import": sha})
            for item_id, version_digest in batch]


async def write_import(db: AsyncSession, actor: Actor, archive: RetentionArchive | None, checked: Checked,
                       occupation: str, level: int, sha: str, filename: str | None) -> ImportOut:
    """Stage 3: the items in batches (multi-row inserts, ids returned, one ``item.create`` trail entry each,
    chained in the same batch), their media, near duplicates, and the import's own entry; all in the caller's
    transaction."""
    parsed = checked.parsed
    if parsed.media and archive is None:
        raise ProblemError(503, "the file carries media and this process has no evidence archive configured")
    check_occupation(actor, occupation)
    items = checked.items
    ids: list[int] = []
    try:
        for start in range(0, len(items), BATCH):
            batch = await insert_items(db, actor, items[start:start + BATCH])
            await chain(db, await anyio.to_thread.run_sync(trail_entries, actor, sha, batch), bulk=True)
            ids.extend(item_id for item_id, _ in batch)
    except IntegrityError as exc:  # a concurrent writer added one of these questions after the check
        raise ProblemError(409, "another write added one of these questions while the import ran; nothing was "
                                "imported, try again") from exc
    # Media last: the archive keeps what it was given (Object Lock), so nothing goes there before the items
    # are in; a failure from here on still rolls the items back.
    for medium in parsed.media.values():
        assert archive is not None
        await put_media(db, actor, archive, medium.data, sniff_media(medium.data) or "", medium.name)
    flagged = await refresh_near_duplicates(db, occupation, level, ids)
    media = {key for item_in in items for key in item_in.media}
    out = ImportOut(format=parsed.format, sha256=sha, count=len(ids), first_id=min(ids, default=None),
                    last_id=max(ids, default=None), item_ids=ids, near_duplicates=len(flagged & set(ids)),
                    placed=checked.placed, media=len(media), left_out=dict(sorted(parsed.left_out.items())),
                    rows=len(parsed.positions))
    await record(db, actor, "import.create", "import", sha, after={"item_ids": ids}, detail={
        "count": out.count, "sha256": sha, "first_id": out.first_id, "last_id": out.last_id,
        "format": parsed.format, "filename": filename, "occupation": occupation, "level": level,
        "media": out.media, "placed": msgspec.to_builtins(checked.placed)})
    return out


def carries_media(parsed: ParseResult) -> bool:
    """Whether writing (or checking) the file needs the evidence archive."""
    return bool(parsed.media) or any(item.fields.get("media") for item in parsed.items)
