"""Benchmark: import N items from one xlsx through the CLI (`qbank import`), against a bare openpyxl read.

A fresh SQLite database in a temporary directory gets one occupation and a blueprint with --points appraisal
points; a generated xlsx (the item writers' template, distinct stems, 20 % true/false, 70 % single, 10 %
multiple choice) is imported by a `qbank import` subprocess. The baseline is openpyxl reading the same file
in read-only mode and iterating every row, in the same run. Prints absolute figures and the ratio.

    python benchmarks/import_xlsx.py --items 10000
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OCCUPATION = "6-31-01-03"
LEVEL = 3
# A wide pool of common characters, so that stems are distinct and not near duplicates of one another.
POOL = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def blueprint(points: int) -> dict[str, Any]:
    """Ten top scopes of 10 % each, the points spread evenly; 85 % X, 10 % Y, 5 % Z."""
    scopes = []
    for s in range(10):
        codes = [p for p in range(points) if p % 10 == s]
        scopes.append({"code": f"{s + 1:02d}", "name": f"范围{s + 1}", "weight": 10, "points": [
            {"code": f"{p + 1:03d}", "name": f"鉴定点{p + 1}",
             "importance": "X" if p % 20 < 17 else "Y" if p % 20 < 19 else "Z"} for p in codes]})
    return {"scopes": scopes}


async def prepare_database(url: str, points: int) -> None:
    import msgspec
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from qbank.blueprints.schemas import BlueprintIn, OccupationIn
    from qbank.blueprints.services import create_blueprint, create_occupation
    from qbank.db import create_engine
    from qbank.lib.actors import Actor, Role

    engine = create_engine(url)
    actor = Actor(token_id=0, name="bench", role=Role.admin)
    async with async_sessionmaker(engine)() as db, db.begin():
        await create_occupation(db, OccupationIn(code=OCCUPATION, name="维修电工", levels=[5, 4, 3, 2, 1]))
        await create_blueprint(db, actor, OCCUPATION, LEVEL, msgspec.convert(blueprint(points), BlueprintIn))
    await engine.dispose()


def write_items(path: Path, items: int, points: int, seed: int) -> None:
    from openpyxl import Workbook

    from qbank.imports.excel import COLUMNS

    rng = random.Random(seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("items")
    keys = [k for k, _ in COLUMNS]
    ws.append([f"{chinese}/{key}" for key, chinese in COLUMNS])
    for i in range(items):
        kind = "true_false" if i % 10 < 2 else "single_choice" if i % 10 < 9 else "multiple_choice"
        stem = "".join(rng.choices(POOL, k=rng.randint(18, 40))) + "（ ）。"
        row: dict[str, Any] = {"type": kind, "stem": stem, "point_code": f"{i % points + 1:03d}",
                               "facility": round(rng.uniform(0.3, 0.9), 2), "difficulty": "中等",
                               "explanation": "".join(rng.choices(POOL, k=20)), "tags": "基础"}
        if kind == "true_false":
            row.update(option_A="正确", option_B="错误", answer=rng.choice("AB"))
        else:
            for label in "ABCD":
                row[f"option_{label}"] = "".join(rng.choices(POOL, k=6))
            row["answer"] = rng.choice("ABCD") if kind == "single_choice" else "".join(sorted(rng.sample("ABCD", 2)))
        ws.append([row.get(k) for k in keys])
    wb.save(path)


def bare_read(path: Path) -> tuple[float, int]:
    from openpyxl import load_workbook

    start = time.perf_counter()
    wb = load_workbook(path, read_only=True, data_only=True)
    rows = sum(1 for _ in wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    return time.perf_counter() - start, rows


async def count_items(url: str) -> int:
    from sqlalchemy import text

    from qbank.db import create_engine

    engine = create_engine(url)
    async with engine.connect() as conn:
        n = (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one()
    await engine.dispose()
    return int(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000, help="items in the xlsx (default 10000)")
    parser.add_argument("--points", type=int, default=300, help="appraisal points in the blueprint (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    from qbank.db import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="qbank-import-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'qbank.db'}"
    upgrade(url)
    asyncio.run(prepare_database(url, args.points))
    xlsx = tmp / "items.xlsx"
    t0 = time.perf_counter()
    write_items(xlsx, args.items, args.points, args.seed)
    generate_s = time.perf_counter() - t0
    read_s, rows = bare_read(xlsx)
    env = {**os.environ, "QBANK_DATABASE_URL": url, "QBANK_DATA_DIR": str(tmp), "QBANK_TOKEN_SECRET": "bench",
           "QBANK_LOG_LEVEL": "WARNING", "COLUMNS": "100"}
    qbank = [sys.executable, "-m", "qbank"]
    t0 = time.perf_counter()
    subprocess.run([*qbank, "--help"], env=env, check=True, capture_output=True)
    startup_s = time.perf_counter() - t0
    command = [*qbank, "import", str(xlsx), "--occupation", OCCUPATION, "--level", str(LEVEL)]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    import_s = time.perf_counter() - t0
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return 1
    stored = asyncio.run(count_items(url))
    assert stored == args.items, (stored, args.items)
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite")
    print(f"file: {xlsx.stat().st_size / 1e6:.2f} MB, {args.items} items, {args.points} points "
          f"(generated in {generate_s:.2f} s)")
    print(f"bare openpyxl read (read_only, all {rows} rows): {read_s:.3f} s = {args.items / read_s:,.0f} rows/s")
    print(f"qbank import through the CLI (subprocess, wall): {import_s:.2f} s = {args.items / import_s:,.0f} items/s "
          f"(process start and CLI load alone: {startup_s:.2f} s)")
    print(f"ratio import / bare read: {import_s / read_s:.1f}x")
    print(f"stored: {stored} items; CLI said: {done.stdout.strip()}")
    print(f"reproduce: python benchmarks/import_xlsx.py --items {args.items} --points {args.points}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
