"""The station's state: the package it serves, its rooms and seats, who is signed in where, and the exam clock.

Everything a request reads is held here in memory; every change is first committed to the station's database
(:mod:`qbank.station.store`) and only then applied here and acknowledged, so a restart rebuilds the same state from
the file. Times are the station's clock (seconds since the epoch); the browsers' clocks are never trusted.

Time lost while the station itself was down (a crash, ``kill -9``, a power cut) is credited to every running room:
while a room runs the station notes it is alive each second, and at start-up the gap since that note is added to
the room's time, in the room's log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from qbank.papers.keys import site_signing_key
from qbank.station.cards import code_hash, codes_key, desk_code, proctor_code
from qbank.station.errors import Refusal
from qbank.station.package import Centre, CentreError, OpenedPackage, PackageRefused
from qbank.station.store import Store, StoreError, set_meta

log = structlog.get_logger("qbank.station")
ALIVE_EVERY = 1.0  # seconds between "alive" notes while a room runs
OUTAGE_MIN = 2.0  # a gap in the notes longer than this is credited


def now() -> float:
    return time.time()


def clock(at: float, tz: Any = None) -> str:
    """A station time as HH:MM:SS in the session's local time (the package's start gives the offset)."""
    return datetime.fromtimestamp(at, tz).strftime("%H:%M:%S")


@dataclass
class Question:
    no: int
    version_id: int
    type: str
    section: int
    points: float
    stem: str
    options: list[str]
    media: list[str]  # media ids (SHA-256 of the image) served at /media/{id}


@dataclass
class Seat:
    number: str
    name: str
    room: str
    desk: int
    id_tail: str | None
    status: str = "expected"  # expected, signed_in, submitted, absent
    signed_in_at: float | None = None
    submitted_at: float | None = None
    how: str = ""
    extra_seconds: int = 0
    machine: str = ""
    form: int | None = None
    questions: list[Question] = field(default_factory=list)
    answers: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)  # no -> (seq, places)
    flags: set[int] = field(default_factory=set)
    last_seen: float = 0.0  # time.monotonic() of the last request from the candidate's browser

    @property
    def answered(self) -> int:
        return sum(1 for _, places in self.answers.values() if places)


@dataclass
class Room:
    code: str
    started_at: float | None = None
    started_by: str = ""
    ended_at: float | None = None
    outage_seconds: float = 0.0
    bundle_id: str | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.ended_at is None


@dataclass
class Outgoing:
    """A response bundle in the outbox, as the proctor console shows it."""

    bundle_id: str
    room: str
    body: bytes
    sha256: str
    attempts: int = 0
    last_error: str = ""
    acknowledged_at: float | None = None
    answer: dict[str, Any] = field(default_factory=dict)


class Station:
    """One package at one site: its rooms, seats, sign-ins, the exam clock and the outbox."""

    def __init__(self, store: Store, opened: OpenedPackage, *, centre: Centre | None, id_digits: int = 6,
                 tz: Any = None) -> None:
        self.store, self.opened, self.centre, self.id_digits = store, opened, centre, id_digits
        self.header = opened.header
        roster = opened.roster()
        self.session: dict[str, Any] = dict(roster.get("session") or {})
        self.tz = tz or datetime.fromisoformat(str(self.session.get("local_start") or self.header["starts_at"])).tzinfo
        self.window = (datetime.fromisoformat(str(self.header["starts_at"])).timestamp(),
                       datetime.fromisoformat(str(self.header["ends_at"])).timestamp())
        self.codes_key = codes_key(opened.site_key)
        self.signing_key = site_signing_key(opened.site_key)
        self.seats: dict[str, Seat] = {}
        for c in roster.get("candidates") or []:
            self.seats[c["number"]] = Seat(number=c["number"], name=c["name"], room=c["room"], desk=int(c["desk"]),
                                           id_tail=c.get("id_tail"))
        self.rooms: dict[str, Room] = {s.room: Room(s.room) for s in self.seats.values()}
        self.browsers: dict[str, tuple[str, bool]] = {}  # token hash -> (number, revoked)
        self.proctors: dict[str, str] = {}  # token hash -> room
        self.desk_codes: dict[str, str] = {}  # unused code hash -> number
        self.outbox: dict[str, Outgoing] = {}
        self.content: dict[str, Any] | None = None
        self.media: dict[str, tuple[str, bytes]] = {}
        self.duration_s = 0
        self.release_note = "waiting for the centre's release share"
        self.signing_key_registered = False
        self.wake_sender = asyncio.Event()
        self.alive_at = 0.0
        self.tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ start-up
    def bind(self, centre_key: str) -> None:
        """Tie the database to this package (refusing another package's database), remember the centre's key,
        write the roster and desk codes, rebuild the state, credit a running room with the time the station was
        down."""
        bound = self.store.meta("package_id")
        if bound is not None and bound != self.opened.package_id:
            raise StoreError(f"{self.store.path} belongs to package {bound} (session {self.store.meta('session')}); "
                             f"this package is {self.opened.package_id}: start the station with another --db")
        self.store.write_now(lambda conn: set_meta(conn, "centre_key", centre_key))
        self.store.write_now(self._write_roster)
        self._load()
        share = self.store.meta("centre_share")
        if share is not None:
            self.load_content(self.opened.open({"package_id": self.opened.package_id, "centre_share": share}))
        self.store.write_now(self._credit_outage)

    def _write_roster(self, conn: Any) -> None:
        set_meta(conn, "package_id", self.opened.package_id)
        set_meta(conn, "session", str(self.opened.session_id))
        set_meta(conn, "site", self.opened.site)
        for room in self.rooms:
            conn.execute("INSERT OR IGNORE INTO room (code) VALUES (?)", (room,))
        t = now()
        for seat in self.seats.values():
            conn.execute("INSERT OR IGNORE INTO candidate (number, room, desk) VALUES (?, ?, ?)",
                         (seat.number, seat.room, seat.desk))
            code = desk_code(self.codes_key, self.opened.package_id, seat.number)
            conn.execute("INSERT OR IGNORE INTO desk_code (code_hash, number, issued_at) VALUES (?, ?, ?)",
                         (code_hash(code), seat.number, t))

    def _load(self) -> None:
        rows = self.store.rows
        for r in rows("SELECT * FROM room"):
            if r["code"] in self.rooms:
                self.rooms[r["code"]] = Room(r["code"], r["started_at"], r["started_by"] or "", r["ended_at"],
                                             r["outage_seconds"], r["bundle_id"])
        for r in rows("SELECT * FROM candidate"):
            seat = self.seats.get(r["number"])
            if seat is None:
                continue
            seat.status, seat.signed_in_at, seat.submitted_at = r["status"], r["signed_in_at"], r["submitted_at"]
            seat.how, seat.extra_seconds, seat.machine = r["how"], r["extra_seconds"], r["machine"]
        for r in rows("SELECT number, no, places, seq FROM answer"):
            if r["number"] in self.seats:
                self.seats[r["number"]].answers[r["no"]] = (r["seq"], tuple(json.loads(r["places"])))
        for r in rows("SELECT number, no FROM flag"):
            if r["number"] in self.seats:
                self.seats[r["number"]].flags.add(r["no"])
        for r in rows("SELECT token_hash, number, revoked_at FROM browser"):
            self.browsers[r["token_hash"]] = (r["number"], r["revoked_at"] is not None)
        for r in rows("SELECT token_hash, room FROM proctor"):
            self.proctors[r["token_hash"]] = r["room"]
        for r in rows("SELECT code_hash, number FROM desk_code WHERE used_at IS NULL"):
            self.desk_codes[r["code_hash"]] = r["number"]
        for r in rows("SELECT * FROM outbox"):
            self.outbox[r["bundle_id"]] = Outgoing(
                r["bundle_id"], r["room"], bytes(r["body"]), r["sha256"], r["attempts"], r["last_error"],
                r["acknowledged_at"], json.loads(r["answer"]) if r["answer"] else {})
        self.alive_at = float(self.store.meta("alive_at") or 0)

    def _credit_outage(self, conn: Any) -> None:
        t, before = now(), self.alive_at
        self.alive_at = t
        set_meta(conn, "alive_at", repr(t))
        gap = t - before
        if not before or gap <= OUTAGE_MIN:  # never noted alive, or no real gap
            return
        for room in self.rooms.values():
            if room.running:
                room.outage_seconds += gap
                conn.execute("UPDATE room SET outage_seconds = ? WHERE code = ?", (room.outage_seconds, room.code))
                self.store.append_log(conn, room.code, "station", "station.outage_credited",
                                      {"seconds": round(gap, 3), "down_from": clock(before, self.tz),
                                       "up_at": clock(t, self.tz)})
                log.warning("station was down: time credited", room=room.code, seconds=round(gap, 1))

    def load_content(self, content: dict[str, Any]) -> None:
        """The unsealed papers: each seat's form and questions (options in their delivery order), the images."""
        self.duration_s = int(content["layout"]["duration_minutes"]) * 60
        media_ids: dict[str, str] = {}
        for key, m in (content.get("media") or {}).items():
            data = base64.b64decode(m["data"])
            media_id = hashlib.sha256(data).hexdigest()
            self.media[media_id] = (str(m["content_type"]), data)
            media_ids[key] = media_id
        for cand in content["candidates"]:
            seat = self.seats.get(cand["number"])
            if seat is None:
                continue
            seat.form = int(cand["form"])
            seat.questions = [Question(no=int(q["no"]), version_id=int(q["version_id"]), type=str(q["type"]),
                                       section=int(q["section"]), points=float(q["points"]), stem=str(q["stem"]),
                                       options=[str(o) for o in q["options"]],
                                       media=[media_ids[k] for k in q["media"] if k in media_ids])
                              for q in cand["questions"]]
        self.content = content
        self.release_note = ""
        # the papers stay for the whole exam: out of the collector's full passes, which otherwise walk every seat's
        # questions again and again while candidates save
        gc.freeze()

    # ------------------------------------------------------------------ the clock
    def deadline(self, seat: Seat) -> float | None:
        room = self.rooms[seat.room]
        if room.started_at is None:
            return None
        return room.started_at + self.duration_s + seat.extra_seconds + room.outage_seconds

    def remaining(self, seat: Seat, at: float | None = None) -> float | None:
        end = self.deadline(seat)
        return None if end is None else max(0.0, end - (at if at is not None else now()))

    def in_window(self, at: float) -> bool:
        return self.window[0] <= at <= self.window[1]

    def local(self, at: float) -> str:
        return clock(at, self.tz)

    # ------------------------------------------------------------------ who is asking
    def seat_of(self, number: str) -> Seat:
        seat = self.seats.get(number)
        if seat is None:
            raise Refusal(404, f"no candidate {number} at this station", f"本考试机没有准考证号为 {number} 的考生")
        return seat

    def room_of(self, code: str) -> Room:
        room = self.rooms.get(code)
        if room is None:
            raise Refusal(404, f"no room {code} at this station", f"本考试机没有考场 {code}")
        return room

    def proctor_code_of(self, room: str) -> str:
        return proctor_code(self.codes_key, self.opened.package_id, room)


async def fetch_release(st: Station) -> None:
    """Ask the centre for its release share until it gives it (it does only inside the window), keep the share in
    the station's database — from then on the station needs no network — and open the papers."""
    while st.content is None:
        if st.centre is None:
            st.release_note = "no centre to ask (--centre): the papers stay sealed"
            return
        try:
            release = await st.centre.release(st.opened.session_id)
            content = st.opened.open(release)
        except CentreError as exc:
            st.release_note = exc.detail
            await asyncio.sleep(_release_pause(st, exc))
            continue
        except PackageRefused as exc:
            st.release_note = exc.reason
            log.error("release share refused", reason=exc.reason)
            await asyncio.sleep(60)
            continue
        share = str(release["centre_share"])

        def keep(conn: Any, share: str = share) -> None:
            set_meta(conn, "centre_share", share)
            for room in st.rooms:
                st.store.append_log(conn, room, "station", "release.received",
                                    {"package_id": st.opened.package_id})

        await st.store.write(keep)
        st.load_content(content)
        log.info("release share received: papers unsealed", package=st.opened.package_id)


def _release_pause(st: Station, exc: CentreError) -> float:
    """Before the window: until it opens (at most 5 minutes at a time); unreachable or refused: 10 seconds."""
    opens = (exc.body.get("extra") or {}).get("opens_at") if exc.status == 403 else None
    if opens:
        with contextlib.suppress(ValueError):
            return min(max(datetime.fromisoformat(str(opens)).timestamp() - now(), 2.0), 300.0)
    return 10.0
