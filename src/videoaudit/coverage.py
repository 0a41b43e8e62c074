"""Coverage of every required camera view of every room over an exam session window (pure arithmetic).

Input: the window, the rooms (kind theory / practical / defence, each with its required views) and the
recordings (room, view, start, duration, quality findings relative to the recording's start). Output per
required view: covered intervals, gaps, unusable intervals, overlaps, duplicates and recordings outside the
window; a verdict per room and for the session. A view passes only when no stretch of the window longer
than ``gap_tolerance`` (default 2 s) lacks a usable picture: not recorded, or recorded but black, frozen,
blurred, covered, cut or corrupt (the finding kinds in ``unusable_kinds``). When recordings of one view
overlap, a stretch is usable if any of them is usable there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from videoaudit.quality import FINDING_KINDS, Finding, RecordingFinding

__all__ = [
    "CoverageError",
    "CoverageReport",
    "FindingSpan",
    "Interval",
    "Recording",
    "RecordingNote",
    "Room",
    "RoomVerdict",
    "ViewCoverage",
    "coverage",
    "intersect",
    "subtract",
    "union",
]

Span = tuple[float, float]
RoomKind = Literal["theory", "practical", "defence"]
# every finding kind makes a stretch unusable, unless the caller says otherwise ("truncated" and
# "decode_error": the names of "corrupt" stretches in findings stored before issue 13)
DEFAULT_UNUSABLE = frozenset(FINDING_KINDS) | {"truncated", "decode_error"}


class CoverageError(ValueError):
    """Bad coverage input: ``field`` names what is wrong (window, room, view, duration)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Room(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: RoomKind
    views: list[str]  # camera views the room requires, e.g. ["front", "back"]


class Recording(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    room: str
    view: str
    start: datetime
    duration: float  # seconds
    findings: list[Finding] = msgspec.field(default_factory=list)  # times relative to ``start``
    corrupt: bool = False  # probe/analyse refused the file: recorded, but nothing usable in it
    recording_findings: list[RecordingFinding] = msgspec.field(default_factory=list)  # format minimums
    corrupt_reason: str = ""  # non-empty: corrupt (as ``corrupt=True``), and why
    # corrupt only: seconds from ``start`` that decode (usable as far as the findings say); the rest of
    # ``duration`` (the claimed span) is a "corrupt" finding. ``None``: nothing decodes. A corrupt recording
    # whose duration is unknown (0) is listed in ``ViewCoverage.unplaced``.
    decodable: float | None = None

    @property
    def is_corrupt(self) -> bool:
        return self.corrupt or bool(self.corrupt_reason)


class Interval(msgspec.Struct, frozen=True):
    start: datetime
    end: datetime
    reason: str = ""


class FindingSpan(msgspec.Struct, frozen=True, kw_only=True):
    """One finding of one recording on the window's clock: one per kind per stretch, never merged with another
    kind (``ViewCoverage.unusable`` is the union, for the verdict)."""

    kind: str
    start: datetime
    end: datetime
    recording: str
    detail: str = ""


class RecordingNote(msgspec.Struct, frozen=True, kw_only=True):
    """About a whole recording of the view, beside the timeline: a format minimum (``low_resolution``, ...) or
    ``corrupt`` with its reason."""

    recording: str
    kind: str
    detail: str = ""


class ViewCoverage(msgspec.Struct, frozen=True, kw_only=True):
    room: str
    view: str
    covered: list[Interval]  # recorded (union, clipped to the window)
    usable: list[Interval]
    gaps: list[Interval]  # not recorded, longer than the tolerance
    unusable: list[Interval]  # recorded but not usable (reason: finding kinds)
    overlaps: list[Interval]  # recorded by two or more recordings
    duplicates: list[tuple[str, str]]  # recordings with the same start and end (±1 s)
    outside: list[str]  # recordings entirely outside the window
    extends_outside: list[str]  # recordings partly outside the window
    usable_seconds: float
    window_seconds: float
    passes: bool
    findings: list[FindingSpan] = msgspec.field(default_factory=list)  # clipped; by start, then kind
    recording_notes: list[RecordingNote] = msgspec.field(default_factory=list)
    unplaced: list[str] = msgspec.field(default_factory=list)  # corrupt recordings of unknown duration


class RoomVerdict(msgspec.Struct, frozen=True, kw_only=True):
    room: str
    kind: RoomKind
    views: list[ViewCoverage]
    passes: bool


class CoverageReport(msgspec.Struct, frozen=True, kw_only=True):
    window: Interval
    gap_tolerance: float
    rooms: list[RoomVerdict]
    passes: bool


# ------------------------------------------------------------------------------------- interval arithmetic
def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, merged (touching spans merge); empty spans dropped."""
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract(base: Iterable[Span], cut: Iterable[Span]) -> list[Span]:
    """``base`` minus ``cut``, both unions of spans."""
    cuts = union(cut)
    out: list[Span] = []
    for a, b in union(base):
        cur = a
        for c, d in cuts:
            if d <= cur or c >= b:
                continue
            if c > cur:
                out.append((cur, c))
            cur = max(cur, d)
            if cur >= b:
                break
        if cur < b:
            out.append((cur, b))
    return out


def intersect(x: Iterable[Span], y: Iterable[Span]) -> list[Span]:
    xs, ys = union(x), union(y)
    out: list[Span] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def _multiply_covered(spans: Sequence[Span]) -> list[Span]:
    """Where two or more of ``spans`` overlap."""
    events: list[tuple[float, int]] = []
    for a, b in spans:
        if b > a:
            events += [(a, 1), (b, -1)]
    events.sort(key=lambda e: (e[0], e[1]))
    out: list[Span] = []
    depth = 0
    start = 0.0
    for t, d in events:
        if depth < 2 <= depth + d:
            start = t
        elif depth >= 2 > depth + d and t > start:
            out.append((start, t))
        depth += d
    return union(out)


# ------------------------------------------------------------------------------------- coverage
def coverage(
    window_start: datetime,
    window_end: datetime,
    rooms: Sequence[Room],
    recordings: Sequence[Recording],
    *,
    gap_tolerance: float = 2.0,
    unusable_kinds: frozenset[str] = DEFAULT_UNUSABLE,
    duplicate_tolerance: float = 1.0,
) -> CoverageReport:
    """Coverage report of the session window (see the module doc). Raises :class:`CoverageError` for a window
    ending before it starts, an unknown room or view, a zero / negative / non-finite duration (allowed, as
    "unknown", only for a corrupt recording: it is listed in ``unplaced``), a room without required views or
    naive datetimes."""
    for name, dt in (("window_start", window_start), ("window_end", window_end)):
        if dt.tzinfo is None:
            raise CoverageError(name, "must be timezone-aware")
    if window_end <= window_start:
        raise CoverageError("window", f"ends ({window_end.isoformat()}) before it starts ({window_start.isoformat()})")
    if gap_tolerance < 0:
        raise CoverageError("gap_tolerance", "must be >= 0")
    room_by_id: dict[str, Room] = {}
    for r in rooms:
        if r.id in room_by_id:
            raise CoverageError("rooms", f"room {r.id!r} listed twice")
        if not r.views:
            raise CoverageError("rooms", f"room {r.id!r} requires no camera view")
        room_by_id[r.id] = r
    W = (window_end - window_start).total_seconds()

    def rel(dt: datetime) -> float:
        return (dt - window_start).total_seconds()

    def absolute(spans: Iterable[Span], reason: str = "") -> list[Interval]:
        return [
            Interval(window_start + timedelta(seconds=a), window_start + timedelta(seconds=b), reason) for a, b in spans
        ]

    per_view: dict[tuple[str, str], list[Recording]] = {}
    for rec in recordings:
        room = room_by_id.get(rec.room)
        if room is None:
            raise CoverageError("room", f"recording {rec.id!r} names unknown room {rec.room!r}")
        if rec.view not in room.views:
            raise CoverageError("view", f"recording {rec.id!r}: room {rec.room!r} has no view {rec.view!r}")
        if (not math.isfinite(rec.duration) or rec.duration <= 0) and not rec.is_corrupt:
            raise CoverageError("duration", f"recording {rec.id!r} has duration {rec.duration!r} (must be > 0)")
        if rec.start.tzinfo is None:
            raise CoverageError("start", f"recording {rec.id!r} start must be timezone-aware")
        per_view.setdefault((rec.room, rec.view), []).append(rec)

    verdicts: list[RoomVerdict] = []
    for room in rooms:
        views: list[ViewCoverage] = []
        for view in room.views:
            recs = sorted(per_view.get((room.id, view), []), key=lambda r: (r.start, r.id))
            spans: list[Span] = []
            usable_parts: list[Span] = []
            bad_by_reason: dict[str, list[Span]] = {}
            outside: list[str] = []
            extends: list[str] = []
            spans_found: list[FindingSpan] = []
            notes: list[RecordingNote] = []
            unplaced: list[str] = []
            for rec in recs:
                notes += [RecordingNote(recording=rec.id, kind=f.kind, detail=f.detail) for f in rec.recording_findings]
                if rec.is_corrupt:
                    notes.append(RecordingNote(recording=rec.id, kind="corrupt", detail=rec.corrupt_reason))
                if not math.isfinite(rec.duration) or rec.duration <= 0:
                    unplaced.append(rec.id)
                    continue
                a = rel(rec.start)
                b = a + rec.duration
                if b <= 0 or a >= W:
                    outside.append(rec.id)
                    continue
                if a < 0 or b > W:
                    extends.append(rec.id)
                span = (max(a, 0.0), min(b, W))
                spans.append(span)
                bad: list[Span] = []
                found = list(rec.findings)
                if rec.is_corrupt:
                    good = min(max(rec.decodable or 0.0, 0.0), rec.duration)
                    said = any(f.kind == "corrupt" and f.start <= good + 1 and f.end >= rec.duration - 1 for f in found)
                    if good < rec.duration and not said:
                        found.append(Finding(kind="corrupt", start=good, end=rec.duration, detail=rec.corrupt_reason))
                for f in found:
                    if f.kind in unusable_kinds or f.kind == "corrupt":
                        s = (max(a + f.start, span[0]), min(a + f.end, span[1]))
                        if s[1] > s[0]:
                            bad.append(s)
                            bad_by_reason.setdefault(f.kind, []).append(s)
                            spans_found.append(
                                FindingSpan(
                                    kind=f.kind,
                                    start=window_start + timedelta(seconds=s[0]),
                                    end=window_start + timedelta(seconds=s[1]),
                                    recording=rec.id,
                                    detail=f.detail,
                                )
                            )
                usable_parts += subtract([span], bad)
            covered = union(spans)
            usable = union(usable_parts)
            not_recorded = subtract([(0.0, W)], covered)
            gaps = [g for g in not_recorded if g[1] - g[0] > gap_tolerance]
            unusable_spans = subtract(covered, usable)
            unusable: list[Interval] = []
            for a, b in unusable_spans:
                reasons = sorted(k for k, ss in bad_by_reason.items() if intersect([(a, b)], ss))
                unusable.extend(absolute([(a, b)], ",".join(reasons)))
            missing = subtract([(0.0, W)], usable)
            passes = all(b - a <= gap_tolerance for a, b in missing)
            dups: list[tuple[str, str]] = []
            for i, x in enumerate(recs):
                for y in recs[i + 1 :]:
                    if (
                        abs((y.start - x.start).total_seconds()) <= duplicate_tolerance
                        and abs((y.start - x.start).total_seconds() + y.duration - x.duration) <= duplicate_tolerance
                    ):
                        dups.append((x.id, y.id))
            views.append(
                ViewCoverage(
                    room=room.id,
                    view=view,
                    covered=absolute(covered),
                    usable=absolute(usable),
                    gaps=absolute(gaps, "not recorded"),
                    unusable=unusable,
                    overlaps=absolute(_multiply_covered(spans), "overlap"),
                    duplicates=dups,
                    outside=outside,
                    extends_outside=extends,
                    usable_seconds=round(sum(b - a for a, b in usable), 3),
                    window_seconds=W,
                    passes=passes,
                    findings=sorted(spans_found, key=lambda f: (f.start, f.kind, f.end, f.recording)),
                    recording_notes=notes,
                    unplaced=unplaced,
                )
            )
        verdicts.append(RoomVerdict(room=room.id, kind=room.kind, views=views, passes=all(v.passes for v in views)))
    return CoverageReport(
        window=Interval(window_start, window_end),
        gap_tolerance=gap_tolerance,
        rooms=verdicts,
        passes=all(v.passes for v in verdicts),
    )
