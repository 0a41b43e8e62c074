"""Bank health (§17(二)) over HTTP on both backends, and the same report from the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import update

from tests.qbank.helpers import Api, Bank, blueprint_body, item_body, make_bank, site_headers

PRACTICAL = {"preparation": "准备工具", "tasks": ["完成接线"], "duration_minutes": 60,
             "marking": [{"criterion": "接线正确", "points": 60}, {"criterion": "安全操作", "points": 40}]}
NEAR_A = "三相异步电动机在额定负载下启动时，下列哪一种启动方式最能有效降低启动电流对电网的冲击"
NEAR_B = "三相异步电动机在额定负载下启动时，下列哪一种启动方式最能有效降低启动电流对电网的影响"
NEAR_DRAFT = "三相异步电动机在额定负载下启动时，下列哪一种启动方式最能有效降低启动电流对电网的干扰"
# (type, stem, point, facility); points 009 are Y and 010 are Z in blueprint_body, the rest X.
APPROVED: list[tuple[str, str, str, float]] = [
    ("single_choice", NEAR_A, "001", 0.95),
    ("single_choice", NEAR_B, "001", 0.6),
    ("single_choice", "变压器的铁芯为什么用硅钢片叠成？", "001", 0.6),
    ("single_choice", "兆欧表测量绝缘电阻时摇柄的转速应为多少", "009", 0.6),
    ("single_choice", "漏电保护器的额定动作电流一般选多大", "010", 0.6),
    ("true_false", "电气设备的金属外壳必须可靠接地。", "001", 0.05),
    ("true_false", "万用表可以在带电状态下测量电阻。", "002", 0.6),
    ("multiple_choice", "下列属于基本安全用具的有哪些", "002", 0.6),
    ("practical_task", "三相电动机正反转控制线路的安装与调试", "003", 0.6),
    ("practical_task", "照明线路的安装与故障排除", "004", 0.6),
]


def body_of(bank: Bank, item_type: str, stem: str, point: str, facility: float) -> dict[str, Any]:
    over: dict[str, Any] = {"type": item_type, "point_code": point, "facility": facility}
    if item_type == "true_false":
        over.update(options=["正确", "错误"], answer=["A"])
    elif item_type == "multiple_choice":
        over.update(options=["绝缘棒", "绝缘夹钳", "绝缘手套", "安全帽"], answer=["A", "B"])
    elif item_type == "practical_task":
        over.update(options=[], answer=[], practical=PRACTICAL)
    return item_body(bank, stem, **over)


async def seed_bank(api: Api) -> tuple[Bank, dict[str, str], list[int], int]:
    """A bank with known counts; returns the bank, an author token, the approved ids and one draft id."""
    bank = await make_bank(api)
    admin = await api.admin()
    author = await api.headers("author", "健康-作者", (bank.occupation,))
    reviewer = await api.headers("reviewer", "健康-审核", (bank.occupation,))
    ids = []
    for item_type, stem, point, facility in APPROVED:
        r = await api.client.post("/api/v1/items", json=body_of(bank, item_type, stem, point, facility), headers=author)
        assert r.status_code == 201, r.text
        item_id = r.json()["id"]
        assert (await api.client.post(f"/api/v1/items/{item_id}/submit", headers=author)).status_code == 200
        assert (await api.client.post(f"/api/v1/items/{item_id}/approve", headers=reviewer)).status_code == 200
        ids.append(item_id)
    r = await api.client.post("/api/v1/items", json=body_of(bank, "single_choice", NEAR_DRAFT, "005", 0.6),
                              headers=author)
    assert r.status_code == 201, r.text
    draft = r.json()["id"]
    for name, sections in (("卷A", [("true_false", 1, 20), ("single_choice", 2, 20), ("multiple_choice", 1, 40)]),
                           ("卷B", [("single_choice", 1, 100)])):
        r = await api.client.post(f"/api/v1/occupations/{bank.occupation}/levels/{bank.level}/layouts", headers=admin,
                                  json={"name": name, "duration_minutes": 90, "sections": [
                                      {"type": t, "count": c, "points_per_item": p} for t, c, p in sections]})
        assert r.status_code == 201, r.text
    from qbank.items.models import Item

    async with api.db() as db, db.begin():
        await db.execute(update(Item).where(Item.id == ids[2]).values(times_used=5))
        await db.execute(update(Item).where(Item.id == ids[5]).values(times_used=2))
    return bank, author, ids, draft


async def test_bank_health_exact_figures(api: Api) -> None:
    bank, author, ids, draft = await seed_bank(api)
    url = f"/api/v1/banks/{bank.occupation}/{bank.level}/health"
    r = await api.client.get(url, headers=author)
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["theory_items"] == {"required": 1200, "approved": 8, "met": False, "shortfall": 1192}
    assert h["practical_papers"] == {"required": 10, "approved": 2, "met": False, "shortfall": 8}
    assert h["meets_minimums"] is False
    assert h["approved_by_type"] == {"true_false": 2, "single_choice": 5, "multiple_choice": 1, "practical_task": 2}

    points = h["points"]
    assert points["points"] == 12 and points["outside_blueprint"] == 0
    per_point = {p["code"]: p["items"] for p in points["per_point"]}
    assert per_point == {"001": 4, "002": 2, "003": 0, "004": 0, "005": 0, "006": 0, "007": 0, "008": 0,
                         "009": 1, "010": 1, "011": 0, "012": 0}  # practical tasks and the draft do not count
    assert points["without_items"] == ["003", "004", "005", "006", "007", "008", "011", "012"]
    # 003 and 004 hold an approved practical task each: counted apart, and said so
    assert points["practical_only"] == ["003", "004"]
    practical = {p["code"]: p["practical_tasks"] for p in points["per_point"]}
    assert practical == {f"{i:03d}": 1 if i in (3, 4) else 0 for i in range(1, 13)}
    assert "theory items" in points["note"] and "practical_only" in points["note"]
    assert points["under_minimum"] == [f"{i:03d}" for i in range(2, 13)]

    (lay_a, lay_b) = h["supply"]
    assert lay_a["name"] == "卷A" and lay_a["papers"] == 1 and lay_a["binding_type"] == "multiple_choice"
    assert [(s["type"], s["per_paper"], s["approved"], s["papers"]) for s in lay_a["sections"]] == [
        ("true_false", 1, 2, 2), ("single_choice", 2, 5, 2), ("multiple_choice", 1, 1, 1)]
    assert lay_b["papers"] == 5 and lay_b["binding_type"] == "single_choice"

    assert h["importance"]["counts"] == {"X": 6, "Y": 1, "Z": 1}
    assert h["importance"]["percent"] == {"X": 75.0, "Y": 12.5, "Z": 12.5}
    assert h["importance"]["within_rules"] is False
    assert h["facility"]["counts"] == [1, 0, 0, 0, 0, 0, 6, 0, 0, 1]
    assert h["facility"]["edges"][0] == 0.0 and h["facility"]["edges"][-1] == 1.0
    assert h["facility"]["mean"] == 0.575
    assert h["near_duplicates"] == [{"a": ids[0], "b": ids[1]}]  # the draft's marks are left out
    assert h["usage"]["never_used"] == 8 and draft not in h["usage"]["never_used_ids"]
    assert h["usage"]["most_used"] == [{"item_id": ids[2], "times_used": 5}, {"item_id": ids[5], "times_used": 2}]

    only_b = await api.client.get(url, params={"layout_id": lay_b["layout_id"]}, headers=author)
    assert [s["name"] for s in only_b.json()["supply"]] == ["卷B"]
    r = await api.client.get(url, params={"layout_id": 10**9}, headers=author)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_bank_health_empty_bank_and_errors(api: Api) -> None:
    bank = await make_bank(api)
    admin = await api.admin()
    r = await api.client.get(f"/api/v1/banks/{bank.occupation}/{bank.level}/health", headers=admin)
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["theory_items"]["approved"] == 0 and h["facility"]["mean"] is None and h["supply"] == []
    assert h["importance"]["percent"] == {"X": 0.0, "Y": 0.0, "Z": 0.0} and len(h["points"]["without_items"]) == 12

    r = await api.client.get(f"/api/v1/banks/9-99-99-99/{bank.level}/health", headers=admin)
    assert r.status_code == 404 and "9-99-99-99" in r.json()["detail"]
    other = await api.headers("author", "别的工种", ("1-01-01-01",))
    r = await api.client.get(f"/api/v1/banks/{bank.occupation}/{bank.level}/health", headers=other)
    assert r.status_code == 403 and bank.occupation in r.json()["detail"]
    site = await site_headers(api)
    assert (await api.client.get(f"/api/v1/banks/{bank.occupation}/3/health", headers=site)).status_code == 403
    r = await api.client.get(f"/api/v1/banks/{bank.occupation}/9/health", headers=admin)
    assert r.status_code == 400


def test_cli_prints_bank_health(tmp_path: Path, s3_server: Any) -> None:
    from qbank.blueprints.schemas import BlueprintIn, LayoutIn, OccupationIn
    from qbank.blueprints.services import create_blueprint, create_layout, create_occupation
    from qbank.db import create_engine, upgrade
    from qbank.items.models import Item
    from qbank.items.schemas import ItemIn
    from qbank.items.services import add_item
    from qbank.lib.actors import Actor, Role
    from qbank.server.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"QBANK_DATABASE_URL": url, "QBANK_DATA_DIR": str(tmp_path / "data"), "QBANK_S3_ENDPOINT": s3_server.endpoint,
           "QBANK_S3_ACCESS_KEY": s3_server.access_key, "QBANK_S3_SECRET_KEY": s3_server.secret_key,
           "QBANK_TOKEN_SECRET": "cli-test-secret"}
    upgrade(url)
    bank = Bank(occupation="6-31-01-03", level=3, points=[f"{i + 1:03d}" for i in range(12)])
    writer = Actor(token_id=1, name="writer", role=Role.admin)

    async def seed() -> None:
        import msgspec

        engine = create_engine(url)
        try:
            async with engine.connect() as conn, conn.begin():
                from sqlalchemy.ext.asyncio import AsyncSession

                db = AsyncSession(bind=conn, expire_on_commit=False)
                await create_occupation(db, OccupationIn(code=bank.occupation, name="电工", levels=[3]))
                await create_blueprint(db, writer, bank.occupation, 3, msgspec.convert(blueprint_body(), BlueprintIn))
                await create_layout(db, writer, bank.occupation, 3, msgspec.convert(
                    {"name": "卷A", "duration_minutes": 90, "sections": [
                        {"type": "single_choice", "count": 2, "points_per_item": 50}]}, LayoutIn))
                for item_type, stem, point, facility in APPROVED[2:6]:
                    item, _ = await add_item(db, writer, msgspec.convert(
                        body_of(bank, item_type, stem, point, facility), ItemIn))
                    item.status = "approved"
                await db.flush()
                await db.execute(update(Item).values(times_used=3).where(Item.stem == APPROVED[2][1]))
        finally:
            await engine.dispose()

    asyncio.run(seed())
    runner = CliRunner()
    result = runner.invoke(main, ["bank", "health", "--occupation", bank.occupation, "--level", "3"], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Bank health: occupation 6-31-01-03, level 3" in out
    assert "theory items" in out and "1200" in out and "not met" in out and "1196" in out
    assert "卷A" in out and "binding: single_choice" in out
    assert "Never used: 3 item(s)" in out and "(3×)" in out

    result = runner.invoke(main, ["bank", "health", "--occupation", bank.occupation, "--level", "3", "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["approved_by_type"]["single_choice"] == 3 and report["supply"][0]["papers"] == 1

    result = runner.invoke(main, ["bank", "health", "--occupation", "9-99-99-99", "--level", "3"], env=env)
    assert result.exit_code != 0 and "9-99-99-99 does not exist" in result.output
