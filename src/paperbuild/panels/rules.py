"""The rules every panel solver shares: who may sit on which panel, rotation, overlaps, leaders.

:class:`RequestIndex` looks up, once per request, who is eligible for each room (certified for the room's
occupation at its level or higher on the exam day, not barred, no conflict with its candidates, not busy
elsewhere at that time) and who may supervise each session; the CP-SAT model, the explanations and the greedy
baseline read it. The independent checker (:mod:`paperbuild.panels.checker`) keeps its own reading of the rules.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime
from typing import Protocol

from paperbuild.errors import InvalidInput
from paperbuild.panels.data import (
    MIN_PANEL,
    Assignment,
    Busy,
    Evaluator,
    Panel,
    PanelRequest,
    PracticalRoom,
    SupervisorSlot,
)

__all__ = ["RequestIndex", "certified", "overlaps", "rotation_limit", "validate", "with_leaders"]


class Span(Protocol):
    """Anything that takes up time: a session, a busy period, a session of a draw."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


def rotation_limit(n: int) -> int:
    """Most members a panel of n may keep from the batch before: n - ⌈n/3⌉."""
    return n - math.ceil(n / 3)


def overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def certified(ev: Evaluator, occupation: str, level: int, day: date) -> bool:
    return any(c.occupation == occupation and c.level <= level and c.valid_until >= day for c in ev.certificates)


class RequestIndex:
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
    """Refuse a malformed request (:class:`InvalidInput` naming the field) before any solving."""
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


def with_leaders(ix: RequestIndex, members: dict[str, list[str]], sups: dict[str, str]) -> Assignment:
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
