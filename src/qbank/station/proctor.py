"""The proctor's console for one room: start the exam (inside the window, once the release share is in), every desk
live, mark absent, add time for one candidate, move a candidate to another machine, record incidents (§29–§31),
end the room. Every action is an entry of the room's hash-chained log."""

from __future__ import annotations

import contextlib
import hmac
import secrets
import sqlite3
import time
from datetime import datetime
from typing import Any

from qbank.lib.digest import chain_break
from qbank.reviews.categories import BY_CODE, CATEGORIES
from qbank.station.bundles import seal_room
from qbank.station.candidates import Attempts, submit, token_hash
from qbank.station.cards import code_hash, fresh_code
from qbank.station.errors import Refusal
from qbank.station.runtime import Room, Seat, Station, now
from qbank.station.store import log_entries, set_meta

DISCONNECTED_AFTER = 15.0  # seconds without a word from a candidate's browser


async def proctor_sign_in(st: Station, attempts: Attempts, machine: str, code: str) -> tuple[str, str]:
    t = now()
    wait = attempts.wait(machine, t)
    if wait > 0:
        raise Refusal(429, f"too many wrong codes: try again in about {max(1, round(wait / 60))} minute(s)",
                      f"错误次数过多，请约 {max(1, round(wait / 60))} 分钟后再试", retry_after=int(wait) + 1)
    room = next((r for r in st.rooms if hmac.compare_digest(st.proctor_code_of(r), code.strip().upper())), None)
    if room is None:
        attempts.fail(machine, t)
        raise Refusal(401, "this proctor code is not valid for any room of this station", "监考员登录码无效")
    token = secrets.token_urlsafe(32)
    hashed = token_hash(token)

    def op(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO proctor (token_hash, room, created_at) VALUES (?, ?, ?)", (hashed, room, t))
        st.store.append_log(conn, room, "proctor", "proctor.sign_in", {"machine": machine}, at=t)

    await st.store.write(op)
    attempts.clear(machine)
    st.proctors[hashed] = room
    return token, room


def proctor_room(st: Station, token: str | None, room: str) -> Room:
    mine = st.proctors.get(token_hash(token)) if token else None
    if mine is None:
        raise Refusal(401, "sign in with the room's proctor code", "请输入本考场的监考员登录码")
    if mine != room:
        raise Refusal(403, f"you are the proctor of room {mine}, not of room {room}",
                      f"你是考场 {mine} 的监考员，不能管理考场 {room}", yours=mine)
    return st.room_of(room)


def desk_status(st: Station, seat: Seat, at: float) -> str:
    if seat.status == "expected":
        return "not_signed_in"
    if seat.status in ("absent", "submitted"):
        return seat.status
    remaining = st.remaining(seat, at)
    if remaining is None:
        return "waiting"
    if seat.last_seen == 0.0 or time.monotonic() - seat.last_seen > DISCONNECTED_AFTER:
        return "disconnected"
    return "answering" if remaining > 0 else "time_over"


def seats_in(st: Station, room: str) -> list[Seat]:
    return sorted((s for s in st.seats.values() if s.room == room), key=lambda s: (s.desk, s.number))


def room_out(st: Station, room: Room) -> dict[str, Any]:
    t = now()
    desks = []
    for seat in seats_in(st, room.code):
        remaining = st.remaining(seat, t)
        desks.append({"number": seat.number, "name": seat.name, "desk": seat.desk,
                      "status": desk_status(st, seat, t), "answered": seat.answered, "total": len(seat.questions),
                      "remaining_ms": None if remaining is None else int(remaining * 1000),
                      "extra_minutes": round(seat.extra_seconds / 60, 1), "machine": seat.machine, "how": seat.how})
    sent = [o for o in st.outbox.values() if o.room == room.code]
    return {"room": room.code, "site": st.opened.site, "session": st.opened.session_id,
            "title": st.session.get("title", ""), "server_time": st.local(t),
            "window": [st.local(st.window[0]), st.local(st.window[1])], "in_window": st.in_window(t),
            "release": st.content is not None, "release_note": st.release_note,
            "duration_minutes": st.duration_s // 60 if st.content else None,
            "started_at": st.local(room.started_at) if room.started_at else None,
            "ended_at": st.local(room.ended_at) if room.ended_at else None,
            "outage_seconds": round(room.outage_seconds, 1), "desks": desks,
            "bundles": [{"bundle_id": o.bundle_id, "sha256": o.sha256, "attempts": o.attempts,
                         "last_error": o.last_error, "acknowledged": o.acknowledged_at is not None,
                         "acknowledged_at": st.local(o.acknowledged_at) if o.acknowledged_at else None,
                         "accepted": o.answer.get("accepted")} for o in sent],
            "categories": [{"code": c.code, "zh": c.label_zh, "en": c.label_en, "article": c.article}
                           for c in CATEGORIES]}


def _seat_in(st: Station, room: Room, number: str) -> Seat:
    seat = st.seat_of(number)
    if seat.room != room.code:
        raise Refusal(403, f"candidate {number} sits in room {seat.room}, not in room {room.code}",
                      f"考生 {number} 在考场 {seat.room}，不在考场 {room.code}")
    return seat


def _not_ended(st: Station, room: Room) -> None:
    if room.ended_at is not None:
        raise Refusal(409, f"room {room.code} ended at {st.local(room.ended_at)}",
                      f"考场 {room.code} 已于 {st.local(room.ended_at)} 结束")


async def start_room(st: Station, room: Room, actor: str) -> dict[str, Any]:
    t = now()
    if room.started_at is not None:
        raise Refusal(409, f"room {room.code} was started at {st.local(room.started_at)}",
                      f"考场 {room.code} 已于 {st.local(room.started_at)} 开考")
    if st.content is None:
        raise Refusal(409, f"the papers are still sealed: the centre's release share is not in ({st.release_note})",
                      f"试卷尚未解封：尚未取得评价中心的解封密钥分量（{st.release_note}）")
    if not st.in_window(t):
        opens, closes = st.local(st.window[0]), st.local(st.window[1])
        when = (f"before the session's window opens at {opens}", f"开考时间 {opens} 之前") if t < st.window[0] \
            else (f"after the session's window closed at {closes}", f"考试时段已于 {closes} 结束")
        raise Refusal(403, f"the exam cannot start {when[0]} (station time {st.local(t)})",
                      f"不能在{when[1]}开考（考试机时间 {st.local(t)}）")
    seats = seats_in(st, room.code)

    def op(conn: sqlite3.Connection) -> None:
        done = conn.execute("UPDATE room SET started_at = ?, started_by = ? WHERE code = ? AND started_at IS NULL",
                            (t, actor, room.code))
        if done.rowcount != 1:
            raise Refusal(409, f"room {room.code} was already started", f"考场 {room.code} 已开考")
        set_meta(conn, "alive_at", repr(t))
        st.store.append_log(conn, room.code, actor, "room.start",
                            {"duration_minutes": st.duration_s // 60, "candidates": len(seats),
                             "signed_in": sum(1 for s in seats if s.status == "signed_in")}, at=t)

    await st.store.write(op)
    room.started_at, room.started_by, st.alive_at = t, actor, t
    return room_out(st, room)


async def mark_absent(st: Station, room: Room, number: str, reason: str, actor: str) -> dict[str, Any]:
    seat = _seat_in(st, room, number)
    _not_ended(st, room)
    if seat.status != "expected":
        raise Refusal(409, f"candidate {number} signed in at {st.local(seat.signed_in_at or now())}: not absent",
                      f"考生 {number} 已于 {st.local(seat.signed_in_at or now())} 登录，不是缺考")

    def op(conn: sqlite3.Connection) -> None:
        done = conn.execute("UPDATE candidate SET status = 'absent', how = 'marked' WHERE number = ? "
                            "AND status = 'expected'", (number,))
        if done.rowcount != 1:
            raise Refusal(409, f"candidate {number} has just signed in", f"考生 {number} 刚刚登录")
        st.store.append_log(conn, room.code, actor, "candidate.absent", {"number": number, "reason": reason})

    await st.store.write(op)
    seat.status, seat.how = "absent", "marked"
    return room_out(st, room)


async def add_time(st: Station, room: Room, number: str, minutes: int, reason: str, actor: str) -> dict[str, Any]:
    seat = _seat_in(st, room, number)
    _not_ended(st, room)
    if seat.status in ("submitted", "absent"):
        raise Refusal(409, f"candidate {number} is {seat.status}: time can no longer be added",
                      f"考生 {number} 已{'交卷' if seat.status == 'submitted' else '缺考'}，不能再延长时间")
    seconds = seat.extra_seconds + minutes * 60

    def op(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE candidate SET extra_seconds = ? WHERE number = ?", (seconds, number))
        st.store.append_log(conn, room.code, actor, "candidate.extra_time",
                            {"number": number, "minutes": minutes, "total_minutes": seconds / 60, "reason": reason})

    await st.store.write(op)
    seat.extra_seconds = seconds
    return room_out(st, room)


async def move(st: Station, room: Room, number: str, to: str, reason: str, actor: str) -> dict[str, Any]:
    """Sign the candidate out of their browser and give a one-time code for the other machine; their answers and
    their time go with them."""
    seat = _seat_in(st, room, number)
    _not_ended(st, room)
    if seat.status in ("submitted", "absent"):
        raise Refusal(409, f"candidate {number} is {seat.status}; there is nothing to move",
                      f"考生 {number} 已{'交卷' if seat.status == 'submitted' else '缺考'}，无需换机")
    code, t = fresh_code(), now()
    revoked = [h for h, (n, gone) in st.browsers.items() if n == number and not gone]

    def op(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE browser SET revoked_at = ? WHERE number = ? AND revoked_at IS NULL", (t, number))
        conn.execute("UPDATE desk_code SET used_at = ? WHERE number = ? AND used_at IS NULL", (t, number))
        conn.execute("INSERT INTO desk_code (code_hash, number, issued_at) VALUES (?, ?, ?)",
                     (code_hash(code), number, t))
        st.store.append_log(conn, room.code, actor, "candidate.move",
                            {"number": number, "from": seat.machine, "to": to, "reason": reason,
                             "answered": seat.answered}, at=t)

    await st.store.write(op)
    for h in revoked:
        st.browsers[h] = (number, True)
    for h in [h for h, n in st.desk_codes.items() if n == number]:
        del st.desk_codes[h]
    st.desk_codes[code_hash(code)] = number
    return {**room_out(st, room), "moved": number, "desk_code": code}


async def record_incident(st: Station, room: Room, category: str, note: str, actor: str) -> dict[str, Any]:
    if category not in BY_CODE:
        raise Refusal(400, f"unknown incident category {category!r}", f"未知的问题类别 {category!r}")
    if room.started_at is None:
        raise Refusal(409, "incidents are recorded once the exam has started", "开考后才能记录考场问题")
    t = now()

    def op(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO incident (room, at, category, note, by) VALUES (?, ?, ?, ?, ?)",
                     (room.code, t, category, note, actor))
        st.store.append_log(conn, room.code, actor, "incident", {"category": category, "note": note}, at=t)

    await st.store.write(op)
    return {**room_out(st, room), "incident_at": st.local(t)}


async def end_room(st: Station, room: Room, actor: str) -> dict[str, Any]:
    """End the room when nobody is still answering with time left: whoever never signed in is absent, whoever is
    still signed in is submitted; then the room's response bundle goes into the outbox."""
    t = now()
    if room.started_at is None:
        raise Refusal(409, f"room {room.code} has not started", f"考场 {room.code} 尚未开考")
    _not_ended(st, room)
    seats = seats_in(st, room.code)
    busy = [s.number for s in seats if s.status == "signed_in" and (st.remaining(s, t) or 0) > 0]
    if busy:
        raise Refusal(409, f"{len(busy)} candidate(s) still have time: {', '.join(busy[:10])}",
                      f"仍有 {len(busy)} 名考生在作答时间内：{', '.join(busy[:10])}", candidates=busy)
    for seat in seats:
        if seat.status == "signed_in":
            await submit(st, seat, "time_out", "station")
    outgoing = await st.store.write(lambda conn: seal_room(st, conn, room, actor, t))
    for seat in seats:
        if seat.status == "expected":
            seat.status, seat.how = "absent", "never_signed_in"
    room.ended_at, room.bundle_id = t, outgoing.bundle_id
    st.outbox[outgoing.bundle_id] = outgoing
    st.wake_sender.set()
    return room_out(st, room)


async def room_log(st: Station, room: Room) -> dict[str, Any]:
    entries = await st.store.write(lambda conn: log_entries(conn, room.code))
    broken = chain_break(entries)
    local = [st.local(datetime.fromisoformat(e["at"]).timestamp()) for e in entries]
    return {"room": room.code, "entries": entries, "local_times": local, "chain_holds": broken is None,
            "chain_break": broken}


async def tick(st: Station) -> None:
    """Once a second: note the station is alive while a room runs, submit whoever's time is over, end a room
    whose every candidate is done or whose every clock has run out."""
    t = now()
    running = [r for r in st.rooms.values() if r.running]
    if not running:
        return
    if t - st.alive_at >= 1.0:
        await st.store.write(lambda conn: set_meta(conn, "alive_at", repr(t)))
        st.alive_at = t
    for room in running:
        seats = seats_in(st, room.code)
        for seat in seats:
            if seat.status == "signed_in" and st.remaining(seat, t) == 0:
                with contextlib.suppress(Refusal):  # submitted by the candidate a moment ago
                    await submit(st, seat, "time_out", "station")
        done = all(s.status in ("submitted", "absent") for s in seats)
        over = all((st.remaining(s, t) or 0) == 0 for s in seats if s.status in ("expected", "signed_in"))
        if done or over:
            with contextlib.suppress(Refusal):  # ended by the proctor a moment ago
                await end_room(st, room, "station")

