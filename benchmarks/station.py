"""The exam station under a room's load: N simulated candidates on one station, each changing an answer every
INTERVAL seconds for a compressed exam, the station killed with SIGKILL half-way and started again.

Starts a local S3 server (SeaweedFS) and `qbank serve` (temporary data dir, SQLite), seeds a generated bank
(paperbuild.synthetic, approved), the level-3 layout (190 items) with its duration compressed to --minutes, one
theory room of N candidates with id tails, assembles, seals, makes a site key with `qbank site keygen`, downloads
the package and starts `qbank station serve`. The candidates sign in (admission number + id digits), the proctor
starts the room, then each candidate's client changes a random answer every INTERVAL s (random start offset),
retrying a change until the station acknowledges it, the way the candidate screen does. Half-way: SIGKILL, restart.

Measured: save latency of the acknowledged requests (p50/p99, and separately the delay of the changes caught by
the kill), the station's CPU (its processes' CPU seconds over the wall time) and peak RSS, and acknowledged answers
lost (for each candidate and question, the last acknowledged change against what the station serves after the
run). Then every candidate submits; the room's bundle goes to the centre, which scores it.

Baseline in the same run: the same load (no kill) against benchmarks/station_baseline.py, a trivial Litestar
handler writing one SQLite row per change (WAL, synchronous=FULL). Servers stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from papers import LEVEL3, OCCUPATION, TOKEN_SECRET, blueprint_json, make_token, seed_items
from serving import free_port, start_qbank, stop

HERE = Path(__file__).resolve().parent
QBANK = str(Path(sys.executable).with_name("qbank"))


# ------------------------------------------------------------------------------------------- measuring
class Sampler:
    """CPU seconds and peak RSS of the processes it is told about, sampled every 0.2 s in a thread."""

    def __init__(self) -> None:
        self.procs: dict[int, psutil.Process] = {}
        self.cpu: dict[int, float] = {}
        self.cpu_at_start: dict[int, float] = {}
        self.started = time.perf_counter()
        self.peak_rss = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def watch(self, pid: int, from_now: bool = True) -> None:
        """Count ``pid``'s CPU from now (or, for a process started during the run, from its start)."""
        p = psutil.Process(pid)
        t = p.cpu_times()
        self.procs[pid], self.cpu_at_start[pid] = p, (t.user + t.system) if from_now else 0.0

    def _run(self) -> None:
        while self.running:
            for pid, p in list(self.procs.items()):
                try:
                    t = p.cpu_times()
                    self.cpu[pid] = t.user + t.system
                    self.peak_rss = max(self.peak_rss, p.memory_info().rss)
                except psutil.Error:
                    self.procs.pop(pid, None)  # killed: its last sample stands
            time.sleep(0.2)

    def stop(self) -> tuple[float, float, int]:
        """(CPU seconds used while watched, wall seconds, peak RSS)."""
        self.running = False
        self.thread.join()
        used = sum(cpu - self.cpu_at_start.get(pid, 0.0) for pid, cpu in self.cpu.items())
        return used, time.perf_counter() - self.started, self.peak_rss


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Candidate:
    def __init__(self, base: str, number: str, tail: str, path: str) -> None:
        self.number, self.tail, self.path = number, tail, path
        self.http = httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=2))
        self.questions: list[dict[str, Any]] = []
        self.seq = 0
        self.acked: dict[int, tuple[int, list[int]]] = {}


async def change(c: Candidate, rng: random.Random, latencies: list[float], delays: list[float],
                 failures: list[int], stamps: list[float]) -> None:
    """One answer change, retried (0.25 s, doubling to 2 s) until acknowledged."""
    q = rng.choice(c.questions)
    n = len(q["options"])
    places = sorted(rng.sample(range(n), rng.choice([1, 2]))) if q["type"] == "multiple_choice" \
        else [rng.randrange(n)]
    c.seq += 1
    seq, first, pause, attempts = c.seq, time.perf_counter(), 0.25, 0
    while True:
        t = time.perf_counter()
        attempts += 1
        try:
            r = await c.http.put(c.path.format(no=q["no"]), json={"places": places, "seq": seq})
        except httpx.HTTPError:
            failures[0] += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
            continue
        if r.status_code != 200:
            raise SystemExit(f"save refused: {r.status_code} {r.text[:300]}")
        done = time.perf_counter()
        if attempts > 1:  # waited for the station to come back: its delay counts apart
            delays.append(done - first)
        else:
            latencies.append(done - t)
            stamps.append(t)
        body = r.json()
        if body.get("seq", seq) >= c.acked.get(q["no"], (0, []))[0]:
            c.acked[q["no"]] = (int(body.get("seq", seq)), list(body.get("places", places)))
        return


async def load(cands: list[Candidate], seconds: float, interval: float, at_half: Any = None) -> dict[str, Any]:
    """Every candidate changes an answer every ``interval`` s for ``seconds``; ``at_half`` runs half-way."""
    latencies: list[float] = []
    stamps: list[float] = []  # when each acknowledged request was sent, seconds from the start of the load
    delays: list[float] = []
    failures = [0]
    start = time.perf_counter()

    async def one(c: Candidate, k: int) -> None:
        rng = random.Random(k)
        await asyncio.sleep(rng.uniform(0, interval))
        nxt = time.perf_counter()
        while nxt - start < seconds:
            await change(c, rng, latencies, delays, failures, stamps)
            nxt += interval
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

    async def half() -> None:
        await asyncio.sleep(seconds / 2)
        if at_half is not None:
            await asyncio.to_thread(at_half)

    await asyncio.gather(half(), *(one(c, k) for k, c in enumerate(cands)))
    return {"latencies": latencies, "stamps": [t - start for t in stamps], "delays": delays, "failures": failures[0],
            "wall": time.perf_counter() - start}


# ------------------------------------------------------------------------------------------- the centre and station
def ok(r: httpx.Response) -> Any:
    if r.status_code >= 300:
        raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    return r.json()


async def set_window(database_url: str, session_id: int) -> None:
    from sqlalchemy import update

    from qbank.db import create_engine
    from qbank.sessions.models import ExamSession

    engine = create_engine(database_url)
    start = datetime.now(UTC) - timedelta(minutes=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(ExamSession).where(ExamSession.id == session_id).values(
                starts_at=start, ends_at=start + timedelta(hours=2)))
    finally:
        await engine.dispose()


def prepare(args: argparse.Namespace, tmp: Path, base: str, database_url: str) -> dict[str, Any]:
    """Bank, layout, a room of N candidates, assembled and sealed; the site's key, token and package."""
    from paperbuild.synthetic import generate_bank

    admin = {"Authorization": f"Bearer {asyncio.run(make_token(database_url, 'admin', 'bench-admin'))}"}
    http = httpx.Client(base_url=base, timeout=600)
    bank = generate_bank(args.seed)
    body, codes = blueprint_json(bank)
    ok(http.post("/api/v1/occupations", json={"code": OCCUPATION, "name": "电工", "levels": [3]}, headers=admin))
    ok(http.post(f"/api/v1/occupations/{OCCUPATION}/levels/3/blueprints", json=body, headers=admin))
    layout = ok(http.post(f"/api/v1/occupations/{OCCUPATION}/levels/3/layouts", headers=admin,
                          json={**LEVEL3, "duration_minutes": args.minutes}))
    asyncio.run(seed_items(database_url, bank, codes))
    site = "BS-ST"
    ok(http.post("/api/v1/sites", json={"code": site, "name": "基准考点"}, headers=admin))
    token = asyncio.run(make_token(database_url, "site", "bench-site", site))
    key = tmp / "site.key"
    made = subprocess.run([QBANK, "site", "keygen", "-o", str(key)], capture_output=True, text=True, check=True)
    ok(http.put(f"/api/v1/sites/{site}/public-key", json={"public_key": made.stdout.strip()},
                headers={"Authorization": f"Bearer {token}"}))
    rng = random.Random(args.seed)
    people = [{"number": f"2026{k:06d}", "name": f"考生{k}", "room": f"{site}/T1", "desk": k + 1,
               "id_tail": f"{rng.randrange(10**6):06d}"} for k in range(args.candidates)]
    session = ok(http.post("/api/v1/sessions", headers=admin, json={
        "occupation_code": OCCUPATION, "level": 3, "title": "基准机考", "date": "2026-12-03", "start": "09:00:00",
        "end": "11:00:00", "rooms": [{"site": site, "code": "T1", "kind": "theory", "desks": args.candidates,
                                      "camera_views": ["front"]}], "candidates": people}))
    sid = session["id"]
    asyncio.run(set_window(database_url, sid))
    job = ok(http.post(f"/api/v1/sessions/{sid}/papers", headers=admin, json={
        "layout_id": layout["id"], "mode": "parallel", "forms": 2, "seed": args.seed, "time_limit_s": 60}))
    while job["status"] not in ("succeeded", "failed"):
        time.sleep(0.3)
        job = ok(http.get(f"/api/v1/jobs/{job['id']}", headers=admin))
    if job["status"] != "succeeded":
        raise SystemExit(f"assembly failed: {json.dumps(job['error'], ensure_ascii=False)[:2000]}")
    ok(http.post(f"/api/v1/sessions/{sid}/seal", headers=admin))
    # the package answers 307 to a presigned GET on the S3 server (httpx drops the token for the other origin)
    r = http.get(f"/api/v1/sessions/{sid}/package", headers={"Authorization": f"Bearer {token}"},
                 follow_redirects=True)
    r.raise_for_status()
    package = tmp / "package.json"
    package.write_bytes(r.content)
    return {"admin": admin, "sid": sid, "site": site, "token": token, "key": key, "package": package,
            "people": people}


class Station:
    def __init__(self, tmp: Path, centre: str, setup: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [QBANK, "station", "serve", "--package", str(setup["package"]), "--key", str(setup["key"]),
                    "--centre", centre, "--token", setup["token"], "--db", str(tmp / "station.sqlite3"),
                    "--port", str(self.port)]
        self.log = (tmp / "station.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        t = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("the station exited: see station.log")
            try:
                if httpx.get(self.url + "/health", timeout=1).json().get("release"):
                    return time.perf_counter() - t
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def proctor_code(setup: dict[str, Any], centre: str) -> str:
    pdf = subprocess.run([QBANK, "station", "cards", "--package", str(setup["package"]), "--key",
                          str(setup["key"]), "--centre", centre, "--token", setup["token"], "-o", "/dev/stdout"],
                         capture_output=True, check=True).stdout
    found = re.search(rb"/Type /EmbeddedFile /Subtype /application#2Fjson /Length (\d+) >>\nstream\n", pdf)
    assert found
    return str(json.loads(pdf[found.end():found.end() + int(found[1])])["rooms"]["T1"])


async def station_run(args: argparse.Namespace, station: Station, setup: dict[str, Any],
                      centre: str) -> dict[str, Any]:
    cands = [Candidate(station.url, p["number"], p["id_tail"], f"/api/candidates/{p['number']}/answers/{{no}}")
             for p in setup["people"]]
    for c in cands:
        ok(await c.http.post("/api/sign-in", json={"number": c.number, "id_digits": c.tail}))
    code = await asyncio.to_thread(proctor_code, setup, centre)
    async with httpx.AsyncClient(base_url=station.url, timeout=30) as proctor:
        ok(await proctor.post("/api/proctor/sign-in", json={"code": code}))
        ok(await proctor.post("/api/proctor/rooms/T1/start"))
        for c in cands:
            c.questions = ok(await c.http.get(f"/api/candidates/{c.number}/paper"))["questions"]
        restart: dict[str, float] = {}

        def kill_and_restart() -> None:
            t = time.perf_counter()
            station.kill9()
            restart["start"] = station.start()
            restart["down"] = time.perf_counter() - t
            assert station.proc is not None
            sampler.watch(station.proc.pid, from_now=False)

        assert station.proc is not None
        sampler = Sampler()
        sampler.watch(station.proc.pid)
        result = await load(cands, args.seconds, args.interval, kill_and_restart)
        result["cpu"], result["cpu_wall"], result["rss"] = sampler.stop()
        result["restart"] = restart
        lost = checked = 0
        for c in cands:
            paper = ok(await c.http.get(f"/api/candidates/{c.number}/paper"))
            seqs, answers = paper["seqs"], paper["answers"]
            for no, (seq, places) in c.acked.items():
                checked += 1
                if seqs.get(str(no), 0) < seq or (seqs.get(str(no)) == seq and answers.get(str(no)) != places):
                    lost += 1
        result.update(lost=lost, checked=checked, saves=sum(c.seq for c in cands))
        # the end of the exam: everyone submits; the room's bundle goes to the centre
        t = time.perf_counter()
        for c in cands:
            ok(await c.http.post(f"/api/candidates/{c.number}/submit", json={"confirm": True}))
        while True:
            health = ok(await proctor.get("/health"))
            bundles = list(health["bundles"].values())
            if bundles and bundles[0]["acknowledged"]:
                break
            if time.perf_counter() - t > 300:
                raise SystemExit(f"bundle not acknowledged: {bundles}")
            await asyncio.sleep(0.2)
        result["bundle_s"] = time.perf_counter() - t
    for c in cands:
        await c.http.aclose()
    return result


async def baseline_run(args: argparse.Namespace, url: str, people: list[dict[str, Any]],
                       pid: int) -> dict[str, Any]:
    cands = [Candidate(url, p["number"], "", f"/answers/{p['number']}/{{no}}") for p in people]
    for c in cands:
        c.questions = [{"no": n + 1, "type": "single_choice", "options": ["A", "B", "C", "D"]} for n in range(190)]
    sampler = Sampler()
    sampler.watch(pid)
    result = await load(cands, args.seconds, args.interval)
    result["cpu"], result["cpu_wall"], result["rss"] = sampler.stop()
    result["saves"] = sum(c.seq for c in cands)
    for c in cands:
        await c.http.aclose()
    return result


def run(args: argparse.Namespace) -> None:
    from evidence import LocalS3Server

    tmp = Path(tempfile.mkdtemp(prefix="bench-station-"))
    s3 = LocalS3Server(tmp / "s3", access_key="benchkey", secret_key="bench-secret-1")
    s3.start()
    database_url = f"sqlite+aiosqlite:///{tmp / 'q.db'}"
    env = {**os.environ, "QBANK_DATA_DIR": str(tmp / "data"), "QBANK_DATABASE_URL": database_url,
           "QBANK_S3_ENDPOINT": s3.endpoint, "QBANK_S3_ACCESS_KEY": "benchkey", "QBANK_S3_SECRET_KEY": "bench-secret-1",
           "QBANK_TOKEN_SECRET": TOKEN_SECRET, "QBANK_LOG_LEVEL": "WARNING"}
    log = (tmp / "serve.log").open("wb")
    proc, centre = start_qbank(env, log)
    station: Station | None = None
    baseline: subprocess.Popen[bytes] | None = None
    try:
        t = time.perf_counter()
        setup = prepare(args, tmp, centre, database_url)
        print(f"centre ready: {args.candidates} candidates, 190-item paper of {args.minutes} min, sealed "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        station = Station(tmp, centre, setup)
        print(f"station started in {station.start():.2f} s", flush=True)
        st = asyncio.run(station_run(args, station, setup, centre))
        centre_results = ok(httpx.get(f"{centre}/api/v1/sessions/{setup['sid']}/results", headers=setup["admin"]))
        scored = sum(1 for r in centre_results["results"] if r["theory"] is not None)
        station.stop()

        port = free_port()
        baseline = subprocess.Popen([sys.executable, "-m", "uvicorn", "station_baseline:app", "--port", str(port),
                                     "--log-level", "warning"], cwd=HERE,
                                    env={**os.environ, "STATION_BASELINE_DB": str(tmp / "baseline.sqlite3")})
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.put(f"{url}/answers/warm/1", json={"places": [0], "seq": 1}, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        bl = asyncio.run(baseline_run(args, url, setup["people"], baseline.pid))
    finally:
        if station is not None:
            station.stop()
        if baseline is not None:
            baseline.send_signal(signal.SIGTERM)
            baseline.wait(15)
        stop(proc)
        log.close()
        s3.stop()

    def ms(x: float) -> str:
        return f"{x * 1000:.1f} ms"

    load_avg = os.getloadavg()
    print(f"\n{args.candidates} candidates, a change every {args.interval:g} s each for {args.seconds:g} s "
          f"(load average at the end {load_avg[0]:.1f}/{load_avg[1]:.1f}); kill -9 of the station half-way")
    print(f"{'':28}{'p50':>10}{'p99':>10}{'max':>10}{'saves':>8}{'CPU':>8}{'peak RSS':>10}")
    for name, r in (("station (kill -9 half-way)", st), ("baseline (1 row, no kill)", bl)):
        lat = r["latencies"]
        print(f"{name:<28}{ms(statistics.median(lat)):>10}{ms(pct(lat, 0.99)):>10}{ms(max(lat)):>10}"
              f"{r['saves']:>8}{100 * r['cpu'] / r['cpu_wall']:>7.0f}%{r['rss'] / 2**20:>7.0f} MiB")
    p50 = statistics.median(st["latencies"]) / statistics.median(bl["latencies"])
    print(f"ratios station/baseline: p50 {p50:.2f}, p99 {pct(st['latencies'], 0.99) / pct(bl['latencies'], 0.99):.2f}, "
          f"CPU {st['cpu'] / bl['cpu']:.2f} (CPU is % of one core over the load, restart included for the station)")
    half, back = args.seconds / 2, args.seconds / 2 + st["restart"]["down"] + 10
    before = [x for x, t in zip(st["latencies"], st["stamps"], strict=True) if t < half]
    after = [x for x, t in zip(st["latencies"], st["stamps"], strict=True) if t >= back]
    if before and after:
        print(f"station p99 before the kill {ms(pct(before, 0.99))} ({len(before)} saves); from 10 s after it was back "
              f"{ms(pct(after, 0.99))} ({len(after)} saves); the rest is the restart's wake")
    delays = st["delays"]
    print(f"kill -9: station back (release loaded) {st['restart']['start']:.2f} s after its restart, "
          f"{st['restart']['down']:.2f} s after the kill; {len(delays)} changes waited for it "
          f"(longest {max(delays, default=0):.2f} s), {st['failures']} failed attempts retried")
    print(f"acknowledged answers lost: {st['lost']} of {st['checked']} (question, candidate) last answers checked "
          f"(target 0); target p99 < 50 ms: {'met' if pct(st['latencies'], 0.99) < 0.05 else 'MISSED'}")
    print(f"end of the room: all submitted → bundle acknowledged by the centre in {st['bundle_s']:.1f} s; "
          f"centre scored {scored} of {args.candidates}")
    print(f"reproduce: .venv/bin/python benchmarks/station.py --candidates {args.candidates} --seconds "
          f"{args.seconds:g} --interval {args.interval:g} --minutes {args.minutes}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--interval", type=float, default=2.0, help="seconds between one candidate's changes")
    p.add_argument("--seconds", type=float, default=120.0, help="how long the candidates answer")
    p.add_argument("--minutes", type=int, default=5, help="the compressed exam's duration (layout)")
    p.add_argument("--seed", type=int, default=0)
    run(p.parse_args())


if __name__ == "__main__":
    main()
