"""The supervisor review page in a real browser (Debian's Chromium driven by Playwright) against the service running
as a real HTTP server (`qbank serve` in a subprocess) on SQLite and the test S3 server, with generated footage."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import running_service
from tests.qbank.browsers import Shots
from tests.qbank.helpers import new_occupation_code
from tests.videoaudit.clips import defects_clip

pytestmark = [pytest.mark.browser]

TZ = ZoneInfo("Asia/Shanghai")
# A past exam (sign-off needs an ended session): one minute, room T101 with two camera views.
START = datetime(2025, 6, 14, 9, 0, tzinfo=TZ)
OLDER_START = datetime(2025, 6, 13, 9, 0, tzinfo=TZ)


@dataclass
class Service:
    url: str
    env: dict[str, str]
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def api(self, method: str, path: str, who: str = "admin", **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self.bearer(who) | kw.pop("headers", {}), **kw)


@pytest.fixture(scope="module")
def service(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("review-page"), s3_server,
                         QBANK_TOKEN_SECRET="review-page-secret") as (url, env):
        qbank = str(Path(sys.executable).with_name("qbank"))
        created = subprocess.run([qbank, "token", "create", "--role", "admin", "--name", "评价中心", "--json"],
                                 env=env, capture_output=True, text=True, check=True)
        with httpx.Client(base_url=url, timeout=30) as http:
            svc = Service(url=url, env=env, http=http)
            svc.tokens["admin"] = json.loads(created.stdout)["token"]
            yield svc


def make_token(svc: Service, who: str, role: str, **extra: Any) -> None:
    r = svc.api("POST", "/api/v1/tokens", json={"name": who, "role": role, **extra})
    assert r.status_code == 201, r.text
    svc.tokens[who], svc.token_ids[who] = r.json()["token"], r.json()["id"]


def wait_analysed(svc: Service, ids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for rec_id in ids:
        while True:
            rec = svc.api("GET", f"/api/v1/recordings/{rec_id}").json()
            if rec["status"] in ("analysed", "corrupt"):
                assert rec["status"] == "analysed" and rec["has_contact_sheet"], rec
                break
            assert time.monotonic() < deadline, rec
            time.sleep(0.2)


@dataclass
class Seeded:
    session_id: int
    older_id: int
    site: str
    room: str


@pytest.fixture(scope="module")
def seeded(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A one-minute session: T101 front = clean 0–30 s + a clip black at 10–20 s from 30 s (black 40–50 s);
    T101 back = clean 0–30 s only (gap 30–60 s). An older session with no footage."""
    d = tmp_path_factory.mktemp("review-clips")
    clean = defects_clip(d / "clean.mp4", duration=30, black=None, frozen=None, blurred=None, covered=None,
                         still=None)
    black = defects_clip(d / "black.mp4", duration=30, black=(10.0, 20.0), frozen=None, blurred=None, covered=None,
                         still=None)
    svc = service
    code = new_occupation_code()
    r = svc.api("POST", "/api/v1/occupations", json={"code": code, "name": "电工", "levels": [5, 4, 3, 2, 1]})
    assert r.status_code == 201, r.text
    site = "CD-RV"
    assert svc.api("POST", "/api/v1/sites", json={"code": site, "name": "成都考点"}).status_code == 201
    make_token(svc, "督导员王", "supervisor")
    make_token(svc, "督导员李", "supervisor")
    make_token(svc, "被撤销的督导员", "supervisor")
    make_token(svc, "命题人张", "author", occupations=[code])
    make_token(svc, "考点", "site", site=site)
    r = svc.api("POST", f"/api/v1/tokens/{svc.token_ids['被撤销的督导员']}/revoke")
    assert r.status_code == 200, r.text

    def session(title: str, start: datetime) -> int:
        body = {"occupation_code": code, "level": 3, "title": title, "date": start.date().isoformat(),
                "start": start.time().isoformat(), "end": (start + timedelta(minutes=1)).time().isoformat(),
                "rooms": [{"site": site, "code": "T101", "kind": "theory", "desks": 2,
                           "camera_views": ["front", "back"]}]}
        r = svc.api("POST", "/api/v1/sessions", json=body)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    older = session("2025年6月电工三级（前一天）", OLDER_START)
    sid = session("2025年6月电工三级理论", START)
    room = f"{site}/T101"
    ids = []
    for view, start, clip in (("front", START, clean), ("front", START + timedelta(seconds=30), black),
                              ("back", START, clean)):
        r = svc.api("POST", f"/api/v1/sessions/{sid}/recordings", who="考点", content=clip.read_bytes(),
                    params={"room": room, "view": view, "start": start.isoformat()},
                    headers={"Content-Type": "video/mp4"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    wait_analysed(svc, ids)
    return Seeded(session_id=sid, older_id=older, site=site, room=room)


def sign_in(page: Any, base: str, token: str, lang: str = "") -> None:
    page.goto(f"{base}/review/login{lang}")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")


def test_review_page_in_a_browser(service: Service, seeded: Seeded, browser: Any, tmp_path: Path) -> None:
    svc, sid, room = service, seeded.session_id, seeded.room
    base = svc.url
    shots = Shots(tmp_path, full_page=True)
    print(f"screenshots: {tmp_path}")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    # the strict Content-Security-Policy (no inline script or style, footage from the S3 server only) breaks nothing
    csp_violations: list[str] = []
    page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("response", lambda r: csp_violations.append(f"no CSP on {r.url}") if "/review" in r.url and
            "script-src 'self'" not in (r.headers.get("content-security-policy") or "") else None)

    def session_cookie() -> list[dict[str, Any]]:
        return [c for c in context.cookies() if c["name"] == "qbank_review_session"]

    # ---- sign in: wrong, revoked, author and site tokens are refused with a clear message; nothing is set
    page.goto(f"{base}/review")
    assert page.url.startswith(f"{base}/review/login"), page.url
    shots(page, "login")
    for token, words in (("qb_not-a-real-token", "令牌无效或已被撤销"),
                         (svc.tokens["被撤销的督导员"], "令牌无效或已被撤销"),
                         (svc.tokens["命题人张"], "只有督导员 (supervisor) 令牌可以登录审核页面；此令牌的角色是 author"
                          ),
                         (svc.tokens["考点"], "此令牌的角色是 site")):
        sign_in(page, base, token)
        assert words in page.inner_text("#login-message")
        assert session_cookie() == []
    shots(page, "login-refused-site-token")

    sign_in(page, base, svc.tokens["督导员王"])
    page.wait_for_url(f"{base}/review")
    cookie = session_cookie()[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != svc.tokens["督导员王"]

    # ---- sessions waiting for review, newest first, each with its verdict
    items = page.locator(".pending-item")
    order = [int(x) for x in items.evaluate_all("els => els.map(e => e.dataset.sessionId)")]
    assert order.index(sid) < order.index(seeded.older_id)
    mine = page.locator(f".pending-item[data-session-id='{sid}']")
    assert mine.get_attribute("data-passes") == "false"
    assert "录像审核结论：不通过" in mine.inner_text() and "黑屏" in mine.inner_text()
    shots(page, "pending")

    # ---- the session: verdict in words; one timeline per room and view, the gap and the black stretch in place
    mine.locator("a.pending-title").click()
    page.wait_for_url(f"{base}/review/sessions/{sid}")
    assert page.get_attribute("#verdict", "data-passes") == "false"
    reasons = page.inner_text("#reasons")
    seen = re.search(rf"{room} front：黑屏 09:00:(\d\d)–09:00:(\d\d)", reasons)
    assert seen and abs(int(seen[1]) - 40) <= 2 and abs(int(seen[2]) - 50) <= 2, reasons
    assert f"{room} back：无录像 09:00:30–09:01:00 (30 秒)" in reasons, reasons
    front = page.locator(f".track[data-room='{room}'][data-view='front']")
    back = page.locator(f".track[data-room='{room}'][data-view='back']")
    black = front.locator(".seg-unusable[data-reason='black']")
    assert black.count() == 1
    assert abs(float(black.get_attribute("data-start")) - 40) <= 2
    assert abs(float(black.get_attribute("data-end")) - 50) <= 2
    assert "黑屏" in black.get_attribute("title")
    gap = back.locator(".seg-gap")
    assert gap.count() == 1
    assert abs(float(gap.get_attribute("data-start")) - 30) <= 1 and float(gap.get_attribute("data-end")) == 60
    assert "09:00:30–09:01:00" in gap.get_attribute("title")
    assert back.locator(".seg-usable").count() == 1 and front.locator(".seg-usable").count() == 2
    assert abs(black.evaluate("e => parseFloat(e.style.left)") - 100 * 40 / 60) <= 4  # placed by review.js
    # hovering shows the time under the pointer (Asia/Shanghai) and what is there
    box = front.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 45 / 60, box["y"] + box["height"] / 2)
    hover = front.locator(".hover")
    assert hover.is_visible() and hover.inner_text().startswith("09:00:4") and "黑屏" in hover.inner_text()
    shots(page, "session-timelines")

    # ---- click into a covered stretch: the recording plays from that moment, its contact sheet beside it
    page.mouse.click(box["x"] + box["width"] * 15 / 60, box["y"] + box["height"] / 2)
    video = page.locator("video#video")
    video.wait_for()
    page.wait_for_function("() => { const v = document.querySelector('video#video');"
                           " return v && v.readyState >= 2 && !v.paused && v.currentTime > 14; }", timeout=15000)
    t1 = video.evaluate("v => v.currentTime")
    assert 14 <= t1 <= 19, t1
    page.wait_for_timeout(1200)
    t2, paused = video.evaluate("v => [v.currentTime, v.paused]")
    assert not paused and t2 > t1 + 0.5, (t1, t2)
    page.wait_for_function("() => { const i = document.getElementById('contact-sheet');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert page.inner_text("#now-local").startswith("09:00:1")
    shots(page, "playing")

    # ---- mark an incident at the playing moment
    video.evaluate("v => v.pause()")
    at_value = page.input_value("#incident-at")
    assert at_value.startswith("09:00:1"), at_value
    page.select_option("#incident-category", "29.2")
    page.fill("#incident-note", "3号考生与4号考生交头接耳")
    page.click("#incident-submit")
    page.wait_for_selector("#incident-saved")
    assert "已记录问题" in page.inner_text("#incident-saved")
    rows = page.locator("#incidents tbody tr")
    assert rows.count() == 1 and at_value in rows.first.inner_text() and "29.2" in rows.first.inner_text()
    marker = page.locator(f".track[data-room='{room}'][data-view='front'] .marker")
    assert marker.count() == 1 and 10 <= float(marker.get_attribute("data-at")) <= 20
    shots(page, "incident-marked")

    # bad input: an incident outside the exam window — a message, nothing stored
    page.fill("#incident-at", "08:30:00")
    page.click("#incident-submit")
    page.wait_for_selector("#flash #error-message")
    assert "问题发生时间不在考试时段内" in page.inner_text("#flash")
    assert page.locator("#incidents tbody tr").count() == 1
    incidents = svc.api("GET", f"/api/v1/sessions/{sid}/incidents", who="督导员王").json()
    assert len(incidents) == 1 and incidents[0]["category"] == "29.2"
    shots(page, "incident-outside-window")

    # bad input: a form posted without its CSRF token — refused, nothing signed
    page.fill("#summary", "无 CSRF 令牌的提交")
    page.select_option("#conclusion", "不合格")
    page.evaluate("() => document.querySelector('#sign-off-form input[name=_csrf_token]').remove()")
    with page.expect_response(lambda r: r.url.endswith(f"/review/sessions/{sid}/sign-off")) as posted:
        page.click("#sign-off-button")
    assert posted.value.status == 403
    assert "安全令牌 (CSRF)" in page.inner_text("#error-message")
    assert svc.api("GET", f"/api/v1/sessions/{sid}/sign-off", who="督导员王").status_code == 404
    shots(page, "csrf-refused")

    # ---- sign off: the supervision form is stored under legal hold and its link shown
    page.goto(f"{base}/review/sessions/{sid}")
    stale = context.new_page()  # a second tab with the sign-off form, for signing twice
    stale.goto(f"{base}/review/sessions/{sid}")
    page.fill("#summary", "录像基本完整：T101 后机位 09:00:30 起缺录，前机位 09:00:40–09:00:50 黑屏；记录一起违纪。")
    page.select_option("#conclusion", "不合格")
    page.click("#sign-off-button")
    page.wait_for_selector("#signed-info")
    assert "已签署" in page.inner_text("#signed-info") and "督导员王" in page.inner_text("#signed-info")
    form_url = page.get_attribute("#form-link", "href")
    shots(page, "signed-off")
    signed = svc.api("GET", f"/api/v1/sessions/{sid}/sign-off", who="督导员王").json()
    assert signed["form"]["legal_hold"] is True and signed["conclusion"] == "fail" and signed["incidents"] == 1
    from evidence import RetentionArchive

    archive = RetentionArchive(svc.env["QBANK_S3_ENDPOINT"], svc.env["QBANK_S3_ACCESS_KEY"],
                               svc.env["QBANK_S3_SECRET_KEY"], "qbank-evidence")
    stat = archive.stat(signed["form"]["key"])
    assert stat.legal_hold is True and stat.retain_until is not None
    document = httpx.get(form_url).text
    assert "质量督导表" in document and "29.2" in document
    with page.expect_popup() as popup:  # later visits: a fresh short-lived link (in the trail)
        page.click("#open-form")
    popup.value.wait_for_load_state()
    assert popup.value.url.startswith(f"http://{svc.env['QBANK_S3_ENDPOINT']}/")
    assert "质量督导表" in popup.value.content()
    popup.value.close()

    # bad input: signing off twice (the stale tab) — a message, the first sign-off stands
    stale.fill("#summary", "第二次签署")
    stale.select_option("#conclusion", "不合格")
    stale.click("#sign-off-button")
    stale.wait_for_selector("#error-message")
    assert "已经签署过督导意见" in stale.inner_text("#error-message")
    again = svc.api("GET", f"/api/v1/sessions/{sid}/sign-off", who="督导员王").json()
    assert again["id"] == signed["id"] and again["summary"] == signed["summary"]
    shots(stale, "sign-off-twice")
    stale.close()
    page.goto(f"{base}/review")
    assert page.locator(f".pending-item[data-session-id='{sid}']").count() == 0

    # bad input: a session that does not exist
    for bad in ("999999", "abc"):
        response = page.goto(f"{base}/review/sessions/{bad}")
        assert response is not None and response.status == 404
        assert "该场次不存在" in page.inner_text("#error-message") or "digits" in page.inner_text("#error-message")
    shots(page, "no-such-session")

    # ---- English where asked; a 390 px phone; 1366×768 without sideways scrolling
    page.goto(f"{base}/review/sessions/{sid}?lang=en")
    assert "Video audit verdict" in page.inner_text("#verdict") and "black 09:00:" in page.inner_text("#reasons")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                has_touch=True, storage_state=context.storage_state())
    mobile = phone.new_page()
    mobile.goto(f"{base}/review/sessions/{sid}")
    assert mobile.evaluate("() => document.documentElement.scrollWidth") <= 390
    mobile.locator(f".track[data-room='{room}'][data-view='back']").click(position={"x": 40, "y": 10})
    mobile.locator("video#video").wait_for()
    assert mobile.locator("#incident-closed").is_visible()  # signed off: no more incidents
    mobile.wait_for_function("() => { const v = document.querySelector('video#video');"
                             " return v && v.currentTime > 1; }")
    shots(mobile, "phone-390")
    phone.close()

    # ---- sign out ends the session on the server; a revoked token ends it too
    page.goto(f"{base}/review/sessions/{sid}")
    old_sid = session_cookie()[0]["value"]
    page.click("#sign-out")
    page.wait_for_url("**/review/login?reason=signed_out")
    assert "已退出登录" in page.inner_text("#login-message")
    replay = httpx.get(f"{base}/review", cookies={"qbank_review_session": old_sid}, follow_redirects=False)
    assert replay.status_code == 303 and "/review/login" in replay.headers["location"]
    sign_in(page, base, svc.tokens["督导员李"])
    page.wait_for_url(f"{base}/review")
    assert svc.api("POST", f"/api/v1/tokens/{svc.token_ids['督导员李']}/revoke").status_code == 200
    page.goto(f"{base}/review")
    assert "reason=revoked" in page.url and "令牌已被撤销" in page.inner_text("#login-message")
    shots(page, "revoked")

    # the JSON API is untouched by the page's CSRF: bearer-token writes need no CSRF token
    r = svc.api("POST", f"/api/v1/sessions/{seeded.older_id}/incidents", who="督导员王",
                json={"at": (OLDER_START + timedelta(seconds=5)).isoformat(), "room": room, "view": "front",
                      "category": "30.11", "note": "API"})
    assert r.status_code == 201, r.text
    assert console_errors == []
    assert csp_violations == []
    context.close()
    keep = os.environ.get("QBANK_REVIEW_SCREENSHOTS")
    if keep:  # e.g. docs/screenshots: refresh the README's pictures
        for name in ("incident-marked", "phone-390"):
            shutil.copy(next(tmp_path.glob(f"*-{name}.png")), Path(keep) / f"review-{name}.png")


FINDINGS_START = datetime(2025, 6, 12, 9, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def findings_session(service: Service, seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A one-minute session: T101 front = a clip black at 10–20 s and one blurred at 10–20 s, both from 09:00
    (two kinds over the same stretch); T101 back = a 30 s clip cut in half (truncated: corrupt from about 15 s)."""
    d = tmp_path_factory.mktemp("findings-clips")
    black = defects_clip(d / "black.mp4", duration=30, black=(10.0, 20.0), frozen=None, blurred=None, covered=None,
                         still=None)
    blurred = defects_clip(d / "blurred.mp4", duration=30, black=None, frozen=None, blurred=(10.0, 20.0),
                           covered=None, still=None)
    truncated = d / "truncated.mp4"
    data = defects_clip(d / "clean.mp4", duration=30, black=None, frozen=None, blurred=None, covered=None,
                        still=None).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    svc = service
    code = new_occupation_code()
    assert svc.api("POST", "/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]}).status_code == 201
    body = {"occupation_code": code, "level": 3, "title": "2025年6月电工三级（录像问题）",
            "date": FINDINGS_START.date().isoformat(), "start": "09:00:00", "end": "09:01:00",
            "rooms": [{"site": seeded.site, "code": "T101", "kind": "theory", "desks": 2,
                       "camera_views": ["front", "back"]}]}
    r = svc.api("POST", "/api/v1/sessions", json=body)
    assert r.status_code == 201, r.text
    sid = int(r.json()["id"])
    ids = []
    for view, clip in (("front", black), ("front", blurred), ("back", truncated)):
        r = svc.api("POST", f"/api/v1/sessions/{sid}/recordings", who="考点", content=clip.read_bytes(),
                    params={"room": seeded.room, "view": view, "start": FINDINGS_START.isoformat()},
                    headers={"Content-Type": "video/mp4"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    deadline = time.monotonic() + 60
    for rec_id in ids:
        while svc.api("GET", f"/api/v1/recordings/{rec_id}").json()["status"] not in ("analysed", "corrupt"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    return sid


def test_each_kind_its_own_row_and_a_corrupt_stripe(service: Service, seeded: Seeded, findings_session: int,
                                                     browser: Any, tmp_path: Path) -> None:
    """Issue 13: overlapping findings of two kinds are two rows side by side, each with its own times; a truncated
    file shows "corrupt from …"; the sign-off form preselects nothing and asks for a reason to pass."""
    svc, sid, room = service, findings_session, seeded.room
    shots = Shots(tmp_path, full_page=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, svc.url, svc.tokens["督导员王"])
    page.wait_for_url(f"{svc.url}/review")
    page.goto(f"{svc.url}/review/sessions/{sid}")
    lane = page.locator(f".lane[data-room='{room}'][data-view='front']")
    rows = lane.locator(".kind-row")
    assert rows.evaluate_all("els => els.map(e => e.dataset.kind)") == ["black", "blurred"]
    black, blurred = (lane.locator(f".kind-row[data-kind='{k}'] .seg") for k in ("black", "blurred"))
    assert black.count() == 1 and blurred.count() == 1
    for seg in (black, blurred):
        assert abs(float(seg.get_attribute("data-start")) - 10) <= 2, seg.get_attribute("title")
        assert abs(float(seg.get_attribute("data-end")) - 20) <= 2, seg.get_attribute("title")
    assert "黑屏" in black.get_attribute("title") and "画面模糊" in blurred.get_attribute("title")
    assert "黑屏" in rows.nth(0).inner_text() and "画面模糊" in rows.nth(1).inner_text()
    a, b = black.bounding_box(), blurred.bounding_box()
    assert abs(a["x"] - b["x"]) <= 3 and abs(a["width"] - b["width"]) <= 3  # the same stretch ...
    assert b["y"] >= a["y"] + a["height"]  # ... on its own row: neither painted over the other
    assert black.evaluate("e => getComputedStyle(e).backgroundColor") != \
        blurred.evaluate("e => getComputedStyle(e).backgroundColor")

    back = page.locator(f".lane[data-room='{room}'][data-view='back']")
    stripe = back.locator(".kind-row[data-kind='corrupt'] .seg-corrupt")
    assert stripe.count() == 1 and float(stripe.get_attribute("data-end")) >= 29, stripe.get_attribute("title")
    assert 5 < float(stripe.get_attribute("data-start")) < 25
    assert re.search(r"自 09:00:\d\d 起文件损坏", stripe.get_attribute("title")), stripe.get_attribute("title")
    assert back.locator(".track .seg-corrupt").count() == 1 and back.locator(".track .seg-usable").count() == 1
    assert "文件损坏" in back.locator(".notes").inner_text()
    reasons = page.inner_text("#reasons")
    assert re.search(r"自 09:00:\d\d 起文件损坏", reasons) and "黑屏 09:00:" in reasons and "画面模糊 09:00:" in reasons
    shots(page, "kinds-and-corrupt")

    # sign-off: nothing preselected; pass while the audit fails needs a reason (a message, nothing signed)
    assert page.input_value("#conclusion") == "" and page.locator("#pass_reason").is_visible()
    page.fill("#summary", "前机位 09:00:10–09:00:20 黑屏且模糊，后机位文件截断。")
    page.select_option("#conclusion", "合格")
    page.click("#sign-off-button")
    page.wait_for_selector("#error-message")
    assert "请填写理由" in page.inner_text("#error-message")
    assert svc.api("GET", f"/api/v1/sessions/{sid}/sign-off", who="督导员王").status_code == 404
    page.goto(f"{svc.url}/review/sessions/{sid}?lang=en")
    reasons = page.inner_text("#reasons")
    assert "corrupt from 09:00:" in reasons and "black 09:00:" in reasons and "blurred 09:00:" in reasons
    assert not re.search(r"\b(low_\w+|black,blurred)\b", page.inner_text("main")), page.inner_text("main")
    shots(page, "kinds-and-corrupt-en")
    assert errors == []
    context.close()
