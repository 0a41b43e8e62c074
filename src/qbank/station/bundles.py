"""A room's response bundle and its way to the centre: built and signed with the site's key in the same
transaction that ends the room, kept in the outbox, and sent until the centre acknowledges it (store-and-forward:
the site may be offline; the centre answers the same bundle twice with what it answered the first time)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import sqlite3
from datetime import UTC, datetime

import msgspec
import structlog

from paperbuild.sealing import sign_document
from qbank.papers.keys import signing_public_b64
from qbank.papers.schemas import (
    BUNDLE_FORMAT,
    AnswerChange,
    BundleCandidate,
    BundleIncident,
    ResponseBundleDoc,
)
from qbank.station.errors import Refusal
from qbank.station.package import CentreError
from qbank.station.runtime import Outgoing, Room, Station, now
from qbank.station.store import log_entries

log = structlog.get_logger("qbank.station")
RETRY_FIRST, RETRY_MAX = 2.0, 300.0  # seconds between attempts: doubling from the first to the most


def seal_room(st: Station, conn: sqlite3.Connection, room: Room, actor: str, t: float) -> Outgoing:
    """Inside the write that ends the room: mark who never signed in absent, log the end, build the bundle from
    what is committed, sign it and put it in the outbox."""
    done = conn.execute("UPDATE room SET ended_at = ? WHERE code = ? AND ended_at IS NULL", (t, room.code))
    if done.rowcount != 1:
        raise Refusal(409, f"room {room.code} has already ended", f"考场 {room.code} 已结束")
    conn.execute("UPDATE candidate SET status = 'absent', how = 'never_signed_in' WHERE room = ? "
                 "AND status = 'expected'", (room.code,))
    rows = list(conn.execute("SELECT * FROM candidate WHERE room = ? ORDER BY desk, number", (room.code,)))
    st.store.append_log(conn, room.code, actor, "room.end",
                        {"submitted": sum(1 for r in rows if r["status"] == "submitted"),
                         "absent": sum(1 for r in rows if r["status"] == "absent")}, at=t)
    bundle_id = secrets.token_hex(16)
    candidates = []
    for r in rows:
        seat = st.seats[r["number"]]
        version = {q.no: q.version_id for q in seat.questions}
        answers = {str(version[a["no"]]): json.loads(a["places"])
                   for a in conn.execute("SELECT no, places FROM answer WHERE number = ? ORDER BY no", (r["number"],))
                   if json.loads(a["places"]) and a["no"] in version}
        changes = [AnswerChange(at=_when(e["at"]), item=version[e["no"]], places=json.loads(e["places"]))
                   for e in conn.execute("SELECT at, no, places FROM answer_log WHERE number = ? ORDER BY id",
                                         (r["number"],)) if e["no"] in version]
        candidates.append(BundleCandidate(
            number=r["number"], form=seat.form or 0, desk=r["desk"], status=r["status"], how=r["how"],
            submitted_at=_when(r["submitted_at"]) if r["submitted_at"] else None, extra_seconds=r["extra_seconds"],
            answers=answers, log=changes))
    incidents = [BundleIncident(at=_when(i["at"]), category=i["category"], note=i["note"], by=i["by"])
                 for i in conn.execute("SELECT * FROM incident WHERE room = ? ORDER BY id", (room.code,))]
    assert room.started_at is not None
    doc = ResponseBundleDoc(format=BUNDLE_FORMAT, bundle_id=bundle_id, session=st.opened.session_id,
                            site=st.opened.site, package_id=st.opened.package_id, room=room.code,
                            started_at=_when(room.started_at), ended_at=_when(t), duration_minutes=st.duration_s // 60,
                            created_at=_when(t), candidates=candidates, incidents=incidents,
                            log=log_entries(conn, room.code))
    body = sign_document(msgspec.to_builtins(doc, builtin_types=()), st.signing_key)
    sha256 = hashlib.sha256(body).hexdigest()
    conn.execute("UPDATE room SET bundle_id = ? WHERE code = ?", (bundle_id, room.code))
    conn.execute("INSERT INTO outbox (bundle_id, room, body, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                 (bundle_id, room.code, body, sha256, t))
    st.store.append_log(conn, room.code, actor, "bundle.sealed", {"bundle_id": bundle_id, "sha256": sha256,
                                                                  "bytes": len(body)}, at=t)
    return Outgoing(bundle_id=bundle_id, room=room.code, body=body, sha256=sha256)


def _when(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


async def register_signing_key(st: Station) -> None:
    """Tell the centre the site's signing key (the same key again changes nothing there)."""
    assert st.centre is not None
    await st.centre.request("PUT", f"/api/v1/sites/{st.opened.site}/signing-key",
                            json={"signing_key": signing_public_b64(st.signing_key)})
    st.signing_key_registered = True


async def send_once(st: Station, out: Outgoing) -> bool:
    """One attempt; True when the centre acknowledged the bundle."""
    assert st.centre is not None
    t = now()
    try:
        if not st.signing_key_registered:
            await register_signing_key(st)
        _, answer = await st.centre.request(
            "POST", f"/api/v1/sessions/{st.opened.session_id}/response-bundles", content=out.body,
            headers={"Content-Type": "application/json"})
    except CentreError as exc:
        error = exc.detail

        def failed(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? "
                         "WHERE bundle_id = ?", (t, error, out.bundle_id))

        await st.store.write(failed)
        out.attempts, out.last_error = out.attempts + 1, error
        log.warning("bundle not acknowledged yet", bundle=out.bundle_id, room=out.room, error=error)
        return False
    text = json.dumps(answer, ensure_ascii=False)

    def acknowledged(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = '', "
                     "acknowledged_at = ?, answer = ? WHERE bundle_id = ?", (t, t, text, out.bundle_id))
        st.store.append_log(conn, out.room, "station", "bundle.acknowledged",
                            {"bundle_id": out.bundle_id, "accepted": answer.get("accepted"),
                             "already_received": bool(answer.get("already_received"))}, at=t)

    await st.store.write(acknowledged)
    out.attempts, out.last_error, out.acknowledged_at, out.answer = out.attempts + 1, "", t, dict(answer)
    log.info("bundle acknowledged by the centre", bundle=out.bundle_id, room=out.room)
    return True


async def sender(st: Station) -> None:
    """Send every unacknowledged bundle, retrying with a doubling pause, until the centre acknowledges each."""
    pause = RETRY_FIRST
    while True:
        pending = [o for o in st.outbox.values() if o.acknowledged_at is None]
        failed = False
        for out in pending:
            if st.centre is None or not await send_once(st, out):
                failed = True
        pause = min(pause * 2, RETRY_MAX) if failed else RETRY_FIRST
        st.wake_sender.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(st.wake_sender.wait(), pause if failed else RETRY_MAX)
