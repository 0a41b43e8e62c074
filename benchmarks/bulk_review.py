"""Benchmark: submit and approve N items in one request each (POST /api/v1/items/review) against one request per
item (POST /api/v1/items/{id}/submit, then …/approve), in the same run on the same server.

A fresh database (SQLite in a temporary directory unless --database-url) gets one occupation, a blueprint and
2 × N draft items written by a third person (two sets: one per way, so neither finds the other's work done);
then `qbank serve` on a free loopback port. The baseline submits every item of set A with one request each
(an admin token), then approves each (another admin token: four eyes); the bulk way submits set B with one
request and approves it with one. Prints wall times, items/s and the ratios; the server is stopped by its pid.

    python benchmarks/bulk_review.py --items 2220
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from import_xlsx import LEVEL, OCCUPATION, POOL, prepare_database
from serving import ROOT, start_qbank, stop

sys.path.insert(0, str(ROOT / "src"))


async def write_drafts(url: str, items: int, points: int, seed: int) -> list[list[int]]:
    """Two sets of ``items`` draft items (single choice, distinct stems), written by a third person."""
    import msgspec
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from qbank.blueprints.services import point_index
    from qbank.db import create_engine
    from qbank.items.schemas import ItemIn
    from qbank.items.services import add_item
    from qbank.lib.actors import Actor, Role

    rng = random.Random(seed)
    writer = Actor(token_id=10**6, name="命题人", role=Role.author, occupations=(OCCUPATION,))
    engine = create_engine(url)
    sets: list[list[int]] = []
    async with async_sessionmaker(engine, expire_on_commit=False)() as db, db.begin():
        index = await point_index(db, OCCUPATION, LEVEL)
        for _ in range(2):
            ids = []
            for i in range(items):
                data = msgspec.convert({
                    "occupation_code": OCCUPATION, "level": LEVEL, "type": "single_choice",
                    "stem": "".join(rng.choices(POOL, k=30)) + "（ ）。",
                    "options": ["".join(rng.choices(POOL, k=6)) for _ in range(4)], "answer": ["A"],
                    "point_code": f"{i % points + 1:03d}"}, ItemIn)
                item, _ = await add_item(db, writer, data, index, batch_checked=True)
                ids.append(item.id)
            sets.append(ids)
    await engine.dispose()
    return sets


def qbank(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "qbank", *args], env=env, check=True, capture_output=True,
                          text=True, cwd=ROOT).stdout.strip()


def one_by_one(c: httpx.Client, ids: list[int], action: str, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    for i in ids:
        r = c.post(f"/api/v1/items/{i}/{action}", headers=headers)
        if r.status_code != 200:
            raise SystemExit(f"{action} item {i}: {r.status_code} {r.text[:300]}")
    return time.perf_counter() - t0


def in_bulk(c: httpx.Client, ids: list[int], action: str, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = c.post("/api/v1/items/review", json={"action": action, "ids": ids}, headers=headers)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200 or r.json()["changed"] != len(ids):
        raise SystemExit(f"bulk {action}: {r.status_code} {r.text[:300]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=2220, help="items per set (default 2220)")
    ap.add_argument("--points", type=int, default=300)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--database-url", default="", help="an empty, migratable database, e.g. "
                    "postgresql+asyncpg://root@127.0.0.1:5432/DB; default: SQLite in the temporary directory")
    args = ap.parse_args()

    from qbank.db import upgrade

    with tempfile.TemporaryDirectory(prefix="qbank-bulk-review-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'qbank.db'}"
        env = {**os.environ, "QBANK_DATABASE_URL": url, "QBANK_DATA_DIR": tmp, "QBANK_TOKEN_SECRET": "bench",
               "QBANK_LOG_LEVEL": "WARNING", "QBANK_S3_ENDPOINT": ""}
        upgrade(url)
        asyncio.run(prepare_database(url, args.points))
        t0 = time.perf_counter()
        one_set, bulk_set = asyncio.run(write_drafts(url, args.items, args.points, args.seed))
        seed_s = time.perf_counter() - t0
        submitter, approver = ({"Authorization": "Bearer " + qbank(
            "token", "create", "--role", "admin", "--name", name, env=env).splitlines()[-1]}
            for name in ("bench-submitter", "bench-approver"))
        proc, base = start_qbank(env)
        try:
            with httpx.Client(base_url=base, timeout=300) as c:
                base_submit = one_by_one(c, one_set, "submit", submitter)
                base_approve = one_by_one(c, one_set, "approve", approver)
                bulk_submit = in_bulk(c, bulk_set, "submit", submitter)
                bulk_approve = in_bulk(c, bulk_set, "approve", approver)
        finally:
            stop(proc)
    n = args.items
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, {backend}; "
          f"load average {os.getloadavg()[0]:.1f}; {n} items per set (seeded in {seed_s:.1f} s)")
    print(f"{'':<34}{'submit':>10}{'approve':>10}{'both':>10}{'items/s':>10}")
    for label, s, a in (("one request per item (baseline)", base_submit, base_approve),
                        ("one request per action (bulk)", bulk_submit, bulk_approve)):
        print(f"{label:<34}{s:>9.2f}s{a:>9.2f}s{s + a:>9.2f}s{2 * n / (s + a):>10,.0f}")
    print(f"ratio baseline / bulk: submit {base_submit / bulk_submit:.1f}x, "
          f"approve {base_approve / bulk_approve:.1f}x, "
          f"both {(base_submit + base_approve) / (bulk_submit + bulk_approve):.1f}x")
    print(f"reproduce: python benchmarks/bulk_review.py --items {n}"
          + (" --database-url …" if args.database_url else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
