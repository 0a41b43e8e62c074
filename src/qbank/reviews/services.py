"""Key-node records (§22), locked-object refusals, incidents (§29–§31) and the review sign-off (质量督导表)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import anyio
import anyio.to_thread
import msgspec
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ArchivedObject, ObjectLocked, ObjectNotFound, RetentionArchive
from qbank.audit.services import record
from qbank.db import get_or_404, utcnow
from qbank.lib.actors import Actor
from qbank.lib.digest import canonical_json
from qbank.lib.problems import FieldError, ProblemError, bad_request, conflict, not_found
from qbank.lib.uploads import spool_upload
from qbank.recordings.audit import session_video_audit
from qbank.recordings.models import Recording
from qbank.reviews.categories import BY_CODE
from qbank.reviews.models import Incident, KeyNodeRecord, SignOff
from qbank.reviews.schemas import (
    RECORD_CATEGORY_ZH,
    IncidentIn,
    IncidentOut,
    KeptCategory,
    PendingReview,
    RecordOut,
    RetentionKindTotal,
    RetentionObject,
    RetentionReport,
    SignOffIn,
    SignOffOut,
    SupervisionForm,
    VideoVerdict,
)
from qbank.sessions.models import ExamSession, Room
from qbank.sessions.services import session_rooms
from qbank.settings import Settings

log = structlog.get_logger("qbank.reviews")
KEYNODE_KIND = "keynode"
FORM_LINK_TTL = timedelta(minutes=15)
# Sniffed from the first bytes, never taken from the client's Content-Type.
SCAN_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
CONCLUSIONS = {"合格": "pass", "pass": "pass", "不合格": "fail", "fail": "fail"}
CONCLUSION_ZH = {"pass": "合格", "fail": "不合格"}


# ------------------------------------------------------------------------------------------- key-node records
def sniff_scan(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, JPEG or PNG scan; None for anything else."""
    for magic, content_type, ext in SCAN_SIGNATURES:
        if head.startswith(magic):
            return content_type, ext
    return None


def exam_date(settings: Settings, session: ExamSession) -> date:
    return session.starts_at.astimezone(settings.tz).date()


def record_out(row: KeyNodeRecord, already_stored: bool = False) -> RecordOut:
    return RecordOut(
        id=row.id, session_id=row.session_id, category=cast(KeptCategory, row.category),
        category_zh=RECORD_CATEGORY_ZH.get(row.category, row.category), key=row.archive_key, sha256=row.sha256,
        size=row.size, content_type=row.content_type, filename=row.filename, retain_until=row.retain_until,
        legal_hold=row.legal_hold, uploaded_by=row.uploaded_by, created_at=row.created_at,
        already_stored=already_stored)


async def upload_record(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                        session: ExamSession, category: str, body: AsyncIterator[bytes],
                        filename: str | None) -> tuple[KeyNodeRecord, bool]:
    """Store a scan permanently (legal hold + COMPLIANCE retention); the same bytes again for the same session and
    category are recognised and not stored twice. Returns the row and whether it is new."""
    spooled = await spool_upload(body, settings.data_dir / "spool", settings.max_upload_bytes,
                                 "scan (QBANK_MAX_UPLOAD_BYTES)")
    path, sha256, size, head = spooled.path, spooled.sha256, spooled.size, spooled.head
    try:
        if size == 0:
            raise bad_request("body", "the body is empty: send the scan's bytes (PDF, JPEG or PNG)")
        sniffed = sniff_scan(head)
        if sniffed is None:
            raise ProblemError(415, "body: not a PDF, JPEG or PNG scan (judged from its first bytes)",
                               errors=[FieldError(field="body", reason="not a PDF, JPEG or PNG scan")])
        content_type, ext = sniffed
        existing = await find_record(db, session.id, category, sha256)
        if existing is not None:
            return existing, False
        name = filename or f"{category}-{session.id}-{sha256[:12]}.{ext}"
        stored = await anyio.to_thread.run_sync(lambda: archive.put(
            KEYNODE_KIND, path, size=size, exam_date=exam_date(settings, session), legal_hold=True,
            content_type=content_type, metadata={"session": str(session.id), "category": category}, filename=name,
            sha256=sha256))
    finally:
        path.unlink(missing_ok=True)
    row = KeyNodeRecord(session_id=session.id, category=category, archive_key=stored.key, sha256=stored.sha256,
                        size=stored.size, content_type=content_type, filename=name, retain_until=stored.retain_until,
                        legal_hold=stored.legal_hold, uploaded_by=actor.label)
    if not await insert_once(db, row):
        again = await find_record(db, session.id, category, sha256)
        if again is not None:  # the same bytes arrived twice at once: the first one is the record
            return again, False
        raise conflict(f"record of {category} for session {session.id} could not be stored; try again")
    await record(db, actor, "record.upload", "key_node_record", row.id, after=record_out(row),
                 detail={"session": session.id, "category": category, "key": stored.key})
    return row, True


async def keep_document(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                        session: ExamSession, category: str, document: bytes, content_type: str, filename: str,
                        *, trail: bool = True) -> KeyNodeRecord:
    """A document the service made or verified (a supervision form, a response bundle) kept as a key-node record:
    legal hold plus COMPLIANCE retention. ``trail``: write the ``record.upload`` entry here (else the caller does,
    after the rows that refer to it)."""
    stored = await anyio.to_thread.run_sync(lambda: archive.put_bytes(
        KEYNODE_KIND, document, exam_date=exam_date(settings, session), legal_hold=True, content_type=content_type,
        filename=filename, metadata={"session": str(session.id), "category": category}))
    row = KeyNodeRecord(session_id=session.id, category=category, archive_key=stored.key, sha256=stored.sha256,
                        size=stored.size, content_type=content_type, filename=filename,
                        retain_until=stored.retain_until, legal_hold=stored.legal_hold, uploaded_by=actor.label)
    if not await insert_once(db, row):  # the same bytes are already this session's record of this category
        again = await find_record(db, session.id, category, stored.sha256)
        if again is None:
            raise conflict(f"record of {category} for session {session.id} could not be stored; try again")
        return again
    if trail:
        await record(db, actor, "record.upload", "key_node_record", row.id, after=record_out(row),
                     detail={"session": session.id, "category": category, "key": stored.key})
    return row


async def insert_once(db: AsyncSession, row: Any) -> bool:
    """Insert in a savepoint; False when a unique constraint says it is already there."""
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:
        return False
    return True


async def find_record(db: AsyncSession, session_id: int, category: str, sha256: str) -> KeyNodeRecord | None:
    return await db.scalar(select(KeyNodeRecord).where(
        KeyNodeRecord.session_id == session_id, KeyNodeRecord.category == category, KeyNodeRecord.sha256 == sha256))


async def list_records(db: AsyncSession, session_id: int) -> list[RecordOut]:
    rows = await db.scalars(select(KeyNodeRecord).where(KeyNodeRecord.session_id == session_id)
                            .order_by(KeyNodeRecord.id))
    return [record_out(r) for r in rows.all()]


async def get_record(db: AsyncSession, record_id: int) -> KeyNodeRecord:
    row = await get_or_404(db, KeyNodeRecord, record_id, "record")
    return row


# ------------------------------------------------------------------------------------------- locked objects
def locked_problem(what: str, action: str, locked_until: datetime | None, legal_hold: bool, key: str,
                   reason: str = "") -> ProblemError:
    until = locked_until.isoformat() if locked_until else "no date"
    hold = " and under legal hold: a key-node record kept permanently (§22)" if legal_hold else ""
    detail = f"{what} cannot be {action}: it is locked until {until}{hold}"
    if reason:
        detail += f"; {reason}"
    return ProblemError(409, detail, title="Object Locked", extra={
        "key": key, "locked_until": locked_until.isoformat() if locked_until else None, "legal_hold": legal_hold})


async def refuse_if_locked(archive: RetentionArchive, key: str, *, what: str, action: str,
                           new_until: datetime | None = None) -> ArchivedObject | None:
    """Ask the archive about ``key`` and answer 409 (saying until when, and whether a legal hold) when ``action``
    would remove it (``new_until`` None: a delete) or shorten its retention (``new_until`` earlier than the lock).
    Returns the object's state (None if the archive has no such object)."""
    try:
        info = await anyio.to_thread.run_sync(archive.stat, key)
    except ObjectNotFound:
        return None
    if new_until is None:
        if info.legal_hold or (info.retain_until is not None and info.retain_until > datetime.now(UTC)):
            raise locked_problem(what, action, info.retain_until, info.legal_hold, key)
    elif info.retain_until is not None and new_until < info.retain_until:
        raise locked_problem(what, action, info.retain_until, info.legal_hold, key,
                             f"a retention can be extended, never shortened (asked: {new_until.isoformat()})")
    return info


async def delete_archived(archive: RetentionArchive, key: str, *, what: str) -> None:
    """Delete ``key`` from the archive once :func:`refuse_if_locked` let it through (the archive checks again)."""
    try:
        await anyio.to_thread.run_sync(archive.delete, key)
    except ObjectLocked as exc:
        raise locked_problem(what, "deleted", exc.locked_until, exc.legal_hold, key) from exc
    except ObjectNotFound:
        pass


async def delete_record(db: AsyncSession, actor: Actor, archive: RetentionArchive, row: KeyNodeRecord) -> None:
    what = f"record {row.id} ({row.category}, {row.archive_key})"
    await refuse_if_locked(archive, row.archive_key, what=what, action="deleted")
    before = record_out(row)
    shared = await db.scalar(select(func.count()).select_from(KeyNodeRecord).where(
        KeyNodeRecord.archive_key == row.archive_key, KeyNodeRecord.id != row.id))
    if not shared:  # content-addressed: another record with the same bytes keeps the object
        await delete_archived(archive, row.archive_key, what=what)
    await db.delete(row)
    await db.flush()
    await record(db, actor, "record.delete", "key_node_record", before.id, before=before)


async def set_record_retention(db: AsyncSession, actor: Actor, archive: RetentionArchive, row: KeyNodeRecord,
                               until: datetime) -> KeyNodeRecord:
    what = f"record {row.id} ({row.category}, {row.archive_key})"
    until = until.astimezone(UTC).replace(microsecond=0)
    info = await refuse_if_locked(archive, row.archive_key, what=what, action="given a shorter retention",
                                  new_until=until)
    if info is None:
        raise not_found("archived object", row.archive_key)
    before = record_out(row)
    try:
        stored = await anyio.to_thread.run_sync(archive.set_retention, row.archive_key, until)
    except ObjectLocked as exc:
        raise locked_problem(what, "given a shorter retention", exc.locked_until, exc.legal_hold,
                             row.archive_key) from exc
    row.retain_until, row.legal_hold = stored.retain_until, stored.legal_hold
    await db.flush()
    await record(db, actor, "record.retention", "key_node_record", row.id, before=before, after=record_out(row),
                 detail={"retain_until": until.isoformat()})
    return row


# ------------------------------------------------------------------------------------------- retention report
def retention_report(archive: RetentionArchive, prefix: str = "") -> RetentionReport:
    """Blocking (one HEAD per object): call through a worker thread."""
    objects = sorted(archive.list(prefix), key=lambda o: o.key)
    totals: dict[str, RetentionKindTotal] = {}
    for o in objects:
        t = totals.setdefault(o.kind, RetentionKindTotal(kind=o.kind, objects=0, bytes=0, legal_holds=0,
                                                         earliest_retain_until=None))
        t.objects += 1
        t.bytes += o.size
        t.legal_holds += int(o.legal_hold)
        if o.retain_until is not None and (t.earliest_retain_until is None or o.retain_until < t.earliest_retain_until):
            t.earliest_retain_until = o.retain_until
    return RetentionReport(
        bucket=archive.bucket,
        objects=[RetentionObject(key=o.key, kind=o.kind, size=o.size, retain_until=o.retain_until, mode=o.mode,
                                 legal_hold=o.legal_hold, content_type=o.content_type, last_modified=o.last_modified)
                 for o in objects],
        totals=sorted(totals.values(), key=lambda t: t.kind), total_objects=len(objects),
        total_bytes=sum(o.size for o in objects), generated_at=utcnow())


# ------------------------------------------------------------------------------------------- incidents
def incident_out(settings: Settings, row: Incident, room: Room) -> IncidentOut:
    cat = BY_CODE.get(row.category)
    return IncidentOut(
        id=row.id, session_id=row.session_id, at=row.at, local_at=row.at.astimezone(settings.tz).isoformat(),
        room=f"{room.site_code}/{room.code}", view=row.view, category=row.category,
        category_zh=cat.label_zh if cat else "", category_en=cat.label_en if cat else "",
        article=cat.article if cat else "", note=row.note, marked_by=row.marked_by, created_at=row.created_at)


async def get_sign_off_row(db: AsyncSession, session_id: int) -> SignOff | None:
    return await db.scalar(select(SignOff).where(SignOff.session_id == session_id))


def signed_off_conflict(settings: Settings, first: SignOff, what: str) -> ProblemError:
    at = first.signed_at.astimezone(settings.tz).isoformat()
    return conflict(f"session {first.session_id} was signed off by {first.supervisor} at {at} (sign-off {first.id}); "
                    f"{what}", sign_off_id=first.id, supervisor=first.supervisor, signed_at=first.signed_at.isoformat())


async def create_incident(db: AsyncSession, actor: Actor, settings: Settings, session: ExamSession,
                          data: IncidentIn) -> IncidentOut:
    first = await get_sign_off_row(db, session.id)
    if first is not None:
        raise signed_off_conflict(settings, first, "incidents can no longer be marked")
    errors: list[FieldError] = []
    tz = settings.tz
    if not session.starts_at <= data.at <= session.ends_at:
        errors.append(FieldError(field="at", reason=(
            f"{data.at.astimezone(tz).isoformat()} is outside the session window "
            f"{session.starts_at.astimezone(tz).isoformat()} – {session.ends_at.astimezone(tz).isoformat()}")))
    site, _, code = data.room.partition("/")
    room = await db.scalar(select(Room).where(Room.session_id == session.id, Room.site_code == site,
                                              Room.code == code))
    if room is None:
        errors.append(FieldError(field="room", reason=f"room {data.room} is not in session {session.id}"))
    elif data.view not in room.camera_views:
        errors.append(FieldError(field="view", reason=(
            f"room {data.room} has no camera view {data.view!r} (it has {', '.join(room.camera_views)})")))
    if data.category not in BY_CODE:
        errors.append(FieldError(field="category", reason=(
            f"unknown category {data.category!r}; see /api/v1/incident-categories ({', '.join(BY_CODE)})")))
    if errors or room is None:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)
    row = Incident(session_id=session.id, room_id=room.id, view=data.view, at=data.at.astimezone(UTC),
                   category=data.category, note=data.note, marked_by=actor.label)
    db.add(row)
    await db.flush()
    out = incident_out(settings, row, room)
    await record(db, actor, "incident.create", "incident", row.id, after=out,
                 detail={"session": session.id, "category": data.category})
    return out


class StationIncident(msgspec.Struct, frozen=True, kw_only=True):
    """An incident a proctor recorded at the exam station (there is no camera view: ``view`` is ``station``)."""

    at: datetime
    category: str
    note: str
    by: str


STATION_VIEW = "station"


async def add_station_incidents(db: AsyncSession, actor: Actor, settings: Settings, session: ExamSession,
                                room: Room, incidents: list[StationIncident], source: str,
                                earliest: datetime, latest: datetime) -> tuple[list[IncidentOut], str]:
    """A station's incidents into the session's supervision view, as marked by the proctor (``source`` says which
    station bundle). Bad categories or times outside ``earliest``–``latest`` are refused (400, nothing added).
    After the sign-off none are added: the second value says so (they stay in the bundle's record)."""
    errors: list[FieldError] = []
    tz = settings.tz
    for i, inc in enumerate(incidents):
        if inc.category not in BY_CODE:
            errors.append(FieldError(field=f"incidents[{i}].category", reason=f"unknown category {inc.category!r}"))
        if not earliest <= inc.at <= latest:
            errors.append(FieldError(field=f"incidents[{i}].at", reason=(
                f"{inc.at.astimezone(tz).isoformat()} is outside {earliest.astimezone(tz).isoformat()} – "
                f"{latest.astimezone(tz).isoformat()}")))
    if errors:
        raise ProblemError(400, "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]), errors=errors)
    if not incidents:
        return [], ""
    first = await get_sign_off_row(db, session.id)
    if first is not None:
        return [], (f"session {session.id} was signed off at {first.signed_at.astimezone(tz).isoformat()}: "
                    f"its {len(incidents)} station incident(s) are kept in the bundle's record only")
    out: list[IncidentOut] = []
    for inc in incidents:
        row = Incident(session_id=session.id, room_id=room.id, view=STATION_VIEW, at=inc.at.astimezone(UTC),
                       category=inc.category, note=inc.note, marked_by=f"{inc.by} ({source})"[:200])
        db.add(row)
        await db.flush()
        added = incident_out(settings, row, room)
        await record(db, actor, "incident.create", "incident", row.id, after=added,
                     detail={"session": session.id, "category": inc.category, "source": source})
        out.append(added)
    return out, ""


async def list_incidents(db: AsyncSession, settings: Settings, session_id: int) -> list[IncidentOut]:
    rows = (await db.execute(select(Incident, Room).join(Room, Room.id == Incident.room_id)
                             .where(Incident.session_id == session_id).order_by(Incident.at, Incident.id))).all()
    return [incident_out(settings, inc, room) for inc, room in rows]


# ------------------------------------------------------------------------------------------- sign-off
async def service_video_verdict(db: AsyncSession, settings: Settings, session: ExamSession) -> VideoVerdict | None:
    """The video audit's verdict for the session now."""
    audit = await session_video_audit(db, settings, session)
    return VideoVerdict(passes=audit.passes, reasons=list(audit.reasons), recordings=audit.recordings,
                        computed_at=audit.computed_at)


def render_form(form: SupervisionForm) -> bytes:
    """A self-contained HTML document: readable tables, and the canonical JSON inside it for machines."""
    e = html.escape
    s = form.session
    rows_rooms = "".join(f"<tr><td>{e(r['room'])}</td><td>{e(r['kind'])}</td><td>{e(', '.join(r['camera_views']))}"
                         f"</td></tr>" for r in form.rooms)
    rows_inc = "".join(f"<tr><td>{e(i['local_at'])}</td><td>{e(i['room'])}</td><td>{e(i['view'])}</td>"
                       f"<td>{e(i['category'])} {e(i['category_zh'])}</td><td>{e(i['note'])}</td>"
                       f"<td>{e(i['marked_by'])}</td></tr>" for i in form.incidents) or \
        '<tr><td colspan="6">无 (none)</td></tr>'
    rows_rec = "".join(f"<tr><td>{e(r['category_zh'])}</td><td><code>{e(r['sha256'])}</code></td></tr>"
                       for r in form.records) or '<tr><td colspan="2">无 (none)</td></tr>'

    def verdict(v: dict[str, Any] | None) -> str:
        if v is None:
            return "—"
        word = "通过 (passes)" if v.get("passes") else "不通过 (fails)"
        reasons = "".join(f"<li>{e(str(r))}</li>" for r in v.get("reasons") or [])
        return f"{word}<ul>{reasons}</ul>"

    data = canonical_json(form).decode().replace("</", "<\\/")
    pass_row = (f"<tr><th>录像审核不通过仍判定合格的理由 (pass despite the video audit)</th>"
                f"<td>{e(form.pass_reason)}</td></tr>") if form.pass_reason else ""
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>质量督导表 — {e(s['title'])}</title></head>
<body>
<h1>职业技能等级认定质量督导表</h1>
<table>
<tr><th>考试场次 (session)</th><td>{s['id']} {e(s['title'])}</td></tr>
<tr><th>职业 (occupation) / 等级 (level)</th><td>{e(s['occupation_code'])} / {s['level']}</td></tr>
<tr><th>考试时间 (window)</th><td>{e(s['local_start'])} – {e(s['local_end'])}</td></tr>
<tr><th>督导员 (supervisor)</th><td>{e(form.supervisor)}</td></tr>
<tr><th>签署时间 (signed at)</th><td>{e(form.signed_at)}</td></tr>
<tr><th>督导结论 (conclusion)</th><td>{e(form.conclusion_zh)} ({e(form.conclusion)})</td></tr>{pass_row}
</table>
<h2>考场 (rooms)</h2><table><tr><th>考场</th><th>类型</th><th>摄像机位</th></tr>{rows_rooms}</table>
<h2>录像审核 (video audit)</h2>
<p>系统审核 (service): {verdict(form.video_audit)}</p>
<p>督导员所见 (as seen by the supervisor): {verdict(form.video_verdict_claimed)}</p>
<h2>问题记录 (incidents, §29–§31)</h2>
<table><tr><th>时间</th><th>考场</th><th>机位</th><th>类别</th><th>说明</th><th>记录人</th></tr>{rows_inc}</table>
<h2>关键节点材料 (key-node records, §22)</h2><table><tr><th>类别</th><th>SHA-256</th></tr>{rows_rec}</table>
<h2>督导意见 (summary)</h2><p>{e(form.summary)}</p>
<script type="application/json" id="supervision-form">{data}</script>
</body></html>
"""
    return page.encode()


async def sign_off(db: AsyncSession, actor: Actor, settings: Settings, archive: RetentionArchive,
                   session: ExamSession, data: SignOffIn) -> SignOffOut:
    first = await get_sign_off_row(db, session.id)
    if first is not None:
        raise signed_off_conflict(settings, first, "a session is signed off once")
    tz = settings.tz
    now = utcnow()
    if session.ends_at > now:
        raise conflict(f"session {session.id} ends at {session.ends_at.astimezone(tz).isoformat()}; "
                       "sign it off after it has ended", ends_at=session.ends_at.isoformat())
    conclusion = CONCLUSIONS[data.conclusion]
    rooms = await session_rooms(db, session.id)
    incidents = await list_incidents(db, settings, session.id)
    records = await list_records(db, session.id)
    service_verdict = await service_video_verdict(db, settings, session)
    pass_reason = check_pass_reason(conclusion, service_verdict, data.pass_reason)
    form = SupervisionForm(
        form="质量督导表", version=1,
        session={"id": session.id, "title": session.title, "occupation_code": session.occupation_code,
                 "level": session.level, "starts_at": session.starts_at.isoformat(),
                 "ends_at": session.ends_at.isoformat(), "local_start": session.starts_at.astimezone(tz).isoformat(),
                 "local_end": session.ends_at.astimezone(tz).isoformat()},
        rooms=[{"room": f"{r.site_code}/{r.code}", "kind": r.kind, "camera_views": list(r.camera_views)}
               for r in rooms],
        incidents=[msgspec.to_builtins(i) for i in incidents],
        records=[{"id": r.id, "category": r.category, "category_zh": r.category_zh, "sha256": r.sha256}
                 for r in records],
        video_audit=msgspec.to_builtins(service_verdict) if service_verdict else None,
        video_verdict_claimed=msgspec.to_builtins(data.video_verdict) if data.video_verdict else None,
        supervisor=actor.label, summary=data.summary, conclusion=conclusion, conclusion_zh=CONCLUSION_ZH[conclusion],
        signed_at=now.astimezone(tz).isoformat(), pass_reason=pass_reason)
    form_row = await keep_document(db, actor, settings, archive, session, "supervision_form", render_form(form),
                                   "text/html; charset=utf-8", f"质量督导表-session-{session.id}.html", trail=False)
    row = SignOff(session_id=session.id, supervisor=actor.label, summary=data.summary, conclusion=conclusion,
                  video_verdict={"service": form.video_audit, "claimed": form.video_verdict_claimed,
                                 "pass_reason": pass_reason},
                  form_record_id=form_row.id, signed_at=now)
    if not await insert_once(db, row):  # another sign-off won the race
        raced = await get_sign_off_row(db, session.id)
        raise signed_off_conflict(settings, raced, "a session is signed off once") if raced else \
            conflict(f"session {session.id} is being signed off by someone else")
    await record(db, actor, "record.upload", "key_node_record", form_row.id, after=record_out(form_row),
                 detail={"session": session.id, "category": "supervision_form", "key": form_row.archive_key})
    out = sign_off_out(row, form_row, len(incidents))
    await record(db, actor, "sign_off.create", "sign_off", row.id, after=out,
                 detail={"session": session.id, "conclusion": conclusion})
    return out


def check_pass_reason(conclusion: str, service_verdict: VideoVerdict | None, given: str) -> str:
    """A session whose video audit fails is signed off as pass only with the supervisor's reason (400 without)."""
    reason = given.strip()
    if conclusion == "pass" and service_verdict is not None and not service_verdict.passes and not reason:
        first = "; ".join(service_verdict.reasons[:2]) or "recordings still being analysed"
        raise bad_request("pass_reason", f"the video audit fails ({first}); give your reason for signing off as "
                                         "pass despite it, or sign off as fail")
    return reason


def sign_off_out(row: SignOff, form_row: KeyNodeRecord, incidents: int) -> SignOffOut:
    verdicts = row.video_verdict or {}
    service, claimed = verdicts.get("service"), verdicts.get("claimed")
    return SignOffOut(
        id=row.id, session_id=row.session_id, supervisor=row.supervisor, summary=row.summary,
        conclusion=cast(Any, row.conclusion), conclusion_zh=CONCLUSION_ZH.get(row.conclusion, row.conclusion),
        video_audit=msgspec.convert(service, VideoVerdict) if service else None,
        video_verdict_claimed=msgspec.convert(claimed, VideoVerdict) if claimed else None,
        pass_reason=str(verdicts.get("pass_reason") or ""), incidents=incidents, form=record_out(form_row),
        signed_at=row.signed_at)


async def read_sign_off(db: AsyncSession, archive: RetentionArchive, session_id: int) -> SignOffOut:
    row = await get_sign_off_row(db, session_id)
    if row is None:
        raise not_found("sign-off of session", session_id)
    form_row = await db.get(KeyNodeRecord, row.form_record_id)
    assert form_row is not None  # a foreign key
    incidents = int(await db.scalar(select(func.count()).select_from(Incident)
                                    .where(Incident.session_id == session_id)) or 0)
    out = sign_off_out(row, form_row, incidents)
    out.form_url = await anyio.to_thread.run_sync(archive.presigned_get, form_row.archive_key, FORM_LINK_TTL)
    out.form_url_expires_at = utcnow() + FORM_LINK_TTL
    return out


async def pending_reviews(db: AsyncSession, limit: int = 500) -> list[PendingReview]:
    """Sessions that have ended and have no sign-off, newest first."""
    signed = select(SignOff.session_id)
    rows = list((await db.scalars(select(ExamSession).where(ExamSession.ends_at <= utcnow(),
                                                            ExamSession.id.not_in(signed))
                                  .order_by(ExamSession.ends_at.desc(), ExamSession.id.desc()).limit(limit))).all())
    ids = [r.id for r in rows]
    if not ids:
        return []
    sites: dict[int, set[str]] = {}
    for sid, code in (await db.execute(select(Room.session_id, Room.site_code).where(Room.session_id.in_(ids)))):
        sites.setdefault(sid, set()).add(code)
    incidents = dict((await db.execute(select(Incident.session_id, func.count()).where(
        Incident.session_id.in_(ids)).group_by(Incident.session_id))).all())
    records = dict((await db.execute(select(KeyNodeRecord.session_id, func.count()).where(
        KeyNodeRecord.session_id.in_(ids)).group_by(KeyNodeRecord.session_id))).all())
    return [PendingReview(session_id=r.id, title=r.title, occupation_code=r.occupation_code, level=r.level,
                          starts_at=r.starts_at, ends_at=r.ends_at, sites=sorted(sites.get(r.id, ())),
                          incidents=incidents.get(r.id, 0), records=records.get(r.id, 0)) for r in rows]


async def delete_recording(db: AsyncSession, actor: Actor, archive: RetentionArchive, recording_id: int) -> None:
    """Delete a recording only when the archive no longer locks it (never within its ≥ 5 years)."""
    row = await get_or_404(db, Recording, recording_id, "recording")
    what = f"recording {row.id} ({row.archive_key})"
    await refuse_if_locked(archive, row.archive_key, what=what, action="deleted")
    if row.contact_sheet_key:
        await refuse_if_locked(archive, row.contact_sheet_key, what=f"contact sheet of recording {row.id}",
                               action="deleted")
    before = {"id": row.id, "session_id": row.session_id, "key": row.archive_key, "sha256": row.sha256}
    shared = await db.scalar(select(func.count()).select_from(Recording).where(
        Recording.archive_key == row.archive_key, Recording.id != row.id))
    if not shared:
        await delete_archived(archive, row.archive_key, what=what)
    await db.delete(row)
    await db.flush()
    await record(db, actor, "recording.delete", "recording", recording_id, before=before)


async def sign_off_with_link(db: AsyncSession, actor: Actor, archive: RetentionArchive,
                             session_id: int) -> SignOffOut:
    """The sign-off with a short-lived link to its supervision form; each link is in the trail."""
    out = await read_sign_off(db, archive, session_id)
    await record(db, actor, "sign_off.form_link", "sign_off", out.id,
                 detail={"key": out.form.key, "minutes": int(FORM_LINK_TTL.total_seconds() // 60)})
    return out
