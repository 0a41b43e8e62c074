"""Issue 13 corpus benchmark: videoaudit.analyse on generated footage with ground truth, against the full-decode
ffmpeg ``blackdetect,freezedetect`` baseline in the same run.

Usage:
    .venv/bin/python benchmarks/video/corpus_bench.py            # quick: ~10 min on 2 loaded cores
    .venv/bin/python benchmarks/video/corpus_bench.py --full     # longer clips, more of them

The corpus (``corpus.py``, seeded): H.264 and HEVC; 15, 25, 30 fps; GOP 1–10 s; 640×360 to 1080p; scenes
bright, dim, low-contrast (life), IR greyscale, still room with / without clock, exposure steps, slow pan, a
third occluded; defects black, frozen (repeated frames), blurred, covered dark and bright (5–20 s), gaps and
truncation. Plus two 1080p H.264 clips (GOP 2 s and 8 s) for the speed per core.

Reported: per kind recall (found; found with both edges within 1 s), precision, edge error median / max,
false-alarm seconds per clean hour, speed per core (x realtime) with and without the edge decoding, and the
baseline's figures. Writes ``<out>/corpus_results.json`` and prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from corpus import DEFECTS, SCENES, Clip, Defect, generate, kind_of, truncate

from videoaudit import QualityConfig, analyse

LOOSE = QualityConfig(min_width=0, min_height=0, min_fps=0, min_bit_rate=0)
KINDS = ("black", "frozen", "blurred", "covered", "gap", "corrupt")
SIZES = ((640, 360, "1200k"), (1280, 720, "2500k"), (1920, 1080, "4M"))
GOPS = (1.0, 2.0, 2.0, 4.0, 6.0, 8.0, 10.0)


def plan(seed: int, count: int, duration: float) -> list[tuple[str, Clip, float | None]]:
    """``count`` clips: (name, spec, truncate fraction or None). HEVC at 360p/720p only (encoding time)."""
    rng = random.Random(seed)
    out: list[tuple[str, Clip, float | None]] = []
    for i in range(count):
        codec = "hevc" if i % 3 == 2 else "h264"
        sizes = SIZES[:2] if codec == "hevc" else SIZES
        w, h, rate = sizes[i % len(sizes)] if i % 4 else SIZES[0]
        gop = GOPS[i % len(GOPS)]
        fps = (15, 25, 30)[i % 3]
        scene = SCENES[i % len(SCENES)]
        defects: list[Defect] = []
        t = rng.uniform(4.0, 8.0)
        # a blurred uniform texture (the life scene) is a uniform picture: it reads as covered, as it looks
        kinds = [k for k in DEFECTS if not (scene == "lowcontrast" and k == "blurred")]
        rng.shuffle(kinds)
        if i % 5 == 4:  # room for a gap
            kinds = kinds[:1]
        for kind in kinds:
            length = rng.uniform(5.0, 20.0)
            if t + length > duration - 6:
                break
            defects.append(Defect(kind, round(t, 2), round(t + length, 2)))
            t += length + rng.uniform(max(6.0, 1.5 * gop), 14.0)
        gap = None
        if i % 5 == 4 and t + 10 < duration - 5:
            a = round(t + 2.0, 2)
            gap = (a, a + round(rng.uniform(3.0, 8.0), 2))
        clip = Clip(
            scene=scene,
            codec=codec,
            width=w,
            height=h,
            fps=fps,
            gop=gop,
            duration=duration,
            noise=rng.choice((4, 8)),
            clock=rng.random() < 0.6,
            bitrate=rate,
            defects=defects,
            gap=gap,
        )
        cut = round(rng.uniform(0.75, 0.92), 3) if i % 6 == 5 else None
        out.append((f"c{i:02d}_{scene}_{codec}_{h}p{fps}_g{gop:g}", clip, cut))
    return out


def truth_of(clip: Clip, cut_end: float | None) -> list[tuple[str, float, float]]:
    spans = [(kind_of(d.kind), d.start, d.end) for d in clip.defects]
    if clip.gap:
        spans.append(("gap", *clip.gap))
    if cut_end is not None:
        spans = [(k, a, min(b, cut_end)) for k, a, b in spans if a < cut_end - 1.0]
        spans.append(("corrupt", cut_end, clip.duration))
    return spans


def score(
    found: list[tuple[str, float, float]], truth: list[tuple[str, float, float]], duration: float
) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {k: {"injected": 0, "found": 0, "edges_1s": 0, "errs": []} for k in KINDS}
    for k, a, b in truth:
        p = per[k]
        p["injected"] += 1
        m = [f for f in found if f[0] == k and f[1] < b and f[2] > a]
        if m:
            p["found"] += 1
            s, e = min(f[1] for f in m), max(f[2] for f in m)
            p["errs"] += [abs(s - a), abs(e - b)]
            if abs(s - a) <= 1.0 and abs(e - b) <= 1.0:
                p["edges_1s"] += 1
    false = [f for f in found if not any(t[0] == f[0] and f[1] < t[2] and f[2] > t[1] for t in truth)]
    matched = len(found) - len(false)
    # false-alarm seconds: finding time outside every true defect (±1 s), over the clean time of the clip
    busy = [(a - 1.0, b + 1.0) for _, a, b in truth]
    fa = 0.0
    for _, a, b in found:
        cur = [(a, b)]
        for x, y in busy:
            nxt = []
            for s, e in cur:
                if y <= s or x >= e:
                    nxt.append((s, e))
                    continue
                if s < x:
                    nxt.append((s, x))
                if e > y:
                    nxt.append((y, e))
            cur = nxt
        fa += sum(e - s for s, e in cur)
    clean = max(0.0, duration - sum(min(duration, b + 1) - max(0.0, a - 1) for _, a, b in truth))
    return {
        "per": per,
        "false": [f"{k} {a:.1f}-{b:.1f}" for k, a, b in false],
        "matched": matched,
        "findings": len(found),
        "false_seconds": fa,
        "clean_seconds": clean,
    }


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


_BL = re.compile(r"black_start:([\d.]+) black_end:([\d.]+)")
_FS = re.compile(r"lavfi\.freezedetect\.freeze_start: ([\d.]+)")
_FE = re.compile(r"lavfi\.freezedetect\.freeze_end: ([\d.]+)")


def baseline(path: Path, duration: float) -> tuple[list[tuple[str, float, float]], float]:
    """Full decode with ``blackdetect,freezedetect`` (one thread, as ours): findings and CPU seconds."""
    c0 = children_cpu()
    proc = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-threads",
            "1",
            "-i",
            str(path),
            "-vf",
            "blackdetect,freezedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = children_cpu() - c0
    found: list[tuple[str, float, float]] = [("black", float(a), float(b)) for a, b in _BL.findall(proc.stderr)]
    starts = [float(x) for x in _FS.findall(proc.stderr)]
    ends = [float(x) for x in _FE.findall(proc.stderr)]
    found += [("frozen", s, ends[i] if i < len(ends) else duration) for i, s in enumerate(starts)]
    return found, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="48 clips of 300 s and 1080p speed clips of 1200 s")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/corpus"))
    ap.add_argument("--jobs", type=int, default=2, help="clips encoded at once")
    ap.add_argument("--count", type=int, help="override the number of corpus clips")
    ap.add_argument("--duration", type=float, help="override the corpus clips' length (s)")
    ap.add_argument("--speed-length", type=float, help="override the 1080p speed clips' length (s)")
    args = ap.parse_args()
    count, duration, speed_len = (48, 300.0, 1200.0) if args.full else (16, 60.0, 180.0)
    count, duration, speed_len = args.count or count, args.duration or duration, args.speed_length or speed_len
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    clips = plan(args.seed, count, duration)
    speed = [
        (
            f"speed1080_g{g:g}",
            Clip(
                width=1920,
                height=1080,
                fps=25,
                gop=g,
                duration=speed_len,
                bitrate="4M",
                # two defects per 3 minutes (40 an hour: more than a real camera has)
                defects=[
                    Defect(k, round(f * speed_len + 0.3, 2), round(f * speed_len + 12.7, 2))
                    for k, f in (("covered_dark", 0.25), ("frozen", 0.65))
                ],
            ),
            None,
        )
        for g in (2.0, 8.0)
    ]
    t = time.perf_counter()

    def make(item: tuple[str, Clip, float | None]) -> tuple[str, Clip, Path, float | None]:
        name, clip, cut = item
        path = generate(clip, out / f"{name}.mp4")
        cut_end = None
        if cut is not None:
            cut_path = out / f"{name}_cut.mp4"
            cut_end = truncate(path, cut_path, cut)
            path = cut_path
        return name, clip, path, cut_end

    with ThreadPoolExecutor(args.jobs) as pool:
        made = list(pool.map(make, clips + speed))
    gen_s = time.perf_counter() - t
    print(f"corpus ready in {gen_s:.0f} s", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for name, clip, path, cut_end in made:
        truth = truth_of(clip, cut_end)
        rep = analyse(path, LOOSE)
        found = [(f.kind, f.start, f.end) for f in rep.findings]
        base_found, base_cpu = baseline(path, clip.duration)
        base_truth = [x for x in truth if x[0] in ("black", "frozen")]
        row = {
            "name": name,
            "clip": asdict(clip),
            "cut_end": cut_end,
            "ours": score(found, truth, clip.duration),
            "baseline": score(base_found, base_truth, clip.duration),
            "cpu": rep.cpu_seconds,
            "base_cpu": round(base_cpu, 3),
            "seconds": rep.decodable,
            "edge_frames": rep.edge_frames_decoded,
            "packets": rep.packets,
            "findings": [f"{k} {a:.1f}-{b:.1f}" for k, a, b in found],
        }
        if name.startswith("speed"):
            keys_only = analyse(path, msgspec_replace(LOOSE, edge_tolerance=1e9))
            row["cpu_keys_only"] = keys_only.cpu_seconds
        rows.append(row)
        print(name, json.dumps({k: row[k] for k in ("findings", "cpu", "base_cpu", "edge_frames")}), file=sys.stderr)
    report(rows, gen_s, out, args)


def msgspec_replace(cfg: QualityConfig, **kw: Any) -> QualityConfig:
    import msgspec

    return msgspec.structs.replace(cfg, **kw)


def report(rows: list[dict[str, Any]], gen_s: float, out: Path, args: argparse.Namespace) -> None:
    def agg(which: str, kinds: tuple[str, ...]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        for k in kinds:
            inj = sum(r[which]["per"][k]["injected"] for r in rows)
            fnd = sum(r[which]["per"][k]["found"] for r in rows)
            e1 = sum(r[which]["per"][k]["edges_1s"] for r in rows)
            errs = [e for r in rows for e in r[which]["per"][k]["errs"]]
            res[k] = {
                "injected": inj,
                "found": fnd,
                "edges_1s": e1,
                "edge_median": round(statistics.median(errs), 2) if errs else None,
                "edge_max": round(max(errs), 2) if errs else None,
            }
        fs = sum(r[which]["findings"] for r in rows)
        mt = sum(r[which]["matched"] for r in rows)
        res["precision"] = round(mt / fs, 4) if fs else None
        fa = sum(r[which]["false_seconds"] for r in rows)
        clean = sum(r[which]["clean_seconds"] for r in rows)
        res["false_seconds"] = round(fa, 1)
        res["clean_hours"] = round(clean / 3600, 3)
        res["false_s_per_clean_hour"] = round(fa / (clean / 3600), 1) if clean else None
        return res

    corpus = [r for r in rows if not r["name"].startswith("speed")]
    ours, base = agg("ours", KINDS), agg("baseline", ("black", "frozen"))
    # recall by GOP class, all kinds
    by_gop: dict[str, list[int]] = {}
    for r in rows:
        g = r["clip"]["gop"]
        cls = "≤2 s" if g <= 2 else "4–6 s" if g <= 6 else "8–10 s"
        acc = by_gop.setdefault(cls, [0, 0, 0])
        for k in KINDS:
            acc[0] += r["ours"]["per"][k]["injected"]
            acc[1] += r["ours"]["per"][k]["found"]
            acc[2] += r["ours"]["per"][k]["edges_1s"]
    speed = []
    for r in rows:
        if r["name"].startswith("speed"):
            speed.append(
                {
                    "clip": r["name"],
                    "seconds": r["seconds"],
                    "cpu": r["cpu"],
                    "x_per_core": round(r["seconds"] / r["cpu"], 1),
                    "cpu_keys_only": r["cpu_keys_only"],
                    "x_per_core_keys_only": round(r["seconds"] / r["cpu_keys_only"], 1),
                    "edge_frames": r["edge_frames"],
                    "frames": r["packets"],
                    "base_cpu": r["base_cpu"],
                    "base_x_per_core": round(r["seconds"] / r["base_cpu"], 1),
                    "ratio": round(r["base_cpu"] / r["cpu"], 1),
                }
            )
    footage = sum(r["seconds"] for r in rows)
    res = {
        "args": {"full": args.full, "seed": args.seed},
        "generation_s": round(gen_s),
        "clips": len(rows),
        "footage_s": round(footage),
        "ours": ours,
        "baseline": base,
        "by_gop": by_gop,
        "speed": speed,
        "corpus_cpu": round(sum(r["cpu"] for r in corpus), 2),
        "corpus_base_cpu": round(sum(r["base_cpu"] for r in corpus), 2),
        "rows": rows,
    }
    (out / "corpus_results.json").write_text(json.dumps(res, indent=1, ensure_ascii=False))
    print(f"{len(rows)} clips, {footage / 60:.1f} min of footage, generated in {gen_s:.0f} s\n")
    print(
        "| kind | injected | found | both edges within 1 s | edge error median / max (s) "
        "| baseline found (within 1 s) |"
    )
    print("|---|---|---|---|---|---|")
    for k in KINDS:
        o = ours[k]
        b = base.get(k)
        bs = f"{b['found']}/{b['injected']} ({b['edges_1s']})" if b else "–"
        print(
            f"| {k} | {o['injected']} | {o['found']} | {o['edges_1s']} | {o['edge_median']} / {o['edge_max']} | {bs} |"
        )
    print(
        f"\nprecision {ours['precision']} (baseline {base['precision']}); false-alarm seconds "
        f"{ours['false_seconds']} over {ours['clean_hours']} clean hours = {ours['false_s_per_clean_hour']} per "
        f"clean hour (baseline {base['false_s_per_clean_hour']})"
    )
    print("\n| GOP | injected | found | edges within 1 s |\n|---|---|---|---|")
    for cls, (i, f, e) in sorted(by_gop.items()):
        print(f"| {cls} | {i} | {f} | {e} |")
    print("\n| 1080p clip | x realtime/core | keys only | edge frames decoded / frames | baseline x/core | ratio |")
    print("|---|---|---|---|---|---|")
    for s in speed:
        print(
            f"| {s['clip']} | {s['x_per_core']} | {s['x_per_core_keys_only']} | {s['edge_frames']}/{s['frames']} "
            f"| {s['base_x_per_core']} | {s['ratio']} |"
        )
    print(f"\ncorpus CPU: ours {res['corpus_cpu']} s, baseline {res['corpus_base_cpu']} s")


if __name__ == "__main__":
    main()
