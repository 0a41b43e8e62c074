"""Evaluator panels for a city-sized week: CP-SAT (paperbuild.panels) against a greedy first-fit, same run.

The week: 60 practical rooms over 5 days (2 slots a day, 6 rooms a slot, one room per session, 6 occupations at
4 institutions), 400 evaluators holding certificates in 2–3 of the 6 occupations at levels 1–4 (5 % expired,
2 % barred), 3,000 candidates (50 per room), conflicts on 5 % of all evaluator–candidate pairs drawn at random,
30 internal supervisors (staff: 0.5 % of their pairs conflicted; at 5 % a 50-candidate session
leaves each of them free with probability 0.95^50 ≈ 8 %, and some sessions get nobody). Rooms are level 3–5.

For each seed: the exact precheck, CP-SAT's time to a first assignment and to its best (and whether proven
optimal), the greedy first-fit's time, and for both the checker's rule violations and the spread of workload
(largest load against the ⌈seats / pool⌉ bound, standard deviation). Then the same week with 60 % of the
evaluators gone: the time to an explanation and its first reasons.

    .venv/bin/python benchmarks/panels.py --seeds 3 --time-limit 30
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from paperbuild.panels import (
    Certificate,
    Evaluator,
    PanelRequest,
    PanelsInfeasible,
    PracticalRoom,
    Session,
    Supervisor,
    assign_panels,
    check_assignment,
    explain,
    greedy_panels,
    load_stats,
    precheck,
)

OCCUPATIONS = ["6-18-01-01", "4-04-05-01", "6-31-01-03", "6-29-01-02", "4-10-01-01", "6-20-03-01"]
INSTITUTIONS = ["CD-JX", "CD-GY", "CD-SZ", "CD-WH"]


def city_week(seed: int, *, rooms_per_slot: int = 6, days: int = 5, evaluators: int = 400, candidates: int = 3000,
              conflict_rate: float = 0.05, supervisors: int = 30,
              supervisor_conflict_rate: float = 0.005) -> PanelRequest:
    rng = random.Random(seed)
    n_rooms = rooms_per_slot * 2 * days
    per_room = candidates // n_rooms
    sessions: list[Session] = []
    rooms: list[PracticalRoom] = []
    cand_ids = [f"c{i}" for i in range(candidates)]
    k = 0
    for d in range(days):
        for hour in (9, 14):
            start = datetime(2026, 12, 7 + d, hour)
            for j in range(rooms_per_slot):
                sid = f"S{d}{hour:02d}{j}"
                cands = cand_ids[k * per_room:(k + 1) * per_room]
                k += 1
                sessions.append(Session(id=sid, start=start, end=start + timedelta(hours=3), candidates=cands))
                rooms.append(PracticalRoom(id=f"R{sid[1:]}", session=sid, occupation=OCCUPATIONS[(j + d) % 6],
                                           level=rng.choice([3, 4, 5]), institution=INSTITUTIONS[j % 4],
                                           candidates=cands))
    evs: list[Evaluator] = []
    for i in range(evaluators):
        occs = rng.sample(OCCUPATIONS, rng.choice([2, 3]))
        certs = [Certificate(occupation=o, level=rng.choice([1, 2, 3, 3, 4]),
                             valid_until=date(2026, 11, 30) if rng.random() < 0.05 else date(2028, 12, 31))
                 for o in occs]
        conflicts = [c for c in cand_ids if rng.random() < conflict_rate]
        evs.append(Evaluator(id=f"e{i:03d}", certificates=certs, barred=rng.random() < 0.02, conflicts=conflicts))
    sups = [Supervisor(id=f"s{i:02d}", conflicts=[c for c in cand_ids if rng.random() < supervisor_conflict_rate])
            for i in range(supervisors)]
    return PanelRequest(sessions=sessions, rooms=rooms, evaluators=evs, supervisors=sups, seed=seed)


def spread(req: PanelRequest, assignment: Any) -> dict[str, Any]:
    stats = load_stats(req, assignment)
    return {"max_load": stats.max_load, "lower_bound": stats.lower_bound, "stdev": stats.stdev,
            "people_used": stats.used, "pool": stats.pool, "supervisor_max_load": stats.supervisor_max_load}


def run(seed: int, time_limit: float, evaluators: int = 400) -> dict[str, Any]:
    t = time.perf_counter()
    req = city_week(seed, evaluators=evaluators)
    gen_s = time.perf_counter() - t
    req.time_limit_s = time_limit
    from paperbuild.panels.rules import RequestIndex

    ix = RequestIndex(req)
    eligible = [len(ix.eligible[r.id]) for r in req.rooms]
    t = time.perf_counter()
    reasons = precheck(req)
    pre_s = time.perf_counter() - t
    t = time.perf_counter()
    greedy = greedy_panels(req)
    greedy_s = time.perf_counter() - t
    gv = check_assignment(req, greedy)
    out: dict[str, Any] = {
        "seed": seed, "evaluators": evaluators, "generate_s": round(gen_s, 2), "precheck_s": round(pre_s, 3),
        "eligible_per_room": {"min": min(eligible), "median": statistics.median(eligible), "max": max(eligible)},
        "greedy": {"time_s": round(greedy_s, 3), "violations": len(gv), "by_rule": dict(Counter(v.rule for v in gv)),
                   **spread(req, greedy)},
    }
    if reasons:
        out["cpsat"] = {"infeasible": [r.message for r in reasons[:3]]}
        return out
    try:
        res = assign_panels(req)
    except PanelsInfeasible as exc:
        out["cpsat"] = {"infeasible": [r.message for r in exc.reasons[:3]]}
        return out
    sv = check_assignment(req, res.assignment)
    out["cpsat"] = {"status": res.status, "time_to_feasible_s": res.time_to_feasible_s,
                    "time_to_best_s": res.time_to_best_s, "wall_time_s": res.wall_time_s,
                    "objective": res.objective, "bound": res.bound, "violations": len(sv),
                    **spread(req, res.assignment)}
    return out


def run_infeasible(seed: int) -> dict[str, Any]:
    req = city_week(seed)
    rng = random.Random(seed)
    req.evaluators = rng.sample(req.evaluators, int(len(req.evaluators) * 0.4))
    t = time.perf_counter()
    reasons = explain(req, deadline_s=20)
    return {"seed": seed, "evaluators": len(req.evaluators), "explain_s": round(time.perf_counter() - t, 2),
            "reasons": len(reasons), "first": [r.message for r in reasons[:2]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="weeks to generate (seeds 0..N-1)")
    ap.add_argument("--time-limit", type=float, default=30.0, help="CP-SAT time limit per week, seconds")
    ap.add_argument("--evaluators", type=int, default=400, help="evaluators in the pool (tighter: fewer)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    results = [run(s, args.time_limit, args.evaluators) for s in range(args.seeds)]
    tight = run_infeasible(0)
    if args.json:
        print(json.dumps({"weeks": results, "infeasible": tight}, ensure_ascii=False, indent=1))
        return 0
    for r in results:
        g, c = r["greedy"], r["cpsat"]
        e = r["eligible_per_room"]
        print(f"seed {r['seed']}, {r['evaluators']} evaluators: eligible per room min/median/max {e['min']}/"
              f"{e['median']}/{e['max']}; precheck {r['precheck_s']} s")
        print(f"  greedy: {g['time_s']} s, {g['violations']} violations {g['by_rule']}, max load {g['max_load']} "
              f"(bound {g['lower_bound']}), stdev {g['stdev']}, {g['people_used']}/{g['pool']} used, "
              f"supervisor max {g['supervisor_max_load']}")
        if "infeasible" in c:
            print(f"  cp-sat: infeasible: {c['infeasible']}")
        else:
            print(f"  cp-sat: first {c['time_to_feasible_s']} s, best {c['time_to_best_s']} s ({c['status']}, "
                  f"wall {c['wall_time_s']} s), {c['violations']} violations, max load {c['max_load']} "
                  f"(bound {c['lower_bound']}), stdev {c['stdev']}, {c['people_used']}/{c['pool']} used, "
                  f"supervisor max {c['supervisor_max_load']}")
    print(f"without 60 % of the evaluators ({tight['evaluators']} left): explained in {tight['explain_s']} s, "
          f"{tight['reasons']} reason(s); first: {tight['first']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
