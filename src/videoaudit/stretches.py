"""From the key frames to stretches of the timeline: the runs of black, covered, blurred and repeated key frames,
their edges placed (decoding the GOP around an edge when key frames are far apart), and the repeated pictures
that hide between key frames."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from videoaudit.gops import Refiner, flag_runs, quiet_runs, repeated, split
from videoaudit.pictures import Pic, diff, measure
from videoaudit.rules import Finding, Model

# near-empty predicted frames: at most this share of the file's median one, mostly, for this long (a seed), then
# decoded up to this far either side; a repeated picture found so is a finding from this length on
QUIET_SHARE, QUIET_SEED_S, QUIET_REACH_S, QUIET_MIN_S = 0.15, 1.0, 12.0, 2.0


def picture_findings(
    path: str, keys: Sequence[Pic], model: Model, t0: float, t_end: float
) -> tuple[list[Finding], int]:
    """Black / covered / blurred / frozen stretches on the key frames, each edge then placed: the midpoint of
    the two key frames around it when they are at most 2 × ``edge_tolerance`` apart, else the frame where the
    picture turns, found by decoding that GOP. Times absolute (stream time); returns the frames decoded."""
    cfg = model.cfg
    ts = [k.t for k in keys]
    intervals = np.diff(ts) if len(ts) > 1 else np.asarray([0.0])
    gop = float(np.median(intervals))
    need = cfg.min_keyframes if gop <= cfg.short_gop else 1
    flags: dict[str, list[bool]] = {
        "black": [model.black(k) for k in keys],
        "covered": [model.covered(k) for k in keys],
        "blurred": [model.blurred(k) for k in keys],
    }
    stretches: list[tuple[str, int, int, str]] = []
    for kind, fl in flags.items():
        for a, b in flag_runs(fl):
            if b - a + 1 < (1 if kind == "black" else need):
                continue
            vals = keys[a : b + 1]
            kept = np.median([model.detail_left(k) for k in vals])
            detail = (
                f"mean luma {np.median([k.mean for k in vals]):.0f}, {kept:.0%} of the detail left "
                f"(detail {np.median([k.detail for k in vals]):.1f}, baseline {model.detail_base:.1f}, "
                f"grain {model.grain:.1f})"
            )
            if kind == "blurred" and model.edge_base > 0:
                crisp = np.median([k.edge for k in vals]) / model.edge_base
                detail += f", shapes {crisp:.0%} as crisp as the camera's"
            stretches.append((kind, a, b, detail))
    # frozen: key frame i repeats key frame i-1; the run of one picture is i-1 .. j
    blank = [x or y for x, y in zip(flags["black"], flags["covered"], strict=True)]
    same = [
        i > 0 and not blank[i] and not blank[i - 1] and model.same(keys[i].dmed, keys[i].dmax) for i in range(len(keys))
    ]
    for a, b in flag_runs(same):
        first = a - 1
        worst = max(keys[i].dmed for i in range(a, b + 1))
        detail = (
            f"{b - first + 1} key frames repeat one picture (median change {worst:.1f} "
            f"≤ floor {model.frozen_floor:.1f})"
        )
        stretches.append(("frozen", first, b, detail))

    refiner: Refiner | None = None

    def place(kind: str, t_lo: float, t_hi: float, rising: bool, across: float = 0.0) -> float:
        """The edge between key frame times ``t_lo`` (before) and ``t_hi`` (after; or the file's end);
        ``across``: the largest block change between those two key frames (frozen only)."""
        nonlocal refiner
        if t_hi - t_lo <= 2 * cfg.edge_tolerance:
            return (t_lo + t_hi) / 2
        if refiner is None:
            refiner = Refiner(path, cfg.edge_step)
        ref: npt.NDArray[np.uint8] | None = None
        if kind == "frozen":  # the repeated picture: key frame hi (rising) or lo (falling)
            at = t_hi if rising else t_lo
            ref = next(iter(refiner.frames(at, at)), (0, None))[1]
            if ref is None:
                return (t_lo + t_hi) / 2
        # between a sharp and a blurred key frame (both judged in full) the loss of detail places the edge: the
        # crispness baseline is the key frames', and predicted frames, coded without the grain, measure crisper
        rule = {"black": model.black, "covered": model.covered, "blurred": model.less_detail}.get(kind)
        # a predicted frame of the frozen picture differs from the key frame by more than the key frames among
        # themselves (8 in the clock's block, say) but far less than the live side does (a ticking clock: 100):
        # the cut lies between the floor and the change across the edge (geometric mean)
        floor_max = 3 * model.frozen_floor
        cut = math.sqrt(floor_max * max(across, floor_max))
        times: list[float] = []
        fl: list[bool] = []
        settled = 0  # samples in a row that already look like the far side: stop decoding after a second
        for t, h in refiner.frames(t_lo, t_hi):
            if ref is not None:
                dmed, dmax = diff(h, ref)
                flag = dmed <= 2.5 * 1.2 * model.frozen_floor and dmax <= max(cut, 1.2 * floor_max)
            else:
                assert rule is not None
                flag = rule(measure(t, h))
            times.append(t)
            fl.append(flag)
            settled = settled + 1 if flag == rising else 0
            if settled * cfg.edge_step > 1.0 + 1e-9:
                break
        if len(times) < 2:
            return (t_lo + t_hi) / 2
        i = split(fl, rising)
        return times[i] if i < len(times) else t_hi

    out: list[Finding] = []
    try:
        for kind, a, b, detail in stretches:
            start = place(kind, ts[a - 1], ts[a], True, keys[a].dmax) if a > 0 else t0
            last = b + 1 < len(keys)
            end = place(kind, ts[b], ts[b + 1] if last else t_end, False, keys[b + 1].dmax if last else 0.0)
            out.append(Finding(kind=kind, start=start, end=end, detail=detail))
    finally:
        if refiner is not None:
            refiner.close()
    return out, refiner.decoded if refiner is not None else 0


def between_keys(path: str, model: Model, times: list[float], sizes: list[int], keys: list[bool],
                  found: list[Finding]) -> tuple[list[Finding], int]:
    """Repeated pictures the key frames cannot see: shorter than two GOPs, they hold fewer than two key frames.
    Their predicted frames are mostly near-empty; from each such stretch where nothing was found yet, the frames
    are decoded out to where they stop repeating it (a GOP either side at most): a run of black frames is black,
    one picture over and over is frozen."""
    cfg = model.cfg
    key_times = sorted(t for t, k in zip(times, keys, strict=True) if k)
    reach = min(float(np.max(np.diff(key_times))) if len(key_times) > 1 else cfg.short_gop, QUIET_REACH_S)
    # a covered lens is a still, uniform picture that an encoder codes as near-empty frames too: not frozen
    taken = [(f.start, f.end) for f in found if f.kind in ("frozen", "black", "covered")]
    runs = quiet_runs(times, sizes, keys, QUIET_SHARE, QUIET_SEED_S)
    if not runs:
        return [], 0
    refiner = Refiner(path, cfg.edge_step)
    out: list[Finding] = []
    try:
        for a, b in runs:
            if any(x - 0.5 < b and a < y + 0.5 for x, y in taken):  # part of what was found already
                continue
            span = repeated(refiner, a, reach + (b - a), lambda x, y: model.same(*diff(x, y), slack=1.2))
            if span is None:
                continue
            start, end = span[0], span[1] + cfg.edge_step
            taken.append((start, end))
            picture = measure(start, span[2])
            if model.covered(picture):
                continue
            kind = "black" if model.black(picture) else "frozen"
            # a key frame codes the repeated picture anew: the frames after it repeat that one, seeded apart
            near = 2 * cfg.edge_step
            joined = next((i for i, f in enumerate(out)
                           if f.kind == kind and (abs(f.end - start) <= near or abs(end - f.start) <= near)), None)
            if joined is not None:
                start, end = min(start, out[joined].start), max(end, out[joined].end)
                del out[joined]
            what = "black throughout" if kind == "black" else "one picture throughout"
            out.append(Finding(kind=kind, start=start, end=end, detail=(
                f"between key frames: near-empty predicted frames, decoded: {what}")))
        out = [f for f in out if f.end - f.start >= QUIET_MIN_S]
    finally:
        refiner.close()
    return out, refiner.decoded
