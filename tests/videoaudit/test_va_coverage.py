from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoaudit import CoverageError, Finding, Recording, Room, coverage
from videoaudit.coverage import intersect, subtract, union

T0 = datetime(2025, 6, 14, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=2)
ROOMS = [Room(id="R1", kind="theory", views=["front", "back"]), Room(id="R2", kind="defence", views=["front"])]


def rec(i: str, room: str, view: str, start_s: float, dur: float, findings: list[Finding] | None = None) -> Recording:
    return Recording(
        id=i, room=room, view=view, start=T0 + timedelta(seconds=start_s), duration=dur, findings=findings or []
    )


def test_full_coverage_passes_with_small_segment_gaps() -> None:
    recs = [
        rec("a", "R1", "front", 0, 3600),
        rec("b", "R1", "front", 3601.5, 3598.5),
        rec("c", "R1", "back", -10, 7300),
        rec("d", "R2", "front", 0, 7200),
    ]
    r = coverage(T0, T1, ROOMS, recs)
    assert r.passes and all(v.passes for room in r.rooms for v in room.views)
    front = r.rooms[0].views[0]
    assert front.gaps == [] and len(front.covered) == 2
    assert r.rooms[0].views[1].extends_outside == ["c"]


def test_gap_unusable_overlap_duplicate_outside() -> None:
    frozen = Finding(kind="frozen", start=100.0, end=130.0)
    recs = [
        rec("a", "R1", "front", 0, 3000, [frozen]),
        rec("b", "R1", "front", 3010, 4190),  # 10 s gap
        rec("b2", "R1", "front", 3010.4, 4190.2),  # duplicate of b
        rec("c", "R1", "back", 0, 7200),
        rec("x", "R1", "back", 8000, 60),  # entirely after the window
        rec("d", "R2", "front", 0, 7200),
    ]
    r = coverage(T0, T1, ROOMS, recs)
    assert not r.passes
    r1, r2 = r.rooms
    assert not r1.passes and r2.passes
    front, back = r1.views
    assert [(g.start, g.end) for g in front.gaps] == [(T0 + timedelta(seconds=3000), T0 + timedelta(seconds=3010))]
    assert [(u.start, u.end, u.reason) for u in front.unusable] == [
        (T0 + timedelta(seconds=100), T0 + timedelta(seconds=130), "frozen")
    ]
    assert front.duplicates == [("b", "b2")]
    assert front.overlaps and front.overlaps[0].start == T0 + timedelta(seconds=3010.4)
    assert back.outside == ["x"] and back.passes


def test_unusable_covered_by_other_recording_is_fine() -> None:
    recs = [
        rec("a", "R2", "front", 0, 7200, [Finding(kind="black", start=50, end=80)]),
        rec("b", "R2", "front", 40, 100),
    ]
    r = coverage(T0, T1, [ROOMS[1]], recs)
    assert r.passes and r.rooms[0].views[0].unusable == []


def test_missing_view_fails() -> None:
    r = coverage(T0, T1, ROOMS, [rec("a", "R1", "front", 0, 7200), rec("d", "R2", "front", 0, 7200)])
    back = r.rooms[0].views[1]
    assert not back.passes and back.covered == [] and back.gaps[0].end == T1


@pytest.mark.parametrize(
    ("recs", "field"),
    [
        ([rec("a", "R9", "front", 0, 10)], "room"),
        ([rec("a", "R1", "ceiling", 0, 10)], "view"),
        ([rec("a", "R1", "front", 0, 0)], "duration"),
        ([rec("a", "R1", "front", 0, -5)], "duration"),
        ([rec("a", "R1", "front", 0, float("nan"))], "duration"),
    ],
)
def test_bad_input(recs: list[Recording], field: str) -> None:
    with pytest.raises(CoverageError) as info:
        coverage(T0, T1, ROOMS, recs)
    assert info.value.field == field


def test_window_ending_before_start() -> None:
    with pytest.raises(CoverageError) as info:
        coverage(T1, T0, ROOMS, [])
    assert info.value.field == "window"
    with pytest.raises(CoverageError):
        coverage(T0, T0, ROOMS, [])


spans = st.lists(
    st.tuples(st.integers(-50, 1000), st.integers(1, 300)).map(lambda p: (float(p[0]), float(p[0] + p[1]))),
    max_size=12,
)


def covered_points(ss: list[tuple[float, float]], x: float) -> bool:
    return any(a <= x < b for a, b in ss)


@settings(max_examples=200, deadline=None)
@given(spans, spans, st.lists(st.integers(-60, 1400), min_size=1, max_size=30))
def test_interval_algebra_pointwise(
    xs: list[tuple[float, float]], ys: list[tuple[float, float]], pts: list[int]
) -> None:
    u, d, i = union(xs), subtract(xs, ys), intersect(xs, ys)
    for ss in (u, d, i):
        assert all(a < b for a, b in ss)
        assert all(ss[k][1] < ss[k + 1][0] for k in range(len(ss) - 1)) or ss == u  # disjoint, sorted
    for p in pts:
        x = p + 0.5
        assert covered_points(u, x) == covered_points(xs, x)
        assert covered_points(d, x) == (covered_points(xs, x) and not covered_points(ys, x))
        assert covered_points(i, x) == (covered_points(xs, x) and covered_points(ys, x))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-100, 7300), st.integers(1, 4000), st.integers(0, 3000), st.integers(0, 60)), max_size=6
    ),
    st.floats(0, 10),
)
def test_coverage_invariants(raw: list[tuple[int, int, int, int]], tol: float) -> None:
    recs = [
        rec(f"r{k}", "R2", "front", s, d, [Finding(kind="blurred", start=fs, end=fs + fl)] if fl else [])
        for k, (s, d, fs, fl) in enumerate(raw)
    ]
    r = coverage(T0, T1, [ROOMS[1]], recs, gap_tolerance=tol)
    v = r.rooms[0].views[0]
    sec = lambda iv: [((x.start - T0).total_seconds(), (x.end - T0).total_seconds()) for x in iv]  # noqa: E731
    covered, usable, gaps, unusable = sec(v.covered), sec(v.usable), sec(v.gaps), sec(v.unusable)
    # usable ⊆ covered ⊆ window; covered = usable ∪ unusable (disjoint); gaps ∩ covered = ∅
    assert subtract(usable, covered) == []
    assert all(a >= 0 and b <= 7200 for a, b in covered)
    assert union(usable + unusable) == union(covered)
    assert intersect(usable, unusable) == []
    assert intersect(gaps, covered) == []
    assert all(b - a > tol for a, b in gaps)
    missing = subtract([(0.0, 7200.0)], usable)
    assert v.passes == all(b - a <= tol for a, b in missing)
    assert r.passes == v.passes
    assert v.usable_seconds == pytest.approx(sum(b - a for a, b in usable), abs=1e-3)
