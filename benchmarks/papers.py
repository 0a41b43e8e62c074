"""Papers end to end: assemble → seal → fetch → unseal → score for one session, and sealed-package download
throughput under load from a second process, against downloading the same bytes straight from the S3 server.

Starts a local S3 server (SeaweedFS) and `qbank serve` on free loopback ports (temporary data dir, SQLite unless
--database-url), seeds a generated bank (paperbuild.synthetic: 1,200 items over 300 points by default, all
approved) with its blueprint and the level-3 layout (40 true/false × 0.5 + 140 single × 0.5 + 10 multiple × 1),
a session of 200 candidates at 4 sites, and site keys. Then times, over HTTP:

  assemble  POST /sessions/{id}/papers, job polled to its end (CP-SAT in the service's worker thread)
  seal      POST /sessions/{id}/seal (per site: deliveries, canonical JSON, AES-GCM, HPKE, Ed25519, archive put)
  fetch     each site's GET /sessions/{id}/package
  unseal    each site's `qbank site unseal` (verify, release share over HTTP, decrypt, write the papers)
  score     each site's POST /sessions/{id}/responses for all its candidates (random answers)

Load: a second process downloads one site's package with N concurrent connections for a fixed number of
requests, three ways: the default `GET …/package` (token, audit entry, 307 to a presigned GET, followed), the
same with `delivery=stream` (the digest-checked stream through the service), and straight from S3 with a
presigned GET of the same object (the baseline). Prints MB/s of each and the ratios. Servers stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from serving import start_qbank, stop

TOKEN_SECRET = "bench-papers-secret"
OCCUPATION = "6-31-01-03"
LEVEL3 = {"name": "三级理论", "duration_minutes": 90, "facility_min": 0.60, "facility_max": 0.65, "sections": [
    {"type": "true_false", "count": 40, "points_per_item": 0.5},
    {"type": "single_choice", "count": 140, "points_per_item": 0.5},
    {"type": "multiple_choice", "count": 10, "points_per_item": 1.0}]}


# ------------------------------------------------------------------------------------------- load client
async def _load(url: str, headers: dict[str, str], concurrency: int, requests: int,
                follow: bool = True) -> dict[str, Any]:
    done = 0
    total = 0
    lock = asyncio.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal done, total
            while True:
                async with lock:
                    if done >= requests:
                        return
                    done += 1
                async with client.stream("GET", url, headers=headers, follow_redirects=follow) as r:
                    if r.status_code != (200 if follow else 307):
                        raise SystemExit(f"GET {url.split('?')[0]}: {r.status_code}")
                    n = 0
                    async for chunk in r.aiter_raw():
                        n += len(chunk)
                async with lock:
                    total += n

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    return {"bytes": total, "seconds": seconds, "requests": requests}


def load_client(args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    print(json.dumps(asyncio.run(_load(args.load_client, headers, args.concurrency, args.requests,
                                       follow=not args.no_follow))))


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its children so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0.0


def load_from_second_process(url: str, token: str | None, concurrency: int, requests: int,
                             follow: bool = True) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--load-client", url, "--concurrency", str(concurrency),
           "--requests", str(requests), *([] if follow else ["--no-follow"])]
    if token:
        cmd += ["--token", token]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"load client failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    result["client_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result


# ------------------------------------------------------------------------------------------- seeding
def blueprint_json(bank: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The synthetic blueprint as qbank's scope tree; point codes become 001…300. Returns (body, code map)."""
    codes = {p.code: f"{k + 1:03d}" for k, p in enumerate(bank.blueprint.points)}
    nodes: dict[str, dict[str, Any]] = {}
    top: list[dict[str, Any]] = []
    for s in bank.blueprint.scopes:
        node = {"code": s.code, "name": s.name or s.code, "weight": s.weight, "children": [], "points": []}
        nodes[s.code] = node
        (nodes[s.parent]["children"] if s.parent else top).append(node)
    for p in bank.blueprint.points:
        nodes[p.scope]["points"].append({"code": codes[p.code], "name": f"鉴定点{codes[p.code]}",
                                         "importance": p.importance})
    return {"scopes": top}, codes


async def seed_items(database_url: str, bank: Any, codes: dict[str, str]) -> None:
    import msgspec
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from qbank.blueprints.services import point_index
    from qbank.db import create_engine
    from qbank.items.models import Item
    from qbank.items.schemas import ItemIn
    from qbank.items.services import add_item
    from qbank.lib.actors import Actor, Role

    pool = bank.pool
    enemy: dict[int, list[str]] = {}
    for g, group in enumerate(pool.enemy_groups):
        for item_id in group:
            enemy.setdefault(int(item_id), []).append(f"E{g}")
    rng = random.Random(1)
    writer = Actor(token_id=0, name="bench", role=Role.admin)
    engine = create_engine(database_url)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as db, db.begin():
            points = await point_index(db, OCCUPATION, 3)
            for i in range(len(pool)):
                kind = ("true_false", "single_choice", "multiple_choice")[int(pool.item_type[i])]
                if kind == "true_false":
                    options, answer = ["正确", "错误"], [rng.choice("AB")]
                else:
                    options = [f"选项{k}：第{i}题的第{k}种说法" for k in "ABCD"]
                    answer = ["B"] if kind == "single_choice" else sorted(rng.sample("ABCD", 2))
                data = msgspec.convert({
                    "occupation_code": OCCUPATION, "level": 3, "type": kind,
                    "stem": f"第{i}题：关于鉴定点{codes[str(pool.point[i])]}，下列说法正确的是（ ）。",
                    "options": options, "answer": answer, "point_code": codes[str(pool.point[i])],
                    "facility": float(pool.facility[i]), "enemy_groups": enemy.get(int(pool.ids[i]), [])}, ItemIn)
                await add_item(db, writer, data, points, batch_checked=True)
            await db.flush()
            await db.execute(update(Item).where(Item.occupation_code == OCCUPATION).values(status="approved"))
    finally:
        await engine.dispose()


async def set_window(database_url: str, session_id: int, starts_in: timedelta) -> None:
    from sqlalchemy import update

    from qbank.db import create_engine
    from qbank.sessions.models import ExamSession

    engine = create_engine(database_url)
    start = datetime.now(UTC) + starts_in
    try:
        async with engine.begin() as conn:
            await conn.execute(update(ExamSession).where(ExamSession.id == session_id).values(
                starts_at=start, ends_at=start + timedelta(minutes=90)))
    finally:
        await engine.dispose()


async def make_token(database_url: str, role: str, name: str, site: str | None = None) -> str:
    import msgspec
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from qbank.auth.schemas import TokenCreate
    from qbank.auth.services import create_token
    from qbank.db import create_engine

    engine = create_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as db, db.begin():
            created, _ = await create_token(db, TOKEN_SECRET, msgspec.convert(
                {"name": name, "role": role, "site": site}, TokenCreate))
            return created.token
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> None:
    from click.testing import CliRunner

    from evidence import LocalS3Server, RetentionArchive
    from paperbuild.synthetic import generate_bank
    from qbank.papers.keys import new_site_key
    from qbank.server.cli import main as qbank_main

    tmp = Path(tempfile.mkdtemp(prefix="bench-papers-"))
    s3 = LocalS3Server(tmp / "s3", access_key="benchkey", secret_key="bench-secret-1")
    s3.start()
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'q.db'}"
    env = {**os.environ, "QBANK_DATA_DIR": str(tmp / "data"), "QBANK_DATABASE_URL": database_url,
           "QBANK_S3_ENDPOINT": s3.endpoint, "QBANK_S3_ACCESS_KEY": "benchkey", "QBANK_S3_SECRET_KEY": "bench-secret-1",
           "QBANK_TOKEN_SECRET": TOKEN_SECRET, "QBANK_LOG_LEVEL": "WARNING"}
    log = (tmp / "serve.log").open("wb")
    proc, base = start_qbank(env, log)
    try:
        admin = {"Authorization": f"Bearer {asyncio.run(make_token(database_url, 'admin', 'bench-admin'))}"}
        http = httpx.Client(base_url=base, timeout=600)

        def ok(r: httpx.Response) -> Any:
            if r.status_code >= 300:
                raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
            return r.json()

        t = time.perf_counter()
        bank = generate_bank(args.seed, type_counts=tuple(args.type_counts))
        body, codes = blueprint_json(bank)
        ok(http.post("/api/v1/occupations", json={"code": OCCUPATION, "name": "电工", "levels": [3]}, headers=admin))
        ok(http.post(f"/api/v1/occupations/{OCCUPATION}/levels/3/blueprints", json=body, headers=admin))
        layout = ok(http.post(f"/api/v1/occupations/{OCCUPATION}/levels/3/layouts", json=LEVEL3, headers=admin))
        asyncio.run(seed_items(database_url, bank, codes))
        sites = [f"BS-{k + 1:02d}" for k in range(args.sites)]
        keys: dict[str, Path] = {}
        site_tokens: dict[str, str] = {}
        for code in sites:
            ok(http.post("/api/v1/sites", json={"code": code, "name": f"考点{code}"}, headers=admin))
            pem, public, _ = new_site_key()
            keys[code] = tmp / f"{code}.key"
            keys[code].write_bytes(pem)
            site_tokens[code] = asyncio.run(make_token(database_url, "site", f"site-{code}", code))
            ok(http.put(f"/api/v1/sites/{code}/public-key", json={"public_key": public},
                        headers={"Authorization": f"Bearer {site_tokens[code]}"}))
        per_site = -(-args.candidates // args.sites)
        rooms = [{"site": s, "code": "T1", "kind": "theory", "desks": per_site, "camera_views": ["front"]}
                 for s in sites]
        candidates = [{"number": f"2026{k:06d}", "name": f"考生{k}", "room": f"{sites[k % args.sites]}/T1",
                       "desk": k // args.sites + 1} for k in range(args.candidates)]
        session = ok(http.post("/api/v1/sessions", headers=admin, json={
            "occupation_code": OCCUPATION, "level": 3, "title": "基准", "date": "2026-12-03", "start": "09:00:00",
            "end": "10:30:00", "rooms": rooms, "candidates": candidates}))
        sid = session["id"]
        print(f"seeded {len(bank.pool)} approved items, {args.candidates} candidates at {args.sites} sites "
              f"in {time.perf_counter() - t:.1f} s", flush=True)

        timings: dict[str, float] = {}
        t = time.perf_counter()
        job = ok(http.post(f"/api/v1/sessions/{sid}/papers", headers=admin, json={
            "layout_id": layout["id"], "mode": args.mode, "seed": args.seed, "time_limit_s": args.time_limit,
            "max_shared": args.max_shared, **({"forms": args.forms} if args.mode == "parallel" else {})}))
        while job["status"] not in ("succeeded", "failed"):
            time.sleep(0.2)
            job = ok(http.get(f"/api/v1/jobs/{job['id']}", headers=admin))
        timings["assemble"] = time.perf_counter() - t
        if job["status"] != "succeeded":
            raise SystemExit(f"assembly failed: {json.dumps(job['error'], ensure_ascii=False)[:2000]}")
        t = time.perf_counter()
        sealed = ok(http.post(f"/api/v1/sessions/{sid}/seal", headers=admin))
        timings["seal"] = time.perf_counter() - t
        asyncio.run(set_window(database_url, sid, timedelta(minutes=-1)))
        packages: dict[str, Path] = {}
        t = time.perf_counter()
        for code in sites:
            r = http.get(f"/api/v1/sessions/{sid}/package", headers={"Authorization": f"Bearer {site_tokens[code]}"},
                         follow_redirects=True)
            r.raise_for_status()
            packages[code] = tmp / f"package-{code}.json"
            packages[code].write_bytes(r.content)
        timings["fetch"] = time.perf_counter() - t
        contents: dict[str, Any] = {}
        t = time.perf_counter()
        for code in sites:
            out = tmp / f"out-{code}"
            res = CliRunner().invoke(qbank_main, ["site", "unseal", str(packages[code]), "--key", str(keys[code]),
                                                  "--url", base, "--token", site_tokens[code], "-o", str(out)])
            if res.exit_code != 0:
                raise SystemExit(res.output)
            contents[code] = json.loads((out / "papers.json").read_text())
        timings["unseal"] = time.perf_counter() - t
        rng = random.Random(2)
        t = time.perf_counter()
        scored = 0
        for code in sites:
            responses = [{"candidate": c["number"], "answers": {
                str(q["version_id"]): [rng.randrange(len(q["options"]))] for q in c["questions"]}}
                for c in contents[code]["candidates"]]
            scored += ok(http.post(f"/api/v1/sessions/{sid}/responses", json={"responses": responses},
                                   headers={"Authorization": f"Bearer {site_tokens[code]}"}))["accepted"]
        timings["score"] = time.perf_counter() - t
        total = sum(timings.values())
        sizes = [p["size"] for p in sealed["packages"]]
        print(f"\nassemble → seal → fetch → unseal → score ({args.mode}, {job['result']['forms']} form(s), "
              f"{scored} candidates scored; packages {min(sizes) / 1e6:.2f}–{max(sizes) / 1e6:.2f} MB):")
        for k, v in timings.items():
            print(f"  {k:<9} {v:7.2f} s")
        print(f"  {'total':<9} {total:7.2f} s")

        code = sites[0]
        key = next(p["key"] for p in sealed["packages"] if p["site"] == code)
        archive = RetentionArchive(s3.endpoint, "benchkey", "bench-secret-1", "qbank-evidence", secure=False)
        presigned = archive.presigned_get(key, timedelta(hours=1))
        service_url = f"{base}/api/v1/sessions/{sid}/package"
        ways = {"redirect": (service_url, site_tokens[code]),  # the default: 307 to a presigned GET, followed
                "streamed": (f"{service_url}?delivery=stream", site_tokens[code]),  # the bytes through the service
                "presigned": (presigned, None)}  # the baseline: straight from S3
        rounds: list[dict[str, float]] = []
        for _ in range(args.rounds):
            mb: dict[str, float] = {}
            cpu: dict[str, str] = {}
            for name, (url, token) in ways.items():
                service0, s30 = cpu_seconds(proc.pid), cpu_seconds(s3.pid)
                got = load_from_second_process(url, token, args.concurrency, args.requests)
                mb[name] = got["bytes"] / got["seconds"] / 1e6
                per = {"service": cpu_seconds(proc.pid) - service0, "S3": cpu_seconds(s3.pid) - s30,
                       "client": got["client_cpu_s"]}
                cpu[name] = " + ".join(f"{who} {1000 * v / args.requests:.1f}" for who, v in per.items()) + (
                    f" = {1000 * sum(per.values()) / args.requests:.1f} ms; {sum(per.values()) / got['seconds']:.2f} "
                    f"cores busy")
            rounds.append(mb)
            print(f"download {args.requests} × {sizes[0] / 1e6:.2f} MB, {args.concurrency} connections: "
                  + ", ".join(f"{name} {v:7.1f} MB/s" for name, v in mb.items())
                  + f"; redirect/presigned {mb['redirect'] / mb['presigned']:.2f}, "
                    f"streamed/presigned {mb['streamed'] / mb['presigned']:.2f}", flush=True)
            for name, line in cpu.items():
                print(f"  CPU per download, {name}: {line}", flush=True)
        # the service's share alone: the 307 answers, not followed (what a fetch costs the service)
        service0 = cpu_seconds(proc.pid)
        got = load_from_second_process(service_url, site_tokens[code], args.concurrency, args.requests, follow=False)
        print(f"  the service's 307 answers alone (not followed): {args.requests / got['seconds']:.0f} fetches/s, "
              f"service CPU {1000 * (cpu_seconds(proc.pid) - service0) / args.requests:.1f} ms per fetch", flush=True)
        best = {name: max(r[name] for r in rounds) for name in ways}
        print(f"best of {len(rounds)}: " + ", ".join(f"{name} {v:.1f} MB/s" for name, v in best.items())
              + f"; redirect/presigned {best['redirect'] / best['presigned']:.2f}, "
                f"streamed/presigned {best['streamed'] / best['presigned']:.2f}")
    finally:
        stop(proc)
        log.close()
        s3.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--type-counts", type=int, nargs=3, default=[260, 880, 60], metavar=("TF", "SINGLE", "MULTI"),
                   help="items of each type in the generated bank (default 1,200)")
    p.add_argument("--mode", choices=["parallel", "per_candidate"], default="parallel")
    p.add_argument("--forms", type=int, default=4, help="parallel forms")
    p.add_argument("--max-shared", type=int, default=None, help="per_candidate: most items two forms share (60)")
    p.add_argument("--time-limit", type=float, default=120.0, help="solver seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--database-url", default="", help="e.g. postgresql+asyncpg://root@127.0.0.1/EMPTY_DB")
    p.add_argument("--concurrency", type=int, default=16, help="download connections")
    p.add_argument("--requests", type=int, default=200, help="downloads per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternating service/S3 measurements")
    p.add_argument("--load-client", default="", help=argparse.SUPPRESS)
    p.add_argument("--token", default="", help=argparse.SUPPRESS)
    p.add_argument("--no-follow", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.load_client:
        load_client(args)
        return
    if args.mode == "per_candidate" and args.max_shared is None:
        args.max_shared = 60
    run(args)


if __name__ == "__main__":
    main()
