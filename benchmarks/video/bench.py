"""Video engine benchmark: videoaudit.analyse vs ffmpeg blackdetect+freezedetect, and archive upload vs fput_object.

Usage:
    .venv/bin/python benchmarks/video/bench.py [--duration 3600] [--out benchmarks/out] [--archive-mb 1024]

Generates (once, cached in --out) a 1080p and a 720p H.264 25 fps clip with a 2 s GOP and injected defects
(black, frozen, blurred, covered, 3–30 s) plus still-but-live stretches, and a clean 1080p clip (still
stretches only); see footage.py. Prints a Markdown report and writes results.json next to the clips.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from footage import CLIPS, KINDS, prepare

from evidence import LocalS3Server, RetentionArchive
from videoaudit import QualityConfig, analyse

PICTURE = set(KINDS)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def score(found: list[tuple[str, float, float]], truth: list[dict[str, Any]], min_len: float = 5.0) -> dict[str, Any]:
    """Match findings to injected defects of the same kind (overlap). Edge errors for the matched ones."""
    injected = [d for d in truth if d["kind"] in PICTURE]
    hits, misses, errs = 0, [], []
    big = [d for d in injected if d["end"] - d["start"] >= min_len]
    big_hits = 0
    for d in injected:
        m = [f for f in found if f[0] == d["kind"] and f[1] < d["end"] and f[2] > d["start"]]
        if m:
            hits += 1
            s = min(f[1] for f in m)
            e = max(f[2] for f in m)
            errs.append((abs(s - d["start"]), abs(e - d["end"])))
            if d in big and abs(s - d["start"]) <= 2 and abs(e - d["end"]) <= 2:
                big_hits += 1
        else:
            misses.append(d)
    false = [
        f
        for f in found
        if f[0] in PICTURE and not any(d["kind"] == f[0] and f[1] < d["end"] and f[2] > d["start"] for d in injected)
    ]
    still = [d for d in truth if d["kind"] == "still"]
    still_false = [f for f in false if any(f[1] < d["end"] and f[2] > d["start"] for d in still)]
    return {
        "injected": len(injected),
        "found": hits,
        "injected_5s": len(big),
        "found_5s_within_2s": big_hits,
        "max_start_err": round(max((e[0] for e in errs), default=0.0), 2),
        "max_end_err": round(max((e[1] for e in errs), default=0.0), 2),
        "mean_start_err": round(sum(e[0] for e in errs) / len(errs), 2) if errs else 0.0,
        "mean_end_err": round(sum(e[1] for e in errs) / len(errs), 2) if errs else 0.0,
        "false_alarms": len(false),
        "false_alarms_in_still": len(still_false),
        "missed": [f"{d['kind']} {d['start']}-{d['end']}" for d in misses],
        "false": [f"{f[0]} {f[1]}-{f[2]}" for f in false],
    }


def run_ours(path: Path, truth: dict[str, Any]) -> dict[str, Any]:
    cfg = QualityConfig()
    t = time.perf_counter()
    rep = analyse(path, cfg)
    wall = time.perf_counter() - t
    found = [(f.kind, f.start, f.end) for f in rep.findings]
    res = score(found, truth["defects"])
    dur = rep.duration
    res.update(
        tool="videoaudit.analyse",
        wall_s=round(wall, 2),
        cpu_s=rep.cpu_seconds,
        x_realtime_per_core=round(dur / rep.cpu_seconds, 1),
        x_realtime_wall=round(dur / wall, 1),
        cpu_s_per_hour=round(rep.cpu_seconds / dur * 3600, 2),
        keyframes=rep.keyframes_decoded,
        other_findings=[f"{f.kind} {f.start}-{f.end}" for f in rep.findings if f.kind not in PICTURE],
    )
    return res


_BL = re.compile(r"black_start:([\d.]+) black_end:([\d.]+)")
_FS = re.compile(r"lavfi\.freezedetect\.freeze_start: ([\d.]+)")
_FE = re.compile(r"lavfi\.freezedetect\.freeze_end: ([\d.]+)")


def run_baseline(path: Path, truth: dict[str, Any]) -> dict[str, Any]:
    c0, t = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-vf", "blackdetect,freezedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = time.perf_counter() - t, _children_cpu() - c0
    found: list[tuple[str, float, float]] = [("black", float(a), float(b)) for a, b in _BL.findall(proc.stderr)]
    starts = [float(x) for x in _FS.findall(proc.stderr)]
    ends = [float(x) for x in _FE.findall(proc.stderr)]
    for i, s in enumerate(starts):
        found.append(("frozen", s, ends[i] if i < len(ends) else truth["duration"]))
    res = score(found, [d for d in truth["defects"] if d["kind"] in ("black", "frozen", "still")])
    dur = truth["duration"]
    res.update(
        tool="ffmpeg blackdetect,freezedetect (black+frozen only)",
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 2),
        x_realtime_per_core=round(dur / cpu, 1),
        x_realtime_wall=round(dur / wall, 1),
        cpu_s_per_hour=round(cpu / dur * 3600, 1),
    )
    return res


def run_archive(out: Path, megabytes: int, rounds: int = 2) -> dict[str, Any]:
    src = out / f"upload_{megabytes}MB.bin"
    if not src.exists() or src.stat().st_size != megabytes << 20:
        with src.open("wb") as f:
            for _ in range(megabytes):
                f.write(os.urandom(1 << 20))
    data_dir = out / "s3bench"
    shutil.rmtree(data_dir, ignore_errors=True)
    ours: list[float] = []
    theirs: list[float] = []
    with LocalS3Server(data_dir) as srv:
        arch = RetentionArchive(srv.endpoint, srv.access_key, srv.secret_key, bucket="bench")
        arch.ensure_bucket()
        for r in range(rounds):
            with src.open("r+b") as f:  # new bytes each round, so no upload is recognised as a duplicate
                f.seek(0)
                f.write(os.urandom(32))
            for which in ("fput", "put") if r % 2 == 0 else ("put", "fput"):  # alternate the order
                t = time.perf_counter()
                if which == "fput":
                    arch.client.fput_object(
                        "bench",
                        f"plain/{r}",
                        str(src),
                        part_size=arch.part_size,
                        num_parallel_uploads=arch.parallel_uploads,
                    )
                    theirs.append(time.perf_counter() - t)
                else:
                    obj = arch.put("bench", src)
                    ours.append(time.perf_counter() - t)
                    assert not obj.already_stored and obj.size == src.stat().st_size
    shutil.rmtree(data_dir, ignore_errors=True)
    mb = src.stat().st_size / 1e6
    best_ours, best_theirs = min(ours), min(theirs)
    return {
        "size_MB": round(mb),
        "put_s": [round(x, 2) for x in ours],
        "fput_object_s": [round(x, 2) for x in theirs],
        "put_MBps": round(mb / best_ours, 1),
        "fput_object_MBps": round(mb / best_theirs, 1),
        "ratio": round(best_theirs / best_ours, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds of footage per clip (default 3600)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="cache dir for clips (gitignored)")
    ap.add_argument("--archive-mb", type=int, default=1024, help="size of the upload test file; 0 skips it")
    ap.add_argument("--no-baseline", action="store_true", help="skip the ffmpeg baseline")
    ap.add_argument("--clips", default=",".join(CLIPS), help="which clips: " + ",".join(CLIPS))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = tuple(args.clips.split(","))
    t = time.perf_counter()
    paths = prepare(args.out, args.duration, names)
    print(f"clips ready in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    results: dict[str, Any] = {"duration": args.duration, "clips": {}}
    for name, path in paths.items():
        truth = json.loads(path.with_suffix(".truth.json").read_text())
        entry = {"ours": run_ours(path, truth)}
        if not args.no_baseline:
            entry["baseline"] = run_baseline(path, truth)
        results["clips"][name] = entry
        print(name, json.dumps(entry, ensure_ascii=False), file=sys.stderr)
    if args.archive_mb:
        results["archive"] = run_archive(args.out, args.archive_mb)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(
        "| clip | tool | x realtime/core | CPU-s per hour | found/injected | ≥5 s within 2 s | max start/end err (s) "
        "| false alarms (in still) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, entry in results["clips"].items():
        for r in entry.values():
            print(
                f"| {name} | {r['tool']} | {r['x_realtime_per_core']} | {r['cpu_s_per_hour']} | "
                f"{r['found']}/{r['injected']} | {r['found_5s_within_2s']}/{r['injected_5s']} | "
                f"{r['max_start_err']}/{r['max_end_err']} | {r['false_alarms']} ({r['false_alarms_in_still']}) |"
            )
    if "archive" in results:
        a = results["archive"]
        print(
            f"\narchive put {a['size_MB']} MB: {a['put_MBps']} MB/s vs fput_object {a['fput_object_MBps']} MB/s "
            f"= {a['ratio']}"
        )


if __name__ == "__main__":
    main()
