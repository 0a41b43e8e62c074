"""Soak: a bounded mixed load against the centre's topology for a few minutes, one worker killed half-way.

    .venv/bin/python benchmarks/soak.py [--duration 180] [--clients 4] [--pg postgresql+asyncpg://root@127.0.0.1:5432/postgres]
                                        [--redis redis://127.0.0.1:6379/0]

Starts a SeaweedFS cluster (master, two volume servers, filer, S3 gateway), two `qbank serve` and two `qbank worker`
on a new PostgreSQL database and Redis (`qbank.devtools.topology`), seeds a bank of 60 reviewed items, a session to
assemble papers for and a sealed session whose packages sites fetch, then runs ``--clients`` threads for
``--duration`` seconds. Each picks an operation by weight: item writes and reads, Moodle XML imports, recording
uploads (distinct 4-second clips; analysis jobs on the workers), assembly jobs, sealed-package fetches, and
`GET /health` — the baseline: the same server's cheapest answer under the same load, so each endpoint's p50 is also
given as a ratio to it. Requests go round-robin to the two instances. Half-way `worker0` is killed with SIGKILL.
Afterwards every job must end (the survivor takes the killed worker's jobs back), and the audit chain must verify.

Prints per endpoint: requests, p50 and p99 (ms), p50 / health p50, statuses; the number of 5xx; jobs by kind and
status, and how many ran more than once; the chain check. Exit status 1 when there was a 5xx, a job did not
succeed, or the chain does not verify. Every process is stopped by its pid; the database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from qbank.devtools.topology import Topology
from qbank.devtools.workload import WORDS, Centre, Exam, item, make_bank, make_clip, upload_recording

START = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TEST_QUALITY = '{"min_width": 320, "min_height": 240, "min_bit_rate": 200000}'
WEIGHTS = {"item write": 20, "item read": 30, "import": 4, "upload": 8, "assembly": 3, "package": 10, "health": 10}


def moodle(rng: random.Random, n: int = 3) -> bytes:
    questions = "".join(
        f'<question type="truefalse"><name><text>q{i}</text></name><questiontext format="moodle_auto_format">'
        f'<text>{"、".join(rng.sample(WORDS, 7))}的说法正确（{rng.randrange(10**9)}）。</text></questiontext>'
        f'<answer fraction="100"><text>true</text></answer><answer fraction="0"><text>false</text></answer>'
        f'<tags><tag><text>point:{rng.randrange(12) + 1:03d}</text></tag></tags></question>' for i in range(n))
    return f'<?xml version="1.0" encoding="UTF-8"?><quiz>{questions}</quiz>'.encode()


class Load:
    """The shared state of the clients: what they measured, the jobs they started, what they may use."""

    def __init__(self, urls: list[str], token: str, occupation: str, item_ids: list[int], assemble: Exam,
                 sealed: Exam, layout_id: int, clips: list[Path]) -> None:
        self.urls, self.token = urls, token
        self.occupation, self.item_ids, self.layout_id = occupation, item_ids, layout_id
        self.assemble, self.sealed = assemble, sealed
        self.clips = clips
        self.lock = threading.Lock()
        self.samples: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.jobs: list[str] = []
        self.next_clip = 0
        self.unanswered = 0

    def clip(self) -> Path:
        with self.lock:
            path = self.clips[self.next_clip % len(self.clips)]
            self.next_clip += 1
            return path

    def client(self, stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        centre = Centre(self.urls, self.token, timeout=300)
        ops: dict[str, Callable[[], Any]] = {
            "item write": lambda: centre.request("POST", "/api/v1/items", json=item(self.occupation,
                                                                                   rng.randrange(10**6), rng)),
            "item read": lambda: centre.request("GET", f"/api/v1/items/{rng.choice(self.item_ids)}"),
            "import": lambda: centre.request("POST", "/api/v1/imports", files={"file": ("bank.xml", moodle(rng))},
                                             data={"occupation_code": self.occupation, "level": "3"}),
            "upload": lambda: upload_recording(centre, self.sealed, rng.choice(self.sealed.sites), START,
                                               self.clip().read_bytes()),
            "assembly": lambda: centre.request("POST", f"/api/v1/sessions/{self.assemble.session_id}/papers",
                                               json={"layout_id": self.layout_id, "forms": 2,
                                                     "seed": rng.randrange(1000), "time_limit_s": 5}),
            "package": lambda: centre.request("GET", f"/api/v1/sessions/{self.sealed.session_id}/package",
                                              follow_redirects=True,
                                              headers=self.sealed.tokens[self.sealed.sites[0]]),
            "health": lambda: centre.request("GET", "/health"),
        }
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not stop.is_set():
            name = rng.choices(names, weights)[0]
            t0 = time.perf_counter()
            r = ops[name]()
            took = time.perf_counter() - t0
            job = None
            if name in ("upload", "assembly") and r.status_code in (200, 201, 202):
                job = r.json().get("job_id" if name == "upload" else "id")
            with self.lock:
                self.samples[name].append((r.status_code, took))
                if job:
                    self.jobs.append(job)
        with self.lock:
            self.unanswered += centre.unanswered


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def seed(centre: Centre, tmp: Path) -> tuple[str, int, list[int], Exam, Exam, list[Path]]:
    occupation, layout_id = make_bank(centre, items=60)
    item_ids = [int(i["id"]) for i in centre.ok("GET", "/api/v1/items", params={
        "occupation": occupation, "level": 3, "limit": 100})["items"]]
    to_assemble = Exam(centre, occupation, sites=2, per_site=3, seed=2)
    sealed = Exam(centre, occupation, sites=2, per_site=3, seed=3)
    job = centre.ok("POST", f"/api/v1/sessions/{sealed.session_id}/papers",
                    json={"layout_id": layout_id, "forms": 2, "seed": 1, "time_limit_s": 10})
    assert centre.wait_job(job["id"])["status"] == "succeeded"
    centre.ok("POST", f"/api/v1/sessions/{sealed.session_id}/seal", status=200)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        clips = list(pool.map(lambda i: make_clip(tmp / f"clip{i}.mp4", 4, seed=i), range(80)))
    return occupation, layout_id, item_ids, to_assemble, sealed, clips


async def pg(admin_url: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def wait_for_jobs(database_url: str, timeout: float) -> float:
    t0 = time.monotonic()
    while asyncio.run(pg(database_url, "SELECT count(*) FROM job WHERE status IN ('queued', 'running')"))[0][0]:
        if time.monotonic() - t0 > timeout:
            break
        time.sleep(1)
    return time.monotonic() - t0


def report(load: Load, database_url: str, centre: Centre, duration: float, drain_s: float,
           killed_at: float) -> int:
    health_p50 = statistics.median(t for _, t in load.samples["health"]) if load.samples["health"] else float("nan")
    print(f"\nmixed load for {duration:.0f} s, worker0 killed (SIGKILL) at {killed_at:.0f} s; "
          f"requests an instance did not answer, sent to the other: {load.unanswered}")
    print(f"{'endpoint':<12} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50/health':>10}  statuses")
    server_errors = 0
    for name in WEIGHTS:
        rows = load.samples[name]
        if not rows:
            continue
        times = [t * 1000 for _, t in rows]
        statuses: dict[int, int] = defaultdict(int)
        for status, _ in rows:
            statuses[status] += 1
            server_errors += status >= 500
        p50 = statistics.median(times)
        print(f"{name:<12} {len(rows):>8} {p50:>8.0f} {percentile(times, 0.99):>8.0f} "
              f"{p50 / (health_p50 * 1000):>10.1f}  {dict(sorted(statuses.items()))}")
    jobs = asyncio.run(pg(database_url, "SELECT kind, status, count(*), sum(CASE WHEN attempts > 1 THEN 1 ELSE 0 END)"
                                        " FROM job GROUP BY kind, status ORDER BY kind, status"))
    print(f"5xx: {server_errors}; jobs the clients started: {len(load.jobs)}")
    print(f"jobs after the load (drained in {drain_s:.0f} s): "
          + "; ".join(f"{k} {s}: {n} ({r} ran more than once)" for k, s, n, r in jobs))
    for job_id, kind, error in asyncio.run(pg(database_url, "SELECT id, kind, error::text FROM job "
                                                            "WHERE status <> 'succeeded' LIMIT 5")):
        print(f"  not succeeded: {kind} {job_id}: {str(error)[:300]}")
    chain = centre.ok("GET", "/api/v1/audit/verify")
    print(f"audit chain: {'ok' if chain['ok'] else 'BROKEN'} ({json.dumps(chain, ensure_ascii=False)[:200]})")
    not_done = sum(n for _, s, n, _ in jobs if s != "succeeded")
    return 0 if server_errors == 0 and not_done == 0 and chain["ok"] else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=180)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--pg", default="postgresql+asyncpg://root@127.0.0.1:5432/postgres",
                   help="a PostgreSQL server where a database can be created (and is dropped afterwards)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = p.parse_args()
    name = f"qbank_soak_{secrets.token_hex(4)}"
    asyncio.run(pg(args.pg, f'CREATE DATABASE "{name}"'))
    database_url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    with tempfile.TemporaryDirectory(prefix="qbank-soak-") as tmp:
        topo = Topology(Path(tmp) / "centre", database_url, args.redis,
                        extra_env={"QBANK_VIDEO_QUALITY": TEST_QUALITY, "QBANK_LOG_LEVEL": "WARNING"})
        try:
            t0 = time.monotonic()
            topo.start(services=2, workers=2)
            print(f"topology up in {time.monotonic() - t0:.1f} s: SeaweedFS {topo.cluster.pids if topo.cluster else {}}"
                  f", services {[m.url for m in topo.services]}, workers {[m.proc.pid for m in topo.workers]}")
            token = topo.cli("token", "create", "--role", "admin", "--name", "soak").strip()
            centre = Centre([m.url for m in topo.services], token, timeout=300)
            t0 = time.monotonic()
            occupation, layout_id, item_ids, to_assemble, sealed, clips = seed(centre, Path(tmp))
            print(f"seeded in {time.monotonic() - t0:.1f} s: {len(item_ids)} items, sessions "
                  f"{to_assemble.session_id} (assembled under load) and {sealed.session_id} (sealed), "
                  f"{len(clips)} clips")
            load = Load(centre.urls, token, occupation, item_ids, to_assemble, sealed, layout_id, clips)
            stop = threading.Event()
            clients = [threading.Thread(target=load.client, args=(stop, i)) for i in range(args.clients)]
            started = time.monotonic()
            for c in clients:
                c.start()
            time.sleep(args.duration / 2)
            killed_at = time.monotonic() - started
            Topology.kill(topo.workers[0])
            time.sleep(max(0.0, args.duration - (time.monotonic() - started)))
            stop.set()
            for c in clients:
                c.join(600)
            duration = time.monotonic() - started
            drain = wait_for_jobs(database_url, 600)
            return report(load, database_url, centre, duration, drain, killed_at)
        finally:
            topo.stop()
            asyncio.run(pg(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main())
