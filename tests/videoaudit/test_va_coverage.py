from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoaudit import CoverageError, Finding, Recording, RecordingFinding, RecordingNote, Room, coverage
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


def test_findings_stay_separate_per_kind_and_recording() -> None:
    black = Finding(kind="black", start=60, end=600, detail="signal lost")
    covered = Finding(kind="covered", start=78, end=118)
    recs = [rec("a", "R2", "front", 0, 7200, [black, covered]), rec("b", "R2", "front", 7190, 100)]
    v = coverage(T0, T1, [ROOMS[1]], recs).rooms[0].views[0]
    got = [(f.kind, (f.start - T0).total_seconds(), (f.end - T0).total_seconds(), f.recording) for f in v.findings]
    assert got == [("black", 60, 600, "a"), ("covered", 78, 118, "a")]
    assert v.findings[0].detail == "signal lost"
    # the verdict arithmetic still sees the union, its reason the distinct kinds
    assert [(u.reason, (u.end - u.start).total_seconds()) for u in v.unusable] == [("black,covered", 540)]


def test_findings_clipped_to_the_window() -> None:
    recs = [rec("a", "R2", "front", -100, 7400, [Finding(kind="frozen", start=50, end=150)])]
    v = coverage(T0, T1, [ROOMS[1]], recs).rooms[0].views[0]
    assert [(f.start, f.end) for f in v.findings] == [(T0, T0 + timedelta(seconds=50))]


def test_format_minimums_are_notes_not_stretches() -> None:
    low = RecordingFinding(kind="low_resolution", detail="640×360 < 1280×720")
    r = Recording(id="a", room="R2", view="front", start=T0, duration=7200, recording_findings=[low])
    v = coverage(T0, T1, [ROOMS[1]], [r]).rooms[0].views[0]
    assert v.passes and v.findings == [] and v.unusable == []
    assert v.recording_notes == [RecordingNote(recording="a", kind="low_resolution", detail="640×360 < 1280×720")]


def test_corrupt_recording_placed_with_its_decodable_part() -> None:
    r = Recording(
        id="t", room="R2", view="front", start=T0, duration=7200, corrupt_reason="cut short", decodable=7000.0
    )
    v = coverage(T0, T1, [ROOMS[1]], [r]).rooms[0].views[0]
    assert not v.passes and v.unplaced == []
    assert [((f.start - T0).total_seconds(), f.kind, f.recording) for f in v.findings] == [(7000, "corrupt", "t")]
    assert v.usable_seconds == 7000 and [u.reason for u in v.unusable] == ["corrupt"]
    assert RecordingNote(recording="t", kind="corrupt", detail="cut short") in v.recording_notes


def test_corrupt_recording_whose_analysis_already_says_corrupt_is_not_doubled() -> None:
    said = Finding(kind="corrupt", start=7000, end=7200, detail="the container claims 7200 s")
    r = Recording(
        id="t", room="R2", view="front", start=T0, duration=7200, corrupt=True, decodable=7000.0, findings=[said]
    )
    v = coverage(T0, T1, [ROOMS[1]], [r]).rooms[0].views[0]
    assert [f.detail for f in v.findings] == ["the container claims 7200 s"]


def test_corrupt_recording_of_unknown_length_is_unplaced_not_skipped() -> None:
    r = Recording(id="u", room="R2", view="front", start=T0, duration=0, corrupt_reason="index missing")
    v = coverage(T0, T1, [ROOMS[1]], [r, rec("a", "R2", "front", 0, 7200)]).rooms[0].views[0]
    assert v.unplaced == ["u"] and v.passes
    assert v.recording_notes == [RecordingNote(recording="u", kind="corrupt", detail="index missing")]
    # a corrupt recording with nothing decodable is unusable over its whole span
    whole = Recording(id="w", room="R2", view="front", start=T0, duration=7200, corrupt=True)
    v2 = coverage(T0, T1, [ROOMS[1]], [whole]).rooms[0].views[0]
    assert not v2.passes and v2.usable_seconds == 0 and [f.kind for f in v2.findings] == ["corrupt"]
