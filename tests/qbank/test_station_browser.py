"""The exam station in a real browser (Debian's Chromium driven by Playwright): a candidate signs in, answers with
the keyboard, flags, reloads mid-exam, survives a `kill -9` of the station, is moved to another machine and
submits; the proctor starts the room, adds time and moves the candidate; a one-minute exam runs out of time and is
submitted by the station. The centre is a real `qbank serve`; the stations are real `qbank station serve`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running_service
from tests.qbank.browsers import Shots
from tests.qbank.helpers import make_paper_bank
from tests.qbank.stations import (
    QBANK,
    SealedExam,
    StationProcess,
    cards_codes,
    live_api,
    sealed_exam,
    tiny_png,
)

pytestmark = [pytest.mark.browser]

SECRET = "station-browser-secret"


@dataclass
class Stations:
    main: SealedExam
    short: SealedExam
    a: StationProcess
    b: StationProcess
    codes_a: dict[str, Any]
    codes_b: dict[str, Any]


def _in_thread(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def stations(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stations]:
    folder = tmp_path_factory.mktemp("station-browser")
    (folder / "centre").mkdir()
    with running_service(folder / "centre", s3_server, QBANK_TOKEN_SECRET=SECRET) as (url, env):
        async def seal() -> tuple[SealedExam, SealedExam]:
            api, engine = await live_api(url, env, SECRET)
            try:
                bank = await make_paper_bank(api)
                main = await sealed_exam(api, url, folder, rooms={"T101": 3}, bank=bank, image=tiny_png(160, 60))
                short = await sealed_exam(api, url, folder, rooms={"T201": 1}, duration_minutes=1, bank=bank)
                return main, short
            finally:
                await api.client.aclose()
                await engine.dispose()

        main, short = _in_thread(seal())
        codes = []
        for exam in (main, short):
            pdf = subprocess.run([QBANK, "station", "cards", "--package", str(exam.package), "--key", str(exam.key),
                                  "--centre", url, "--token", exam.token, "-o", "/dev/stdout"], capture_output=True,
                                 check=True).stdout
            codes.append(cards_codes(pdf))
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        a, b = StationProcess(main, folder / "a"), StationProcess(short, folder / "b")
        a.start()
        b.start()
        try:
            yield Stations(main, short, a, b, codes[0], codes[1])
        finally:
            a.stop()
            b.stop()


def seconds(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def saved(page: Any) -> None:
    page.wait_for_function("() => /已保存|Saved/.test(document.getElementById('save-status').textContent)"
                           " && !document.querySelector('#palette .pending')")


def test_a_candidate_and_a_proctor_in_the_browser(stations: Stations, browser: Any, tmp_path: Path) -> None:
    st, shots = stations, Shots(tmp_path)
    print(f"screenshots: {tmp_path}")
    errors: list[str] = []
    who = st.main.candidate("T101", 1)
    other = st.main.candidate("T101", 2)
    short = st.short.candidate("T201", 1)

    # ---- the one-minute exam starts first, so that its time runs out while the rest goes on
    pb = httpx.Client(base_url=st.b.url, timeout=30)
    assert pb.post("/api/proctor/sign-in", json={"code": st.codes_b["rooms"]["T201"]}).status_code == 200
    short_ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    sp = short_ctx.new_page()
    sp.on("pageerror", lambda exc: errors.append(str(exc)))
    sp.goto(st.b.url + "/")
    sp.fill("#desk-code", st.codes_b["candidates"][short["number"]])
    sp.click("#sign-in-code")
    sp.wait_for_selector("#waiting-screen:not([hidden])")
    assert pb.post("/api/proctor/rooms/T201/start").status_code == 200
    sp.wait_for_selector("#exam:not([hidden])", timeout=10_000)
    sp.keyboard.press("1")
    saved(sp)
    short_started = time.monotonic()

    # ---- sign in at 1366×768, by keyboard: a wrong id first (refused in words), then the right one
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(st.a.url + "/")
    shots(page, "sign-in")
    page.keyboard.type(who["number"])
    page.keyboard.press("Tab")
    page.keyboard.type("000000")
    page.keyboard.press("Enter")
    # the message first says "signing in" (正在登录…), then the answer: wait for the answer, not the message
    page.wait_for_function("() => { const m = document.getElementById('signin-message');"
                           " return !m.hidden && m.textContent.trim() && !/正在登录/.test(m.textContent); }")
    assert "准考证号或身份证号后 6 位不正确" in page.inner_text("#signin-message")
    page.fill("#id-digits", who["id_tail"])
    page.press("#id-digits", "Enter")
    page.wait_for_url(f"{st.a.url}/exam/{who['number']}")
    page.wait_for_selector("#waiting-screen:not([hidden])")
    assert "等待监考员开始考试" in page.inner_text("#waiting-screen")
    shots(page, "waiting")

    # ---- the proctor signs in at 1920×1080 and starts the room
    pctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    proctor = pctx.new_page()
    proctor.on("pageerror", lambda exc: errors.append(str(exc)))
    proctor.goto(st.a.url + "/proctor")
    proctor.fill("#proctor-code", st.codes_a["rooms"]["T101"])
    proctor.click("#proctor-sign-in")
    proctor.wait_for_selector("#desks tbody tr")
    assert proctor.get_attribute(f"tr[data-number='{who['number']}']", "data-status") == "waiting"
    assert proctor.get_attribute(f"tr[data-number='{other['number']}']", "data-status") == "not_signed_in"
    proctor.click("#start-room")
    proctor.wait_for_function("() => document.getElementById('start-room').disabled")

    # ---- the questions appear; answer by keyboard, navigate, flag; every change acknowledged
    page.wait_for_selector("#exam:not([hidden])", timeout=10_000)
    assert page.inner_text("#q-heading") == "第 1 题 / 共 60 题"
    page.wait_for_function("() => { const i = document.querySelector('#q-media img');"
                           " return i && i.complete && i.naturalWidth === 160; }")  # the picture, from the package
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    page.keyboard.press("2")
    saved(page)
    first_choice = page.locator("#q-options input:checked").get_attribute("value")
    page.keyboard.press("n")
    assert page.inner_text("#q-heading") == "第 2 题 / 共 60 题"
    page.keyboard.press("1")
    saved(page)
    page.keyboard.press("f")
    page.wait_for_selector("#palette button[data-no='2'].flagged")
    page.click("#palette button[data-no='7']")
    page.keyboard.press("1")
    saved(page)
    assert page.locator("#palette button.answered").count() == 3
    assert "已答 3" in page.inner_text("#counts") and "标记 1" in page.inner_text("#counts")
    shots(page, "answering")
    page.click("#font-larger")
    page.click("#font-larger")
    page.click("#contrast")
    assert page.evaluate("() => document.documentElement.dataset.font") == "2"
    assert page.evaluate("() => document.body.classList.contains('contrast')")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    shots(page, "large-text-high-contrast")
    page.click("#font-smaller")
    page.click("#font-smaller")
    page.click("#contrast")

    # ---- reload mid-exam: the answers, the flag and the time are the station's
    before = seconds(page.inner_text("#countdown"))
    page.reload()
    page.wait_for_selector("#exam:not([hidden])")
    assert page.locator("#palette button.answered").count() == 3
    assert page.locator("#palette button[data-no='2'].flagged").count() == 1
    assert page.locator("#q-options input:checked").get_attribute("value") == first_choice
    page.wait_for_function("() => /^00:5/.test(document.getElementById('countdown').textContent)")
    assert 0 <= before - seconds(page.inner_text("#countdown")) <= 5

    # ---- kill -9 of the station: the page says it cannot reach it; after the restart everything is there
    st.a.kill9()
    page.click("#palette button[data-no='9']")
    page.keyboard.press("1")  # not acknowledged: the station is down
    page.wait_for_function("() => /未保存/.test(document.getElementById('save-status').textContent)",
                           timeout=15_000)
    shots(page, "station-down-not-saved")
    st.a.start()
    saved(page)  # the retry went through once the station was back
    page.reload()
    page.wait_for_selector("#exam:not([hidden])")
    page.wait_for_function("() => /^00:5/.test(document.getElementById('countdown').textContent)")
    assert page.locator("#palette button.answered").count() == 4
    assert abs(before - seconds(page.inner_text("#countdown"))) <= 15

    # ---- the proctor adds five minutes for another candidate, with a reason
    proctor.reload()
    proctor.wait_for_selector(f"tr[data-number='{other['number']}']")
    proctor.click(f"tr[data-number='{other['number']}'] button.extra-time")
    proctor.fill("#action-minutes", "5")
    proctor.fill("#action-reason", "视力障碍，经批准延时")
    proctor.click("#action-submit")
    proctor.wait_for_function(f"() => document.querySelector(\"tr[data-number='{other['number']}']\")"
                              ".textContent.includes('+5')")
    # ---- the candidate's computer fails: the proctor moves them and reads out a one-time code
    assert proctor.get_attribute(f"tr[data-number='{who['number']}']", "data-status") == "answering"
    proctor.click(f"tr[data-number='{who['number']}'] button.move")
    proctor.fill("#action-to", "备用机 31")
    proctor.fill("#action-reason", "考试机死机")
    proctor.click("#action-submit")
    proctor.wait_for_selector("#move-result:not([hidden])")
    code = re.search(r"[2-9A-Z]{4}-[2-9A-Z]{4}", proctor.inner_text("#move-result"))
    assert code, proctor.inner_text("#move-result")
    shots(proctor, "proctor-console")
    page.click("#palette button[data-no='10']")
    page.keyboard.press("1")
    page.wait_for_selector("#message:not([hidden])")
    assert "监考员已为你换机" in page.inner_text("#message")
    # the candidate signs in at the other machine with the code, in English this time, at 1920×1080
    nctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="en-US")
    moved = nctx.new_page()
    moved.on("pageerror", lambda exc: errors.append(str(exc)))
    moved.goto(st.a.url + "/?lang=en")
    moved.fill("#desk-code", code[0])
    moved.click("#sign-in-code")
    moved.wait_for_selector("#exam:not([hidden])")
    assert moved.inner_text("#q-heading") == "Question 1 of 60"
    assert moved.locator("#palette button.answered").count() == 4
    assert moved.evaluate("() => document.documentElement.scrollWidth") <= 1920
    shots(moved, "moved-english-1920")

    # ---- submit: a confirmation first, then the paper is in
    moved.click("#submit")
    moved.wait_for_selector("#confirm-dialog[open]")
    assert "4 answered" in moved.inner_text("#confirm-text") and "1 flagged" in moved.inner_text("#confirm-text")
    shots(moved, "confirm-submit")
    moved.click("#confirm-submit")
    moved.wait_for_selector("#submitted-screen:not([hidden])")
    assert "4 questions answered" in moved.inner_text("#submitted-text")
    proctor.wait_for_function(f"() => document.querySelector(\"tr[data-number='{who['number']}']\")"
                              ".dataset.status === 'submitted'")

    # ---- the one-minute exam: time runs out and the station submits it; the page says so
    sp.wait_for_selector("#submitted-screen:not([hidden])", timeout=max(5, 75 - (time.monotonic() - short_started))
                         * 1000)
    assert "考试时间到" in sp.inner_text("#submitted-text")
    state = pb.get("/api/proctor/rooms/T201").json()
    assert state["desks"][0]["status"] == "submitted" and state["desks"][0]["how"] == "time_out"
    # an answer sent after the time (from the candidate's own browser session): refused in words
    late = sp.request.put(f"{st.b.url}/api/candidates/{short['number']}/answers/2",
                          data={"places": [0], "seq": 99})
    assert late.status == 409 and "can no longer change" in late.json()["detail"], late.text()
    shots(sp, "time-out")
    assert errors == []
    for c in (ctx, pctx, nctx, short_ctx):
        c.close()
    keep = os.environ.get("QBANK_STATION_SCREENSHOTS")
    if keep:  # e.g. docs/screenshots: refresh the README's pictures
        for name in ("answering", "large-text-high-contrast", "proctor-console", "moved-english-1920",
                     "confirm-submit"):
            shutil.copy(next(tmp_path.glob(f"*-{name}.png")), Path(keep) / f"station-{name}.png")
