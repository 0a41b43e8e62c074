"""Bulk review over HTTP and the CLI: many items submitted, approved or rejected in one request, each checked by
the single-item rules (status, occupation, four eyes), one trail entry per item, all or nothing by default."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from click.testing import CliRunner

from qbank.server.cli import main
from tests.qbank.helpers import Api, Bank, audit_count, item_body, make_bank

URL = "/api/v1/items/review"


async def write(api: Api, bank: Bank, headers: dict[str, str], n: int, tag: str) -> list[int]:
    ids = []
    for k in range(n):
        r = await api.client.post("/api/v1/items", json=item_body(bank, f"{tag} 第{k}题：电流的单位是？"),
                                  headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def statuses(api: Api, ids: list[int]) -> list[str]:
    admin = await api.admin()
    return [(await api.client.get(f"/api/v1/items/{i}", headers=admin)).json()["status"] for i in ids]


async def test_submit_by_ids_and_approve_by_filter(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "张老师", (bank.occupation,))
    reviewer = await api.headers("reviewer", "李老师", (bank.occupation,))
    ids = await write(api, bank, author, 5, "批量")
    r = await api.client.post(URL, json={"action": "submit", "ids": ids}, headers=author)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["matched"], out["changed"], out["refused"]) == (5, 5, 0)
    assert [x["id"] for x in out["results"]] == ids and all(x["status"] == "in_review" for x in out["results"])
    r = await api.client.post(URL, headers=reviewer, json={
        "action": "approve", "filter": {"occupation": bank.occupation, "level": 3}})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 5 and await statuses(api, ids) == ["approved"] * 5
    for i in ids:  # one trail entry per item, as the single endpoints write
        assert await audit_count(api, "item.submit", i) == 1 and await audit_count(api, "item.approve", i) == 1
    item = (await api.client.get(f"/api/v1/items/{ids[0]}", headers=reviewer)).json()
    assert item["reviewer"] == "李老师"
    # nothing left in review: the filter finds nothing, and nothing changes
    r = await api.client.post(URL, headers=reviewer, json={"action": "approve",
                                                           "filter": {"occupation": bank.occupation}})
    assert r.status_code == 200 and r.json()["matched"] == 0


async def bad_batch(api: Api) -> tuple[Bank, dict[str, str], list[int], dict[str, int]]:
    """Items in review written by someone else, plus: one still a draft, one the reviewer wrote (a reviewer who
    edited it), one of another occupation, one that does not exist."""
    bank, other = await make_bank(api), await make_bank(api)
    author = await api.headers("author", "张老师", (bank.occupation, other.occupation))
    good = await write(api, bank, author, 3, "好题")
    [draft] = await write(api, bank, author, 1, "草稿")
    [own] = await write(api, bank, author, 1, "自己改过")
    [foreign] = await write(api, other, author, 1, "别的工种")
    r = await api.client.patch(f"/api/v1/items/{own}", json={"facility": 0.5}, headers=await api.admin())
    admin_token = r.request.headers["Authorization"]
    assert r.status_code == 200, r.text
    r = await api.client.post(URL, json={"action": "submit", "ids": [*good, own, foreign]}, headers=author)
    assert r.status_code == 200, r.text
    bad = {"draft": draft, "own": own, "foreign": foreign, "missing": 2**31 - 1}
    return bank, {"Authorization": admin_token}, good, bad


async def test_all_or_nothing_refuses_the_whole_batch(api: Api) -> None:
    bank, admin_editor, good, bad = await bad_batch(api)
    before = await audit_count(api, "item.approve")
    # the admin who edited item `own` approves: four eyes refuses that one, and the draft and the missing one
    # (an admin is not scoped to occupations: the other occupation's item passes)
    ids = [*good, *bad.values()]
    r = await api.client.post(URL, json={"action": "approve", "ids": ids}, headers=admin_editor)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert "3 of 7 items cannot be approved; nothing was changed" in problem["detail"]
    why = {x["id"]: x for x in problem["results"]}
    assert [why[i]["ok"] for i in [*good, bad["foreign"]]] == [True] * 4
    assert "draft; approve needs it to be in_review" in why[bad["draft"]]["reason"]
    assert "may not approve" in why[bad["own"]]["reason"]
    assert why[bad["missing"]]["reason"] == f"item {bad['missing']} does not exist"
    assert {e["field"] for e in problem["errors"]} == {f"items.{i}" for i in bad.values() if i != bad["foreign"]}
    assert await statuses(api, good) == ["in_review"] * 3  # nothing changed
    assert await audit_count(api, "item.approve") == before
    # a reviewer scoped to one occupation: the other occupation's item is refused for that reason
    reviewer = await api.headers("reviewer", "李老师", (bank.occupation,))
    r = await api.client.post(URL, json={"action": "approve", "ids": [*good, bad["foreign"]]}, headers=reviewer)
    assert r.status_code == 409, r.text
    foreign = next(x for x in r.json()["results"] if x["id"] == bad["foreign"])
    assert "not scoped to occupation" in foreign["reason"]
    assert await statuses(api, good) == ["in_review"] * 3


async def test_per_item_changes_those_that_pass(api: Api) -> None:
    bank, admin_editor, good, bad = await bad_batch(api)
    ids = [*good, *bad.values()]
    r = await api.client.post(URL, json={"action": "approve", "ids": ids, "mode": "per_item"}, headers=admin_editor)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["matched"], out["changed"], out["refused"]) == (7, 4, 3)  # `foreign` passes for an admin
    assert await statuses(api, [*good, bad["foreign"]]) == ["approved"] * 4
    assert await statuses(api, [bad["draft"], bad["own"]]) == ["draft", "in_review"]
    refused = {x["id"]: x["reason"] for x in out["results"] if not x["ok"]}
    assert set(refused) == {bad["draft"], bad["own"], bad["missing"]}
    for i in good:
        assert await audit_count(api, "item.approve", i) == 1
    assert await audit_count(api, "item.approve", bad["own"]) == 0
    # reject the one left in review, with a reason
    reviewer = await api.headers("reviewer", "李老师", (bank.occupation,))
    r = await api.client.post(URL, json={"action": "reject", "ids": [bad["own"]], "reason": "答案有误"},
                              headers=reviewer)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "draft", r.text
    item = (await api.client.get(f"/api/v1/items/{bad['own']}", headers=reviewer)).json()
    assert item["reject_reason"] == "答案有误"


async def test_bad_bulk_requests(api: Api) -> None:
    bank, other = await make_bank(api), await make_bank(api)
    author = await api.headers("author", "张老师", (bank.occupation,))
    reviewer = await api.headers("reviewer", "李老师", (bank.occupation,))
    ids = await write(api, bank, author, 2, "坏请求")
    cases: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
        (reviewer, {"action": "approve"}, 400, "ids"),
        (reviewer, {"action": "approve", "ids": ids, "filter": {"level": 3}}, 400, "ids"),
        (reviewer, {"action": "approve", "ids": []}, 400, "ids"),
        (reviewer, {"action": "approve", "ids": [ids[0], ids[0]]}, 400, "ids"),
        (reviewer, {"action": "approve", "ids": [2**31]}, 400, "ids"),
        (reviewer, {"action": "reject", "ids": ids}, 400, "reason"),
        (reviewer, {"action": "retire", "ids": ids}, 400, "action"),
        (reviewer, {"action": "approve", "ids": ids, "mode": "sometimes"}, 400, "mode"),
        (reviewer, {"action": "approve", "filter": {"colour": "red"}}, 400, "filter"),
        (author, {"action": "approve", "ids": ids}, 403, ""),
        (reviewer, {"action": "submit", "ids": ids}, 403, ""),
        (reviewer, {"action": "approve", "filter": {"occupation": other.occupation}}, 403, ""),
    ]
    before = await audit_count(api, "item.approve")
    for headers, body, status, field in cases:
        r = await api.client.post(URL, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if field:
            assert any(e["field"].startswith(field) for e in r.json()["errors"]), (body, r.text)
    assert await statuses(api, ids) == ["draft", "draft"]
    assert await audit_count(api, "item.approve") == before


async def test_cli_approves_by_filter_with_a_progress_bar(api: Api) -> None:
    bank = await make_bank(api)
    author = await api.headers("author", "张老师", (bank.occupation,))
    ids = await write(api, bank, author, 4, "命令行")
    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_TOKEN_SECRET": "test-token-secret"}
    author_token = author["Authorization"].removeprefix("Bearer ")
    reviewer_token = await api.token("reviewer", "李老师", (bank.occupation,))

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, ["items", *args], env=env)

    result = await anyio.to_thread.run_sync(lambda: cli("submit", "--ids", ",".join(map(str, ids)),
                                                        "--token", author_token))
    assert result.exit_code == 0 and "4 of 4 item(s) changed" in result.output, result.output
    # the author may not approve (role), nor may anyone without a valid token
    result = await anyio.to_thread.run_sync(lambda: cli("approve", "--filter", f"occupation={bank.occupation}",
                                                        "--token", author_token))
    assert result.exit_code != 0 and "may not approve" in result.output, result.output
    result = await anyio.to_thread.run_sync(lambda: cli("approve", "--filter", "colour=red", "--token", "x"))
    assert result.exit_code == 2 and "KEY=VALUE" in result.output, result.output
    result = await anyio.to_thread.run_sync(lambda: cli("approve", "--filter", f"occupation={bank.occupation}",
                                                        "--filter", "level=3", "--token", reviewer_token))
    assert result.exit_code == 0 and "4 of 4 item(s) changed" in result.output, result.output
    assert await statuses(api, ids) == ["approved"] * 4
    for i in ids:
        assert await audit_count(api, "item.approve", i) == 1
