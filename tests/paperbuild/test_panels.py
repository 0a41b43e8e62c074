"""Evaluator panels: the CP-SAT solver, the greedy baseline, the explanations and the independent checker."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperbuild.errors import InvalidInput
from paperbuild.panels import (
    Assignment,
    Busy,
    Certificate,
    DrawRequest,
    DrawSession,
    Evaluator,
    Panel,
    PanelRequest,
    PanelsInfeasible,
    PracticalRoom,
    PreviousPanel,
    Session,
    Supervisor,
    SupervisorSlot,
    assign_panels,
    check_assignment,
    draw_supervisors,
    greedy_panels,
    precheck,
)

OCC = "6-18-01-01"
VALID = date(2027, 12, 31)


def cert(level: int = 3, occupation: str = OCC, until: date = VALID) -> Certificate:
    return Certificate(occupation=occupation, level=level, valid_until=until)


def ev(i: int, *certs: Certificate, barred: bool = False, conflicts: tuple[str, ...] = ()) -> Evaluator:
    return Evaluator(id=f"e{i:02d}", certificates=list(certs) or [cert()], barred=barred, conflicts=list(conflicts))


def session(sid: str, day: int = 3, hour: int = 9, hours: int = 3, candidates: tuple[str, ...] = ()) -> Session:
    start = datetime(2026, 12, day, hour)
    return Session(id=sid, start=start, end=start + timedelta(hours=hours), candidates=list(candidates))


def room(rid: str, sid: str, level: int = 3, candidates: tuple[str, ...] = (), institution: str = "A",
         occupation: str = OCC) -> PracticalRoom:
    return PracticalRoom(id=rid, session=sid, occupation=occupation, level=level, institution=institution,
                         candidates=list(candidates))


def request(sessions: list[Session], rooms: list[PracticalRoom], evaluators: list[Evaluator],
            supervisors: list[Supervisor] | None = None, **kw: object) -> PanelRequest:
    sups = supervisors if supervisors is not None else [Supervisor(id=f"s{i}") for i in range(len(sessions))]
    return PanelRequest(sessions=sessions, rooms=rooms, evaluators=evaluators, supervisors=sups,
                        time_limit_s=5.0, **kw)  # type: ignore[arg-type]


def test_a_week_of_two_batches_holds_every_rule() -> None:
    sessions = [session("S1", 3, 9, candidates=("c1", "c2")), session("S2", 3, 14, candidates=("c3", "c4")),
                session("S3", 4, 9, candidates=("c5",))]
    rooms = [room("R1", "S1", candidates=("c1", "c2")), room("R2", "S2", candidates=("c3", "c4")),
             room("R3", "S3", candidates=("c5",))]
    evaluators = [ev(i, conflicts=("c1",) if i < 2 else ()) for i in range(8)]
    req = request(sessions, rooms, evaluators)
    result = assign_panels(req)
    assert check_assignment(req, result.assignment) == []
    panels = {p.room: p for p in result.assignment.panels}
    assert not {"e00", "e01"} & set(panels["R1"].members)  # recusal
    assert all(len(p.members) == 3 and p.leader in p.members for p in panels.values())
    assert len(set(panels["R2"].members) - set(panels["R1"].members)) >= 1  # ⌈3/3⌉ new between batches
    assert {s.session for s in result.assignment.supervisors} == {"S1", "S2", "S3"}
    assert result.stats.max_load == 2 and result.stats.lower_bound == 2  # 9 seats over 8 people: spread


def test_certificate_level_rule_higher_marks_lower_and_expiry() -> None:
    s = session("S1")
    r = room("R1", "S1", level=3)
    evaluators = [ev(0, cert(level=2)), ev(1, cert(level=1)), ev(2, cert(level=3)),
                  ev(3, cert(level=4)),  # level 4 may not mark level 3
                  ev(4, cert(level=3, until=date(2026, 12, 2))),  # expired the day before
                  ev(5, cert(level=3, occupation="4-04-05-01"))]
    req = request([s], [r], evaluators)
    result = assign_panels(req)
    assert result.assignment.panels[0].members == ["e00", "e01", "e02"]
    assert result.assignment.panels[0].leader == "e01"  # the highest certificate leads
    bad = Assignment(panels=[Panel(room="R1", members=["e03", "e04", "e05"], leader="e03")],
                     supervisors=[SupervisorSlot(session="S1", supervisor="s0")])
    rules = sorted((v.rule, v.person) for v in check_assignment(req, bad))
    assert rules == [("certificate", "e03"), ("certificate", "e04"), ("certificate", "e05")]
    assert any("expired on 2026-12-02" in v.message for v in check_assignment(req, bad))


def test_shortage_in_words() -> None:
    cands = tuple(f"c{i}" for i in range(5))
    s = session("S1", candidates=cands)
    r = room("R1", "S1", candidates=cands)
    evaluators = [ev(0), ev(1), ev(2, conflicts=("c1",)), ev(3, conflicts=("c4",)), ev(4, barred=True),
                  ev(5, cert(level=4))]
    with pytest.raises(PanelsInfeasible) as exc:
        assign_panels(request([s], [r], evaluators))
    [reason] = exc.value.reasons
    assert reason.message == ("occupation 6-18-01-01 level 3 on 2026-12-03 09:00–12:00 (room R1): 4 certified "
                              "evaluators, 2 conflicted, 1 barred, 3 needed")
    assert (reason.needed, reason.available) == (3, 2)


def test_rooms_at_the_same_time_share_a_pool() -> None:
    sessions = [session("S1"), session("S2", hour=10)]
    rooms = [room("R1", "S1"), room("R2", "S2")]
    req = request(sessions, rooms, [ev(i) for i in range(5)])
    reasons = precheck(req)
    assert [r.rule for r in reasons] == ["overlap"]
    assert "need 6 evaluators; 5 are certified and free of conflicts" in reasons[0].message


def test_rotation_core_when_the_same_three_would_mark_twice() -> None:
    sessions = [session("S1", 3), session("S2", 4)]
    rooms = [room("R1", "S1"), room("R2", "S2")]
    req = request(sessions, rooms, [ev(i) for i in range(3)])
    assert precheck(req) == []  # each room alone has its three
    with pytest.raises(PanelsInfeasible) as exc:
        assign_panels(req)
    rules = {r.rule for r in exc.value.reasons}
    assert "rotation" in rules and rules <= {"rotation", "panel_size"}
    assert any("batches 1 and 2 of occupation 6-18-01-01 at A" in r.message for r in exc.value.reasons)
    # one more evaluator and it holds
    req4 = request(sessions, rooms, [ev(i) for i in range(4)])
    assert check_assignment(req4, assign_panels(req4).assignment) == []


def test_rotation_against_the_previous_panel() -> None:
    req = request([session("S1")], [room("R1", "S1")], [ev(i) for i in range(4)],
                  previous=[PreviousPanel(occupation=OCC, institution="A", members=["e00", "e01", "e02"])])
    panel = assign_panels(req).assignment.panels[0]
    assert "e03" in panel.members
    bad = Assignment(panels=[Panel(room="R1", members=["e00", "e01", "e02"], leader="e00")],
                     supervisors=[SupervisorSlot(session="S1", supervisor="s0")])
    [v] = check_assignment(req, bad)
    assert v.rule == "rotation" and "only 0 new of 3" in v.message


def test_supervisor_is_not_on_the_panels_and_not_conflicted() -> None:
    s = session("S1", candidates=("c1",))
    evaluators = [ev(i) for i in range(4)]
    supervisors = [Supervisor(id="e00"), Supervisor(id="s1", conflicts=("c1",))]  # e00: the same person
    req = request([s], [room("R1", "S1")], evaluators, supervisors)
    result = assign_panels(req)
    assert result.assignment.supervisors == [SupervisorSlot(session="S1", supervisor="e00")]
    assert "e00" not in result.assignment.panels[0].members
    bad = Assignment(panels=[Panel(room="R1", members=["e00", "e01", "e02"], leader="e00")],
                     supervisors=[SupervisorSlot(session="S1", supervisor="s1")])
    assert sorted(v.rule for v in check_assignment(req, bad)) == ["conflict"]
    bad2 = Assignment(panels=bad.panels, supervisors=[SupervisorSlot(session="S1", supervisor="e00")])
    assert {v.rule for v in check_assignment(req, bad2)} == {"supervisor_on_panel", "overlap"}
    with pytest.raises(PanelsInfeasible, match="1 conflicted, 1 needed"):
        assign_panels(request([s], [room("R1", "S1")], evaluators, [Supervisor(id="s1", conflicts=("c1",))]))


def test_checker_names_every_broken_rule() -> None:
    sessions = [session("S1", candidates=("c1",)), session("S2", hour=10)]
    rooms = [room("R1", "S1", candidates=("c1",)), room("R2", "S2")]
    evaluators = [ev(0, conflicts=("c1",)), ev(1, barred=True), ev(2), ev(3)]
    req = request(sessions, rooms, evaluators)
    bad = Assignment(panels=[Panel(room="R1", members=["e00", "e01", "e02"], leader="e09"),
                             Panel(room="R2", members=["e02", "e03"], leader="e03")],
                     supervisors=[SupervisorSlot(session="S1", supervisor="s0")])
    rules = sorted(v.rule for v in check_assignment(req, bad))
    assert rules == ["barred", "conflict", "leader", "overlap", "panel_size", "supervisor"]
    only_r2 = {v.rule for v in check_assignment(req, bad, rooms=["R2"])}
    assert only_r2 == {"overlap", "panel_size", "supervisor"}


def test_greedy_leaves_a_panel_short_and_the_checker_says_so() -> None:
    # R1 and R2 run at once; R2's candidates conflict with e03–e05, so only e00–e02 may mark R2. First fit gives
    # R1 e00–e02 and leaves R2 empty; the solver gives R1 e03–e05.
    sessions = [session("S1", candidates=("c1",)), session("S2", candidates=("c2",))]
    rooms = [room("R1", "S1", candidates=("c1",)), room("R2", "S2", candidates=("c2",))]
    evaluators = [ev(i, conflicts=("c2",) if i >= 3 else ()) for i in range(6)]
    req = request(sessions, rooms, evaluators)
    greedy = greedy_panels(req)
    assert [(v.rule, v.room) for v in check_assignment(req, greedy)] == [("panel_size", "R2")]
    solved = assign_panels(req)
    assert check_assignment(req, solved.assignment) == []
    assert {p.room: p.members for p in solved.assignment.panels} == {"R1": ["e03", "e04", "e05"],
                                                                     "R2": ["e00", "e01", "e02"]}


def test_same_seed_same_assignment() -> None:
    sessions = [session(f"S{d}{h}", d, h) for d in (3, 4) for h in (9, 14)]
    rooms = [room(f"R{s.id}{k}", s.id, institution=f"I{k}") for s in sessions for k in range(2)]
    evaluators = [ev(i) for i in range(14)]
    a = assign_panels(request(sessions, rooms, evaluators, seed=7, deterministic=True))
    b = assign_panels(request(sessions, rooms, evaluators, seed=7, deterministic=True))
    assert a.assignment == b.assignment and check_assignment(request(sessions, rooms, evaluators), a.assignment) == []


def test_bad_requests_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"rooms\[0\].session"):
        assign_panels(request([session("S1")], [room("R1", "S9")], [ev(0)]))
    with pytest.raises(InvalidInput, match="ends after it starts"):
        s = session("S1")
        assign_panels(request([Session(id="S1", start=s.end, end=s.start)], [], []))


@st.composite
def instances(draw: st.DrawFn) -> PanelRequest:
    n_sessions = draw(st.integers(1, 4))
    sessions = []
    for i in range(n_sessions):
        day, hour = draw(st.integers(3, 4)), draw(st.sampled_from([9, 10, 14]))
        sessions.append(session(f"S{i}", day, hour, hours=2, candidates=tuple(f"c{i}{k}" for k in range(4))))
    rooms = []
    for s in sessions:
        for k in range(draw(st.integers(1, 2))):
            cands = tuple(s.candidates[2 * k:2 * k + 2])
            rooms.append(room(f"{s.id}R{k}", s.id, level=draw(st.integers(3, 5)), candidates=cands,
                              institution=draw(st.sampled_from(["A", "B"])),
                              occupation=draw(st.sampled_from([OCC, "4-04-05-01"]))))
    all_cands = [c for s in sessions for c in s.candidates]
    evaluators = []
    for i in range(draw(st.integers(6, 22))):
        certs = [Certificate(occupation=draw(st.sampled_from([OCC, "4-04-05-01"])), level=draw(st.integers(1, 5)),
                             valid_until=draw(st.sampled_from([date(2026, 12, 3), VALID, VALID])))]
        conflicts = tuple(draw(st.lists(st.sampled_from(all_cands), max_size=1)))
        evaluators.append(ev(i, *certs, barred=draw(st.booleans()) and draw(st.booleans()), conflicts=conflicts))
    supervisors = [Supervisor(id=f"s{i}", conflicts=list(draw(st.lists(st.sampled_from(all_cands), max_size=1))))
                   for i in range(draw(st.integers(1, 3)))]
    previous = [PreviousPanel(occupation=OCC, institution="A", members=["e00", "e01", "e02"])] if draw(
        st.booleans()) else []
    return PanelRequest(sessions=sessions, rooms=rooms, evaluators=evaluators, supervisors=supervisors,
                        previous=previous, time_limit_s=3.0)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_every_assignment_returned_passes_the_checker(req: PanelRequest) -> None:
    greedy_ok = check_assignment(req, greedy_panels(req)) == []
    try:
        result = assign_panels(req)
    except PanelsInfeasible as exc:
        assert exc.reasons and all(r.message for r in exc.reasons)
        assert not greedy_ok, "the greedy baseline found an assignment the solver called impossible"
        return
    assert check_assignment(req, result.assignment) == []
    assert result.stats.max_load >= result.stats.lower_bound


def test_busy_elsewhere_is_counted_and_checked() -> None:
    s = session("S1")
    busy = [Busy(person="e00", start=s.start + timedelta(hours=1), end=s.end + timedelta(hours=2), what="room X9")]
    req = request([s], [room("R1", "S1")], [ev(i) for i in range(3)], busy=busy)
    with pytest.raises(PanelsInfeasible, match="3 certified evaluators, 0 conflicted, 1 busy elsewhere"):
        assign_panels(req)
    bad = Assignment(panels=[Panel(room="R1", members=["e00", "e01", "e02"], leader="e01")],
                     supervisors=[SupervisorSlot(session="S1", supervisor="s0")])
    [v] = check_assignment(req, bad)
    assert v.rule == "overlap" and "room X9" in v.message


def test_draw_is_reproducible_and_excludes_conflicts() -> None:
    sessions = [DrawSession(id=f"S{i}", start=datetime(2026, 12, 3 + i // 2, 9), end=datetime(2026, 12, 3 + i // 2, 12),
                            excluded=["x1"] if i == 0 else []) for i in range(6)]
    req = DrawRequest(seed=20261203, sessions=sessions, pool=[f"x{i}" for i in range(5)], inspect=4, per_session=2)
    a, b = draw_supervisors(req), draw_supervisors(req)
    assert a == b and len(a.inspected) == 4
    assert draw_supervisors(DrawRequest(seed=1, sessions=sessions, pool=req.pool, inspect=4, per_session=2)) != a
    by = {d.session: d.supervisors for d in a.drawn}
    assert "x1" not in by.get("S0", [])
    for d in a.drawn:
        assert len(d.supervisors) == 2 and d.short == 0
    for day in (3, 4, 5):  # sessions on one day overlap: nobody twice
        same = [p for sid, ps in by.items() for p in ps if sessions[int(sid[1:])].start.day == day]
        assert len(same) == len(set(same))
    short = draw_supervisors(DrawRequest(seed=3, sessions=sessions[:2], pool=["x0", "x1", "x2"], per_session=2))
    assert sum(d.short for d in short.drawn) == 1  # two overlapping sessions, three people, four places
