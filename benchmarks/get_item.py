"""GET one item by id under load from a second process on loopback, against /health of the same server.

Starts `qbank serve` on a free port (temporary data dir, SQLite unless --database-url; the service starts its
own local S3 server), seeds an occupation, a blueprint and items through the API, then loads
`GET /api/v1/items/{id}` and the baseline `GET /health` (a trivial handler: one `SELECT 1`, no token) with wrk
(Debian's, installed with apt-get when missing and running as root), else with a bounded httpx/asyncio loop in a
subprocess. Prints requests/s and p99
latency of each, and the ratios. The server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
from serving import ROOT, start_qbank, stop


def qbank(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "qbank", *args], env=env, check=True, capture_output=True,
                          text=True, cwd=ROOT).stdout.strip()


def seed(base: str, headers: dict[str, str], items: int) -> int:
    code = "6-31-01-03"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        c.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]}).raise_for_status()
        points = [{"code": f"{i + 1:03d}", "name": f"鉴定点{i + 1}", "importance": "X"} for i in range(10)]
        scopes = [{"code": "01", "name": "基础知识", "weight": 100, "points": points}]
        c.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json={"scopes": scopes}).raise_for_status()
        ids = []
        for i in range(items):
            r = c.post("/api/v1/items", json={
                "occupation_code": code, "level": 3, "type": "single_choice",
                "stem": f"第{i}号题：三相异步电动机第{i * 7919 % 10007}种启动方式的特点是（ ）。",
                "options": ["降低启动电流", "提高启动转矩", "减小体积", "提高效率"], "answer": ["A"],
                "point_code": f"{i % 10 + 1:03d}", "explanation": "说明" * 50, "tags": ["电机", "启动"]})
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids[len(ids) // 2]


def install_wrk() -> None:
    """The benchmark's setup: Debian's wrk, when this runs as root (else the Python load generator is used)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    if subprocess.run(["apt-get", *lock, "install", "-y", "-qq", "wrk"], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", *lock, "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", *lock, "install", "-y", "-qq", "wrk"], env=env, capture_output=True)


def run_wrk(url: str, headers: dict[str, str], seconds: int, connections: int, threads: int) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    assert m, out
    p99_ms = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} non-2xx answers under load\n{out}")
    return {"rps": rps, "p99_ms": p99_ms}


async def _python_load(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def run_python(url: str, headers: dict[str, str], seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--load-only", url, "--duration", str(seconds),
                          "--connections", str(connections), "--header-json", json.dumps(headers)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint and round")
    ap.add_argument("--rounds", type=int, default=2, help="alternate baseline and item this many times")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--items", type=int, default=50, help="items to seed")
    ap.add_argument("--database-url", default="", help="e.g. postgresql+asyncpg://root@127.0.0.1:5432/DB "
                    "(an empty, migratable database); default: SQLite in the temporary data dir")
    ap.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--load-only", help=argparse.SUPPRESS)
    ap.add_argument("--header-json", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_only:
        print(json.dumps(asyncio.run(_python_load(args.load_only, json.loads(args.header_json), args.duration,
                                                  args.connections))))
        return
    generator = args.load_generator
    if generator in ("auto", "wrk") and not shutil.which("wrk"):
        install_wrk()
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"

    with tempfile.TemporaryDirectory(prefix="qbank-bench-") as tmp:
        env = {**os.environ, "QBANK_DATA_DIR": tmp, "QBANK_TOKEN_SECRET": "bench-secret", "QBANK_LOG_LEVEL": "WARNING",
               "QBANK_S3_ENDPOINT": ""}
        if args.database_url:
            env["QBANK_DATABASE_URL"] = args.database_url
        else:
            env.pop("QBANK_DATABASE_URL", None)
        qbank("db", "upgrade", env=env)
        token = qbank("token", "create", "--role", "admin", "--name", "bench", env=env).splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        proc, base = start_qbank(env)
        try:
            item_id = seed(base, headers, args.items)
            item_url = f"{base}/api/v1/items/{item_id}"
            assert httpx.get(item_url, headers=headers).status_code == 200
            results: dict[str, list[dict[str, float]]] = {"health": [], "item": []}
            for _ in range(args.rounds):
                for name, url, hdrs in (("health", f"{base}/health", {}), ("item", item_url, headers)):
                    if generator == "wrk":
                        results[name].append(run_wrk(url, hdrs, args.duration, args.connections, args.threads))
                    else:
                        results[name].append(run_python(url, hdrs, args.duration, args.connections))
        finally:
            stop(proc)

    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(f"GET one item under load: {backend}, load generator {generator}, {args.connections} connections, "
          f"{args.duration} s x {args.rounds} rounds, server pid {proc.pid} stopped")
    print(f"{'endpoint':<28}{'round':>6}{'req/s':>10}{'p99 ms':>10}")
    for name, label in (("health", "GET /health (baseline)"), ("item", f"GET /api/v1/items/{item_id}")):
        for i, r in enumerate(results[name], 1):
            print(f"{label:<28}{i:>6}{r['rps']:>10.0f}{r['p99_ms']:>10.2f}")
    best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
    print(f"ratio item/health (best rounds): throughput {best['item']['rps'] / best['health']['rps']:.2f}x, "
          f"p99 {best['item']['p99_ms'] / best['health']['p99_ms']:.2f}x")
    summary: dict[str, Any] = {"backend": backend, "generator": generator, "results": results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
