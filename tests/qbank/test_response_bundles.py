"""The centre's side of the exam station, on SQLite and PostgreSQL: a site registers its signing key, a room's signed
response bundle is verified, scored as responses are, kept as a key-node record, its incidents shown in the
supervision view; every bad bundle refused in words with nothing changed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from paperbuild import sealing
from qbank.lib.digest import GENESIS, chain_hash
from qbank.papers.keys import signing_public_b64, site_signing_key
from qbank.papers.schemas import BUNDLE_FORMAT, ResponseBundleDoc
from tests.qbank.helpers import Api, assemble, get_package, make_exam, make_paper_bank, site_headers, time_travel


def chain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for n, e in enumerate(entries, start=1):
        body = {"seq": n, **e, "prev": prev}
        body["hash"] = chain_hash(prev, body)
        out.append(body)
        prev = body["hash"]
    return out


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


async def test_a_signed_bundle_is_verified_scored_and_kept(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=3, n_sites=1)
    site = exam.sites[0]
    assert (await assemble(api, exam, layout_id))["status"] == "succeeded"
    await time_travel(api, exam.session_id, timedelta(minutes=-30), timedelta(hours=2))
    admin, mine = await api.admin(), await site_headers(api, site)
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)
    assert r.status_code == 200, r.text
    package = (await get_package(api, exam.session_id, mine)).content
    release = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/release", headers=mine)).json()
    pkg = sealing.read_package(package)
    content = sealing.unseal(pkg, sealing.open_site_share(pkg, exam.keys[site]),
                             base64.b64decode(release["centre_share"]))
    roster = sealing.open_roster(pkg, exam.keys[site])
    assert {c["number"] for c in roster["candidates"]} == set(exam.candidates)
    path = f"/api/v1/sessions/{exam.session_id}/response-bundles"
    signer = site_signing_key(exam.keys[site])

    started = datetime.now(UTC) - timedelta(minutes=20)
    first, second, third = content["candidates"]
    q = first["questions"]
    doc = ResponseBundleDoc(
        format=BUNDLE_FORMAT, bundle_id="a" * 32, session=exam.session_id, site=site,
        package_id=pkg.header["package_id"], room="T1", started_at=started,
        ended_at=started + timedelta(minutes=15), duration_minutes=60, created_at=started + timedelta(minutes=15),
        candidates=msgspec.convert([
            {"number": first["number"], "form": first["form"], "desk": first["desk"], "status": "submitted",
             "how": "candidate", "submitted_at": iso(started + timedelta(minutes=10)),
             "answers": {str(q[0]["version_id"]): [0], str(q[1]["version_id"]): [1]},
             "log": [{"at": iso(started + timedelta(minutes=1)), "item": q[0]["version_id"], "places": [0]},
                     {"at": iso(started + timedelta(minutes=2)), "item": q[1]["version_id"], "places": [1]}]},
            {"number": second["number"], "form": second["form"], "desk": second["desk"], "status": "absent",
             "how": "marked"},
            {"number": third["number"], "form": third["form"], "desk": third["desk"], "status": "submitted",
             "how": "time_out", "submitted_at": iso(started + timedelta(minutes=15))}], list[Any]),
        incidents=msgspec.convert([{"at": iso(started + timedelta(minutes=5)), "category": "29.2",
                                    "note": "交头接耳", "by": "proctor T1"}], list[Any]),
        log=chain([{"at": iso(started), "actor": "proctor T1", "action": "room.start", "detail": {}},
                   {"at": iso(started + timedelta(minutes=15)), "actor": "station", "action": "room.end",
                    "detail": {}}]))
    good = sealing.sign_document(msgspec.to_builtins(doc), signer)
    headers = {**mine, "Content-Type": "application/json"}

    # before the site registered its signing key: refused, saying how to register it
    r = await api.client.post(path, content=good, headers=headers)
    assert r.status_code == 409 and "signing-key" in r.json()["detail"], r.text
    # the key: a bad one is refused; another site may not set ours
    r = await api.client.put(f"/api/v1/sites/{site}/signing-key", json={"signing_key": "A" * 43 + "="},
                             headers=await site_headers(api))
    assert r.status_code == 403
    r = await api.client.put(f"/api/v1/sites/{site}/signing-key", json={"signing_key": "not base64!" * 4},
                             headers=mine)
    assert r.status_code == 400 and "base64" in r.json()["detail"]
    r = await api.client.put(f"/api/v1/sites/{site}/signing-key", json={"signing_key": signing_public_b64(signer)},
                             headers=mine)
    assert r.status_code == 200 and r.json()["key_id"], r.text
    sites = (await api.client.get("/api/v1/sites", headers=mine)).json()
    assert sites[0]["has_signing_key"] is True

    def signed(**change: Any) -> bytes:
        return sealing.sign_document({**msgspec.to_builtins(doc), "bundle_id": "b" * 32, **change}, signer)

    refusals: list[tuple[bytes, int, str]] = [
        (signed(candidates=msgspec.to_builtins(doc.candidates[:2])), 400, "missing"),
        (signed(candidates=[{**msgspec.to_builtins(doc.candidates[0]), "form": 1 - first["form"]},
                            *msgspec.to_builtins(doc.candidates[1:])]), 400, "sits form"),
        (signed(log=[{**e, "detail": {"edited": True}} if e["seq"] == 1 else e for e in doc.log]), 400,
         "does not hold together"),
        (signed(ended_at=iso(started + timedelta(days=1))), 400, "outside the session's window"),
        (signed(started_at=iso(started - timedelta(days=1))), 400, "before the session starts"),
        (signed(package_id="0" * 32), 409, "package"),
        (signed(room="T9"), 400, "no theory room"),
        (signed(candidates=[{**msgspec.to_builtins(doc.candidates[0]), "answers": {"999999999": [0]}},
                            *msgspec.to_builtins(doc.candidates[1:])]), 400, "not on this candidate's paper"),
        (signed(incidents=[{"at": iso(started), "category": "99.9", "note": "", "by": "x"}]), 400, "category"),
        (signed(format="something/2"), 400, "unknown format"),
        (b"[1, 2]", 400, "expected an object"),
    ]
    for body, status, words in refusals:
        r = await api.client.post(path, content=body, headers=headers)
        assert r.status_code == status and words in r.json()["detail"], (words, r.text)

    r = await api.client.post(path, content=good, headers=headers)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["accepted"] == 2 and out["absent"] == [second["number"]] and out["incidents_added"] == 1
    results = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    theory = {x["candidate"]: x["theory"] for x in results["results"]}
    assert theory[second["number"]] is None and theory[third["number"]] == 0
    assert theory[first["number"]] == next(s["score"] for s in out["scores"] if s["candidate"] == first["number"])
    records = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/records", headers=admin)).json()
    assert [(x["category"], x["category_zh"], x["legal_hold"]) for x in records] == [
        ("response_bundle", "机考答题与考场记录", True)]
    incidents = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/incidents", headers=admin)).json()
    assert len(incidents) == 1 and incidents[0]["view"] == "station" and incidents[0]["category"] == "29.2"
    trail = (await api.client.get("/api/v1/audit", params={"entity_type": "response_bundle"},
                                  headers=admin)).json()["items"]
    assert [e["action"] for e in trail] == ["responses.bundle"]

    # the same bytes again: the first answer, nothing new; the same id with other content: refused
    r = await api.client.post(path, content=good, headers=headers)
    assert r.status_code == 200 and r.json()["already_received"] is True and r.json()["scores"] == out["scores"]
    r = await api.client.post(path, content=signed(bundle_id="a" * 32, incidents=[]), headers=headers)
    assert r.status_code == 409 and "used once" in r.json()["detail"]
    # another bundle carrying the same candidates: they were scored already
    r = await api.client.post(path, content=signed(bundle_id="c" * 32, incidents=[]), headers=headers)
    assert r.status_code == 409 and "already received" in r.json()["detail"]
    after = (await api.client.get(f"/api/v1/sessions/{exam.session_id}/results", headers=admin)).json()
    assert after == results
    assert len((await api.client.get(f"/api/v1/sessions/{exam.session_id}/incidents", headers=admin)).json()) == 1
    assert json.loads(good)["signature"]
