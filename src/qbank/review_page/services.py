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
from qbank.recordings.schemas import VideoAudit
from qbank.recordings.services import confirmed_link
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
    reason: str  # finding kinds, comma-separated ("black", "black,frozen", "corrupt", "not recorded")
    start: float  # seconds from the window start
    end: float
    left: float  # percent of the window
    width: float
    words: str  # the reason in words ("usable" for usable stretches)
    label: str  # local times and the reason in words


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
    markers: list[Marker]


class Tick(msgspec.Struct, kw_only=True):
    left: float
    label: str


def local_hms(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%H:%M:%S")


def span_words(start: datetime, end: datetime, tz: ZoneInfo, lang: Lang) -> str:
    secs = (end - start).total_seconds()
    unit = "秒" if lang == "zh" else "s"
    return f"{local_hms(start, tz)}–{local_hms(end, tz)} ({secs:.0f} {unit})"


def lanes(report: videoaudit.CoverageReport, incidents: list[IncidentOut], tz: ZoneInfo, lang: Lang) -> list[Lane]:
    """One lane per room and required view, its stretches coloured, its incidents as markers."""
    w0 = report.window.start
    total = (report.window.end - w0).total_seconds()

    def seg(kind: SegmentKind, i: videoaudit.Interval, reason: str) -> Segment:
        a, b = (i.start - w0).total_seconds(), (i.end - w0).total_seconds()
        words = reason_words(reason, lang) if reason else ("可用" if lang == "zh" else "usable")
        return Segment(kind=kind, reason=reason, start=round(a, 3), end=round(b, 3), left=round(100 * a / total, 4),
                       width=round(100 * (b - a) / total, 4), words=words,
                       label=f"{span_words(i.start, i.end, tz, lang)} {words}")

    out: list[Lane] = []
    for room in report.rooms:
        for view in room.views:
            segments = [seg("usable", i, "") for i in view.usable]
            segments += [seg("gap", i, "not recorded") for i in view.gaps]
            segments += [seg("corrupt" if "corrupt" in i.reason.split(",") else "unusable", i, i.reason or "unusable")
                         for i in view.unusable]
            segments.sort(key=lambda s: s.start)
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
                            usable_seconds=view.usable_seconds, segments=segments, markers=markers))
    return out


def ticks(report: videoaudit.CoverageReport, tz: ZoneInfo, n: int = 4) -> list[Tick]:
    w0, w1 = report.window.start, report.window.end
    total = (w1 - w0).total_seconds()
    return [Tick(left=100 * k / n, label=local_hms(w0 + timedelta(seconds=total * k / n), tz)) for k in range(n + 1)]


def reasons_zh(audit: VideoAudit, tz: ZoneInfo) -> list[str]:
    """The verdict's reasons in Chinese (the service's own reasons are in English)."""
    out: list[str] = []
    for room in audit.report.rooms:
        for view in room.views:
            if view.passes:
                continue
            if not view.covered:
                parts = ["整段无录像"]
            else:
                parts = [f"无录像 {span_words(g.start, g.end, tz, 'zh')}" for g in view.gaps]
                parts += [f"{reason_words(u.reason or 'unusable', 'zh')} {span_words(u.start, u.end, tz, 'zh')}"
                          for u in view.unusable]
            out.append(f"{room.room} {view.view}：" + "；".join(parts))
    if audit.pending:
        out.append(f"{len(audit.pending)} 个录像仍在分析中")
    return out


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
    url = await confirmed_link(archive, rec.archive_key, ttl, f"recording {rec.id}")
    sheet_key = rec.contact_sheet_key
    sheet = await anyio.to_thread.run_sync(archive.presigned_get, sheet_key, ttl) if sheet_key else None
    await record(db, actor, "recording.link", "recording", rec.id,
                 detail={"minutes": int(ttl.total_seconds() // 60), "via": "review page"})
    return url, sheet
