"""Benchmark: import N items from one xlsx as the service's import job, against a bare openpyxl read.

`qbank serve` on a fresh SQLite database (or --database-url) in a temporary directory, its own local S3 server;
one occupation and a blueprint with --points appraisal points through the API; a generated xlsx (the item
writers' template, distinct stems, 20 % true/false, 70 % single, 10 % multiple choice) is POSTed to
/api/v1/imports and its job polled to the end, after a warm-up import of 4,000 other items (which starts the
service's worker process). The baseline is openpyxl reading the same file in read-only mode and iterating every
row, in the same run. Meanwhile a thread asks GET /health one request after another: its p99 says whether the
service still answers during the import. Prints absolute figures and the ratio; the server is stopped by its pid.

    python benchmarks/import_xlsx.py --items 10000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from serving import RssSampler, start_qbank, stop

ROOT = Path(__file__).resolve().parents[1]

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


def write_items(path: Path, items: int, points: int, seed: int, refused: bool = False) -> None:
    """The file; ``refused``: every row's answer key is the letter Z, so that every row is refused."""
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
        if refused:
            row["answer"] = "Z"
        ws.append([row.get(k) for k in keys])
    wb.save(path)


def bare_read(path: Path) -> tuple[float, int]:
    from openpyxl import load_workbook

    start = time.perf_counter()
    wb = load_workbook(path, read_only=True, data_only=True)
    rows = sum(1 for _ in wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    return time.perf_counter() - start, rows


class HealthProbe(threading.Thread):
    """GET /health one after another (a fresh connection each: what a load balancer's check does), timing each.
    A bare ``http.client`` connection: an ``httpx.get`` builds a client with its TLS context each time, 10-20 ms
    of this process's CPU that the 2 shared cores turned into hundreds of milliseconds during an import."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        address = urlsplit(base)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.latencies: list[float] = []
        self.started: list[float] = []  # perf_counter at each probe's start
        self.failures = 0
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        while self.running.is_set():
            t0 = time.perf_counter()
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                connection.request("GET", "/health")
                ok = connection.getresponse().status == 200
            except OSError:
                ok = False
            finally:
                connection.close()
            self.latencies.append(time.perf_counter() - t0)
            self.started.append(t0)
            self.failures += 0 if ok else 1
            time.sleep(0.02)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no /health answers"
        pick = lambda q: 1000 * lat[min(len(lat) - 1, int(q * (len(lat) - 1)))]  # noqa: E731
        return (f"{len(lat)} probes, p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {1000 * lat[-1]:.1f} ms, "
                f"{self.failures} failed")


def import_job(client: httpx.Client, path: Path, stages: list[tuple[float, str]] | None = None,
               refused: bool = False) -> tuple[float, dict[str, Any]]:
    """POST the file, poll its job to the end; (wall seconds from the POST to the job's end, the job). ``stages``
    gets (perf_counter, message) each time the job's message changes."""
    t0 = time.perf_counter()
    with path.open("rb") as f:
        r = client.post("/api/v1/imports", files={"file": (path.name, f)},
                        data={"occupation_code": OCCUPATION, "level": str(LEVEL)})
    if r.status_code != 202:
        raise SystemExit(f"POST /api/v1/imports: {r.status_code} {r.text[:500]}")
    job_id = r.json()["id"]
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if stages is not None and (not stages or stages[-1][1] != job["message"]):
            stages.append((time.perf_counter(), str(job["message"])))
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if job["status"] != ("failed" if refused else "succeeded"):
        raise SystemExit(f"import job failed: {json.dumps(job['error'], ensure_ascii=False)[:2000]}")
    return wall, job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000, help="items in the xlsx (default 10000)")
    parser.add_argument("--points", type=int, default=300, help="appraisal points in the blueprint (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database "
                        "(postgresql+asyncpg://…); default: SQLite in the temporary data dir")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--refused", action="store_true", help="every row refused (answer key Z): the time "
                        "to answer with the problems, and /health meanwhile")
    parser.add_argument("--slow-probes", type=float, default=0, metavar="MS",
                        help="list each /health probe slower than MS during the import, with the job's stage")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="qbank-import-bench-"))
    warm, xlsx = tmp / "warm-up.xlsx", tmp / "items.xlsx"
    t0 = time.perf_counter()
    write_items(xlsx, args.items, args.points, args.seed, args.refused)
    generate_s = time.perf_counter() - t0
    write_items(warm, 4000, args.points, args.seed + 1)  # over 512 KiB: read in the worker process too
    read_s, rows = bare_read(xlsx)
    env = {**os.environ, "QBANK_DATA_DIR": str(tmp), "QBANK_TOKEN_SECRET": "bench", "QBANK_LOG_LEVEL": "WARNING",
           "QBANK_S3_ENDPOINT": ""}
    if args.database_url:
        env["QBANK_DATABASE_URL"] = args.database_url
    else:
        env["QBANK_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp / 'qbank.db'}"
    qbank = [sys.executable, "-m", "qbank"]
    subprocess.run([*qbank, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    token = subprocess.run([*qbank, "token", "create", "--role", "admin", "--name", "bench"], env=env, check=True,
                           capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()[-1]
    with (tmp / "serve.log").open("wb") as log:
        proc, base = start_qbank(env, log)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            client.post("/api/v1/occupations", json={"code": OCCUPATION, "name": "维修电工",
                                                     "levels": [5, 4, 3, 2, 1]}).raise_for_status()
            client.post(f"/api/v1/occupations/{OCCUPATION}/levels/{LEVEL}/blueprints",
                        json=blueprint(args.points)).raise_for_status()
            warm_s, _ = import_job(client, warm)  # starts the service's worker process
            idle = HealthProbe(base)  # the baseline: /health of the same server, no import running
            idle.start()
            time.sleep(5)
            idle.running.clear()
            idle.join()
            probe = HealthProbe(base)
            probe.start()
            stages: list[tuple[float, str]] = []
            posted = time.perf_counter()
            idle_rss = RssSampler(proc.pid)
            idle_rss.sample()
            with RssSampler(proc.pid) as rss:  # the service, and with its worker processes
                import_s, job = import_job(client, xlsx, stages, args.refused)
            probe.running.clear()
            probe.join()
            stored = int(client.get("/api/v1/items", params={"occupation": OCCUPATION, "level": LEVEL,
                                                              "limit": 1}).json()["total"])
    finally:
        stop(proc)
    assert stored == (0 if args.refused else args.items) + 4000, (stored, args.items)
    backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, {backend}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"file: {xlsx.stat().st_size / 1e6:.2f} MB, {args.items} items, {args.points} points "
          f"(generated in {generate_s:.2f} s)")
    print(f"bare openpyxl read (read_only, all {rows} rows): {read_s:.3f} s = {args.items / read_s:,.0f} rows/s")
    print(f"import job (POST → job ended, wall): {import_s:.2f} s = {args.items / import_s:,.0f} items/s; "
          f"the job itself (started → finished): {(finished - started).total_seconds():.2f} s")
    print(f"ratio import job / bare read: {import_s / read_s:.1f}x")
    if args.refused:
        print(f"refused as it should be: {job['error']['problems']} problems, {len(job['error']['errors'])} listed; "
              f"{job['error']['detail'][:100]}")
    else:
        print(f"stages inside the job (s): {job['result']['seconds']}")
    print(f"/health during the import: {probe.summary()}")
    print(f"/health idle, just before:  {idle.summary()}")
    mib = 2**20
    print(f"peak RSS during the import: service {rss.peak / mib:.0f} MiB, with its worker processes "
          f"{rss.peak_tree / mib:.0f} MiB (before: {idle_rss.peak / mib:.0f} / {idle_rss.peak_tree / mib:.0f} MiB)")
    if args.slow_probes:
        print(f"/health probes slower than {args.slow_probes:.0f} ms (s from the POST, ms; the job's message then):")
        for t0, latency in zip(probe.started, probe.latencies, strict=True):
            if latency * 1000 >= args.slow_probes:
                message = next((m for t, m in reversed(stages) if t <= t0), "(queued)")
                print(f"  {t0 - posted:7.2f} s  {latency * 1000:6.1f} ms  {message}")
    print(f"warm-up import of 4000 items before (starts the worker process): {warm_s:.2f} s")
    print(f"stored: {stored} items; job message: {job['message']}")
    print(f"reproduce: python benchmarks/import_xlsx.py --items {args.items} --points {args.points}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
