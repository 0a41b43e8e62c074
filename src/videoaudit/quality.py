"""Picture quality of a recording: black, frozen, blurred / covered lens, gaps, corrupt; format minimums.

One pass over the file with PyAV, in-process, one thread:

* every packet is demuxed (no decoding): timestamps and sizes give gaps, timestamp jumps and truncation;
* only the key packets are decoded (``skip_loop_filter``), and from each key frame's luma plane, reduced to a
  quarter of its size by 2×2 averaging of every other row/column (no scaler), come per block of a 9 × 16 grid
  the high-frequency energy (mean absolute Laplacian) and the mean: **detail** (90th percentile of the
  energies: edges, wherever they are), **grain** (10th percentile: the flattest blocks hold only noise) and
  **uniformity** (how far the blocks' means spread); and the difference to the previous key frame at half
  size on a 27 × 48 grid of blocks (median and largest block mean).

Each recording is judged against its **own** baselines, robust statistics over all its key frames
(:class:`_Model`): its grain (median) and its detail baseline (75th percentile), so a dim, low-contrast or
infrared camera is compared with itself. Per key frame (thresholds in :class:`QualityConfig`):

* **black** – mean luma below ``black_luma`` and no structure;
* **covered** – the detail above the grain falls below ``cover_detail_ratio`` of the baseline's (only noise
  left) *and* the picture is uniform: a hand, cloth or paper, dark or bright. A sharp low-contrast scene keeps
  its detail; a lens covered by a third keeps the detail of the rest: neither is covered;
* **blurred** – the same loss of detail, the picture not uniform (the scene's shapes still there);
* **frozen** – consecutive key frames that differ by no more than the encoder's floor (from the grain,
  clamped: a repeated picture differs by ≈ 0–1.5 in its median block and ≈ 2–4 in its most changed block,
  live sensor noise by ≈ 3–4 everywhere, a live clock by 20+ in its block), clock or no clock.

Edges: the key frames give the stretches; an edge between two key frames at most 2 s apart is their midpoint
(error ≤ 1 s); further apart (GOPs of 4–10 s, or the last key frame before the end), only that GOP is decoded
(seek to the key frame before, decode on, stop a second after the picture has turned) and the edge placed on
the frame that turns, sampled every ``edge_step`` s (``QualityReport.edge_frames_decoded`` says what it cost).
A defect shorter than a GOP may hold no key frame at all and is then not seen: the price of not decoding
every frame. All times are seconds from the first frame.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from videoaudit.errors import AudioOnly, EmptyFile, NotAVideo, Truncated, VideoError
from videoaudit.gops import Refiner, quiet_runs, repeated, split
from videoaudit.pictures import Pic, diff, half_luma, measure

__all__ = [
    "FINDING_KINDS",
    "RECORDING_FINDING_KINDS",
    "Finding",
    "QualityConfig",
    "QualityReport",
    "RecordingFinding",
    "analyse",
    "analyse_many",
]

_GRID = (27, 48)
# near-empty predicted frames: at most this share of the file's median one, mostly, for this long (a seed), then
# decoded up to this far either side; a repeated picture found so is a finding from this length on
QUIET_SHARE, QUIET_SEED_S, QUIET_REACH_S, QUIET_MIN_S = 0.15, 1.0, 12.0, 2.0
# picture findings: each a stretch of the timeline; one per kind per stretch, kinds never merged
FINDING_KINDS = ("black", "frozen", "blurred", "covered", "gap", "corrupt")
# format minimums: about the whole recording, shown beside the timeline, never painted over it
RECORDING_FINDING_KINDS = ("low_resolution", "low_fps", "low_bit_rate")


class QualityConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :func:`analyse`. Luma values are 8-bit Y (16 = video black, 235 = white).

    The picture is judged against the recording's own statistics (per camera; robust over the whole file):
    its **grain** (the noise floor: high-frequency energy of the flattest blocks, median over the key frames)
    and its **detail** baseline (at the ``baseline_percentile`` of its key frames; ``baseline_sharpness``
    when the service knows it from earlier recordings of the camera — a recording blurred or covered for most
    of its length has no baseline of its own).

    Defaults: ``black_luma`` 32 (≈ blackdetect ``pix_th`` 0.1 in limited range), ``black_max_std`` 10;
    covered = detail above the grain at most ``cover_detail_ratio`` 0.4 of the baseline's, together with a
    uniform picture (90 % of the blocks' means within ``cover_max_spread`` 16 of their median); blurred = the
    same loss (``blur_ratio`` 0.4) in a picture that is not uniform, whose shapes are also soft: their
    crispness (detail per unit of a block's contrast, :attr:`Pic.edge`) at most ``blur_edge_ratio`` 0.5 of the
    camera's (``baseline_edge``, else from the file like the detail baseline). A sharp low-contrast picture keeps
    0.7–0.9 of its detail, a cover or a blur 0–0.3; a blur keeps 0.2–0.4 of the crispness, a slow pan over a
    plainer part of the room ≥ 0.7 while its detail drops to 0.35. Frozen = key frames whose median block
    difference stays within 2.5 × and whose largest within 3 × the encoder floor:
    ``frozen_grain_ratio`` 0.35 × the grain, clamped to ``frozen_floor`` (1.5, 4.0), and whose largest also
    within ``frozen_live_ratio`` 0.7 of the file's own key-frame changes (their 90th percentile) or
    ``frozen_grain_max`` 0.8 × the grain, whichever is larger (a still room without a clock at low noise:
    live 1.3–1.6 × the grain, repeated 0.2–0.8 ×) — a repeated picture
    measures ≈ 0–1, live sensor noise ≈ 3–4, a live burned-in clock 20+ in its block; ``min_keyframes`` 2
    for blurred / covered / frozen when key frames come at most ``short_gop`` 2.5 s apart, else 1 (black
    always 1); edges placed within ``edge_tolerance`` 1 s by decoding the GOPs around them when key frames
    are further apart than twice that, sampled every ``edge_step`` 0.2 s; ``gap_tolerance`` 1 s between
    frames; minimum format 1280×720, 15 fps, 1 Mb/s
    (§17: the picture is clear).
    """

    black_luma: float = 32.0
    black_max_std: float = 10.0
    cover_detail_ratio: float = 0.4
    cover_max_spread: float = 16.0
    blur_ratio: float = 0.4
    blur_edge_ratio: float = 0.5
    baseline_percentile: float = 75.0
    baseline_sharpness: float | None = None
    baseline_edge: float | None = None
    frozen_grain_ratio: float = 0.35
    frozen_floor: tuple[float, float] = (1.5, 4.0)
    frozen_live_ratio: float = 0.7
    frozen_grain_max: float = 0.8
    min_keyframes: int = 2
    short_gop: float = 2.5
    edge_tolerance: float = 1.0
    edge_step: float = 0.2
    gap_tolerance: float = 1.0
    min_width: int = 1280
    min_height: int = 720
    min_fps: float = 15.0
    min_bit_rate: int = 1_000_000


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One problem: ``kind`` (see ``FINDING_KINDS``), from ``start`` to ``end`` seconds into the file."""

    kind: str
    start: float
    end: float
    detail: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


class RecordingFinding(msgspec.Struct, frozen=True, kw_only=True):
    """A property of the whole recording (``RECORDING_FINDING_KINDS``), e.g. ``low_resolution`` with detail
    ``"640×360 < 1280×720"``; never a stretch of the timeline."""

    kind: str
    detail: str = ""


class QualityReport(msgspec.Struct, frozen=True, kw_only=True):
    """Result of :func:`analyse`. ``usable`` is False when any picture finding makes a stretch unusable.

    ``duration`` is the span of the frames found (= ``decodable``); ``claimed_duration`` what the container says
    (``None`` when it says nothing); ``truncated`` when the frames end before the claim or the file cannot be read
    to its end: then a ``corrupt`` finding runs from ``decodable`` to ``claimed_duration``."""

    path: str
    duration: float
    width: int
    height: int
    fps: float
    bit_rate: int | None
    codec: str
    findings: list[Finding]
    recording_findings: list[RecordingFinding]
    truncated: bool
    claimed_duration: float | None
    decodable: float
    packets: int
    keyframes_decoded: int
    baseline_sharpness: float
    edge_frames_decoded: int = 0  # frames decoded to place edges between key frames far apart
    grain: float = 0.0  # the file's noise floor (mean |Laplacian| of its flattest blocks)
    baseline_edge: float = 0.0  # the camera's usual crispness (QualityConfig.baseline_edge to give it next time)
    frozen_floor: float = 0.0  # median block |ΔY| at or below which two pictures are one repeated picture
    wall_seconds: float
    cpu_seconds: float

    @property
    def usable(self) -> bool:
        return not self.findings


class _Model(msgspec.Struct):
    """The recording's own baselines (robust over all its key frames) and the per-picture rules."""

    cfg: QualityConfig
    detail_base: float
    grain: float
    frozen_floor: float
    edge_base: float = 0.0
    frozen_cap: float = math.inf  # the largest block change two key frames of one repeated picture may show

    @classmethod
    def of(cls, cfg: QualityConfig, keys: Sequence[Pic]) -> _Model:
        lit = [k for k in keys if not cls.is_black(cfg, k)] or list(keys)
        grain = float(np.median([k.grain for k in lit])) if lit else 0.0
        if cfg.baseline_sharpness is not None:
            detail_base = cfg.baseline_sharpness
        else:
            detail_base = float(np.percentile([k.detail for k in lit], cfg.baseline_percentile)) if lit else 0.0
        if cfg.baseline_edge is not None:
            edge_base = cfg.baseline_edge
        else:
            # a covered lens shows only the burned-in clock's crisp digits: not the camera's picture
            shaped = [k.edge for k in lit if k.edge > 0 and k.spread > cfg.cover_max_spread]
            edge_base = float(np.percentile(shaped, cfg.baseline_percentile)) if shaped else 0.0
        lo, hi = cfg.frozen_floor
        floor = min(max(cfg.frozen_grain_ratio * grain, lo), hi)
        # a still room without a clock changes by its sensor noise alone, which at a low noise level stays within
        # the floor: its key frames then differ by more than repeated ones only relative to the file's own changes
        changes = [k.dmax for k in keys if math.isfinite(k.dmax)]
        live = float(np.percentile(changes, 90)) if changes else math.inf
        cap = max(cfg.frozen_live_ratio * live, cfg.frozen_grain_max * grain)
        return cls(cfg=cfg, detail_base=detail_base, grain=grain, frozen_floor=floor, edge_base=edge_base,
                   frozen_cap=cap)

    @staticmethod
    def is_black(cfg: QualityConfig, p: Pic) -> bool:
        return p.mean < cfg.black_luma and p.std < cfg.black_max_std

    def black(self, p: Pic) -> bool:
        return self.is_black(self.cfg, p)

    def detail_left(self, p: Pic) -> float:
        """The share of the baseline's detail above the grain that this picture keeps (1 = all of it)."""
        above = max(self.detail_base - self.grain, 1e-6)
        # its own grain when higher: a blur lets the encoder keep the sensor noise it smoothed away on the sharp
        # pictures (a dim 720p HEVC camera: grain 0 sharp, 2.7 blurred, detail 6.3 against 3.7)
        return max(p.detail - max(self.grain, p.grain), 0.0) / above

    def covered(self, p: Pic) -> bool:
        c = self.cfg
        return not self.black(p) and self.detail_left(p) <= c.cover_detail_ratio and p.spread <= c.cover_max_spread

    def less_detail(self, p: Pic) -> bool:
        """The picture lost detail and is not uniform: blurred, or a plainer view."""
        c = self.cfg
        return not self.black(p) and self.detail_left(p) <= c.blur_ratio and p.spread > c.cover_max_spread

    def blurred(self, p: Pic) -> bool:
        """Less detail *and* softer shapes: a plainer view (a pan to a bare wall) has less detail, but what shapes
        it has stay as crisp as the camera's usual ones."""
        return self.less_detail(p) and p.edge <= self.cfg.blur_edge_ratio * self.edge_base

    def same(self, dmed: float, dmax: float, slack: float = 1.0) -> bool:
        """Two pictures are one repeated picture: they differ by no more than the encoder's floor anywhere
        (``slack`` for a predicted frame against a key frame: coded at another quality). A live picture
        differs by its sensor noise everywhere, or by its clock or motion somewhere."""
        floor = slack * self.frozen_floor
        return dmed <= 2.5 * floor and dmax <= min(3 * floor, slack * self.frozen_cap)


def _open(path: str) -> Any:
    import av

    try:
        size = os.path.getsize(path)
    except FileNotFoundError as exc:
        raise NotAVideo(path, "file not found") from exc
    if size == 0:
        raise EmptyFile(path, "file is empty (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        from videoaudit.probe import looks_like_mp4

        if looks_like_mp4(path) and isinstance(exc, av.error.InvalidDataError):
            # an MP4 whose index (moov) never arrived: frames may be there, but nothing says where or how long
            raise Truncated(path, "file is truncated: its index is missing", _why(exc)) from exc
        raise NotAVideo(path, "not a video the decoder can read", _why(exc)) from exc
    if not container.streams.video:
        kinds = [s.type for s in container.streams]
        container.close()
        if "audio" in kinds:
            raise AudioOnly(path, "audio only, no video stream")
        raise NotAVideo(path, "no video stream")
    return container


def _why(exc: Any) -> str:
    """The decoder's words without the file's path (PyAV puts it in ``str(exc)``)."""
    return str(getattr(exc, "strerror", "") or type(exc).__name__)


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = -1
    for i, f in enumerate(flags):
        if f and start < 0:
            start = i
        elif not f and start >= 0:
            out.append((start, i - 1))
            start = -1
    if start >= 0:
        out.append((start, len(flags) - 1))
    return out


def analyse(path: str | os.PathLike[str], config: QualityConfig | None = None) -> QualityReport:
    """Find picture problems in one recording (see the module doc). Raises :class:`VideoError` subclasses for
    files that are not usable video at all; a file that is cut short or partly undecodable gives findings."""
    import av

    cfg = config or QualityConfig()
    p = str(path)
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    container = _open(p)
    findings: list[Finding] = []
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = 1
        ctx.thread_type = "NONE"
        ctx.skip_frame = "NONKEY"
        ctx.options = {"skip_loop_filter": "all"}
        tb = float(stream.time_base) if stream.time_base else 1.0 / 90000
        pts_list: list[int] = []
        sizes: list[int] = []
        key_flags: list[bool] = []
        keys: list[Pic] = []
        # key pictures wait here until the next few arrive: a decoder with a reorder delay (HEVC with B-frames)
        # hands them out of order, and each is compared with the key picture just before it in time
        pending: dict[float, tuple[Pic, npt.NDArray[np.uint8]]] = {}
        last: npt.NDArray[np.uint8] | None = None
        decode_errors: list[float] = []
        truncated_reason = ""

        def settle(keep: int) -> None:
            nonlocal last
            while len(pending) > keep:
                pic, half = pending.pop(min(pending))
                if last is not None:
                    pic.dmed, pic.dmax = diff(half, last)
                last = half
                keys.append(pic)

        def take(frames: Iterable[Any]) -> None:
            for fr in frames:
                if fr.pts is None:
                    continue
                t = fr.pts * tb
                half = np.ascontiguousarray(half_luma(fr))
                pending[t] = (measure(t, half), half)
                settle(3)

        demux = container.demux(stream)
        while True:
            try:
                pkt = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                truncated_reason = _why(exc)
                break
            if pkt.size == 0 or pkt.pts is None:
                continue
            pts_list.append(pkt.pts)
            sizes.append(pkt.size)
            key_flags.append(bool(pkt.is_keyframe))
            if pkt.is_keyframe:
                try:
                    take(ctx.decode(pkt))
                except av.error.FFmpegError:
                    decode_errors.append(pkt.pts * tb)
        with contextlib.suppress(av.error.FFmpegError):
            take(ctx.decode(None))
        settle(0)
        width, height = ctx.width, ctx.height
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        codec = ctx.name
        bit_rate = ctx.bit_rate or container.bit_rate or None
        claimed = 0.0
        if stream.duration:
            claimed = float(stream.duration * tb)
        elif container.duration:
            claimed = container.duration / 1_000_000
    finally:
        container.close()
    if not pts_list:
        raise NotAVideo(p, "no video frames", truncated_reason)
    pts = np.unique(np.asarray(pts_list, dtype=np.int64)).astype(np.float64) * tb
    t0 = float(pts[0])
    frame_dur = 1.0 / fps if fps > 0 else float(np.median(np.diff(pts))) if pts.size > 1 else 0.04
    t_end = float(pts[-1]) + frame_dur
    duration = t_end - t0

    def rel(t: float) -> float:
        return round(max(0.0, float(t) - t0), 3)

    # --- gaps and truncation (demux only)
    if pts.size > 1:
        steps = np.diff(pts)
        for i in np.flatnonzero(steps > cfg.gap_tolerance):
            findings.append(
                Finding(
                    kind="gap",
                    start=rel(pts[i] + frame_dur),
                    end=rel(pts[i + 1]),
                    detail=f"no frames for {steps[i]:.2f} s",
                )
            )
    truncated = bool(truncated_reason) or bool(claimed and claimed - duration > max(1.0, 2 * frame_dur))
    if truncated:
        # a key frame cut in two by the truncation is where the corrupt stretch starts, not a finding of its own
        cut = [t for t in decode_errors if t >= t_end - 2 * frame_dur]
        decode_errors = [t for t in decode_errors if t not in cut]
        start = rel(min([t_end, *cut]))
        end = round(claimed, 3) if claimed and claimed > duration else rel(t_end)
        why = f"the container claims {claimed:.2f} s, frames end at {duration:.2f} s" if claimed else "file cut short"
        findings.append(Finding(kind="corrupt", start=start, end=end, detail=f"{why} {truncated_reason}".strip()))
    for t in decode_errors:
        findings.append(
            Finding(kind="corrupt", start=rel(t), end=rel(t + frame_dur), detail="key frame failed to decode")
        )

    # --- format minimums: about the recording, not a stretch of it
    recording_findings: list[RecordingFinding] = []
    if width < cfg.min_width or height < cfg.min_height:
        recording_findings.append(
            RecordingFinding(kind="low_resolution", detail=f"{width}×{height} < {cfg.min_width}×{cfg.min_height}")
        )
    if fps and fps < cfg.min_fps:
        recording_findings.append(RecordingFinding(kind="low_fps", detail=f"{fps:.2f} fps < {cfg.min_fps:g}"))
    if bit_rate is not None and bit_rate < cfg.min_bit_rate:
        recording_findings.append(
            RecordingFinding(kind="low_bit_rate", detail=f"{bit_rate / 1e6:.2f} Mb/s < {cfg.min_bit_rate / 1e6:g} Mb/s")
        )

    # --- picture: key frames classified against the file's own baselines, edges placed within the tolerance
    model: _Model | None = None
    refine_frames = 0
    if keys:
        keys.sort(key=lambda k: k.t)
        model = _Model.of(cfg, keys)
        picture, refine_frames = _picture_findings(p, keys, model, t0, t_end)
        hidden, hidden_frames = _between_keys(p, model, [x * tb for x in pts_list], sizes, key_flags, picture)
        picture += hidden
        refine_frames += hidden_frames
        findings += [
            Finding(kind=f.kind, start=rel(f.start), end=rel(f.end), detail=f.detail)
            for f in picture
            if rel(f.end) > rel(f.start)
        ]
    findings.sort(key=lambda f: (f.start, f.kind))
    return QualityReport(
        path=p,
        duration=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        bit_rate=int(bit_rate) if bit_rate else None,
        codec=codec,
        findings=findings,
        recording_findings=recording_findings,
        truncated=truncated,
        claimed_duration=round(claimed, 3) if claimed else None,
        decodable=round(duration, 3),
        packets=int(pts.size),
        keyframes_decoded=len(keys),
        edge_frames_decoded=refine_frames,
        baseline_sharpness=round(model.detail_base, 2) if model else 0.0,
        grain=round(model.grain, 2) if model else 0.0,
        baseline_edge=round(model.edge_base, 3) if model else 0.0,
        frozen_floor=round(model.frozen_floor, 2) if model else 0.0,
        wall_seconds=round(time.perf_counter() - wall0, 3),
        cpu_seconds=round(time.thread_time() - cpu0, 3),
    )


def _picture_findings(
    path: str, keys: Sequence[Pic], model: _Model, t0: float, t_end: float
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
        for a, b in _runs(fl):
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
    for a, b in _runs(same):
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


def _between_keys(path: str, model: _Model, times: list[float], sizes: list[int], keys: list[bool],
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
            first = next(iter(refiner.frames(start, start)), None)
            picture = measure(start, first[1]) if first is not None else None
            if picture is not None and model.covered(picture):
                continue
            kind = "black" if picture is not None and model.black(picture) else "frozen"
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


def analyse_many(
    paths: Sequence[str | os.PathLike[str]],
    config: QualityConfig | None = None,
    *,
    workers: int | None = None,
) -> list[QualityReport | VideoError]:
    """:func:`analyse` several files in parallel, one thread each (PyAV decodes without the GIL). Returns, in
    order, a report or the :class:`VideoError` that file raised."""
    n = workers or min(len(paths), os.cpu_count() or 1) or 1

    def one(p: str | os.PathLike[str]) -> QualityReport | VideoError:
        try:
            return analyse(p, config)
        except VideoError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, [Path(p) for p in paths]))
