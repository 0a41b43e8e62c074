"""One form per candidate: the engine against PuLP + CBC's time per form, on the benchmark bank and on a blueprint
shaped like a published level-3 table.

Run from the repository root:  python -m benchmarks.assembly.candidates --help

Cases:
  d   200 candidates, any two forms share <= 47 items; the benchmark bank (1,200 items, 300 appraisal points,
      3-level scope tree; paperbuild.synthetic.generate_bank(seed)), level-3 layout (40 + 140 + 10 items)
  f   30 candidates, shared <= 47, the service's default 30 s: examples/blueprint-level3.json (6 levels, 278 leaf
      scopes, 490 appraisal points, weights 0 and without a weight of their own) with 2,200 generated items
  g   200 candidates, shared <= 47, on the same level-3 table and bank

For each: wall and CPU seconds (process, all threads), seconds to the first and to the last form, violations found
by the independent checker (paperbuild.check_forms), each form's X coverage against the single-form optimum
(the proven optimum of one form from the same bank; the worst form is shown), the largest number of items two
forms share. Baseline in the same run: PuLP + CBC (a separate process, as shipped with PuLP) solving the plain
one-form model of the same bank (median of 3 runs), times N: what making the forms one by one with CBC costs
before any cap across forms is even checked.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from benchmarks.assembly.baselines import plain_cbc
from benchmarks.assembly.run import publish

import paperbuild as pb
from paperbuild.problem import compile_problem
from paperbuild.report import coverage
from paperbuild.synthetic import bank_for_blueprint, blueprint_from_tree, generate_bank, level3_layout

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "blueprint-level3.json"
CASES: dict[str, dict[str, Any]] = {
    "d": {"bank": "benchmark", "forms": 200, "max_shared": 47, "time_limit": 120.0},
    "f": {"bank": "level3", "forms": 30, "max_shared": 47, "time_limit": 30.0},
    "g": {"bank": "level3", "forms": 200, "max_shared": 47, "time_limit": 120.0},
}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def banks(seed: int) -> dict[str, tuple[pb.ItemPool, pb.Blueprint]]:
    bench = generate_bank(seed)
    table = blueprint_from_tree(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    return {"benchmark": (bench.pool, bench.blueprint), "level3": (bank_for_blueprint(table, seed), table)}


def single_form_x(pool: pb.ItemPool, bp: pb.Blueprint, layout: pb.Layout) -> tuple[int, str]:
    res = pb.assemble(pool, bp, layout, pb.AssemblyRequest(time_limit=60))
    return res.forms[0].report.covered["X"], str(res.status)


def cbc_per_form(pool: pb.ItemPool, bp: pb.Blueprint, layout: pb.Layout, runs: int = 3) -> tuple[float, float, int]:
    """Median wall and CPU seconds of PuLP + CBC for one form (model built in Python, CBC's own process), and the
    X coverage it found."""
    prob = compile_problem(pool, bp, layout, pb.AssemblyRequest())
    walls, cpus = [], []
    x = 0
    for _ in range(runs):
        c0, p0 = _children_cpu(), time.process_time()
        r = plain_cbc(prob, 1, None, None, None, 60.0)
        walls.append(r.wall)
        cpus.append(_children_cpu() - c0 + time.process_time() - p0)
        if r.forms:
            x = coverage(prob, np.array(r.forms[0], dtype=np.int64))[0]
    return statistics.median(walls), statistics.median(cpus), x


def run_case(name: str, pool: pb.ItemPool, bp: pb.Blueprint, layout: pb.Layout, seed: int) -> dict[str, Any]:
    spec = CASES[name]
    req = pb.AssemblyRequest(forms=spec["forms"], max_shared=spec["max_shared"], time_limit=spec["time_limit"],
                             seed=seed)
    c0, t0 = time.process_time(), time.perf_counter()
    res = pb.assemble_per_candidate(pool, bp, layout, req)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    forms = res.forms or res.partial_forms
    viol = pb.check_forms(pool, bp, layout, req, forms)
    return {"case": name, "status": str(res.status), "complete": res.complete, "made": len(forms),
            "forms": req.forms, "wall": wall, "cpu": cpu, "first": res.stats.time_to_first_form,
            "last": res.stats.time_to_last_form, "violations": len(viol),
            "min_x": min(f.report.covered["X"] for f in forms) if forms else None,
            "max_shared": res.max_pairwise_shared, "time_limit": req.time_limit}


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.assembly.candidates", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="dfg", help="which cases to run (default: dfg)")
    ap.add_argument("--seed", type=int, default=0, help="bank and request seed (default 0)")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    layout = level3_layout()
    all_banks = banks(args.seed)
    pb.assemble(*all_banks["benchmark"], layout, pb.AssemblyRequest(time_limit=10))  # warm-up, not timed
    opt: dict[str, tuple[int, str]] = {}
    base: dict[str, tuple[float, float, int]] = {}
    rows = []
    for name in args.cases:
        key = CASES[name]["bank"]
        pool, bp = all_banks[key]
        if key not in opt:
            opt[key] = single_form_x(pool, bp, layout)
        rows.append(run_case(name, pool, bp, layout, args.seed))
        r = rows[-1]
        print(f"[{name}] {r['status']} {r['made']}/{r['forms']} forms in {r['wall']:.2f} s (cpu {r['cpu']:.2f} s), "
              f"first form {_f(r['first'])} s, last {_f(r['last'])} s, violations {r['violations']}, "
              f"worst X {r['min_x']} of {opt[key][0]}", flush=True)
    for name in args.cases:
        key = CASES[name]["bank"]
        if key not in base:
            base[key] = cbc_per_form(*all_banks[key], layout)
            print(f"[{key}] pulp+cbc one form: {base[key][0]:.3f} s wall, {base[key][1]:.3f} s cpu, "
                  f"X {base[key][2]}", flush=True)
    lines = ["| case | bank | forms made | status | wall s | cpu s | first form s | last form s | violations | "
             "worst form X / single-form optimum | max shared | CBC one form s (wall / cpu) | CBC × N s (wall / cpu) | "
             "ratio wall / cpu |", "|---" * 14 + "|"]
    for r in rows:
        key = CASES[r["case"]]["bank"]
        bw, bc, _ = base[key]
        x_opt = opt[key][0]
        ratio = f"{r['min_x']} / {x_opt} = {r['min_x'] / x_opt:.3f}" if r["min_x"] is not None else "–"
        lines.append(f"| {r['case']} | {key} | {r['made']}/{r['forms']} | {r['status']} | {r['wall']:.2f} | "
                     f"{r['cpu']:.2f} | {_f(r['first'])} | {_f(r['last'])} | {r['violations']} | {ratio} | "
                     f"{r['max_shared']} | {bw:.3f} / {bc:.3f} | {bw * r['forms']:.1f} / {bc * r['forms']:.1f} | "
                     f"{r['wall'] / (bw * r['forms']):.3f} / {r['cpu'] / (bc * r['forms']):.3f} |")
    lines.append("")
    lines.append(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cpus)")
    publish(lines, "benchmarks.assembly.candidates", argv, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
