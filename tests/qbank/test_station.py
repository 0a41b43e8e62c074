"""The exam station end to end, over HTTP: the centre as a real `qbank serve` (SQLite, the test S3), the station as
a real `qbank station serve` process. From assembly to scores through the station; every refusal the issue lists;
a `kill -9` of the station mid-exam with every acknowledged answer kept."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qbank.station.runtime import OUTAGE_MIN
from tests.conftest import running_service
from tests.qbank.helpers import Api, make_paper_bank, site_headers
from tests.qbank.stations import (
    QBANK,
    SealedExam,
    StationProcess,
    cards_codes,
    free_port,
    live_api,
    sealed_exam,
    tiny_png,
)

SECRET = "station-secret"
LABELS = "ABCDEFGH"


@pytest.fixture(scope="module")
def centre(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with running_service(tmp_path_factory.mktemp("station-centre"), s3_server, QBANK_TOKEN_SECRET=SECRET) as started:
        yield started


@pytest.fixture
async def live(centre: tuple[str, dict[str, str]]) -> AsyncIterator[Api]:
    api, engine = await live_api(*centre, SECRET)
    yield api
    await api.client.aclose()
    await engine.dispose()


def client(station: StationProcess) -> httpx.Client:
    return httpx.Client(base_url=station.url, timeout=30)


def sign_in(http: httpx.Client, exam: SealedExam, who: dict[str, Any]) -> httpx.Response:
    return http.post("/api/sign-in", json={"number": who["number"], "id_digits": who["id_tail"]})


def proctor(station: StationProcess, code: str) -> httpx.Client:
    http = client(station)
    r = http.post("/api/proctor/sign-in", json={"code": code})
    assert r.status_code == 200, r.text
    return http


async def correct_places(api: Api, exam: SealedExam, paper: dict[str, Any]) -> dict[int, list[int]]:
    """For each question shown: the places (as shown) of the right options, from the bank's item versions."""
    from qbank.items.models import Item, ItemVersion

    async with api.db() as db:
        versions = (await db.scalars(select(ItemVersion).join(Item, Item.id == ItemVersion.item_id)
                                     .where(Item.occupation_code == exam.bank.occupation))).all()
    by_stem = {v.content["stem"]: v.content for v in versions}
    out: dict[int, list[int]] = {}
    for q in paper["questions"]:
        content = by_stem[q["stem"]]
        right = {content["options"][LABELS.index(label)] for label in content["answer"]}
        out[q["no"]] = [k for k, text in enumerate(q["options"]) if text in right]
    return out


async def test_from_assembly_to_scores_through_the_station(live: Api, centre: tuple[str, dict[str, str]],
                                                           tmp_path: Path) -> None:
    url, _ = centre
    exam = await sealed_exam(live, url, tmp_path, rooms={"T101": 3, "T102": 1}, image=tiny_png())
    cards = tmp_path / "cards.pdf"
    done = subprocess.run([QBANK, "station", "cards", "--package", str(exam.package), "--key", str(exam.key),
                           "--centre", url, "--token", exam.token, "-o", str(cards)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    codes = cards_codes(cards.read_bytes())
    assert set(codes["rooms"]) == {"T101", "T102"} and len(codes["candidates"]) == 4
    assert cards.read_bytes().startswith(b"%PDF-") and b"/STSong-Light" in cards.read_bytes()

    station = StationProcess(exam, tmp_path / "station")
    station.folder.mkdir()
    station.start()
    try:
        await run_the_room(live, exam, station, codes, centre[1])
    finally:
        station.stop()


async def run_the_room(live: Api, exam: SealedExam, station: StationProcess, codes: dict[str, Any],
                       env: dict[str, str]) -> None:
    a, b, c = (exam.candidate("T101", d) for d in (1, 2, 3))
    alone = exam.candidate("T102", 1)
    ha, hb = client(station), client(station)

    # sign in: a by id digits; b by the desk code (one time only); wrong digits refused in words, then rate-limited
    r = sign_in(ha, exam, a)
    assert r.status_code == 200, r.text
    r = hb.post("/api/sign-in", json={"desk_code": codes["candidates"][b["number"]].lower().replace("-", "")})
    assert r.status_code == 200, r.text
    again = client(station).post("/api/sign-in", json={"desk_code": codes["candidates"][b["number"]]})
    assert again.status_code == 401 and "already used" in again.json()["detail"] + "not valid", again.text
    wrong = client(station)
    for _ in range(5):
        r = wrong.post("/api/sign-in", json={"number": c["number"], "id_digits": "000000"})
        assert r.status_code == 401 and "wrong" in r.json()["detail"] and "不正确" in r.json()["detail_zh"]
    r = wrong.post("/api/sign-in", json={"number": c["number"], "id_digits": c["id_tail"]})
    assert r.status_code == 429 and "too many" in r.json()["detail"] and int(r.headers["Retry-After"]) > 0, r.text
    # one candidate opening another's paper by URL: refused, and the page says so
    r = ha.get(f"/api/candidates/{b['number']}/paper")
    assert r.status_code == 403 and a["number"] in r.json()["detail"], r.text
    page = ha.get(f"/exam/{b['number']}")
    assert page.status_code == 403 and "其他考生" in page.text

    # before the room starts: waiting; answers refused
    paper_a = ha.get(f"/api/candidates/{a['number']}/paper").json()
    assert paper_a["phase"] == "waiting" and len(paper_a["questions"]) == 60
    # the item's picture comes from the package, only to signed-in candidates
    picture = paper_a["questions"][0]["media"][0]
    r = ha.get(picture)
    assert r.status_code == 200 and r.content == tiny_png() and r.headers["content-type"] == "image/png"
    assert client(station).get(picture).status_code == 401
    r = ha.put(f"/api/candidates/{a['number']}/answers/1", json={"places": [0], "seq": 1})
    assert r.status_code == 409 and "not started" in r.json()["detail"]

    # the proctor of T101 starts the room (the release is in, the window open); not T102's proctor
    p101 = proctor(station, codes["rooms"]["T101"])
    assert p101.post("/api/proctor/rooms/T102/start").status_code == 403
    r = p101.post("/api/proctor/rooms/T101/start")
    assert r.status_code == 200, r.text
    assert r.json()["started_at"] and r.json()["duration_minutes"] == 60
    assert p101.post("/api/proctor/rooms/T101/start").status_code == 409

    # a answers: some right, some wrong, one changed twice, one cleared; every save acknowledged with its seq
    right = await correct_places(live, exam, paper_a)
    qs = {q["no"]: q for q in paper_a["questions"]}
    plan: dict[int, list[int]] = {}
    for no in range(1, 21):
        q = qs[no]
        wrong_place = [next(k for k in range(len(q["options"])) if [k] != right[no])]
        plan[no] = right[no] if no % 4 else wrong_place
    seq = 0
    for no, places in plan.items():
        for attempt in ([0] if qs[no]["type"] != "multiple_choice" else [0, 1], places):
            seq += 1
            r = ha.put(f"/api/candidates/{a['number']}/answers/{no}", json={"places": attempt, "seq": seq})
            assert r.status_code == 200 and r.json()["saved"] and r.json()["seq"] == seq, r.text
    seq += 1
    r = ha.put(f"/api/candidates/{a['number']}/answers/21", json={"places": [1], "seq": seq})
    seq += 1
    assert ha.put(f"/api/candidates/{a['number']}/answers/21", json={"places": [], "seq": seq}).json()["places"] == []
    # an old change arriving late never overwrites a newer one
    r = ha.put(f"/api/candidates/{a['number']}/answers/1", json={"places": [3], "seq": 1})
    assert r.status_code == 200 and r.json()["stale"] and r.json()["places"] == plan[1]
    assert ha.put(f"/api/candidates/{a['number']}/flags/5", json={"flagged": True}).json()["flags"] == [5]
    # bad answers: a question not on the paper, an option that does not exist, two for a single choice
    single = next(no for no, q in qs.items() if q["type"] == "single_choice")
    for path, body in (("answers/61", {"places": [0], "seq": 999}), (f"answers/{single}", {"places": [7], "seq": 999}),
                       (f"answers/{single}", {"places": [0, 1], "seq": 999})):
        r = ha.put(f"/api/candidates/{a['number']}/{path}", json=body)
        assert r.status_code in (400, 404), r.text

    # kill -9 mid-exam: every acknowledged answer and the time left are there after the restart; the station comes
    # back with the centre out of reach (the site offline): the release share and the centre's key are kept
    before = ha.get(f"/api/candidates/{a['number']}/state").json()
    station.kill9()
    time.sleep(OUTAGE_MIN + 1)  # down long enough to be credited, however fast this machine restarts it
    station.centre = f"http://127.0.0.1:{free_port()}"
    station.start()
    after = ha.get(f"/api/candidates/{a['number']}/paper").json()
    assert {int(k): v for k, v in after["answers"].items() if v} == plan
    assert after["flags"] == [5] and after["phase"] == "answering"
    assert abs(after["remaining_ms"] - before["remaining_ms"]) < 8000, (before, after)
    log = p101.get("/api/proctor/rooms/T101/log").json()
    assert log["chain_holds"] and "station.outage_credited" in [e["action"] for e in log["entries"]]

    # b's machine fails: the proctor moves b (a one-time code), b continues elsewhere; the old browser is out
    r = hb.put(f"/api/candidates/{b['number']}/answers/1", json={"places": [1], "seq": 1})
    assert r.status_code == 200
    r = p101.post(f"/api/proctor/rooms/T101/candidates/{b['number']}/move", json={"to": "备用机 31",
                                                                                "reason": "考试机黑屏"})
    assert r.status_code == 200, r.text
    new_code = r.json()["desk_code"]
    r = hb.get(f"/api/candidates/{b['number']}/state")
    assert r.status_code == 401 and "moved" in r.json()["detail"]
    hb2 = client(station)
    assert hb2.post("/api/sign-in", json={"desk_code": new_code}).status_code == 200
    assert hb2.get(f"/api/candidates/{b['number']}/paper").json()["answers"] == {"1": [1]}
    # extra time for b, with a reason; c never signs in and is marked absent; an incident
    r = p101.post(f"/api/proctor/rooms/T101/candidates/{b['number']}/extra-time", json={"minutes": 5,
                                                                                      "reason": "换机耽误"})
    assert r.status_code == 200
    desk_b = next(d for d in r.json()["desks"] if d["number"] == b["number"])
    desk_a = next(d for d in r.json()["desks"] if d["number"] == a["number"])
    assert desk_b["extra_minutes"] == 5 and desk_b["remaining_ms"] > desk_a["remaining_ms"] + 250_000
    assert p101.post(f"/api/proctor/rooms/T101/candidates/{a['number']}/absent", json={}).status_code == 409
    assert p101.post(f"/api/proctor/rooms/T101/candidates/{c['number']}/absent",
                     json={"reason": "未到场"}).status_code == 200
    r = p101.post("/api/proctor/rooms/T101/incidents", json={"category": "29.2", "note": "3号与4号交头接耳"})
    assert r.status_code == 201, r.text
    assert p101.post("/api/proctor/rooms/T101/incidents", json={"category": "99.9"}).status_code == 400
    # the room cannot end while a and b still have time
    r = p101.post("/api/proctor/rooms/T101/end")
    assert r.status_code == 409 and "still have time" in r.json()["detail"]

    # a submits; answers after submission refused
    assert ha.post(f"/api/candidates/{a['number']}/submit", json={"confirm": False}).status_code == 400
    r = ha.post(f"/api/candidates/{a['number']}/submit", json={"confirm": True})
    assert r.status_code == 200 and r.json()["phase"] == "submitted"
    r = ha.put(f"/api/candidates/{a['number']}/answers/30", json={"places": [0], "seq": 10_000})
    assert r.status_code == 409 and "submitted" in r.json()["detail"]
    # b submits: every candidate is done, the station ends the room, seals the bundle and sends it
    assert hb2.post(f"/api/candidates/{b['number']}/submit", json={"confirm": True}).status_code == 200
    # offline: the bundle waits in the outbox, each attempt noted; back online it goes and is acknowledged
    waiting = wait_bundle(station, "T101", lambda b: b["attempts"] >= 1)
    assert not waiting["acknowledged"] and "cannot reach" in waiting["last_error"], waiting
    # it can also be carried: `qbank station export` writes it as the station signed it
    exported = subprocess.run([QBANK, "station", "export", "--db", str(station.db), "-o",
                               str(station.folder / "export")], capture_output=True, text=True)
    assert exported.returncode == 0 and "NOT acknowledged yet" in exported.stdout, exported.stdout + exported.stderr
    carried = (station.folder / "export" / f"response-bundle-T101-{waiting['bundle_id']}.json").read_bytes()
    station.stop()
    station.centre = ""
    station.start()
    bundle = wait_bundle(station, "T101", lambda b: b["acknowledged"])
    assert bundle["bundle_id"] == waiting["bundle_id"]

    # the centre: scored as responses are, the bundle a key-node record, the incident in the supervision view
    admin = await live.admin()
    results = (await live.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    theory = {r["candidate"]: r["theory"] for r in results["results"]}
    points = {q["no"]: q["points"] for q in paper_a["questions"]}
    assert theory[a["number"]] == pytest.approx(sum(points[no] for no, p in plan.items() if p == right[no]))
    assert theory[b["number"]] is not None and theory[c["number"]] is None and theory[alone["number"]] is None
    records = (await live.client.get(f"/api/v1/sessions/{exam.session_id}/records", headers=admin)).json()
    kept = [r for r in records if r["category"] == "response_bundle"]
    assert len(kept) == 1 and kept[0]["legal_hold"] is True
    incidents = (await live.client.get(f"/api/v1/sessions/{exam.session_id}/incidents", headers=admin)).json()
    assert [(i["category"], i["room"], i["view"]) for i in incidents] == [("29.2", f"{exam.site}/T101", "station")]
    assert "交头接耳" in incidents[0]["note"] and "exam station" in incidents[0]["marked_by"]

    # the bundle as sent: the answer logs, the proctor's chained log, the signature
    body = bundle_bytes(env, kept[0]["key"])
    assert body == carried
    doc = json.loads(body)
    mine = next(x for x in doc["candidates"] if x["number"] == a["number"])
    assert len(mine["log"]) == 2 * len(plan) + 2  # two saves per planned question, two for the cleared one
    assert [e["action"] for e in doc["log"]].count("candidate.move") == 1
    await bundle_refusals(live, exam, body)


def wait_bundle(station: StationProcess, room: str, until: Any, timeout: float = 60) -> dict[str, Any]:
    """The room's bundle as the station reports it, once ``until`` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        health = station.health()
        mine = [{"bundle_id": k, **b} for k, b in health["bundles"].items() if b["room"] == room]
        if mine and until(mine[0]):
            return mine[0]
        assert time.monotonic() < deadline, health
        time.sleep(0.3)


def bundle_bytes(env: dict[str, str], key: str) -> bytes:
    """The bundle as the centre keeps it, from its archive."""
    from evidence import RetentionArchive

    archive = RetentionArchive(env["QBANK_S3_ENDPOINT"], env["QBANK_S3_ACCESS_KEY"], env["QBANK_S3_SECRET_KEY"],
                               "qbank-evidence")
    return archive.get(key)


async def bundle_refusals(api: Api, exam: SealedExam, body: bytes) -> None:
    """Each bad bundle refused in words; the results stay as they were."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from paperbuild.sealing import sign_document
    from qbank.papers.keys import site_signing_key

    admin = await api.admin()
    headers = {**await site_headers(api, exam.site), "Content-Type": "application/json"}
    path = f"/api/v1/sessions/{exam.session_id}/response-bundles"
    results = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    # the same bundle again (a retry, or a replay): what was answered the first time; nothing changes
    r = await api.client.post(path, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["already_received"] is True, r.text
    doc = json.loads(body)
    # tampered: answers changed after signing
    altered = {**doc, "candidates": [{**c, "answers": {k: [0] for k in c["answers"]}} for c in doc["candidates"]]}
    r = await api.client.post(path, content=json.dumps(altered).encode(), headers=headers)
    assert r.status_code == 400 and "tampered" in r.json()["detail"], r.text
    # replayed under its id with other content, validly signed: a bundle id is used once
    resigned = sign_document({**altered, "incidents": []}, site_signing_key(load_key(exam.key)))
    r = await api.client.post(path, content=resigned, headers=headers)
    assert r.status_code == 409 and "used once" in r.json()["detail"], r.text
    # signed by another key (another site's) than the one this site registered
    foreign = sign_document({**doc, "bundle_id": "f" * 32}, site_signing_key(X25519PrivateKey.generate()))
    r = await api.client.post(path, content=foreign, headers=headers)
    assert r.status_code == 400 and "another key" in r.json()["detail"], r.text
    # sent with another site's token
    other = await site_headers(api)
    r = await api.client.post(path, content=body, headers={**other, "Content-Type": "application/json"})
    assert r.status_code == 403 and "no room in session" in r.json()["detail"], r.text
    # for another session (an admin carrying it to the wrong place)
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id - 1}/response-bundles", content=body,
                              headers={**admin, "Content-Type": "application/json"})
    assert r.status_code in (404, 409) and "session" in r.json()["detail"], r.text
    # not a bundle at all
    r = await api.client.post(path, content=b"{not json", headers=headers)
    assert r.status_code == 400, r.text
    after = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    assert after == results


def load_key(path: Path) -> Any:
    from qbank.papers.keys import load_site_key

    return load_site_key(path.read_bytes())


async def test_the_station_refuses_what_it_must(live: Api, centre: tuple[str, dict[str, str]],
                                                tmp_path: Path) -> None:
    """A package for another site's key; another package's database; starting the room before the window or
    without the release share — each refused in words, nothing changed."""
    from datetime import timedelta

    url, _ = centre
    bank = await make_paper_bank(live)
    soon = await sealed_exam(live, url, tmp_path, rooms={"T1": 2}, starts_in=timedelta(minutes=5), bank=bank)
    later = await sealed_exam(live, url, tmp_path, rooms={"T1": 1}, starts_in=timedelta(days=2), bank=bank)

    # another site's key: the package is sealed to someone else
    (tmp_path / "foreign").mkdir()
    foreign = StationProcess(SealedExam(**{**soon.__dict__, "key": later.key}), tmp_path / "foreign")
    done = subprocess.run(foreign.command(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "REFUSED" in done.stderr and "another site's key" in done.stderr, done.stderr
    if foreign.db.exists():  # nothing was bound to the foreign package
        with sqlite3.connect(foreign.db) as conn:
            assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 0

    # the window opens in 5 minutes: the share is released (15 minutes ahead), the room may not start yet
    (tmp_path / "soon").mkdir()
    station = StationProcess(soon, tmp_path / "soon")
    station.start()
    try:
        codes = cards_codes(subprocess.run(
            [QBANK, "station", "cards", "--package", str(soon.package), "--key", str(soon.key), "--centre", url,
             "--token", soon.token, "-o", "/dev/stdout"], capture_output=True, check=True).stdout)
        who = soon.candidate("T1", 1)
        http = client(station)
        assert sign_in(http, soon, who).status_code == 200
        assert http.get(f"/api/candidates/{who['number']}/state").json()["phase"] == "waiting"
        p = proctor(station, codes["rooms"]["T1"])
        r = p.post("/api/proctor/rooms/T1/start")
        assert r.status_code == 403 and "before the session's window opens" in r.json()["detail"], r.text
        assert "开考时间" in r.json()["detail_zh"]
        assert p.get("/api/proctor/rooms/T1").json()["started_at"] is None
        r = http.put(f"/api/candidates/{who['number']}/answers/1", json={"places": [0], "seq": 1})
        assert r.status_code == 409
        assert client(station).post("/api/proctor/sign-in", json={"code": "AAAA-AAAA"}).status_code == 401
    finally:
        station.stop()
    # the same database with another package: refused
    other = StationProcess(later, tmp_path / "soon")
    done = subprocess.run(other.command(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "belongs to package" in done.stderr, done.stderr

    # two days ahead: the centre keeps its share; the papers stay sealed and the room cannot start
    (tmp_path / "later").mkdir()
    station = StationProcess(later, tmp_path / "later")
    health = station.start(wait_release=False)
    try:
        assert health["release"] is False
        codes = cards_codes(subprocess.run(
            [QBANK, "station", "cards", "--package", str(later.package), "--key", str(later.key), "--centre", url,
             "--token", later.token, "-o", "/dev/stdout"], capture_output=True, check=True).stdout)
        p = proctor(station, codes["rooms"]["T1"])
        r = p.post("/api/proctor/rooms/T1/start")
        assert r.status_code == 409 and "still sealed" in r.json()["detail"] and "released from" in \
            r.json()["detail"], r.text
        assert p.get("/api/proctor/rooms/T1").json()["release"] is False
    finally:
        station.stop()
