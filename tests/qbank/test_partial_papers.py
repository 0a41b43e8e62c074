"""Only a complete paper is a paper: partial and failed runs through the service, continuing and discarding them,
and every later step (seal, package, release, responses) refusing what is not complete with a 409 that says why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import func, select

from tests.qbank.helpers import (
    TYPES,
    Api,
    Exam,
    add_approved_items,
    assemble,
    audit_count,
    make_exam,
    make_paper_bank,
    site_headers,
    time_travel,
    wait_job,
)

# 8 candidates on a 140-item bank: any two forms sharing at most 20 items, only about 4 forms fit
SHORT = {"mode": "per_candidate", "max_shared": 20, "forms": None}


async def partial_paper(api: Api) -> tuple[Exam, int, dict[str, Any]]:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=4)
    job = await assemble(api, exam, layout_id, **SHORT)
    assert job["status"] == "failed" and job["error"].get("paper_status") == "partial", job["error"]
    return exam, layout_id, job


async def failed_paper(api: Api) -> tuple[Exam, int, dict[str, Any]]:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=4)
    job = await assemble(api, exam, layout_id, mode="per_candidate", max_shared=0, forms=None)
    assert job["status"] == "failed" and "paper_status" not in job["error"], job
    return exam, layout_id, job


async def later_steps_refused(api: Api, exam: Exam, why: str) -> None:
    """Seal, package, release and responses each answer 409 naming ``why``; nothing is sealed."""
    admin = await api.admin()
    sid = exam.session_id
    r = await api.client.post(f"/api/v1/sessions/{sid}/seal", headers=admin)
    assert r.status_code == 409 and why in r.json()["detail"], r.text
    site = exam.sites[0]
    mine = await site_headers(api, site)
    await time_travel(api, sid, timedelta(minutes=-5))  # the window is open: only the paper is in the way
    for r in (await api.client.get(f"/api/v1/sessions/{sid}/package", headers=mine),
              await api.client.get(f"/api/v1/sessions/{sid}/release", headers=mine),
              await api.client.post(f"/api/v1/sessions/{sid}/responses", headers=mine, json={"responses": [
                  {"candidate": next(c for c, s in exam.candidates.items() if s == site), "answers": {}}]})):
        assert r.status_code == 409, r.text
        assert "not sealed" in r.json()["detail"] and why in r.json()["detail"], r.text
    from qbank.papers.models import SealedPaper

    async with api.db() as db:
        assert await db.scalar(select(func.count()).select_from(SealedPaper).where(
            SealedPaper.session_id == sid)) == 0


async def test_a_run_that_ends_short_is_a_partial_paper_not_a_paper(api: Api) -> None:
    exam, _, job = await partial_paper(api)
    admin = await api.admin()
    sid = exam.session_id
    short = job["error"]["shortfall"]
    assert short["reason"] == "infeasible" and short["requested"] == 8 and 0 < short["made"] < 8
    assert "不是一套完整的试卷" in short["message_zh"]
    # the job's parameters are the request as sent: no number of forms for a per-candidate request
    assert job["params"]["request"]["forms"] is None
    r = await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["paper_status"] == "partial" and body["forms_made"] == short["made"]
    assert body["shortfall"]["missing"] == short["missing"] and "continue" in body["detail"]
    paper_id = body["paper_id"]
    r = await api.client.get(f"/api/v1/sessions/{sid}/papers/{paper_id}", headers=admin)
    assert r.status_code == 200, r.text
    paper = r.json()
    assert paper["status"] == "partial" and len(paper["forms"]) == short["made"]
    assert paper["assignments"] == []  # no candidate sits a form of a partial paper
    assert paper["shortfall"]["reason"] == "infeasible"
    assert await audit_count(api, "paper.assemble_partial", paper_id) == 1
    assert await audit_count(api, "paper.assemble", paper_id) == 0
    await later_steps_refused(api, exam, f"paper {paper_id} is partial")


async def test_a_failed_paper_refuses_every_later_step(api: Api) -> None:
    exam, _, job = await failed_paper(api)
    paper_id = job["error"]["paper_id"]
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=await api.admin())
    assert r.status_code == 422 and r.json()["paper_status"] == "failed", r.text
    await later_steps_refused(api, exam, f"paper {paper_id} failed")
    # nothing to continue
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers/{paper_id}/continue",
                              headers=await api.admin(), json={"time_limit_s": 5})
    assert r.status_code == 409 and "only a partial paper" in r.json()["detail"], r.text


async def test_a_discarded_paper_refuses_every_later_step(api: Api) -> None:
    exam, _, job = await partial_paper(api)
    admin = await api.admin()
    paper_id = job["error"]["paper_id"]
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers/{paper_id}/discard", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "discarded", r.text
    assert await audit_count(api, "paper.discard", paper_id) == 1
    r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/papers", headers=admin)
    assert r.status_code == 404, r.text
    await later_steps_refused(api, exam, f"paper {paper_id} was discarded")
    for action in ("continue", "discard"):  # nothing more to do with it
        r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers/{paper_id}/{action}", headers=admin)
        assert r.status_code == 409, r.text


async def test_continuing_a_partial_paper_keeps_its_forms_and_completes_it(api: Api) -> None:
    exam, _, job = await partial_paper(api)
    admin = await api.admin()
    sid = exam.session_id
    paper_id = job["error"]["paper_id"]
    before = (await api.client.get(f"/api/v1/sessions/{sid}/papers/{paper_id}", headers=admin)).json()
    # more approved items: now every form fits
    from qbank.sessions.models import ExamSession

    async with api.db() as db:
        session = await db.get(ExamSession, sid)
        assert session is not None
        code = session.occupation_code
    await add_approved_items(api, code, types=TYPES * 2, batch="第二批")
    r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{paper_id}/continue", headers=admin,
                              json={"time_limit_s": 30})
    assert r.status_code == 202, r.text
    assert r.json()["params"] == {"session_id": sid, "paper_id": paper_id, "request": {"time_limit_s": 30.0}}
    # the same paper is being continued: a second request waits its turn
    again = await api.client.post(f"/api/v1/sessions/{sid}/papers/{paper_id}/continue", headers=admin)
    assert again.status_code in (202, 409), again.text
    done = await wait_job(api, r.json()["id"])
    if again.status_code == 202:
        await wait_job(api, again.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["paper_id"] == paper_id and done["result"]["continued_from"] == len(before["forms"])
    r = await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)
    assert r.status_code == 200, r.text
    paper = r.json()
    assert paper["id"] == paper_id and paper["status"] == "assembled" and len(paper["forms"]) == 8
    for old, new in zip(before["forms"], paper["forms"], strict=False):  # the forms made are kept
        assert sorted(old["version_ids"]) == sorted(new["version_ids"])
    assert len({a["form"] for a in paper["assignments"]}) == 8 and paper["shortfall"] is None
    # each question is named by item id and version number, and that version can be read
    question = paper["forms"][0]["items"][0]
    assert question["version_id"] == paper["forms"][0]["version_ids"][0]
    r = await api.client.get(f"/api/v1/items/{question['item_id']}/versions/{question['version']}", headers=admin)
    assert r.status_code == 200 and (r.json()["item_id"], r.json()["version"]) == (question["item_id"], 1)
    # a complete paper: nothing to continue, nothing to discard
    r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{paper_id}/continue", headers=admin)
    assert r.status_code == 409 and "nothing to continue" in r.json()["detail"], r.text
    r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{paper_id}/discard", headers=admin)
    assert r.status_code == 409, r.text
    assert (await api.client.post(f"/api/v1/sessions/{sid}/seal", headers=admin)).status_code == 200


async def test_unknown_paper_and_another_sessions_paper(api: Api) -> None:
    exam, _, job = await partial_paper(api)
    bank, _ = await make_paper_bank(api)
    other = await make_exam(api, bank, per_site=1, n_sites=1, register_keys=False)
    admin = await api.admin()
    paper_id = job["error"]["paper_id"]
    for sid, pid in ((other.session_id, paper_id), (exam.session_id, 10**9)):
        for action in ("continue", "discard"):
            r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{pid}/{action}", headers=admin)
            assert r.status_code == 404, r.text
        assert (await api.client.get(f"/api/v1/sessions/{sid}/papers/{pid}", headers=admin)).status_code == 404
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers/{paper_id}/continue", headers=admin,
                              json={"time_limit_s": 0})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("forms", [9, 7])
async def test_per_candidate_forms_other_than_the_candidates_are_refused(api: Api, forms: int) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=4, register_keys=False)  # 8 candidates
    admin = await api.admin()
    body = {"layout_id": layout_id, "mode": "per_candidate", "forms": forms, "time_limit_s": 5}
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "forms" and "8 candidates" in r.json()["detail"]
    assert await audit_count(api, "paper.assemble_requested", exam.session_id) == 0
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/papers", headers=admin,
                              json={"layout_id": layout_id, "mode": "parallel", "forms": 51})
    assert r.status_code == 400, r.text


async def test_the_openapi_documents_the_explanation_rows_and_the_paper_states(api: Api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    row = schemas["ExplanationRowOut"]
    assert {"message_en", "message_zh", "demand", "supply", "unit"} <= set(row["properties"])
    assert "score_points" in row["properties"]["unit"]["description"]
    problem = schemas["AssemblyProblem"]
    rows_doc = problem["properties"]["explanation"]["description"]
    assert "score points" in rows_doc and "鉴定点" in rows_doc and "appraisal points" in rows_doc
    assert {"explanation", "shortfall", "paper_status", "forms_made"} <= set(problem["properties"])
    read = doc["paths"]["/api/v1/sessions/{session_id}/papers"]["get"]
    assert "AssemblyProblem" in str(read["responses"]["422"])
    assert "partial" in read["description"]
    for action in ("continue", "discard"):
        assert f"/api/v1/sessions/{{session_id}}/papers/{{paper_id}}/{action}" in doc["paths"]


async def test_discarding_a_failed_attempt_brings_back_the_assembled_paper(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=2)
    admin = await api.admin()
    sid = exam.session_id
    first = await assemble(api, exam, layout_id, forms=1)
    assert first["status"] == "succeeded", first
    again = await assemble(api, exam, layout_id, mode="per_candidate", max_shared=0)
    assert again["status"] == "failed", again
    failed_id = again["error"]["paper_id"]
    r = await api.client.post(f"/api/v1/sessions/{sid}/seal", headers=admin)  # the latest attempt is in force
    assert r.status_code == 409 and f"paper {failed_id} failed" in r.json()["detail"], r.text
    r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{failed_id}/discard", headers=admin)
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)
    assert r.status_code == 200 and r.json()["id"] == first["result"]["paper_id"], r.text
    r = await api.client.post(f"/api/v1/sessions/{sid}/seal", headers=admin)
    assert r.status_code == 200 and r.json()["paper_id"] == first["result"]["paper_id"], r.text
    # a sealed paper cannot be discarded, nor assembled again
    r = await api.client.post(f"/api/v1/sessions/{sid}/papers/{first['result']['paper_id']}/discard", headers=admin)
    assert r.status_code == 409, r.text


def cli(api: Api, *args: str) -> Any:
    """`qbank …` on the service's database (in a thread: the CLI runs its own event loop)."""
    from click.testing import CliRunner

    from qbank.server.cli import main

    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_TOKEN_SECRET": "test-token-secret"}
    return anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, list(args), env=env))


async def test_the_cli_says_a_paper_is_partial_and_continues_it(api: Api) -> None:
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank, per_site=4)
    sid = exam.session_id
    result = await cli(api, "papers", "assemble", str(sid), "--layout", str(layout_id), "--mode", "per_candidate",
                       "--max-shared", "20", "--time-limit", "10")
    assert result.exit_code == 1, result.output
    assert "partial paper" in result.output and f"qbank papers continue {sid} " in result.output
    admin = await api.admin()
    paper_id = (await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)).json()["paper_id"]
    await add_approved_items(api, bank.occupation, types=TYPES * 2, batch="第二批")
    result = await cli(api, "papers", "continue", str(sid), str(paper_id), "--time-limit", "30")
    assert result.exit_code == 0, result.output
    assert f"paper {paper_id}: 8 form(s)" in result.output
    r = await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "assembled", r.text
    # a complete paper is not set aside
    result = await cli(api, "papers", "discard", str(sid), str(paper_id))
    assert result.exit_code != 0 and "only a partial or failed paper" in result.output, result.output
    assert (await api.client.get(f"/api/v1/sessions/{sid}/papers", headers=admin)).json()["status"] == "assembled"


async def test_the_cli_discards_a_partial_paper(api: Api) -> None:
    exam, _, job = await partial_paper(api)
    paper_id = job["error"]["paper_id"]
    result = await cli(api, "papers", "discard", str(exam.session_id), str(paper_id))
    assert result.exit_code == 0 and f"paper {paper_id} of session {exam.session_id}: discarded" in result.output
    assert await audit_count(api, "paper.discard", paper_id) == 1
    result = await cli(api, "papers", "continue", str(exam.session_id), str(paper_id))
    assert result.exit_code != 0 and "only a partial paper can be continued" in result.output, result.output
