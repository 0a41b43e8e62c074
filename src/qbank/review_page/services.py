"""What the review page shows: sign-in sessions, timelines per room and view, the recording at a moment."""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import videoaudit
from evidence import RetentionArchive
from qbank.audit.services import record
from qbank.auth.models import ApiToken
from qbank.auth.services import actor_of
from qbank.lib.actors import Actor, Role
from qbank.recordings.models import Recording
from qbank.recordings.services import RECORDING_TYPE, confirmed_link
from qbank.recordings.words import hms, short, span_words
from qbank.review_page.labels import Lang, reason_words
from qbank.reviews.schemas import IncidentOut
from qbank.sessions.models import ExamSession, Room

SESSION_TTL = timedelta(hours=8)
SegmentKind = Literal["usable", "gap", "unusable", "corrupt"]


# ------------------------------------------------------------------------------------------- sign-in sessions
class PageSession(msgspec.Struct, kw_only=True):
    """What the server keeps for a signed-in browser: which token signed in (never the token itself), and when."""

    token_id: int
    signed_in_at: datetime


class SignInRefused(Exception):
    """The browser's sign-in session is missing, expired, or its token was revoked or is not a supervisor's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def start_session(store: Store, token_id: int, now: datetime) -> str:
    """A new random session id (a fresh one at every sign-in: no fixation)."""
    if isinstance(store, FileStore | MemoryStore):  # sign-in is rare: a good moment to drop expired sessions
        await store.delete_expired()
    sid = secrets.token_urlsafe(32)
    await store.set(sid, msgspec.json.encode(PageSession(token_id=token_id, signed_in_at=now)),
                    expires_in=SESSION_TTL)
    return sid


async def end_session(store: Store, sid: str | None) -> None:
    if sid:
        await store.delete(sid)


async def session_actor(store: Store, db: AsyncSession, sid: str | None) -> Actor:
    """The supervisor behind the session cookie; the token is looked up on every request (revocation counts)."""
    if not sid:
        raise SignInRefused("not_signed_in")
    raw = await store.get(sid)
    if raw is None:
        raise SignInRefused("expired")
    data = msgspec.json.decode(raw, type=PageSession)
    row = await db.get(ApiToken, data.token_id)
    if row is None or row.revoked_at is not None:
        await store.delete(sid)
        raise SignInRefused("revoked")
    actor = actor_of(row)
    if actor.role != Role.supervisor:  # pragma: no cover - only supervisors can sign in
        await store.delete(sid)
        raise SignInRefused("role")
    return actor


# ------------------------------------------------------------------------------------------- timelines
class Segment(msgspec.Struct, kw_only=True):
    kind: SegmentKind
    reason: str  # on the coverage row: the finding kinds of an unusable stretch ("black,covered"), "corrupt",
    # "not recorded"; on a kind's row: that kind
    start: float  # seconds from the window start
    end: float
    left: float  # percent of the window
    width: float
    words: str  # the reason in words ("usable" for usable stretches)
    label: str  # local times and the reason in words


class KindRow(msgspec.Struct, kw_only=True):
    """One finding kind of a lane: its own row under the coverage row, so kinds that overlap each keep their
    times (never painted over each other)."""

    kind: str
    words: str
    segments: list[Segment]


class Marker(msgspec.Struct, kw_only=True):
    incident_id: int
    at: float
    left: float
    category: str
    label: str


class Lane(msgspec.Struct, kw_only=True):
    room: str
    kind: str
    view: str
    passes: bool
    usable_seconds: float
    segments: list[Segment]
    rows: list[KindRow]
    notes: list[str]  # about whole recordings (format minimums, corrupt, not placed): beside the timeline
    markers: list[Marker]


class Tick(msgspec.Struct, kw_only=True):
    left: float
    label: str


def local_hms(dt: datetime, tz: ZoneInfo) -> str:
    return hms(dt, tz)


# notes beside a lane, and the corrupt stretch's words
NOTE_WORDS = {
    "zh": {"recording": "录像 {recording}：{kind}{detail}",
           "unplaced": "录像 {recording}：{kind}，时长未知，无法放上时间轴{detail}",
           "corrupt_from": "自 {start} 起文件损坏"},
    "en": {"recording": "recording {recording}: {kind}{detail}",
           "unplaced": "recording {recording}: {kind}, length unknown, not on the timeline{detail}",
           "corrupt_from": "corrupt from {start}"},
}


def lane_notes(view: videoaudit.ViewCoverage, lang: Lang) -> list[str]:
    words = NOTE_WORDS[lang]
    out = []
    for note in view.recording_notes:
        detail = f" ({short(note.detail)})" if note.detail else ""
        which = "unplaced" if note.kind == "corrupt" and note.recording in view.unplaced else "recording"
        out.append(words[which].format(recording=note.recording, kind=reason_words(note.kind, lang), detail=detail))
    return out


def lanes(report: videoaudit.CoverageReport, incidents: list[IncidentOut], tz: ZoneInfo, lang: Lang) -> list[Lane]:
    """One lane per room and required view: the coverage row (usable, not recorded, unusable, corrupt), under it
    one row per finding kind, notes about whole recordings beside it, its incidents as markers."""
    w0 = report.window.start
    total = (report.window.end - w0).total_seconds()

    def seg(kind: SegmentKind, start: datetime, end: datetime, reason: str, words: str = "") -> Segment:
        a, b = (start - w0).total_seconds(), (end - w0).total_seconds()
        words = words or (reason_words(reason, lang) if reason else ("可用" if lang == "zh" else "usable"))
        return Segment(kind=kind, reason=reason, start=round(a, 3), end=round(b, 3), left=round(100 * a / total, 4),
                       width=round(100 * (b - a) / total, 4), words=words,
                       label=f"{span_words(start, end, tz, lang)} {words}")

    def finding_seg(f: videoaudit.FindingSpan) -> Segment:
        if f.kind == "corrupt":
            return seg("corrupt", f.start, f.end, "corrupt",
                       NOTE_WORDS[lang]["corrupt_from"].format(start=local_hms(f.start, tz)))
        return seg("unusable", f.start, f.end, f.kind)

    out: list[Lane] = []
    for room in report.rooms:
        for view in room.views:
            segments = [seg("usable", i.start, i.end, "") for i in view.usable]
            segments += [seg("gap", i.start, i.end, "not recorded") for i in view.gaps]
            segments += [seg("corrupt" if "corrupt" in i.reason.split(",") else "unusable", i.start, i.end,
                             i.reason or "unusable") for i in view.unusable]
            segments.sort(key=lambda s: s.start)
            rows = [KindRow(kind=kind, words=reason_words(kind, lang),
                            segments=[finding_seg(f) for f in view.findings if f.kind == kind])
                    for kind in sorted({f.kind for f in view.findings})]
            markers = []
            for inc in incidents:
                if inc.room != room.room or inc.view != view.view:
                    continue
                at = (inc.at - w0).total_seconds()
                cat = inc.category_zh if lang == "zh" else inc.category_en
                markers.append(Marker(incident_id=inc.id, at=round(at, 3), left=round(100 * min(max(at, 0), total)
                                                                                     / total, 4),
                                      category=inc.category,
                                      label=f"{local_hms(inc.at, tz)} {inc.category} {cat} {inc.note}".strip()))
            out.append(Lane(room=room.room, kind=room.kind, view=view.view, passes=view.passes,
                            usable_seconds=view.usable_seconds, segments=segments, rows=rows,
                            notes=lane_notes(view, lang), markers=markers))
    return out


def ticks(report: videoaudit.CoverageReport, tz: ZoneInfo, n: int = 4) -> list[Tick]:
    w0, w1 = report.window.start, report.window.end
    total = (w1 - w0).total_seconds()
    return [Tick(left=100 * k / n, label=local_hms(w0 + timedelta(seconds=total * k / n), tz)) for k in range(n + 1)]


# ------------------------------------------------------------------------------------------- playing a moment
async def recording_at(db: AsyncSession, session: ExamSession, room_ref: str, view: str,
                       moment: datetime) -> tuple[Room | None, list[Recording]]:
    """The room, and the recordings of that room and view that cover ``moment`` (best first: analysed and not
    corrupt, then the latest upload)."""
    site, _, code = room_ref.partition("/")
    room = await db.scalar(select(Room).where(Room.session_id == session.id, Room.site_code == site,
                                              Room.code == code))
    if room is None or view not in room.camera_views:
        return room, []
    rows = (await db.scalars(select(Recording).where(Recording.room_id == room.id, Recording.view == view)
                             .order_by(Recording.id.desc()))).all()
    covering = [r for r in rows if r.duration and r.claimed_start <= moment
                < r.claimed_start + timedelta(seconds=r.duration)]
    covering.sort(key=lambda r: (r.status == "corrupt", r.status != "analysed", -r.id))
    return room, covering


def parse_moment(raw: str, session: ExamSession, tz: ZoneInfo) -> datetime | None:
    """``HH:MM[:SS]`` on the exam's local day (the next day when the window crosses midnight and the time is before
    its start), or a full ISO time with its zone. None when it is neither."""
    raw = raw.strip()
    try:
        if "T" in raw or "-" in raw[:5]:
            dt = datetime.fromisoformat(raw)
            return dt if dt.tzinfo is not None else None
        t = time.fromisoformat(raw)
    except ValueError:
        return None
    start_local = session.starts_at.astimezone(tz)
    dt = datetime.combine(start_local.date(), t, tz)
    if dt < start_local and session.ends_at.astimezone(tz).date() > start_local.date():
        dt += timedelta(days=1)
    return dt


async def play_links(db: AsyncSession, actor: Actor, archive: RetentionArchive, rec: Recording,
                     ttl: timedelta) -> tuple[str, str | None]:
    """Presigned links to play a recording and see its contact sheet; the play is in the trail. The archive
    confirms it holds the recording first (no link and no play otherwise)."""
    url = await confirmed_link(archive, rec.archive_key, ttl, f"recording {rec.id}", RECORDING_TYPE)
    sheet_key = rec.contact_sheet_key
    sheet = await anyio.to_thread.run_sync(archive.presigned_get, sheet_key, ttl) if sheet_key else None
    await record(db, actor, "recording.link", "recording", rec.id,
                 detail={"minutes": int(ttl.total_seconds() // 60), "via": "review page"})
    return url, sheet
