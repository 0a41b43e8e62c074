"""Supervisor review: key-node records, retention report, locked objects, incidents, sign-off (both backends)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
from sqlalchemy import select

from qbank.recordings.models import Recording
from qbank.reviews.services import refuse_if_locked
from qbank.sessions.models import Room
from tests.qbank.helpers import Api, audit_count, make_bank, make_site, site_headers

TZ = ZoneInfo("Asia/Shanghai")


def pdf(tag: str = "") -> bytes:
    return b"%PDF-1.4\n% scan " + tag.encode() + os.urandom(64) + b"\n%%EOF\n"


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + os.urandom(200)


async def make_session(api: Api, site: str, day: date | None = None) -> dict[str, Any]:
    """A session at ``site`` (rooms T101 front/back and P201 wide), 09:00–10:30 local, by default three days ago."""
    bank = await make_bank(api)
    day = day or datetime.now(TZ).date() - timedelta(days=3)
    body = {"occupation_code": bank.occupation, "level": 3, "title": "电工三级认定", "date": day.isoformat(),
            "start": "09:00:00", "end": "10:30:00", "rooms": [
                {"site": site, "code": "T101", "kind": "theory", "desks": 3, "camera_views": ["front", "back"]},
                {"site": site, "code": "P201", "kind": "practical", "desks": 2, "camera_views": ["wide"]}]}
    r = await api.client.post("/api/v1/sessions", json=body, headers=await api.admin())
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()
    return session


async def upload(api: Api, session_id: int, category: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return await api.client.post(f"/api/v1/sessions/{session_id}/records", params={"category": category},
                                 content=content, headers={**headers, "Content-Type": "application/octet-stream"})


async def stat(api: Api, key: str) -> Any:
    archive = api.app.state.store.archive
    return await anyio.to_thread.run_sync(archive.stat, key)


async def as_role(api: Api, role: str) -> dict[str, str]:
    """Headers of a token of ``role`` (authors and reviewers are scoped to an occupation; a site to a new site)."""
    if role in ("author", "reviewer"):
        return await api.headers(role, occupations=("4-04-05-01",))
    if role == "site":
        return await site_headers(api)
    return await api.headers(role)


def local(session: dict[str, Any], hh_mm: str) -> str:
    return f"{session['local_start'][:10]}T{hh_mm}:00+08:00"


async def test_records_upload_dedup_legal_hold_and_roles(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    sid = session["id"]
    site_h, admin = await site_headers(api, site), await api.admin()
    scan = pdf("sign-in")
    r = await upload(api, sid, "sign_in_sheet", scan, site_h)
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["category_zh"] == "签到表" and rec["content_type"] == "application/pdf" and rec["legal_hold"]
    assert rec["key"].startswith("keynode/") and rec["size"] == len(scan) and not rec["already_stored"]
    info = await stat(api, rec["key"])
    assert info.legal_hold and info.mode == "COMPLIANCE" and info.sha256 == rec["sha256"]
    assert info.retain_until.year >= datetime.now(UTC).year + 5  # five years after the exam, plus the hold
    assert await audit_count(api, "record.upload", rec["id"]) == 1

    again = await upload(api, sid, "sign_in_sheet", scan, site_h)  # the same bytes: recognised, not stored twice
    assert again.status_code == 200 and again.json()["id"] == rec["id"] and again.json()["already_stored"]
    other = await upload(api, sid, "room_record", scan, admin)  # same bytes as another category: a new record
    assert other.status_code == 201 and other.json()["key"] == rec["key"]
    assert (await upload(api, sid, "score_sheet", png(), admin)).json()["content_type"] == "image/png"

    for role in ("supervisor", "admin"):
        r = await api.client.get(f"/api/v1/sessions/{sid}/records", headers=await as_role(api, role))
        assert r.status_code == 200
        assert sorted(x["category"] for x in r.json()) == ["room_record", "score_sheet", "sign_in_sheet"]
    assert (await api.client.get(f"/api/v1/sessions/{sid}/records", headers=site_h)).status_code == 200
    # another site, authors and reviewers, supervisors uploading: refused
    stranger = await site_headers(api)
    for headers in (stranger, await as_role(api, "author"), await as_role(api, "reviewer")):
        assert (await api.client.get(f"/api/v1/sessions/{sid}/records", headers=headers)).status_code == 403
    for headers in (stranger, await api.headers("supervisor"), await as_role(api, "author")):
        assert (await upload(api, sid, "commitment", pdf(), headers)).status_code == 403
    assert (await upload(api, sid, "supervision_form", pdf(), site_h)).status_code == 403  # the centre's or sign-off's
    r = await api.client.get(f"/api/v1/sessions/{sid}/records", headers=admin)
    assert len(r.json()) == 3


async def test_bad_record_uploads_change_nothing(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    sid = session["id"]
    site_h = await site_headers(api, site)
    before = await audit_count(api, "record.upload")
    cases = [
        (await upload(api, sid, "passport", pdf(), site_h), 400, "category"),
        (await upload(api, sid, "commitment", b"<html>not a scan</html>", site_h), 415, "body"),
        (await upload(api, sid, "commitment", b"GIF89a" + os.urandom(30), site_h), 415, "body"),
        (await upload(api, sid, "commitment", b"", site_h), 400, "body"),
        (await upload(api, 10**8, "commitment", pdf(), site_h), 404, None),
    ]
    settings = api.app.state.settings
    limit = settings.max_upload_bytes
    settings.max_upload_bytes = 1000
    try:
        cases.append((await upload(api, sid, "commitment", pdf() + b"\0" * 2000, site_h), 413, None))
    finally:
        settings.max_upload_bytes = limit
    for r, status, field in cases:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in r.json()["detail"], r.json()
    r = await api.client.get(f"/api/v1/sessions/{sid}/records", headers=site_h)
    assert r.json() == []
    assert await audit_count(api, "record.upload") == before
    spool = settings.data_dir / "spool"
    assert not list(spool.glob("record-*"))  # spool files are removed whatever happened


async def test_locked_record_refuses_delete_and_shorter_retention(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    admin = await api.admin()
    rec = (await upload(api, session["id"], "registration_form", pdf("reg"), admin)).json()
    info = await stat(api, rec["key"])

    r = await api.client.delete(f"/api/v1/records/{rec['id']}", headers=admin)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["extra"]["locked_until"] == info.retain_until.isoformat()
    assert problem["extra"]["legal_hold"] is True and problem["extra"]["key"] == rec["key"]
    assert info.retain_until.isoformat() in problem["detail"] and "legal hold" in problem["detail"]

    shorter = (info.retain_until - timedelta(days=400)).isoformat()
    r = await api.client.post(f"/api/v1/records/{rec['id']}/retention", json={"retain_until": shorter},
                              headers=admin)
    assert r.status_code == 409, r.text
    assert r.json()["extra"]["locked_until"] == info.retain_until.isoformat()
    assert "never shortened" in r.json()["detail"]
    # nothing changed: the row, the object, its lock
    after = await stat(api, rec["key"])
    assert (after.retain_until, after.legal_hold, after.version_id) == (info.retain_until, True, info.version_id)
    listed = (await api.client.get(f"/api/v1/sessions/{session['id']}/records", headers=admin)).json()
    assert [x["id"] for x in listed] == [rec["id"]] and listed[0]["retain_until"] == rec["retain_until"]
    assert await audit_count(api, "record.delete", rec["id"]) == 0
    assert await audit_count(api, "record.retention", rec["id"]) == 0

    longer = (info.retain_until + timedelta(days=365)).replace(microsecond=0)
    r = await api.client.post(f"/api/v1/records/{rec['id']}/retention", json={"retain_until": longer.isoformat()},
                              headers=admin)
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["retain_until"]) == longer
    assert (await stat(api, rec["key"])).retain_until == longer
    assert await audit_count(api, "record.retention", rec["id"]) == 1

    naive = await api.client.post(f"/api/v1/records/{rec['id']}/retention",
                                  json={"retain_until": "2040-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 400
    for role in ("site", "supervisor", "author"):
        headers = await site_headers(api, site) if role == "site" else await as_role(api, role)
        assert (await api.client.delete(f"/api/v1/records/{rec['id']}", headers=headers)).status_code == 403
        r = await api.client.post(f"/api/v1/records/{rec['id']}/retention", json={"retain_until": longer.isoformat()},
                                  headers=headers)
        assert r.status_code == 403
    assert (await api.client.delete("/api/v1/records/999999999", headers=admin)).status_code == 404


async def test_locked_recording_refuses_delete(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    archive = api.app.state.store.archive
    exam_day = datetime.fromisoformat(session["local_start"]).date()
    stored = await anyio.to_thread.run_sync(lambda: archive.put_bytes(
        "recordings", os.urandom(4096), exam_date=exam_day, content_type="video/mp4"))
    async with api.db() as db, db.begin():
        room = await db.scalar(select(Room).where(Room.session_id == session["id"], Room.code == "T101"))
        assert room is not None
        row = Recording(session_id=session["id"], room_id=room.id, view="front",
                        claimed_start=datetime.fromisoformat(session["starts_at"]), sha256=stored.sha256,
                        size=stored.size, archive_key=stored.key, retain_until=stored.retain_until,
                        uploaded_by="test")
        db.add(row)
        await db.flush()
        recording_id = row.id

    admin = await api.admin()
    r = await api.client.delete(f"/api/v1/recordings/{recording_id}", headers=admin)
    assert r.status_code == 409, r.text
    assert r.json()["extra"]["locked_until"] == stored.retain_until.isoformat()  # type: ignore[union-attr]
    assert r.json()["extra"]["legal_hold"] is False and "legal hold" not in r.json()["detail"]
    assert stored.retain_until.isoformat() in r.json()["detail"]  # type: ignore[union-attr]
    async with api.db() as db:
        assert await db.get(Recording, recording_id) is not None
    assert (await stat(api, stored.key)).version_id == stored.version_id
    assert await audit_count(api, "recording.delete", recording_id) == 0
    for headers in (await api.headers("supervisor"), await site_headers(api, site)):
        assert (await api.client.delete(f"/api/v1/recordings/{recording_id}", headers=headers)).status_code == 403
    assert (await api.client.delete("/api/v1/recordings/999999999", headers=admin)).status_code == 404


async def test_retention_report(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    admin = await api.admin()
    rec = (await upload(api, session["id"], "commitment", pdf("commit"), admin)).json()
    r = await api.client.get("/api/v1/admin/retention", headers=admin)
    assert r.status_code == 200, r.text
    report = r.json()
    mine = next(o for o in report["objects"] if o["key"] == rec["key"])
    assert mine["legal_hold"] and mine["mode"] == "COMPLIANCE" and mine["kind"] == "keynode"
    assert mine["size"] == rec["size"] and mine["retain_until"] == rec["retain_until"]
    for total in report["totals"]:
        objs = [o for o in report["objects"] if o["kind"] == total["kind"]]
        assert total["bytes"] == sum(o["size"] for o in objs) and total["objects"] == len(objs)
    assert report["total_bytes"] == sum(t["bytes"] for t in report["totals"])
    only = (await api.client.get("/api/v1/admin/retention", params={"prefix": "keynode/"}, headers=admin)).json()
    assert {t["kind"] for t in only["totals"]} == {"keynode"}
    assert all(o["legal_hold"] for o in only["objects"])
    for role in ("supervisor", "site", "author"):
        assert (await api.client.get("/api/v1/admin/retention", headers=await as_role(api, role))).status_code == 403


async def test_incidents_and_their_bad_inputs(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    sid = session["id"]
    sup = await api.headers("supervisor", "督导员张")
    cats = (await api.client.get("/api/v1/incident-categories", headers=sup)).json()
    by_code = {c["code"]: c for c in cats}
    assert by_code["29.2"]["label_zh"].startswith("考场纪律") and by_code["30.11"]["article"] == "第三十条第（十一）项"
    assert {"29.1", "29.4", "30.4", "30.13", "31.2"} <= set(by_code)

    good = {"at": local(session, "09:40"), "room": f"{site}/T101", "view": "back", "category": "29.2",
            "note": "考生2号偷看手机"}
    r = await api.client.post(f"/api/v1/sessions/{sid}/incidents", json=good, headers=sup)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["local_at"] == local(session, "09:40") and inc["category_zh"] == by_code["29.2"]["label_zh"]
    assert await audit_count(api, "incident.create", inc["id"]) == 1

    bad = {
        "at": (good | {"at": local(session, "11:00")}, 400, "at"),
        "room": (good | {"room": f"{site}/X999"}, 400, "room"),
        "view": (good | {"view": "ceiling"}, 400, "view"),
        "category": (good | {"category": "99.9"}, 400, "category"),
        "naive time": (good | {"at": local(session, "09:40")[:19]}, 400, "at"),
    }
    for name, (body, status, field) in bad.items():
        r = await api.client.post(f"/api/v1/sessions/{sid}/incidents", json=body, headers=sup)
        assert r.status_code == status, (name, r.text)
        assert any(e["field"] == field for e in r.json()["errors"]), (name, r.json())
    for headers in (await site_headers(api, site), await as_role(api, "author"), await as_role(api, "reviewer")):
        assert (await api.client.post(f"/api/v1/sessions/{sid}/incidents", json=good, headers=headers)
                ).status_code == 403
        assert (await api.client.get(f"/api/v1/sessions/{sid}/incidents", headers=headers)).status_code == 403
    listed = (await api.client.get(f"/api/v1/sessions/{sid}/incidents", headers=sup)).json()
    assert [i["id"] for i in listed] == [inc["id"]]  # nothing else was stored
    assert (await api.client.get("/api/v1/incident-categories", headers=await as_role(api, "author"))
            ).status_code == 403


async def test_sign_off_builds_the_supervision_form(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site)
    sid = session["id"]
    sup = await api.headers("supervisor", "督导员李")
    admin = await api.admin()
    await upload(api, sid, "sign_in_sheet", pdf("sheet"), admin)
    r = await api.client.post(f"/api/v1/sessions/{sid}/incidents", headers=sup, json={
        "at": local(session, "10:05"), "room": f"{site}/P201", "view": "wide", "category": "30.11",
        "note": "10:05–10:12 录像缺失 <script>"})
    assert r.status_code == 201, r.text
    pending = (await api.client.get("/api/v1/reviews/pending", headers=sup)).json()
    assert sid in [p["session_id"] for p in pending]
    mine = next(p for p in pending if p["session_id"] == sid)
    assert mine["incidents"] == 1 and mine["records"] == 1 and mine["sites"] == [site]
    ends = [p["ends_at"] for p in pending]
    assert ends == sorted(ends, reverse=True)
    assert (await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=sup)).status_code == 404

    body = {"summary": "P201 录像缺失7分钟，其余正常。", "conclusion": "不合格",
            "video_verdict": {"passes": False, "reasons": ["P201 wide: gap 10:05–10:12"]}}
    for headers in (admin, await site_headers(api, site), await as_role(api, "author")):
        assert (await api.client.post(f"/api/v1/sessions/{sid}/sign-off", json=body, headers=headers)
                ).status_code == 403
    r = await api.client.post(f"/api/v1/sessions/{sid}/sign-off", json=body, headers=sup)
    assert r.status_code == 201, r.text
    signed = r.json()
    assert signed["conclusion"] == "fail" and signed["conclusion_zh"] == "不合格" and signed["incidents"] == 1
    assert signed["video_verdict_claimed"]["passes"] is False
    assert signed["video_audit"]["passes"] is False  # the recordings service's own verdict: nothing recorded
    form = signed["form"]
    assert form["category"] == "supervision_form" and form["legal_hold"]
    info = await stat(api, form["key"])
    assert info.legal_hold and info.mode == "COMPLIANCE"
    assert await audit_count(api, "sign_off.create", signed["id"]) == 1
    assert await audit_count(api, "record.upload", form["id"]) == 1

    r = await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=admin)
    assert r.status_code == 200 and r.json()["form_url"]
    async with httpx.AsyncClient() as http:
        page = (await http.get(r.json()["form_url"])).text
    assert "质量督导表" in page and session["title"] in page and "&lt;script&gt;" in page
    embedded = re.search(r'<script type="application/json" id="supervision-form">(.*)</script>', page, re.S)
    assert embedded is not None
    data = json.loads(embedded.group(1))
    assert data["session"]["id"] == sid and data["incidents"][0]["category"] == "30.11"
    assert data["conclusion"] == "fail" and data["records"][0]["category"] == "sign_in_sheet"
    assert await audit_count(api, "sign_off.form_link", signed["id"]) == 1

    records = (await api.client.get(f"/api/v1/sessions/{sid}/records", headers=sup)).json()
    assert sorted(x["category"] for x in records) == ["sign_in_sheet", "supervision_form"]

    # a second sign-off names the first; incidents are closed; nothing changed
    other = await api.headers("supervisor", "督导员王")
    r = await api.client.post(f"/api/v1/sessions/{sid}/sign-off", json=body | {"conclusion": "pass"}, headers=other)
    assert r.status_code == 409, r.text
    assert "督导员李" in r.json()["detail"] and r.json()["extra"]["sign_off_id"] == signed["id"]
    r = await api.client.post(f"/api/v1/sessions/{sid}/incidents", headers=sup, json={
        "at": local(session, "09:10"), "room": f"{site}/T101", "view": "front", "category": "29.5"})
    assert r.status_code == 409 and "signed off" in r.json()["detail"]
    assert len((await api.client.get(f"/api/v1/sessions/{sid}/incidents", headers=sup)).json()) == 1
    assert len((await api.client.get(f"/api/v1/sessions/{sid}/records", headers=sup)).json()) == 2
    assert (await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=sup)).json()["id"] == signed["id"]
    assert sid not in [p["session_id"] for p in (await api.client.get("/api/v1/reviews/pending", headers=sup)).json()]
    r = await api.client.delete(f"/api/v1/records/{form['id']}", headers=admin)
    assert r.status_code == 409 and r.json()["extra"]["legal_hold"] is True
    for role in ("author", "reviewer", "site"):
        assert (await api.client.get("/api/v1/reviews/pending", headers=await as_role(api, role))).status_code == 403


async def test_sign_off_waits_for_the_end_of_the_session(api: Api) -> None:
    site = await make_site(api)
    session = await make_session(api, site, day=datetime.now(TZ).date() + timedelta(days=2))
    sup = await api.headers("supervisor")
    r = await api.client.post(f"/api/v1/sessions/{session['id']}/sign-off", headers=sup,
                              json={"summary": "提前签署", "conclusion": "合格"})
    assert r.status_code == 409 and "after it has ended" in r.json()["detail"]
    pending = (await api.client.get("/api/v1/reviews/pending", headers=sup)).json()
    assert session["id"] not in [p["session_id"] for p in pending]
    assert (await api.client.get(f"/api/v1/sessions/{session['id']}/sign-off", headers=sup)).status_code == 404


class _Stub:
    """An archive whose object's retention has ended and that has no hold."""

    def __init__(self, until: datetime) -> None:
        self.until = until

    def stat(self, key: str) -> Any:
        from evidence import ArchivedObject

        return ArchivedObject(key=key, size=1, sha256="0" * 64, kind="keynode", retain_until=self.until,
                              mode="COMPLIANCE", legal_hold=False, content_type="application/pdf")


async def test_an_expired_lock_lets_the_action_through() -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    info = await refuse_if_locked(_Stub(past), "keynode/00/x", what="x", action="deleted")  # type: ignore[arg-type]
    assert info is not None and info.retain_until == past


async def test_pass_despite_a_failing_video_audit_needs_a_reason(api: Api) -> None:
    """Issue 13 §8: nothing preselected in the page's sign-off form; signing off as pass while the video audit
    fails needs the supervisor's reason (API and page, in the page's language); reasons never show raw codes."""
    site = await make_site(api)
    session = await make_session(api, site)  # no recording at all: the video audit fails
    sid = session["id"]
    sup = await api.headers("supervisor", "督导员周")
    body = {"summary": "录像缺失。", "conclusion": "pass"}
    r = await api.client.post(f"/api/v1/sessions/{sid}/sign-off", json=body, headers=sup)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "pass_reason" and "the video audit fails" in r.json()["detail"]
    assert (await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=sup)).status_code == 404

    # the page: signed in with the supervisor's token through its form (CSRF cookie + field)
    async def csrf(path: str) -> tuple[str, str]:
        page = await api.client.get(path)
        found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1), page.text

    token = sup["Authorization"].removeprefix("Bearer ")
    r = await api.client.post("/review/login", data={"token": token, "_csrf_token": (await csrf("/review/login"))[0]})
    assert r.status_code in (200, 303) and "/review/login" not in str(r.url), r.text  # signed in
    for lang, fails_words, reason_words, choose_words in (
            ("", "不通过", "整段无录像", "请选择督导结论"),
            ("?lang=en", "fails", "no recording at all", "Choose the conclusion")):
        token_field, html = await csrf(f"/review/sessions/{sid}{lang}")
        assert fails_words in html and reason_words in html
        select = html[html.index('<select id="conclusion"'):html.index("</select>")]
        assert 'value="" selected disabled' in select and select.count("selected") == 1, select
        assert 'name="pass_reason"' in html
        for code in ("low_bit_rate", "low_resolution", "not recorded,", "black,"):
            assert code not in html
        url = f"/review/sessions/{sid}/sign-off{lang}"
        r = await api.client.post(url, data={"_csrf_token": token_field, "summary": "缺录像", "conclusion": ""})
        assert r.status_code == 400 and choose_words in r.text, r.text
        r = await api.client.post(url, data={"_csrf_token": token_field, "summary": "缺录像", "conclusion": "合格",
                                             "pass_reason": "  "})
        assert r.status_code == 400, r.text
        assert ("请填写理由" if not lang else "give your reason") in r.text
        assert (await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=sup)).status_code == 404

    # with a reason it is signed as pass; the reason is in the answer and on the supervision form
    r = await api.client.post(f"/api/v1/sessions/{sid}/sign-off", headers=sup,
                              json=body | {"pass_reason": "考点另行提交的备用录像已核实完整"})
    assert r.status_code == 201, r.text
    assert r.json()["conclusion"] == "pass" and r.json()["pass_reason"] == "考点另行提交的备用录像已核实完整"
    assert r.json()["video_audit"]["passes"] is False
    signed = (await api.client.get(f"/api/v1/sessions/{sid}/sign-off", headers=sup)).json()
    assert signed["pass_reason"] == "考点另行提交的备用录像已核实完整"
    async with httpx.AsyncClient() as s3:
        document = (await s3.get(signed["form_url"])).text
    assert "考点另行提交的备用录像已核实完整" in document
