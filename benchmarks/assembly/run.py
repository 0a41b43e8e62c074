"""Assembly benchmark: the paperbuild engine against PuLP + CBC on the plain model and a stratified random draw.

Run from the repository root:  python -m benchmarks.assembly --help   (or  python benchmarks/assembly/run.py)

Cases on a seeded, realistic level-3 bank (1,200 items, 300 points X80/Y15/Z5, 3-level scope tree, 60 enemy
pairs; layout 40 TF x 0.5 + 140 single x 0.5 + 10 multiple x 1, mean facility 0.60-0.65, <= 2 items/point):
  a  one form, maximise X coverage
  b  10 parallel forms, item use <= 2, pairwise shared <= 38, mean facilities within 0.01
  c  the same 10 forms without the pairwise cap
  d  200 candidate forms, pairwise shared <= 47
  e  a bank with one starved scope: time to the explanation
Every form any method returns is run through the independent checker.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from benchmarks.assembly.baselines import plain_cbc, stratified_draw

import paperbuild as pb
from paperbuild.problem import Problem, compile_problem
from paperbuild.report import coverage, coverage_score
from paperbuild.synthetic import generate_bank, level3_layout


@dataclass
class Row:
    case: str
    method: str
    status: str
    first: float | None
    final: float
    cpu: float | None
    violations: int | None
    x_cov: int | None
    objective: float | None
    bound: float | None
    peak_mib: float | None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _ordered(prob: Problem, idx: list[int]) -> list[object]:
    """Item ids in delivery order (by section) so baselines are not penalised for ordering."""
    rank = {t: k for k, t in enumerate(prob.section_types)}
    order = sorted(idx, key=lambda i: (rank.get(int(prob.pool.item_type[i]), 99), i))
    return [prob.pool.ids[i].item() for i in order]


def _score(prob: Problem, forms: list[list[int]]) -> tuple[int, float]:
    arrs = [np.array(f, dtype=np.int64) for f in forms]
    return sum(coverage(prob, a)[0] for a in arrs), float(sum(coverage_score(prob, a) for a in arrs))


CASES = {
    "a": dict(forms=1, max_item_use=None, max_shared=None),
    "b": dict(forms=10, max_item_use=2, max_shared=38),
    "c": dict(forms=10, max_item_use=2, max_shared=None),
    "d": dict(forms=200, max_item_use=None, max_shared=47),
    "e": dict(forms=1, max_item_use=None, max_shared=None),
}


def run_engine(case: str, bank: pb.synthetic.Bank, layout: pb.Layout, req: pb.AssemblyRequest) -> Row:
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn = pb.assemble_per_candidate if case == "d" else pb.assemble
    res = fn(bank.pool, bank.blueprint, layout, req)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    viol = pb.check_forms(bank.pool, bank.blueprint, layout, req, res.forms) if res.forms else None
    x = sum(f.report.covered["X"] for f in res.forms) if res.forms else None
    note = ""
    if res.explanation is not None:
        note = res.explanation.summary[:300]
    extra = {"max_shared": float(res.max_pairwise_shared), "max_use": float(res.max_item_use)}
    b = res.stats.bound
    if res.forms and math.isfinite(b) and b > 0:
        hit = [t for t, v in res.stats.trajectory if v >= 0.995 * b]
        if hit:
            extra["t_05"] = hit[0]
    return Row(case, "paperbuild", str(res.status), res.stats.time_to_first, wall, cpu,
               len(viol) if viol is not None else None, x, res.stats.objective if res.forms else None,
               res.stats.bound if res.forms else None, _peak_mib(), note, extra)


def run_cbc(case: str, bank: pb.synthetic.Bank, layout: pb.Layout, req: pb.AssemblyRequest,
            time_limit: float) -> Row:
    prob = compile_problem(bank.pool, bank.blueprint, layout, req)
    if req.forms > 20:
        return Row(case, "pulp+cbc (plain)", "not run", None, 0.0, None, None, None, None, None, None,
                   f"plain model would need {req.forms * (req.forms - 1) // 2 * int(prob.usable.sum()):,} "
                   "pairwise overlap variables")
    c0 = _children_cpu()
    p0 = time.process_time()
    r = plain_cbc(prob, req.forms, req.max_item_use, req.max_shared, req.facility_spread, time_limit)
    cpu = _children_cpu() - c0 + time.process_time() - p0  # CBC process + building the model in Python
    viol = None
    x = obj = None
    if r.forms:
        forms = [_ordered(prob, f) for f in r.forms]
        viol = len(pb.check_forms(bank.pool, bank.blueprint, layout, req, forms))
        x, obj = _score(prob, r.forms)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return Row(case, "pulp+cbc (plain)", r.status, r.first, r.wall, cpu, viol, x, obj, r.bound, peak,
               "peak MiB: largest CBC process so far")


def run_draw(case: str, bank: pb.synthetic.Bank, layout: pb.Layout, req: pb.AssemblyRequest, seed: int) -> Row:
    t0 = time.perf_counter()
    prob = compile_problem(bank.pool, bank.blueprint, layout, req)
    forms = stratified_draw(prob, req.forms, seed)
    wall = time.perf_counter() - t0
    viol = pb.check_forms(bank.pool, bank.blueprint, layout, req, [_ordered(prob, f) for f in forms])
    x, obj = _score(prob, forms)
    bad_forms = len({v.form for v in viol if v.form is not None})
    return Row(case, "stratified draw", "done", wall, wall, None, len(viol), x, obj, None, None,
               f"{bad_forms}/{req.forms} forms break a rule")


def _fmt(v: float | int | None, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{nd}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return "–"
    return f"{a / b:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.assembly", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="abcde", help="which cases to run (default: abcde)")
    ap.add_argument("--seed", type=int, default=0, help="bank and request seed (default 0)")
    ap.add_argument("--cbc-time-limit", type=float, default=60.0, help="CBC limit per case, seconds (60)")
    ap.add_argument("--engine-time-limit", type=float, default=10.0,
                    help="engine time limit for cases a-c and e, seconds (10); case d gets 12x")
    ap.add_argument("--no-cbc", action="store_true", help="skip the PuLP+CBC baseline")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)

    import os

    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    layout = level3_layout()
    bank = generate_bank(args.seed)
    starved = generate_bank(args.seed, starve=True)
    rows: list[Row] = []
    reqs: dict[str, pb.AssemblyRequest] = {}
    for case in args.cases:
        spec = CASES[case]
        tl = args.engine_time_limit * (12 if case == "d" else 1)
        reqs[case] = pb.AssemblyRequest(forms=int(spec["forms"] or 1), max_item_use=spec["max_item_use"],
                                        max_shared=spec["max_shared"], facility_spread=0.01, seed=args.seed,
                                        time_limit=tl)
    # warm-up: load the solver libraries once (a service process is long-lived); not timed
    pb.assemble(bank.pool, bank.blueprint, layout, pb.AssemblyRequest(time_limit=10))
    # the engine first (so its peak memory is not inflated by the baselines' Python models)
    for case in args.cases:
        b = starved if case == "e" else bank
        rows.append(run_engine(case, b, layout, reqs[case]))
        r = rows[-1]
        print(f"[{case}] paperbuild {r.status} in {r.final:.2f} s (cpu {r.cpu:.2f} s), violations {r.violations}, "
              f"X {r.x_cov}, objective {r.objective}, bound {r.bound}", flush=True)
    for case in args.cases:
        b = starved if case == "e" else bank
        if not args.no_cbc:
            rows.append(run_cbc(case, b, layout, reqs[case], args.cbc_time_limit))
            r = rows[-1]
            print(f"[{case}] pulp+cbc {r.status} in {r.final:.2f} s, X {r.x_cov}, viol {r.violations}", flush=True)
        if case != "e":
            rows.append(run_draw(case, b, layout, reqs[case], args.seed))

    lines = ["| case | method | status | first s | final s | cpu s | violations | X covered | objective | bound "
             "| t / t_cbc | obj / obj_cbc | obj / obj_draw | peak MiB | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in args.cases:
        mine = next(r for r in rows if r.case == case and r.method == "paperbuild")
        cbc = next((r for r in rows if r.case == case and r.method.startswith("pulp")), None)
        draw = next((r for r in rows if r.case == case and r.method == "stratified draw"), None)
        for r in [mine, cbc, draw]:
            if r is None:
                continue
            is_me = r is mine
            t_ratio = _ratio(mine.final, cbc.final) if is_me and cbc and cbc.final else ""
            o_ratio = _ratio(mine.objective, cbc.objective) if is_me and cbc else ""
            d_ratio = _ratio(mine.objective, draw.objective) if is_me and draw else ""
            note = r.note
            if is_me and r.extra:
                note = (f"max shared {int(r.extra['max_shared'])}, max use {int(r.extra['max_use'])}. " + note)
                if "t_05" in r.extra:
                    note = f"within 0.5 % of the bound at {r.extra['t_05']:.2f} s. " + note
            lines.append(f"| {case} | {r.method} | {r.status} | {_fmt(r.first)} | {_fmt(r.final)} | {_fmt(r.cpu)} | "
                         f"{_fmt(r.violations)} | {_fmt(r.x_cov)} | {_fmt(r.objective, 0)} | {_fmt(r.bound, 0)} | "
                         f"{t_ratio} | {o_ratio} | {d_ratio} | {_fmt(r.peak_mib, 0)} | {note.replace('|', '/')} |")
    import os

    lines.append("")
    lines.append(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cpus); 'cpu s' is process CPU time "
                 "(all threads; for CBC its process plus building the model in Python)")
    publish(lines, "benchmarks.assembly", argv, args.markdown)
    return 0


def publish(lines: list[str], module: str, argv: list[str] | None, markdown: Path | None) -> None:
    """Print the table and the command that reproduces it; also write both to ``markdown`` when given."""
    table = "\n".join(lines)
    print()
    print(table)
    cmd = f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\nreproduce: {cmd.strip()}")
    if markdown:
        markdown.write_text(table + f"\n\nreproduce: `{cmd.strip()}`\n")


if __name__ == "__main__":
    raise SystemExit(main())
