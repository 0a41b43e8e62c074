"""Papers through the service: assembly jobs, sealing per site, release in the window, responses and scores,
score sheets, leak tracing; each bad input a clear 4xx that changes nothing."""

from __future__ import annotations

import base64
import random
from datetime import timedelta
from typing import Any

import anyio.to_thread
import msgspec
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

from paperbuild import sealing
from qbank.server.cli import main
from tests.qbank.helpers import (
    Api,
    Exam,
    assemble,
    blueprint_body,
    get_package,
    id_number,
    make_exam,
    make_paper_bank,
    make_site,
    site_headers,
    time_travel,
)


async def fetch_and_open(api: Api, exam: Exam, site: str) -> tuple[dict[str, Any], bytes]:
    mine = await site_headers(api, site)
    r = await get_package(api, exam.session_id, mine)  # 307 to the S3 server, followed
    assert r.status_code == 200, r.text
    data = r.content
    rel = await api.client.get(f"/api/v1/sessions/{exam.session_id}/release", headers=mine)
    assert rel.status_code == 200, rel.text
    ck = await api.client.get("/api/v1/centre-key", headers=mine)
    centre = Ed25519PublicKey.from_public_bytes(base64.b64decode(ck.json()["public_key"]))
    pkg = sealing.verify(data, centre)
    share = sealing.open_site_share(pkg, exam.keys[site])
    content = sealing.unseal(pkg, share, base64.b64decode(rel.json()["centre_share"]))
    return content, data


async def recent_actions(api: Api, last: int = 1000) -> list[str]:
    """The actions of the trail's newest entries (the trail is read oldest first; other tests share it)."""
    admin = await api.admin()
    total = (await api.client.get("/api/v1/audit", params={"limit": 1}, headers=admin)).json()["total"]
    trail = await api.client.get("/api/v1/audit", params={"limit": last, "offset": max(0, total - last)},
                                 headers=admin)
    return [e["action"] for e in trail.json()["items"]]


async def answer_keys(api: Api, version_ids: set[int]) -> dict[int, list[int]]:
    from qbank.items.models import ItemVersion

    async with api.db() as db:
        rows = (await db.scalars(select(ItemVersion).where(ItemVersion.id.in_(version_ids)))).all()
    return {v.id: ["ABCDEFGH".index(x) for x in v.content["answer"]] for v in rows}


async def test_assemble_seal_release_respond_and_score(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank)
    admin = await api.admin()
    job = await assemble(api, exam, layout_id)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["result"]["forms"] == 2

    # only the centre sees papers
    for role in ("supervisor", "author", "reviewer"):
        occupations = () if role == "supervisor" else (bank.occupation,)
        r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers",
                                 headers=await api.headers(role, occupations=occupations))
        assert r.status_code == 403, (role, r.text)
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers",
                             headers=await site_headers(api, exam.sites[0]))
    assert r.status_code == 403
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=admin)
    assert r.status_code == 200, r.text
    paper = r.json()
    assert [f["index"] for f in paper["forms"]] == [0, 1]
    assert all(len(f["version_ids"]) == 60 and f["total_points"] == 100 for f in paper["forms"])
    assert {a["form"] for a in paper["assignments"]} == {0, 1}
    assert all(a["form"] == (a["desk"] - 1) % 2 for a in paper["assignments"])

    # the blueprint is now immutable; items used gained exposure
    bp = (await api.client.get(f"/api/v1/occupations/{bank.occupation}/levels/3/blueprints", headers=admin)).json()
    assert bp[0]["used_at"] is not None
    r = await api.client.put(f"/api/v1/blueprints/{bp[0]['id']}", json=blueprint_body(48), headers=admin)
    assert r.status_code == 409, r.text
    used = paper["forms"][0]["version_ids"][0]
    from qbank.items.models import Item, ItemVersion

    async with api.db() as db:
        item = await db.scalar(select(Item).join(ItemVersion, ItemVersion.item_id == Item.id)
                               .where(ItemVersion.id == used))
        assert item is not None and item.times_used >= 1

    # seal: one package per site, in the archive
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)
    assert r.status_code == 200, r.text
    sealed = r.json()
    assert sorted(p["site"] for p in sealed["packages"]) == sorted(exam.sites)
    assert (await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)).status_code == 409
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers", json={"layout_id": layout_id},
                              headers=admin)
    assert r.status_code == 409  # sealed papers are never assembled again

    a, b = exam.sites
    mine = await site_headers(api, a)
    # another site's package or share: 403
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/package", params={"site": b}, headers=mine)
    assert r.status_code == 403
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/release", params={"site": b}, headers=mine)
    assert r.status_code == 403
    # before the window: the package yes, the share no (saying when)
    await time_travel(api, exam.session_id, timedelta(days=3))
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/release", headers=mine)
    assert r.status_code == 403 and "released from" in r.json()["detail"], r.text
    assert "+08:00" in r.json()["detail"]
    # responses before the start: refused
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/responses",
                              json={"responses": [{"candidate": next(iter(exam.candidates)), "answers": {}}]},
                              headers=mine)
    assert r.status_code == 403

    await time_travel(api, exam.session_id, timedelta(minutes=10))  # opens 15 minutes before the start
    content, _ = await fetch_and_open(api, exam, a)
    assert content["site"] == a and len(content["candidates"]) == 4
    text = msgspec.json.encode(content).decode()
    assert '"answer"' not in text and "explanation" not in text
    by_number = {c["number"]: c for c in content["candidates"]}
    forms = {tuple(sorted(q["version_id"] for q in c["questions"])) for c in content["candidates"]}
    assert len(forms) == 2
    # candidates on the same form see different orders
    same = [c for c in content["candidates"] if c["form"] == 0]
    assert [q["version_id"] for q in same[0]["questions"]] != [q["version_id"] for q in same[1]["questions"]]

    # responses: a perfect paper, a blank one
    await time_travel(api, exam.session_id, timedelta(minutes=-30))
    keys = await answer_keys(api, {q["version_id"] for c in content["candidates"] for q in c["questions"]})
    perfect, blank, *rest = list(by_number)
    versions = await _own_options(api, by_number[perfect])
    answers = {}
    for q in by_number[perfect]["questions"]:
        shown = [versions[q["version_id"]].index(text_) for text_ in q["options"]]
        answers[str(q["version_id"])] = sorted(shown.index(k) for k in keys[q["version_id"]])
    body = {"responses": [{"candidate": perfect, "answers": answers}, {"candidate": blank, "answers": {}}]}
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/responses", json=body, headers=mine)
    assert r.status_code == 201, r.text
    scores = {s["candidate"]: s["score"] for s in r.json()["scores"]}
    assert scores == {perfect: 100.0, blank: 0.0}

    # bad responses: each a clear 4xx, nothing stored
    other_site = next(n for n, s in exam.candidates.items() if s == b)
    q0 = by_number[rest[0]]["questions"][0]
    cases = [
        ({"responses": [{"candidate": perfect, "answers": {}}]}, 409),  # twice
        ({"responses": [{"candidate": "NOBODY-1", "answers": {}}]}, 400),  # unknown candidate
        ({"responses": [{"candidate": rest[0], "answers": {"not-a-number": [0]}}]}, 400),
        ({"responses": [{"candidate": rest[0], "answers": {"999999999": [0]}}]}, 400),  # not on the paper
        ({"responses": [{"candidate": rest[0], "answers": {str(q0["version_id"]): [7]}}]}, 400),  # no such place
        ({"responses": [{"candidate": rest[0], "answers": {str(q0["version_id"]): "A"}}]}, 400),  # wrong format
        ({"responses": [{"candidate": other_site, "answers": {}}]}, 403),  # another site's candidate
        ({"answers": {}}, 400),
    ]
    for case, status in cases:
        r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/responses", json=case, headers=mine)
        assert r.status_code == status, (case, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # after the window and the grace: refused
    await time_travel(api, exam.session_id, timedelta(hours=-3))
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/responses",
                              json={"responses": [{"candidate": rest[0], "answers": {}}]}, headers=mine)
    assert r.status_code == 403 and "grace" in r.json()["detail"], r.text

    # practical scores: only from the session's assigned panel (≥ 3, final score by its leader)
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/practical-scores", headers=mine, json={
        "scores": [{"candidate": perfect, "evaluators": [{"name": n, "score": 80} for n in ("甲", "乙", "丙")],
                    "leader": "甲", "final_score": 80}]})
    assert r.status_code == 400 and "no assigned evaluator panel" in r.text, r.text
    evaluators = []
    for name in ("甲", "乙", "丙", "丁"):
        r = await api.client.post("/api/v1/evaluators", headers=admin, json={
            "name": name, "id_number": id_number(), "employer": "成都技师学院",
            "certificates": [{"occupation_code": bank.occupation, "level": 3, "valid_until": "2030-12-31"}]})
        assert r.status_code == 201, r.text
        evaluators.append(r.json()["id"])
    session = (await api.client.get(f"/api/v1/sessions/{exam.session_id}", headers=admin)).json()
    practical_room = next(room["id"] for room in session["rooms"] if room["kind"] == "practical")
    r = await api.client.put(f"/api/v1/sessions/{exam.session_id}/rooms/{practical_room}/panel", headers=admin,
                             json={"members": evaluators[:3], "leader": evaluators[0]})
    assert r.status_code == 200, r.text
    panel = [{"name": "甲", "score": 80}, {"name": "乙", "score": 82}, {"name": "丙", "score": 79}]
    bad = [
        {"candidate": perfect, "evaluators": panel[:2], "leader": "甲", "final_score": 80},
        {"candidate": perfect, "evaluators": [*panel[:2], {"name": "甲", "score": 1}], "leader": "甲",
         "final_score": 80},
        {"candidate": perfect, "evaluators": panel, "leader": "丁", "final_score": 80},
        {"candidate": perfect, "evaluators": [*panel[:2], {"name": "丁", "score": 80}], "leader": "甲",
         "final_score": 80},  # 丁 is certified but not on this session's panel
        {"candidate": perfect, "evaluators": panel, "leader": "乙", "final_score": 80},  # 乙 is not its leader
    ]
    for entry in bad:
        r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/practical-scores",
                                  json={"scores": [entry]}, headers=mine)
        assert r.status_code == 400, (entry, r.text)
    good = {"scores": [{"candidate": perfect, "evaluators": panel, "leader": "甲", "final_score": 80},
                       {"candidate": blank, "evaluators": panel, "leader": "甲", "final_score": 90}]}
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/practical-scores", json=good, headers=mine)
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/practical-scores", json=good, headers=mine)
    assert r.status_code == 409

    results = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    by = {x["candidate"]: x for x in results["results"]}
    assert by[perfect]["passes"] is True and by[blank]["passes"] is False and by[rest[0]]["passes"] is None

    # the score sheet: a key-node record under legal hold
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/score-sheet", headers=admin)
    assert r.status_code == 201, r.text
    record = r.json()["record"]
    assert record["category"] == "score_sheet" and record["legal_hold"] is True
    assert record["content_type"] == "application/pdf"
    # the sheet a person reads is in Chinese (the PDF's CJK font), beside the embedded machine-readable sheet
    pdf = api.app.state.store.archive.get(record["key"])
    ucs2 = "".join(f"{ord(ch):04X}" for ch in "成绩汇总表").encode()
    assert pdf.startswith(b"%PDF") and b"/STSong-Light" in pdf and ucs2 in pdf
    names = {x["name"] for x in results["results"] if x["name"]}
    assert names and all("".join(f"{ord(ch):04X}" for ch in n).encode() in pdf for n in names)
    assert b"score-sheet.json" in pdf

    # the trail has every fetch and release
    actions = await recent_actions(api)
    for action in ("paper.assemble", "paper.seal", "paper.package_fetch", "paper.release", "paper.release_refused",
                   "responses.receive", "practical_scores.record", "record.upload"):
        assert action in actions, action


async def _own_options(api: Api, candidate: dict[str, Any]) -> dict[int, list[str]]:
    from qbank.items.models import ItemVersion

    ids = [q["version_id"] for q in candidate["questions"]]
    async with api.db() as db:
        rows = (await db.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids)))).all()
    return {v.id: list(v.content["options"]) for v in rows}


async def test_per_candidate_papers_and_a_leak_names_the_candidate(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=4)
    job = await assemble(api, exam, layout_id, mode="per_candidate", max_shared=50)
    assert job["status"] == "succeeded", job
    admin = await api.admin()
    paper = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=admin)).json()
    assert len(paper["forms"]) == 8 and len({a["form"] for a in paper["assignments"]}) == 8
    assert (await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)).status_code == 200
    await time_travel(api, exam.session_id, timedelta(minutes=5))
    site = random.choice(exam.sites)
    content, _ = await fetch_and_open(api, exam, site)
    victim = random.choice(content["candidates"])
    seen = random.sample(victim["questions"], 8)
    leak = {"source": "论坛截图", "items": [{"stem": q["stem"], "options": q["options"]} for q in seen]}
    r = await api.client.post("/api/v1/leaks", json=leak, headers=admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert all(x["version_id"] for x in out["resolved"])
    top = out["matches"][0]
    assert (top["session_id"], top["candidate"]) == (exam.session_id, victim["number"]), out["matches"][:3]
    assert top["option_orders_matching"] == len(seen)
    assert out["matches"][0]["score"] > out["matches"][1]["score"]
    # a supervisor may not trace leaks
    r = await api.client.post("/api/v1/leaks", json=leak, headers=await api.headers("supervisor"))
    assert r.status_code == 403

    r = await api.client.post(f"/api/v1/leaks/{out['id']}/confirm", headers=admin)
    assert r.status_code == 200, r.text
    confirmed = r.json()
    assert confirmed["status"] == "confirmed" and exam.session_id in confirmed["voided_sessions"]
    assert len(confirmed["retired_items"]) == 8
    item = (await api.client.get(f"/api/v1/items/{confirmed['retired_items'][0]}", headers=admin)).json()
    assert item["status"] == "retired"
    results = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    assert results["void"] is True and all(x["void"] for x in results["results"])
    assert (await api.client.post(f"/api/v1/leaks/{out['id']}/confirm", headers=admin)).status_code == 409
    actions = await recent_actions(api)
    assert {"leak.report", "leak.confirm", "results.void", "item.retire"} <= set(actions)


async def test_a_bank_that_cannot_fill_the_layout_gets_the_explanation(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api, starve_scope_02=True)
    exam = await make_exam(api, bank, per_site=2, n_sites=1, register_keys=False)
    job = await assemble(api, exam, layout_id, forms=1)
    assert job["status"] == "failed", job
    assert job["error"]["explanation"], job["error"]
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=await api.admin())
    assert r.status_code == 422, r.text
    problem = r.json()
    # the engine's rows at the top of the problem body (AssemblyProblem in the OpenAPI), in both languages
    assert problem["paper_status"] == "failed" and problem["explanation"] and problem["errors"]
    rows = [row for row in problem["explanation"] if row["kind"] == "scope" and row["key"] == "02"]
    assert rows, problem
    assert rows[0]["unit"] == "score_points" and rows[0]["message_en"] == rows[0]["message"]
    assert rows[0]["message_zh"] and rows[0]["message_zh"] != rows[0]["message_en"]
    assert all(" points" not in row["message_en"] or "score points" in row["message_en"]
               or "appraisal points" in row["message_en"] for row in problem["explanation"]), problem
    # nothing to seal
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=await api.admin())
    assert r.status_code == 409


async def test_site_keys_and_the_centre_key(api: Api) -> None:
    site = await make_site(api)
    other = await make_site(api)
    mine = await site_headers(api, site)
    good = base64.b64encode(sealing.raw_public(X25519PrivateKey.generate().public_key())).decode()
    cases = [(site, {"public_key": base64.b64encode(b"x" * 31).decode() + "AAAA"}, 400),
             (site, {"public_key": "!" * 44}, 400),
             (other, {"public_key": good}, 403)]
    for code, body, status in cases:
        r = await api.client.put(f"/api/v1/sites/{code}/public-key", json=body, headers=mine)
        assert r.status_code == status, (body, r.text)
    r = await api.client.put(f"/api/v1/sites/{site}/public-key", json={"public_key": good},
                             headers=await api.headers("supervisor"))
    assert r.status_code == 403
    r = await api.client.put(f"/api/v1/sites/{site}/public-key", json={"public_key": good}, headers=mine)
    assert r.status_code == 200 and len(r.json()["key_id"]) == 16
    r = await api.client.get("/api/v1/centre-key", headers=mine)
    assert r.status_code == 200 and len(base64.b64decode(r.json()["public_key"])) == 32


async def test_cli_assembles_with_a_progress_bar(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=3, n_sites=1, register_keys=False)
    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_TOKEN_SECRET": "test-token-secret"}
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, [
        "papers", "assemble", str(exam.session_id), "--layout", str(layout_id), "--forms", "3",
        "--time-limit", "5"], env=env))
    assert result.exit_code == 0, result.output
    assert "3 form(s)" in result.output
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=await api.admin())
    assert r.status_code == 200 and len(r.json()["forms"]) == 3
