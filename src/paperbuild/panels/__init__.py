"""Evaluator panels and internal supervisors for practical exams (§17(三)(四), §20, §30(八)): a pure solver.

Plain data in (:class:`PanelRequest`), plain data out (:class:`PanelResult`); no web or database imports.

Rules (the same in :func:`assign_panels` (CP-SAT), :func:`greedy_panels` (first-fit baseline) and
:func:`check_assignment` (the independent checker)):

* every practical room gets a panel of ``panel_size`` (≥ 3) distinct evaluators, one of them the leader;
* each member holds a certificate for the room's occupation at the room's level or higher (level 1 is the
  highest, so a level-2 certificate may mark level 3) that is valid on the day of the exam, and is not barred;
* nobody on a panel has a conflict (employer, training tie, declared relation) with a candidate in that room;
* nobody is in two overlapping places (two rooms, or a room and a session they supervise);
* between consecutive batches (sessions in start order) of the same occupation at the same institution, each
  new panel of n members has at least ⌈n/3⌉ members who were not on any panel of the batch before (nor on the
  previous panel given for that occupation and institution, for the first batch);
* every session gets one internal supervisor, without a conflict with its candidates, not on its panels.

Workload: the objective is lexicographic: first the **largest load** (rooms plus supervised sessions per person)
as small as possible, then the **sum of squared loads** (equivalently the variance, the total being fixed), for
evaluators and for supervisors.

Infeasible requests raise :class:`PanelsInfeasible` with reasons in words: first exact counts per room, per set
of rooms at the same time and per session (fast), else a core of rules from CP-SAT assumptions (``num_workers=1``),
shrunk by deletion, each rule with its people counted.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
import numpy as np
from ortools.sat.python import cp_model

from paperbuild.errors import InvalidInput, PaperbuildError

MIN_PANEL = 3


# ------------------------------------------------------------------------------------------------------ inputs
class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    occupation: Annotated[str, msgspec.Meta(examples=["6-18-01-01"])]
    level: Annotated[int, msgspec.Meta(ge=1, le=5, description="1 is the highest level")]
    valid_until: date


class Evaluator(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    certificates: list[Certificate]
    barred: bool = False
    conflicts: list[str] = []  # candidate ids


class Supervisor(msgspec.Struct, frozen=True, kw_only=True):
    """An internal quality supervisor; the same id as an evaluator means the same person."""

    id: str
    conflicts: list[str] = []


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    start: datetime  # local time: the exam day is ``start.date()``
    end: datetime
    candidates: list[str] = []  # every candidate of the session (for the supervisor's conflicts)
    needs_supervisor: bool = True


class PracticalRoom(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    session: str
    occupation: str
    level: Annotated[int, msgspec.Meta(ge=1, le=5)]
    institution: str
    candidates: list[str] = []
    panel_size: Annotated[int, msgspec.Meta(ge=MIN_PANEL, le=15)] = MIN_PANEL


class PreviousPanel(msgspec.Struct, frozen=True, kw_only=True):
    """The last panel of an occupation at an institution before this request (for the ⌈n/3⌉ rotation)."""

    occupation: str
    institution: str
    members: list[str]


class Busy(msgspec.Struct, frozen=True, kw_only=True):
    """A person already somewhere (a panel or a supervision outside this request) from ``start`` to ``end``."""

    person: str
    start: datetime
    end: datetime
    what: str = ""


class PanelRequest(msgspec.Struct, kw_only=True):
    sessions: list[Session]
    rooms: list[PracticalRoom]
    evaluators: list[Evaluator]
    supervisors: list[Supervisor] = []
    previous: list[PreviousPanel] = []
    busy: list[Busy] = []
    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 2
    deterministic: bool = False  # True: one worker bounded by deterministic time: same seed, same answer


# ----------------------------------------------------------------------------------------------------- outputs
class Panel(msgspec.Struct, kw_only=True):
    room: str
    members: list[str]
    leader: str


class SupervisorSlot(msgspec.Struct, kw_only=True):
    session: str
    supervisor: str


class Assignment(msgspec.Struct, kw_only=True):
    panels: list[Panel] = []
    supervisors: list[SupervisorSlot] = []


class LoadStats(msgspec.Struct, kw_only=True):
    """Rooms per evaluator over the evaluators who could sit on at least one panel (the pool)."""

    pool: int
    used: int
    max_load: int
    min_load: int
    mean: float
    stdev: float
    lower_bound: int  # no assignment can have a smaller max load (⌈seats / pool⌉)
    supervisor_max_load: int


class PanelResult(msgspec.Struct, kw_only=True):
    status: Literal["optimal", "feasible"]
    assignment: Assignment
    stats: LoadStats
    time_to_feasible_s: float
    time_to_best_s: float  # when the solver found the assignment it returns
    wall_time_s: float
    seed: int
    objective: float = 0.0  # weight·(largest evaluator load + largest supervisor load) + Σ load²
    bound: float = 0.0  # the solver's proven lower bound on the objective


class Reason(msgspec.Struct, kw_only=True):
    """One rule (or set of rules) that cannot hold, with the people counted."""

    rule: str
    message: str
    rooms: list[str] = []
    sessions: list[str] = []
    needed: int = 0
    available: int = 0


class Violation(msgspec.Struct, kw_only=True):
    rule: str
    message: str
    room: str | None = None
    session: str | None = None
    person: str | None = None
    rooms: list[str] = []  # every room involved (an overlap names two)


class PanelsInfeasible(PaperbuildError):
    def __init__(self, reasons: list[Reason]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(r.message for r in reasons))


# ------------------------------------------------------------------------------------------- shared reasoning
def rotation_limit(n: int) -> int:
    """Most members a panel of n may keep from the batch before: n - ⌈n/3⌉."""
    return n - math.ceil(n / 3)


def overlaps(a: Session | Busy | DrawSession, b: Session | Busy | DrawSession) -> bool:
    return a.start < b.end and b.start < a.end


def certified(ev: Evaluator, occupation: str, level: int, day: date) -> bool:
    return any(c.occupation == occupation and c.level <= level and c.valid_until >= day for c in ev.certificates)


class _Index:
    """Lookups both the solvers and the explanations use (the checker keeps its own)."""

    def __init__(self, req: PanelRequest) -> None:
        self.req = req
        self.sessions = {s.id: s for s in req.sessions}
        self.rooms = {r.id: r for r in req.rooms}
        self.evaluators = {e.id: e for e in req.evaluators}
        self.supervisors = {s.id: s for s in req.supervisors}
        self.room_order = sorted(req.rooms, key=lambda r: (self.sessions[r.session].start, r.id))
        self.eligible: dict[str, list[str]] = {}
        self.certified_count: dict[str, int] = {}
        self.conflicted_count: dict[str, int] = {}
        self.barred_count: dict[str, int] = {}
        self.busy_count: dict[str, int] = {}
        self.busy: dict[str, list[Busy]] = defaultdict(list)
        for b in req.busy:
            self.busy[b.person].append(b)
        for r in self.room_order:
            sess = self.sessions[r.session]
            day = sess.start.date()
            cands = set(r.candidates)
            cert = [e for e in req.evaluators if certified(e, r.occupation, r.level, day)]
            barred = [e for e in cert if e.barred]
            clean = [e for e in cert if not e.barred]
            unconflicted = [e for e in clean if not cands.intersection(e.conflicts)]
            free = [e for e in unconflicted if not any(overlaps(sess, b) for b in self.busy[e.id])]
            self.eligible[r.id] = sorted(e.id for e in free)
            self.certified_count[r.id] = len(clean)
            self.conflicted_count[r.id] = len(clean) - len(unconflicted)
            self.barred_count[r.id] = len(barred)
            self.busy_count[r.id] = len(unconflicted) - len(free)
        self.sup_eligible: dict[str, list[str]] = {}
        for s in req.sessions:
            cands = set(s.candidates)
            self.sup_eligible[s.id] = sorted(p.id for p in req.supervisors if not cands.intersection(p.conflicts)
                                             and not any(overlaps(s, b) for b in self.busy[p.id]))
        self.cliques = self._cliques()
        self.batches = self._batches()

    def _cliques(self) -> list[list[str]]:
        """Maximal sets of sessions that share a moment (interval graph: the sessions running at each start)."""
        out: list[frozenset[str]] = []
        ss = sorted(self.req.sessions, key=lambda s: (s.start, s.id))
        for s in ss:
            now = frozenset(t.id for t in ss if t.start <= s.start < t.end)
            if len(now) > 1:
                out.append(now)
        maximal = [c for c in set(out) if not any(c < d for d in out)]
        return sorted(sorted(c) for c in maximal)

    def _batches(self) -> dict[tuple[str, str], list[list[str]]]:
        """Rooms per (occupation, institution), grouped by session in start order: the batches."""
        by_group: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in self.room_order:
            by_group[(r.occupation, r.institution)][r.session].append(r.id)
        out: dict[tuple[str, str], list[list[str]]] = {}
        for key, sessions in by_group.items():
            order = sorted(sessions, key=lambda sid: (self.sessions[sid].start, sid))
            out[key] = [sessions[sid] for sid in order]
        return out

    def previous(self, key: tuple[str, str]) -> set[str]:
        members: set[str] = set()
        for p in self.req.previous:
            if (p.occupation, p.institution) == key:
                members = set(p.members)  # the last one given wins
        return members

    def room_words(self, rid: str) -> str:
        r = self.rooms[rid]
        s = self.sessions[r.session]
        return (f"occupation {r.occupation} level {r.level} on {s.start.date().isoformat()} "
                f"{s.start.strftime('%H:%M')}–{s.end.strftime('%H:%M')} (room {rid})")

    def room_shortage(self, rid: str) -> str:
        r = self.rooms[rid]
        barred = f", {self.barred_count[rid]} barred" if self.barred_count[rid] else ""
        busy = f", {self.busy_count[rid]} busy elsewhere at that time" if self.busy_count[rid] else ""
        return (f"{self.room_words(rid)}: {self.certified_count[rid]} certified evaluators, "
                f"{self.conflicted_count[rid]} conflicted{barred}{busy}, {r.panel_size} needed")


def validate(req: PanelRequest) -> None:
    sessions = {s.id for s in req.sessions}
    if len(sessions) != len(req.sessions):
        raise InvalidInput("sessions", "session ids repeat")
    for i, s in enumerate(req.sessions):
        if s.end <= s.start:
            raise InvalidInput(f"sessions[{i}].end", "a session ends after it starts")
        if (s.start.tzinfo is None) != (s.end.tzinfo is None):
            raise InvalidInput(f"sessions[{i}]", "start and end must both be aware or both naive")
    if len({r.id for r in req.rooms}) != len(req.rooms):
        raise InvalidInput("rooms", "room ids repeat")
    for i, r in enumerate(req.rooms):
        if r.session not in sessions:
            raise InvalidInput(f"rooms[{i}].session", f"session {r.session} is not in the request")
        if r.panel_size < MIN_PANEL:
            raise InvalidInput(f"rooms[{i}].panel_size", f"a panel has at least {MIN_PANEL} evaluators (§20)")
    if len({e.id for e in req.evaluators}) != len(req.evaluators):
        raise InvalidInput("evaluators", "evaluator ids repeat")
    if len({s.id for s in req.supervisors}) != len(req.supervisors):
        raise InvalidInput("supervisors", "supervisor ids repeat")
    if req.time_limit_s <= 0:
        raise InvalidInput("time_limit_s", "must be positive")


# ------------------------------------------------------------------------------------------------- precheck
def precheck(req: PanelRequest) -> list[Reason]:
    """Exact counting reasons, fast: each one alone makes the request impossible."""
    ix = _Index(req)
    return _precheck(ix)


def _precheck(ix: _Index) -> list[Reason]:
    reasons: list[Reason] = []
    for r in ix.room_order:
        if len(ix.eligible[r.id]) < r.panel_size:
            reasons.append(Reason(rule="panel_size", message=ix.room_shortage(r.id), rooms=[r.id],
                                  sessions=[r.session], needed=r.panel_size, available=len(ix.eligible[r.id])))
    for s in ix.req.sessions:
        if s.needs_supervisor and not ix.sup_eligible[s.id]:
            conflicted = len(ix.req.supervisors) - len(ix.sup_eligible[s.id])
            reasons.append(Reason(rule="supervisor", sessions=[s.id], needed=1, available=0, message=(
                f"session {s.id} on {s.start.date().isoformat()}: {len(ix.req.supervisors)} internal supervisors, "
                f"{conflicted} conflicted, 1 needed")))
    if reasons:
        return reasons
    # Rooms at the same time need disjoint panels: the union of who may sit must cover the seats (Hall).
    for clique in ix.cliques:
        cset = set(clique)
        rooms = [r for r in ix.room_order if r.session in cset]
        groups: dict[tuple[str, int], list[PracticalRoom]] = defaultdict(list)
        for r in rooms:
            groups[(r.occupation, r.level)].append(r)
        candidates_sets: list[tuple[str, list[PracticalRoom]]] = [
            (f"occupation {occ} level {lvl}", rs) for (occ, lvl), rs in sorted(groups.items()) if len(rs) > 1]
        by_occ: dict[str, list[PracticalRoom]] = defaultdict(list)
        for r in rooms:
            by_occ[r.occupation].append(r)
        candidates_sets += [(f"occupation {occ}", rs) for occ, rs in sorted(by_occ.items())
                            if len(rs) > 1 and len({r.level for r in rs}) > 1]
        if len(by_occ) > 1:
            candidates_sets.append(("all occupations", rooms))
        for label, rs in candidates_sets:
            need = sum(r.panel_size for r in rs)
            pool = set().union(*(ix.eligible[r.id] for r in rs))
            if len(pool) < need:
                s0 = ix.sessions[rs[0].session]
                reasons.append(Reason(rule="overlap", rooms=[r.id for r in rs],
                                      sessions=sorted({r.session for r in rs}), needed=need,
                                      available=len(pool), message=(
                    f"{label} on {s0.start.date().isoformat()} at {s0.start.strftime('%H:%M')}: rooms "
                    f"{', '.join(r.id for r in rs)} run at the same time and need {need} evaluators; "
                    f"{len(pool)} are certified and free of conflicts for any of them")))
                break
        sups = [s for s in clique if ix.sessions[s].needs_supervisor]
        pool_s = set().union(*(ix.sup_eligible[s] for s in sups)) if sups else set()
        if len(pool_s) < len(sups):
            s0 = ix.sessions[clique[0]]
            reasons.append(Reason(rule="supervisor_overlap", sessions=sups, needed=len(sups), available=len(pool_s),
                                  message=(f"sessions {', '.join(sups)} on {s0.start.date().isoformat()} run at the "
                                           f"same time and need {len(sups)} internal supervisors; "
                                           f"{len(pool_s)} are free of conflicts")))
    return reasons


# ----------------------------------------------------------------------------------------------- the CP model
class _Model:
    def __init__(self, ix: _Index, *, with_assumptions: bool = False) -> None:
        self.ix = ix
        m = self.m = cp_model.CpModel()
        self.x: dict[tuple[str, str], cp_model.IntVar] = {}
        for r in ix.room_order:
            for e in ix.eligible[r.id]:
                self.x[(e, r.id)] = m.new_bool_var(f"x[{e},{r.id}]")
        self.z: dict[tuple[str, str], cp_model.IntVar] = {}
        for s in ix.req.sessions:
            if s.needs_supervisor:
                for p in ix.sup_eligible[s.id]:
                    self.z[(p, s.id)] = m.new_bool_var(f"z[{p},{s.id}]")
        self.rules: dict[int, tuple[str, tuple[str, ...]]] = {}  # assumption literal index → rule
        self.lits: list[cp_model.IntVar] = []
        by_room: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        by_person_room: dict[str, dict[str, cp_model.IntVar]] = defaultdict(dict)
        for (e, rid), v in self.x.items():
            by_room[rid].append(v)
            by_person_room[e][rid] = v
        by_session_sup: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        by_person_session: dict[str, dict[str, cp_model.IntVar]] = defaultdict(dict)
        for (p, sid), v in self.z.items():
            by_session_sup[sid].append(v)
            by_person_session[p][sid] = v
        self.by_person_room, self.by_person_session = by_person_room, by_person_session

        def rule(kind: str, *keys: str) -> cp_model.IntVar | None:
            if not with_assumptions:
                return None
            lit = m.new_bool_var(f"{kind}:{'/'.join(keys)}")
            self.rules[lit.index] = (kind, keys)
            self.lits.append(lit)
            return lit

        for r in ix.room_order:
            c = m.add(sum(by_room[r.id]) == r.panel_size)
            lit = rule("panel_size", r.id)
            if lit is not None:
                c.only_enforce_if(lit)
        for s in ix.req.sessions:
            if not s.needs_supervisor:
                continue
            c = m.add(sum(by_session_sup[s.id]) == 1)
            lit = rule("supervisor", s.id)
            if lit is not None:
                c.only_enforce_if(lit)
        # One place at a time: per person, per session they could be in, and per set of overlapping sessions.
        rooms_of_session: dict[str, list[str]] = defaultdict(list)
        for r in ix.room_order:
            rooms_of_session[r.session].append(r.id)
        groups = [[s.id] for s in ix.req.sessions] + ix.cliques
        for gi, group in enumerate(groups):
            lit = rule("overlap", *group) if len(group) > 1 else None
            people = set(by_person_room) | set(by_person_session)
            for p in sorted(people):
                terms = [by_person_room[p][rid] for sid in group for rid in rooms_of_session[sid]
                         if rid in by_person_room[p]]
                terms += [by_person_session[p][sid] for sid in group if sid in by_person_session[p]]
                if len(terms) > 1:
                    c = m.add(sum(terms) <= 1)
                    if lit is not None:
                        c.only_enforce_if(lit)
            del gi
        # Rotation between consecutive batches, and against the previous panel.
        for key, batches in sorted(ix.batches.items()):
            prev = ix.previous(key)
            if prev:
                lit = rule("rotation_previous", key[0], key[1])
                for rid in batches[0]:
                    r = ix.rooms[rid]
                    kept = [v for (e, rr), v in self.x.items() if rr == rid and e in prev]
                    if len(kept) > rotation_limit(r.panel_size):
                        c = m.add(sum(kept) <= rotation_limit(r.panel_size))
                        if lit is not None:
                            c.only_enforce_if(lit)
            for b in range(1, len(batches)):
                lit = rule("rotation", key[0], key[1], str(b))
                for rid in batches[b]:
                    r = ix.rooms[rid]
                    for qid in batches[b - 1]:
                        common = sorted(set(ix.eligible[rid]) & set(ix.eligible[qid]))
                        if len(common) <= rotation_limit(r.panel_size):
                            continue
                        both = []
                        for e in common:
                            y = m.new_bool_var(f"y[{e},{rid},{qid}]")
                            m.add(y >= self.x[(e, rid)] + self.x[(e, qid)] - 1)
                            both.append(y)
                        c = m.add(sum(both) <= rotation_limit(r.panel_size))
                        if lit is not None:
                            c.only_enforce_if(lit)

    def objective(self) -> None:
        m, ix = self.m, self.ix
        seats = sum(r.panel_size for r in ix.req.rooms)
        n_sessions = sum(1 for s in ix.req.sessions if s.needs_supervisor)
        people = sorted(set(self.by_person_room) | set(self.by_person_session))
        max_e = m.new_int_var(0, max(seats, 1), "max_eval_load")
        max_s = m.new_int_var(0, max(n_sessions, 1), "max_sup_load")
        squares = []
        for p in people:
            rooms = list(self.by_person_room[p].values())
            sups = list(self.by_person_session[p].values())
            if rooms:
                load = m.new_int_var(0, len(rooms), f"load[{p}]")
                m.add(load == sum(rooms))
                m.add(max_e >= load)
                sq = m.new_int_var(0, len(rooms) ** 2, f"sq[{p}]")
                m.add_multiplication_equality(sq, [load, load])
                squares.append(sq)
            if sups:
                sload = m.new_int_var(0, len(sups), f"sload[{p}]")
                m.add(sload == sum(sups))
                m.add(max_s >= sload)
                ssq = m.new_int_var(0, len(sups) ** 2, f"ssq[{p}]")
                m.add_multiplication_equality(ssq, [sload, sload])
                squares.append(ssq)
        weight = seats * seats + n_sessions * n_sessions + 1
        m.minimize(weight * (max_e + max_s) + sum(squares))

    def assignment(self, solver: cp_model.CpSolver) -> Assignment:
        return _finish(self.ix,
                       {rid: sorted(e for (e, r2), v in self.x.items() if r2 == rid and solver.value(v))
                        for rid in self.ix.rooms},
                       {sid: p for (p, sid), v in self.z.items() if solver.value(v)})


def _finish(ix: _Index, members: dict[str, list[str]], sups: dict[str, str]) -> Assignment:
    """Leaders: the member with the highest certificate for the room, then the fewest leader duties, then id."""
    led: dict[str, int] = defaultdict(int)
    panels: list[Panel] = []
    for r in ix.room_order:
        ms = members.get(r.id, [])
        if not ms:
            panels.append(Panel(room=r.id, members=[], leader=""))
            continue

        def best_level(e: str, r: PracticalRoom = r) -> int:
            day = ix.sessions[r.session].start.date()
            levels = [c.level for c in ix.evaluators[e].certificates
                      if c.occupation == r.occupation and c.level <= r.level and c.valid_until >= day]
            return min(levels, default=9)

        leader = min(ms, key=lambda e: (best_level(e), led[e], e))
        led[leader] += 1
        panels.append(Panel(room=r.id, members=sorted(ms), leader=leader))
    slots = [SupervisorSlot(session=s.id, supervisor=sups[s.id]) for s in ix.req.sessions if s.id in sups]
    return Assignment(panels=panels, supervisors=slots)


def _params(req: PanelRequest, budget_s: float, workers: int) -> cp_model.CpSolver:
    """``deterministic``: one worker bounded by deterministic time (same seed, same answer on any machine);
    otherwise ``workers`` (2 on this machine's two cores) bounded by wall time. Interleaved multi-worker search
    (CP-SAT's own deterministic parallel mode) was 40–100× slower here on small models, so it is not used."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.random_seed = req.seed
    budget = max(budget_s, 0.05)
    if req.deterministic:
        p.num_workers = 1
        p.max_deterministic_time = budget
        p.max_time_in_seconds = budget * 4  # a safety cap only; reaching it makes the answer timing-dependent
    else:
        p.num_workers = workers
        p.max_time_in_seconds = budget
    return solver


def load_stats(req: PanelRequest, assignment: Assignment) -> LoadStats:
    ix = _Index(req)
    pool = sorted({e for rid in ix.eligible for e in ix.eligible[rid]})
    load = dict.fromkeys(pool, 0)
    for p in assignment.panels:
        for e in p.members:
            load[e] = load.get(e, 0) + 1
    sup: dict[str, int] = defaultdict(int)
    for s in assignment.supervisors:
        sup[s.supervisor] += 1
    values = list(load.values()) or [0]
    mean = sum(values) / len(values)
    seats = sum(r.panel_size for r in req.rooms)
    return LoadStats(pool=len(pool), used=sum(1 for v in values if v), max_load=max(values), min_load=min(values),
                     mean=round(mean, 4), stdev=round(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), 4),
                     lower_bound=math.ceil(seats / len(pool)) if pool else 0,
                     supervisor_max_load=max(sup.values(), default=0))


# ---------------------------------------------------------------------------------------------------- solving
def assign_panels(req: PanelRequest) -> PanelResult:
    """Panels for every practical room and a supervisor for every session, or :class:`PanelsInfeasible`.

    Feasibility first (time to a first assignment), then the workload objective from that assignment as a hint.
    Blocks the calling thread for up to ``time_limit_s`` (plus the explanation when infeasible)."""
    validate(req)
    t0 = time.perf_counter()
    ix = _Index(req)
    reasons = _precheck(ix)
    if reasons:
        raise PanelsInfeasible(reasons)
    model = _Model(ix)
    solver = _params(req, req.time_limit_s * 0.5, req.workers)
    status = solver.solve(model.m)
    if status == cp_model.INFEASIBLE:
        raise PanelsInfeasible(explain(req, deadline_s=max(req.time_limit_s, 5.0)))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise PanelsInfeasible([Reason(rule="time", message=(
            f"no assignment found in {req.time_limit_s * 0.5:g} s and none proven impossible; allow more time"))])
    first = model.assignment(solver)
    t_first = time.perf_counter() - t0
    hint = [(v, solver.value(v)) for v in [*model.x.values(), *model.z.values()]]
    model.objective()
    for var, val in hint:
        model.m.add_hint(var, val)
    remaining = max(req.time_limit_s - (time.perf_counter() - t0), 0.1)
    solver = _params(req, remaining, req.workers)
    found = _Found(t0)
    status = solver.solve(model.m, found)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        best, label = model.assignment(solver), ("optimal" if status == cp_model.OPTIMAL else "feasible")
        objective, bound, t_best = solver.objective_value, solver.best_objective_bound, found.last or t_first
    else:
        best, label, objective, bound, t_best = first, "feasible", 0.0, 0.0, t_first
    return PanelResult(status=label, assignment=best, stats=load_stats(req, best),  # type: ignore[arg-type]
                       time_to_feasible_s=round(t_first, 3), time_to_best_s=round(t_best, 3),
                       wall_time_s=round(time.perf_counter() - t0, 3), seed=req.seed, objective=objective,
                       bound=bound)


class _Found(cp_model.CpSolverSolutionCallback):
    """Remembers when the last (best so far) solution came."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.last = 0.0

    def on_solution_callback(self) -> None:
        self.last = time.perf_counter() - self.t0


def _rule_words(ix: _Index, kind: str, keys: tuple[str, ...]) -> Reason:
    if kind == "panel_size":
        rid = keys[0]
        r = ix.rooms[rid]
        return Reason(rule=kind, rooms=[rid], sessions=[r.session], needed=r.panel_size,
                      available=len(ix.eligible[rid]),
                      message=f"a panel of {r.panel_size} for {ix.room_shortage(rid)}")
    if kind == "supervisor":
        sid = keys[0]
        return Reason(rule=kind, sessions=[sid], needed=1, available=len(ix.sup_eligible[sid]), message=(
            f"an internal supervisor for session {sid} not on its panels: "
            f"{len(ix.sup_eligible[sid])} free of conflicts"))
    if kind == "overlap":
        day = ix.sessions[keys[0]].start
        return Reason(rule=kind, sessions=list(keys), message=(
            f"nobody in two places at once: sessions {', '.join(keys)} overlap on {day.date().isoformat()} "
            f"at {day.strftime('%H:%M')}"))
    if kind == "rotation_previous":
        return Reason(rule=kind, message=(
            f"≥ ⌈n/3⌉ new members against the previous panel of occupation {keys[0]} at {keys[1]}"))
    occ, inst, b = keys
    batches = ix.batches[(occ, inst)]
    rooms = batches[int(b) - 1] + batches[int(b)]
    pool = set().union(*(ix.eligible[r] for r in rooms))
    return Reason(rule=kind, rooms=rooms, available=len(pool), message=(
        f"≥ ⌈n/3⌉ new members between batches {int(b)} and {int(b) + 1} of occupation {occ} at {inst} "
        f"(rooms {', '.join(rooms)}): {len(pool)} certified and free of conflicts for them"))


def explain(req: PanelRequest, deadline_s: float = 10.0) -> list[Reason]:
    """The smallest set of rules found that cannot hold together, in words with people counted."""
    validate(req)
    ix = _Index(req)
    reasons = _precheck(ix)
    if reasons:
        return reasons
    t_end = time.perf_counter() + deadline_s
    model = _Model(ix, with_assumptions=True)

    def infeasible_with(lits: Sequence[cp_model.IntVar]) -> tuple[bool, list[int]]:
        model.m.clear_assumptions()
        model.m.add_assumptions(lits)
        solver = _params(req, max(min(t_end - time.perf_counter(), deadline_s / 4), 0.05), 1)
        status = solver.solve(model.m)
        if status == cp_model.INFEASIBLE:
            return True, list(solver.sufficient_assumptions_for_infeasibility())
        return False, []

    bad, core = infeasible_with(model.lits)
    if not bad:
        return [Reason(rule="time", message="no assignment was found in time, and none was proven impossible")]
    by_index = {v.index: v for v in model.lits}
    current = [by_index[i] for i in core if i in by_index] or list(model.lits)
    i = 0
    while i < len(current) and time.perf_counter() < t_end:  # deletion: drop each rule the rest does not need
        trial = current[:i] + current[i + 1:]
        still, sub = infeasible_with(trial)
        if still:
            keep = {v.index for v in trial} & set(sub) if sub else {v.index for v in trial}
            current = [v for v in trial if v.index in keep] or trial
        else:
            i += 1
    return [_rule_words(ix, *model.rules[v.index]) for v in current]


# -------------------------------------------------------------------------------------------- greedy baseline
def greedy_panels(req: PanelRequest) -> Assignment:
    """First fit, rooms in time order, evaluators in id order, under the same rules; a panel it cannot fill
    stays short (the checker reports it)."""
    validate(req)
    ix = _Index(req)
    busy: dict[str, list[str]] = defaultdict(list)  # person → sessions they are in
    members: dict[str, list[str]] = {}

    def free(p: str, sid: str) -> bool:
        s = ix.sessions[sid]
        return not any(overlaps(s, ix.sessions[t]) for t in busy[p])

    prev_batch: dict[str, list[str]] = {}
    for key, batches in ix.batches.items():
        for b, rooms in enumerate(batches):
            for rid in rooms:
                prev_batch[rid] = batches[b - 1] if b else []
        del key
    for r in ix.room_order:
        limit = rotation_limit(r.panel_size)
        before = [set(members.get(q, [])) for q in prev_batch[r.id]]
        if not prev_batch[r.id]:
            before = [ix.previous((r.occupation, r.institution))]
        chosen: list[str] = []
        for e in ix.eligible[r.id]:
            if len(chosen) == r.panel_size:
                break
            if not free(e, r.session):
                continue
            if any(e in q and len(q.intersection(chosen)) + 1 > limit for q in before):
                continue
            chosen.append(e)
        for e in chosen:
            busy[e].append(r.session)
        members[r.id] = chosen
    sups: dict[str, str] = {}
    for s in sorted(req.sessions, key=lambda s: (s.start, s.id)):
        if not s.needs_supervisor:
            continue
        for p in ix.sup_eligible[s.id]:
            if free(p, s.id):
                sups[s.id] = p
                busy[p].append(s.id)
                break
    return _finish(ix, members, sups)


# ----------------------------------------------------------------------------------------------------- checker
def check_assignment(req: PanelRequest, assignment: Assignment, rooms: Iterable[str] | None = None) -> list[Violation]:
    """Every rule the assignment breaks (empty: it holds). Written apart from the solvers, on the rules' text.

    ``rooms``: report only violations that involve these rooms (e.g. a panel set by hand), with the rest of the
    assignment as context; supervisors are then checked only for those rooms' sessions."""
    out: list[Violation] = []
    sessions = {s.id: s for s in req.sessions}
    room_of = {r.id: r for r in req.rooms}
    evs = {e.id: e for e in req.evaluators}
    sups = {s.id: s for s in req.supervisors}
    panels: dict[str, Panel] = {}
    for p in assignment.panels:
        if p.room not in room_of:
            out.append(Violation(rule="unknown_room", room=p.room, message=f"room {p.room} is not in the request"))
            continue
        if p.room in panels:
            out.append(Violation(rule="panel_twice", room=p.room, message=f"room {p.room} has two panels"))
        panels[p.room] = p
    for r in req.rooms:
        s = sessions[r.session]
        day = s.start.date()
        pan = panels.get(r.id)
        if pan is None or not pan.members:
            out.append(Violation(rule="panel_size", room=r.id, session=r.session,
                                 message=f"room {r.id} has no panel; at least {r.panel_size} evaluators are needed"))
            continue
        if len(set(pan.members)) != len(pan.members):
            out.append(Violation(rule="duplicate_member", room=r.id, message=f"room {r.id}: a member is listed twice"))
        if len(set(pan.members)) < max(r.panel_size, MIN_PANEL):
            out.append(Violation(rule="panel_size", room=r.id, session=r.session, message=(
                f"room {r.id} has a panel of {len(set(pan.members))}; at least {max(r.panel_size, MIN_PANEL)} "
                "evaluators mark a practical exam (§20)")))
        if pan.leader not in pan.members:
            out.append(Violation(rule="leader", room=r.id, person=pan.leader or None,
                                 message=f"room {r.id}: the leader {pan.leader or '(none)'} is not on the panel"))
        for e in pan.members:
            ev = evs.get(e)
            if ev is None:
                out.append(Violation(rule="unknown_evaluator", room=r.id, person=e,
                                     message=f"room {r.id}: {e} is not a known evaluator"))
                continue
            if ev.barred:
                out.append(Violation(rule="barred", room=r.id, person=e,
                                     message=f"room {r.id}: evaluator {e} is barred by their integrity record"))
            ok = [c for c in ev.certificates if c.occupation == r.occupation and c.level <= r.level]
            if not ok:
                out.append(Violation(rule="certificate", room=r.id, person=e, message=(
                    f"room {r.id}: evaluator {e} holds no certificate for occupation {r.occupation} "
                    f"at level {r.level} or higher")))
            elif not any(c.valid_until >= day for c in ok):
                out.append(Violation(rule="certificate", room=r.id, person=e, message=(
                    f"room {r.id}: evaluator {e}'s certificate for occupation {r.occupation} expired on "
                    f"{max(c.valid_until for c in ok).isoformat()}, before the exam on {day.isoformat()}")))
            hit = sorted(set(ev.conflicts) & set(r.candidates))
            if hit:
                out.append(Violation(rule="conflict", room=r.id, person=e, message=(
                    f"room {r.id}: evaluator {e} has a conflict with candidate(s) {', '.join(hit[:5])} in the room")))
    # places per person
    places: dict[str, list[tuple[str, str | None]]] = defaultdict(list)  # person → (session, room or None)
    for rid, p in panels.items():
        for e in set(p.members):
            places[e].append((room_of[rid].session, rid))
    seen_sup: dict[str, list[str]] = defaultdict(list)
    for slot in assignment.supervisors:
        if slot.session not in sessions:
            out.append(Violation(rule="unknown_session", session=slot.session,
                                 message=f"session {slot.session} is not in the request"))
            continue
        seen_sup[slot.session].append(slot.supervisor)
        places[slot.supervisor].append((slot.session, None))
    for busy in req.busy:
        for sid, where_room in places.get(busy.person, []):
            if overlaps(sessions[sid], busy):
                what = f"room {where_room}" if where_room else f"supervising session {sid}"
                out.append(Violation(rule="overlap", person=busy.person, room=where_room, session=sid,
                                     rooms=[where_room] if where_room else [], message=(
                    f"{busy.person} is in two places at once: {what} and {busy.what or 'elsewhere'} "
                    f"({busy.start.strftime('%Y-%m-%d %H:%M')}–{busy.end.strftime('%H:%M')})")))
    for person, where in places.items():
        for i in range(len(where)):
            for j in range(i + 1, len(where)):
                (sa, ra), (sb, rb) = where[i], where[j]
                if overlaps(sessions[sa], sessions[sb]):
                    what_a = f"room {ra}" if ra else f"supervising session {sa}"
                    what_b = f"room {rb}" if rb else f"supervising session {sb}"
                    out.append(Violation(rule="overlap", person=person, room=ra or rb, session=sa,
                                         rooms=[x for x in (ra, rb) if x], message=(
                        f"{person} is in two places at once: {what_a} and {what_b}")))
    # rotation
    groups: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in req.rooms:
        groups[(r.occupation, r.institution)][r.session].append(r.id)
    for key, by_session in groups.items():
        order = sorted(by_session, key=lambda sid: (sessions[sid].start, sid))
        prev_members = [set(p.members) for p in req.previous if (p.occupation, p.institution) == key][-1:]
        for b, sid in enumerate(order):
            befores = ([(f"the previous panel of occupation {key[0]} at {key[1]}", m) for m in prev_members] if b == 0
                       else [(f"room {q} (batch {b})", set(panels[q].members)) for q in by_session[order[b - 1]]
                             if q in panels])
            for rid in by_session[sid]:
                if rid not in panels:
                    continue
                now = set(panels[rid].members)
                need = math.ceil(len(now) / 3)
                for label, before in befores:
                    new = len(now - before)
                    if new < need:
                        out.append(Violation(rule="rotation", room=rid, session=sid, message=(
                            f"room {rid} (batch {b + 1}) keeps {len(now & before)} of {label}'s members: only {new} "
                            f"new of {len(now)}; at least ⌈{len(now)}/3⌉ = {need} must be new (§20)")))
    # supervisors
    on_panel: dict[str, set[str]] = defaultdict(set)
    for rid, p in panels.items():
        on_panel[room_of[rid].session].update(p.members)
    for s in req.sessions:
        got = seen_sup.get(s.id, [])
        if not s.needs_supervisor and not got:
            continue
        if len(got) != 1:
            out.append(Violation(rule="supervisor", session=s.id, message=(
                f"session {s.id} has {len(got)} internal supervisors; every exam has exactly one (§17(四))")))
        for who in got:
            sp = sups.get(who)
            if sp is None:
                out.append(Violation(rule="unknown_supervisor", session=s.id, person=who,
                                     message=f"session {s.id}: {who} is not a known internal supervisor"))
                continue
            hit = sorted(set(sp.conflicts) & set(s.candidates))
            if hit:
                out.append(Violation(rule="conflict", session=s.id, person=who, message=(
                    f"session {s.id}: supervisor {who} has a conflict with candidate(s) {', '.join(hit[:5])}")))
            if who in on_panel[s.id]:
                out.append(Violation(rule="supervisor_on_panel", session=s.id, person=who, message=(
                    f"session {s.id}: supervisor {who} sits on one of its panels")))
    if rooms is not None:
        keep = set(rooms)
        keep_sessions = {room_of[r].session for r in keep if r in room_of}
        out = [v for v in out if v.room in keep or keep.intersection(v.rooms)
               or (v.room is None and v.session in keep_sessions)]
    return out


# ------------------------------------------------------------------------------- external supervisors: the draw
DRAW_ALGORITHM = "pcg64-raw-fisher-yates-v1"


class DrawSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    start: datetime
    end: datetime
    excluded: list[str] = []  # supervisors with a conflict with this session's candidates or its site


class DrawRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a draw depends on: publish it with the result and anyone can re-run it."""

    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    sessions: list[DrawSession]
    pool: list[str]
    inspect: int | None = None  # how many sessions to inspect (None: all)
    per_session: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class DrawnSession(msgspec.Struct, kw_only=True):
    session: str
    supervisors: list[str]
    short: int = 0  # places left empty: too few supervisors free of conflicts


class DrawResult(msgspec.Struct, kw_only=True):
    algorithm: str
    seed: int
    inspected: list[str]
    drawn: list[DrawnSession]


def _below(bits: np.random.PCG64, n: int) -> int:
    """A uniform integer in [0, n) from the raw 64-bit PCG64 stream (rejection, no modulo bias). Only the bit
    generator's stream is used, which NumPy keeps stable across versions (NEP 19), not Generator methods."""
    limit = 2**64 - (2**64 % n)
    while True:
        u = int(bits.random_raw())
        if u < limit:
            return u % n


def _sample(bits: np.random.PCG64, items: Sequence[str], k: int) -> list[str]:
    """k of the items without replacement: the first k steps of a Fisher–Yates shuffle."""
    pool = list(items)
    for i in range(min(k, len(pool))):
        j = i + _below(bits, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def draw_supervisors(req: DrawRequest) -> DrawResult:
    """Double random draw (§26): which sessions to inspect, then who inspects each, excluding conflicts and
    nobody in two overlapping sessions. Sessions are taken in (start, id) order and the pool in id order, so
    the result depends only on the published request."""
    if len({s.id for s in req.sessions}) != len(req.sessions):
        raise InvalidInput("sessions", "session ids repeat")
    if len(set(req.pool)) != len(req.pool):
        raise InvalidInput("pool", "supervisor ids repeat")
    if req.inspect is not None and not 0 <= req.inspect <= len(req.sessions):
        raise InvalidInput("inspect", f"between 0 and the {len(req.sessions)} sessions")
    bits = np.random.PCG64(req.seed)
    ordered = sorted(req.sessions, key=lambda s: (s.start, s.id))
    n = len(ordered) if req.inspect is None else req.inspect
    chosen_ids = set(_sample(bits, [s.id for s in ordered], n))
    inspected = [s for s in ordered if s.id in chosen_ids]
    pool = sorted(req.pool)
    taken: dict[str, list[DrawSession]] = defaultdict(list)
    drawn: list[DrawnSession] = []
    for s in inspected:
        excluded = set(s.excluded)
        free = [p for p in pool if p not in excluded and not any(overlaps(s, t) for t in taken[p])]
        picked = sorted(_sample(bits, free, req.per_session))
        for p in picked:
            taken[p].append(s)
        drawn.append(DrawnSession(session=s.id, supervisors=picked, short=req.per_session - len(picked)))
    return DrawResult(algorithm=DRAW_ALGORITHM, seed=req.seed, inspected=[s.id for s in inspected], drawn=drawn)
