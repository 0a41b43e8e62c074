"""The CP-SAT model of a panel request, and the solver settings every solve uses.

Variables: ``x[e, room]`` — evaluator ``e`` sits on the room's panel (only for the eligible); ``z[p, session]``
— ``p`` supervises the session. Constraints: panel sizes, one supervisor per session, one place at a time per
person (per session and per set of sessions that share a moment), and rotation between consecutive batches
(``y[e, room, room before]`` — on both panels) and against the previous panel. Built ``with_assumptions``, every
rule (or group of rules) holds only under its own literal, so an infeasible request yields a core of rules.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.sat.python import cp_model

from paperbuild.panels.data import Assignment, PanelRequest
from paperbuild.panels.rules import RequestIndex, rotation_limit, with_leaders

__all__ = ["PanelModel", "solver_for"]


class PanelModel:
    """The model of one request. Variables and constraints are created in a fixed order (rooms in time order,
    people in id order), so the same request and seed give the same answer."""

    def __init__(self, ix: RequestIndex, *, with_assumptions: bool = False) -> None:
        self.ix = ix
        self.m = cp_model.CpModel()
        self.with_assumptions = with_assumptions
        self.rules: dict[int, tuple[str, tuple[str, ...]]] = {}  # assumption literal index → rule
        self.lits: list[cp_model.IntVar] = []
        self._variables()
        self._panel_sizes_and_supervisors()
        self._one_place_at_a_time()
        self._rotation()

    def _variables(self) -> None:
        ix, m = self.ix, self.m
        self.x: dict[tuple[str, str], cp_model.IntVar] = {}
        for r in ix.room_order:
            for e in ix.eligible[r.id]:
                self.x[(e, r.id)] = m.new_bool_var(f"x[{e},{r.id}]")
        self.z: dict[tuple[str, str], cp_model.IntVar] = {}
        for s in ix.req.sessions:
            if s.needs_supervisor:
                for p in ix.sup_eligible[s.id]:
                    self.z[(p, s.id)] = m.new_bool_var(f"z[{p},{s.id}]")
        self.by_room: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        self.by_person_room: dict[str, dict[str, cp_model.IntVar]] = defaultdict(dict)
        for (e, rid), v in self.x.items():
            self.by_room[rid].append(v)
            self.by_person_room[e][rid] = v
        self.by_session_sup: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        self.by_person_session: dict[str, dict[str, cp_model.IntVar]] = defaultdict(dict)
        for (p, sid), v in self.z.items():
            self.by_session_sup[sid].append(v)
            self.by_person_session[p][sid] = v

    def _rule(self, kind: str, *keys: str) -> cp_model.IntVar | None:
        """A new assumption literal for a rule (None when the model has no assumptions)."""
        if not self.with_assumptions:
            return None
        lit = self.m.new_bool_var(f"{kind}:{'/'.join(keys)}")
        self.rules[lit.index] = (kind, keys)
        self.lits.append(lit)
        return lit

    @staticmethod
    def _enforce(constraint: cp_model.Constraint, lit: cp_model.IntVar | None) -> None:
        if lit is not None:
            constraint.only_enforce_if(lit)

    def _panel_sizes_and_supervisors(self) -> None:
        for r in self.ix.room_order:
            c = self.m.add(sum(self.by_room[r.id]) == r.panel_size)
            self._enforce(c, self._rule("panel_size", r.id))
        for s in self.ix.req.sessions:
            if not s.needs_supervisor:
                continue
            c = self.m.add(sum(self.by_session_sup[s.id]) == 1)
            self._enforce(c, self._rule("supervisor", s.id))

    def _one_place_at_a_time(self) -> None:
        """Per person, per session they could be in, and per set of overlapping sessions."""
        ix = self.ix
        rooms_of_session: dict[str, list[str]] = defaultdict(list)
        for r in ix.room_order:
            rooms_of_session[r.session].append(r.id)
        groups = [[s.id] for s in ix.req.sessions] + ix.cliques
        people = sorted(set(self.by_person_room) | set(self.by_person_session))
        for group in groups:
            lit = self._rule("overlap", *group) if len(group) > 1 else None
            for p in people:
                terms = [self.by_person_room[p][rid] for sid in group for rid in rooms_of_session[sid]
                         if rid in self.by_person_room[p]]
                terms += [self.by_person_session[p][sid] for sid in group if sid in self.by_person_session[p]]
                if len(terms) > 1:
                    self._enforce(self.m.add(sum(terms) <= 1), lit)

    def _rotation(self) -> None:
        """Between consecutive batches, and against the previous panel: at most n - ⌈n/3⌉ members kept."""
        ix, m = self.ix, self.m
        for key, batches in sorted(ix.batches.items()):
            prev = ix.previous(key)
            if prev:
                lit = self._rule("rotation_previous", key[0], key[1])
                for rid in batches[0]:
                    r = ix.rooms[rid]
                    kept = [v for (e, rr), v in self.x.items() if rr == rid and e in prev]
                    if len(kept) > rotation_limit(r.panel_size):
                        self._enforce(m.add(sum(kept) <= rotation_limit(r.panel_size)), lit)
            for b in range(1, len(batches)):
                lit = self._rule("rotation", key[0], key[1], str(b))
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
                        self._enforce(m.add(sum(both) <= rotation_limit(r.panel_size)), lit)

    def objective(self) -> None:
        """Lexicographic workload: the largest loads first (weighted above any sum of squares), then the sum of
        squared loads, for evaluators and for supervisors."""
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
        """The panels and supervisors of the solver's current solution, leaders chosen."""
        return with_leaders(self.ix,
                            {rid: sorted(e for (e, r2), v in self.x.items() if r2 == rid and solver.value(v))
                             for rid in self.ix.rooms},
                            {sid: p for (p, sid), v in self.z.items() if solver.value(v)})


def solver_for(req: PanelRequest, budget_s: float, workers: int) -> cp_model.CpSolver:
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
