"""What a candidate does at the station: sign in (admission number and the last digits of the id number, or the
one-time code of a seat card), read their own paper, save each answer change, flag, submit.

A save is acknowledged only after its commit; each change carries the browser's sequence number so that a late
retry never overwrites a newer answer. Answers after submission or after the candidate's time (station clock) are
refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections import deque
from typing import Any

from qbank.station.cards import code_hash
from qbank.station.errors import Refusal
from qbank.station.runtime import Seat, Station, now

SIGN_IN_WINDOW = 300.0  # seconds over which failed sign-ins are counted
MAX_FAILS_PER_NUMBER = 5
MAX_FAILS_PER_MACHINE = 10


class Attempts:
    """Failed sign-ins per key (an admission number, a machine) in a sliding window, in memory."""

    def __init__(self, limit: int, window: float = SIGN_IN_WINDOW) -> None:
        self.limit, self.window = limit, window
        self.fails: dict[str, deque[float]] = {}

    def wait(self, key: str, at: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        q = self.fails.get(key)
        if not q:
            return 0.0
        while q and q[0] <= at - self.window:
            q.popleft()
        return q[0] + self.window - at if len(q) >= self.limit else 0.0

    def fail(self, key: str, at: float) -> None:
        self.fails.setdefault(key, deque()).append(at)

    def clear(self, key: str) -> None:
        self.fails.pop(key, None)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limited(wait: float) -> Refusal:
    minutes = max(1, round(wait / 60))
    return Refusal(429, f"too many failed sign-ins: try again in about {minutes} minute(s), or ask the proctor",
                   f"登录失败次数过多，请约 {minutes} 分钟后再试，或请监考员协助", retry_after=int(wait) + 1)


async def sign_in(st: Station, limits: tuple[Attempts, Attempts], machine: str, *, number: str = "",
                  id_digits: str = "", desk_code: str = "") -> tuple[str, Seat]:
    """A new browser session for the candidate (the token for the cookie). Wrong credentials are refused in the
    same words whichever part was wrong, and counted per admission number and per machine."""
    per_number, per_machine = limits
    t = now()
    wait = max(per_machine.wait(machine, t), per_number.wait(number, t) if number else 0.0)
    if wait > 0:
        raise _limited(wait)
    seat: Seat | None = None
    via = "desk_code" if desk_code else "id_number"
    if desk_code:
        owner = st.desk_codes.get(code_hash(desk_code))
        seat = st.seats.get(owner) if owner else None
        if seat is None:
            per_machine.fail(machine, t)
            raise Refusal(401, "this desk code is not valid (or was already used); check it or ask the proctor",
                          "座位卡登录码无效或已使用，请核对或请监考员协助")
    else:
        found = st.seats.get(number.strip())
        digits = id_digits.strip().upper()
        tail = (found.id_tail or "") if found else ""
        good = (found is not None and len(tail) >= st.id_digits and len(digits) == st.id_digits
                and hmac.compare_digest(tail[-st.id_digits:], digits))
        if not good or found is None:
            per_machine.fail(machine, t)
            if number:
                per_number.fail(number.strip(), t)
            raise Refusal(401, f"the admission number or the last {st.id_digits} characters of the id number are "
                               "wrong", f"准考证号或身份证号后 {st.id_digits} 位不正确")
        seat = found
    if seat.status == "absent":
        raise Refusal(403, "the proctor marked you absent; ask the proctor", "监考员已将你登记为缺考，请联系监考员")
    if seat.status == "submitted":
        raise Refusal(409, f"you submitted at {st.local(seat.submitted_at or t)}; the exam is over for you",
                      f"你已于 {st.local(seat.submitted_at or t)} 交卷，考试已结束")
    active = [h for h, (n, revoked) in st.browsers.items() if n == seat.number and not revoked]
    if active:
        raise Refusal(409, f"you are already signed in on machine {seat.machine or '?'}; if that computer failed, "
                           "ask the proctor to move you", f"你已在考试机 {seat.machine or '?'} 上登录；"
                                                          "如该电脑故障，请监考员为你换机")
    token = secrets.token_urlsafe(32)
    hashed, code = token_hash(token), code_hash(desk_code) if desk_code else ""
    chosen = seat

    def op(conn: sqlite3.Connection) -> None:
        if code:
            used = conn.execute("UPDATE desk_code SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
                                (t, code))
            if used.rowcount != 1:
                raise Refusal(401, "this desk code was already used", "该座位卡登录码已使用")
        conn.execute("INSERT INTO browser (token_hash, number, machine, created_at) VALUES (?, ?, ?, ?)",
                     (hashed, chosen.number, machine, t))
        conn.execute("UPDATE candidate SET status = CASE status WHEN 'expected' THEN 'signed_in' ELSE status END, "
                     "signed_in_at = coalesce(signed_in_at, ?), machine = ? WHERE number = ?",
                     (t, machine, chosen.number))
        st.store.append_log(conn, chosen.room, f"candidate {chosen.number}", "candidate.sign_in",
                            {"number": chosen.number, "machine": machine, "via": via}, at=t)

    await st.store.write(op)
    per_machine.clear(machine)
    per_number.clear(seat.number)
    if code:
        st.desk_codes.pop(code, None)
    st.browsers[hashed] = (seat.number, False)
    if seat.status == "expected":
        seat.status = "signed_in"
    seat.signed_in_at = seat.signed_in_at or t
    seat.machine = machine
    return token, seat


def browser_seat(st: Station, token: str | None) -> Seat:
    """The candidate this browser signed in as (401 in words when it is not, or no longer, signed in)."""
    found = st.browsers.get(token_hash(token)) if token else None
    if found is None:
        raise Refusal(401, "not signed in: sign in with your admission number", "尚未登录，请先用准考证号登录")
    number, revoked = found
    if revoked:
        raise Refusal(401, "this browser was signed out: the proctor moved you to another machine; sign in there",
                      "此浏览器已退出登录：监考员已为你换机，请在新的考试机上登录")
    return st.seats[number]


def own_seat(st: Station, token: str | None, number: str) -> Seat:
    """The candidate in the URL, if this browser is signed in as them (a candidate never opens another's form)."""
    seat = browser_seat(st, token)
    if seat.number != number:
        raise Refusal(403, f"this is another candidate's paper; you are signed in as {seat.number}",
                      f"这是其他考生的试卷；你登录的准考证号是 {seat.number}", yours=seat.number)
    seat.last_seen = time.monotonic()
    return seat


def phase(st: Station, seat: Seat, at: float) -> str:
    """waiting (room not started), answering, submitted, absent, or time_over (being submitted)."""
    if seat.status in ("submitted", "absent"):
        return seat.status
    remaining = st.remaining(seat, at)
    if remaining is None:
        return "waiting"
    return "answering" if remaining > 0 else "time_over"


def state_out(st: Station, seat: Seat) -> dict[str, Any]:
    t = now()
    remaining = st.remaining(seat, t)
    return {"number": seat.number, "name": seat.name, "room": seat.room, "desk": seat.desk,
            "phase": phase(st, seat, t), "remaining_ms": None if remaining is None else int(remaining * 1000),
            "server_time": st.local(t), "answered": seat.answered, "total": len(seat.questions),
            "submitted_at": st.local(seat.submitted_at) if seat.submitted_at else None, "how": seat.how,
            "paper_ready": st.content is not None}


def paper_out(st: Station, seat: Seat) -> dict[str, Any]:
    if st.content is None or not seat.questions:
        return {**state_out(st, seat), "questions": [], "answers": {}, "seqs": {}, "flags": []}
    return {**state_out(st, seat), "title": st.session.get("title", ""),
            "questions": [{"no": q.no, "type": q.type, "section": q.section, "points": q.points, "stem": q.stem,
                           "options": q.options, "media": [f"/media/{m}" for m in q.media]} for q in seat.questions],
            "answers": {str(no): list(p) for no, (_, p) in seat.answers.items()},
            "seqs": {str(no): seq for no, (seq, _) in seat.answers.items()}, "flags": sorted(seat.flags)}


def _open_for_answers(st: Station, seat: Seat, at: float) -> None:
    if seat.status == "submitted":
        raise Refusal(409, f"you submitted at {st.local(seat.submitted_at or at)}: answers can no longer change",
                      f"你已于 {st.local(seat.submitted_at or at)} 交卷，答案不能再修改")
    if seat.status == "absent":
        raise Refusal(403, "the proctor marked you absent", "监考员已将你登记为缺考")
    end = st.deadline(seat)
    if end is None:
        raise Refusal(409, "the exam has not started yet: wait for the proctor", "考试尚未开始，请等待监考员开始考试")
    if at >= end:
        raise Refusal(409, f"time is over (at {st.local(end)}, station time): answers can no longer change",
                      f"考试时间已到（考试机时间 {st.local(end)}），答案不能再修改", time_over=True)


def _question(seat: Seat, no: int) -> Any:
    if not 1 <= no <= len(seat.questions):
        raise Refusal(404, f"your paper has questions 1–{len(seat.questions)}, not {no}",
                      f"你的试卷共 {len(seat.questions)} 题，没有第 {no} 题")
    return seat.questions[no - 1]


async def save_answer(st: Station, seat: Seat, no: int, places: list[int], seq: int) -> dict[str, Any]:
    """Keep the answer (places as shown; empty clears it) once it is on disk; a change older than the saved one
    (``seq``) changes nothing and answers with what is saved."""
    q = _question(seat, no)
    chosen = tuple(sorted(set(places)))
    if len(chosen) != len(places) or any(p >= len(q.options) for p in chosen):
        raise Refusal(400, f"question {no} has options 1–{len(q.options)}; got {places}",
                      f"第 {no} 题只有 {len(q.options)} 个选项")
    if q.type != "multiple_choice" and len(chosen) > 1:
        raise Refusal(400, f"question {no} takes one option", f"第 {no} 题为单选题")
    t = now()
    _open_for_answers(st, seat, t)
    text = json.dumps(list(chosen))

    def op(conn: sqlite3.Connection) -> bool:
        status = conn.execute("SELECT status FROM candidate WHERE number = ?", (seat.number,)).fetchone()[0]
        if status != "signed_in":  # submitted by a request committed just before this one
            raise Refusal(409, "you have submitted: answers can no longer change", "你已交卷，答案不能再修改")
        done = conn.execute("INSERT INTO answer (number, no, places, seq, at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (number, no) DO UPDATE SET places = excluded.places, seq = excluded.seq, "
                            "at = excluded.at WHERE excluded.seq > answer.seq", (seat.number, no, text, seq, t))
        if done.rowcount != 1:
            return False
        conn.execute("INSERT INTO answer_log (number, at, no, places) VALUES (?, ?, ?, ?)",
                     (seat.number, t, no, text))
        return True

    saved = await st.store.write(op)
    if saved and seq > seat.answers.get(no, (0, ()))[0]:
        seat.answers[no] = (seq, chosen)
    kept_seq, kept = seat.answers.get(no, (0, ()))
    remaining = st.remaining(seat, now())
    return {"no": no, "saved": True, "stale": not saved, "seq": kept_seq, "places": list(kept),
            "saved_at": st.local(t), "answered": seat.answered,
            "remaining_ms": None if remaining is None else int(remaining * 1000)}


async def set_flag(st: Station, seat: Seat, no: int, flagged: bool) -> dict[str, Any]:
    _question(seat, no)
    _open_for_answers(st, seat, now())

    def op(conn: sqlite3.Connection) -> None:
        if flagged:
            conn.execute("INSERT OR IGNORE INTO flag (number, no) VALUES (?, ?)", (seat.number, no))
        else:
            conn.execute("DELETE FROM flag WHERE number = ? AND no = ?", (seat.number, no))

    await st.store.write(op)
    if flagged:
        seat.flags.add(no)
    else:
        seat.flags.discard(no)
    return {"no": no, "flagged": flagged, "flags": sorted(seat.flags)}


async def submit(st: Station, seat: Seat, how: str, actor: str) -> dict[str, Any]:
    """Hand in the paper: by the candidate (after confirming), at time-out, or when the room ends."""
    t = now()
    if seat.status == "submitted":
        raise Refusal(409, f"already submitted at {st.local(seat.submitted_at or t)}",
                      f"已于 {st.local(seat.submitted_at or t)} 交卷")
    if seat.status != "signed_in" or st.deadline(seat) is None:
        raise Refusal(409, "the exam has not started for you", "你的考试尚未开始")
    answered = seat.answered

    def op(conn: sqlite3.Connection) -> None:
        done = conn.execute("UPDATE candidate SET status = 'submitted', submitted_at = ?, how = ? "
                            "WHERE number = ? AND status = 'signed_in'", (t, how, seat.number))
        if done.rowcount != 1:
            raise Refusal(409, "already submitted", "已交卷")
        st.store.append_log(conn, seat.room, actor, "candidate.submit",
                            {"number": seat.number, "how": how, "answered": answered, "of": len(seat.questions)},
                            at=t)

    await st.store.write(op)
    seat.status, seat.submitted_at, seat.how = "submitted", t, how
    return state_out(st, seat)
