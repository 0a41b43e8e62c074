"""Picture quality of a recording: black, frozen, blurred / covered lens, gaps, below-minimum format.

One pass over the file with PyAV, in-process, one thread:

* every packet is demuxed (no decoding): timestamps and sizes give gaps, timestamp jumps and truncation;
* only the key packets are decoded (``skip_loop_filter``; camera GOPs are 1–2 s), and from each key frame's
  luma plane, reduced to a quarter of its size by 2×2 averaging of every other row/column (no scaler), come:
  mean luma, structure (standard deviation), sharpness (absolute Laplacian: strongest edge per block of a
  9 × 16 grid, 75th percentile over the blocks, so the burned-in clock does not count) and the
  difference to the previous key frame at half size on a 27 × 48 grid of blocks (its largest block mean).

Classification per key frame, thresholds in :class:`QualityConfig`:

* **black** – mean luma below ``black_luma`` and no structure;
* **covered** – not black but almost no structure (``cover_max_std``): a hand or cloth on the lens;
* **blurred** – sharpness below ``blur_ratio`` × this camera's baseline (75th percentile of its key frames, or
  ``baseline_sharpness`` when the service knows it from earlier recordings of the camera);
* **frozen** – consecutive key frames whose largest block difference stays below ``frozen_max_block_diff``.
  A live picture always changes somewhere: sensor noise, and above all the camera's burned-in clock, whose
  digits change every second. A still room with a live feed therefore is not frozen. (Packet sizes alone
  cannot tell: at constant bit rate the encoder keeps refining a frozen picture.)

A defect's edges lie between the last good and the first bad key frame; the midpoint is reported, so the
error is at most half a GOP (1 s at the usual 2 s). Runs shorter than ``min_keyframes`` key frames are
dropped (black needs one). All times are seconds from the first frame of the file.
"""

from __future__ import annotations

import contextlib
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
# picture findings: each a stretch of the timeline; one per kind per stretch, kinds never merged
FINDING_KINDS = ("black", "frozen", "blurred", "covered", "gap", "corrupt")
# format minimums: about the whole recording, shown beside the timeline, never painted over it
RECORDING_FINDING_KINDS = ("low_resolution", "low_fps", "low_bit_rate")


class QualityConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds of :func:`analyse`. Luma values are 8-bit Y (16 = video black, 235 = white).

    Defaults: ``black_luma`` 32 (≈ blackdetect ``pix_th`` 0.1 in limited range), ``black_max_std`` 10;
    ``cover_max_std`` 14 (a lit room has far more structure); ``blur_ratio`` 0.45;
    ``frozen_max_block_diff`` 12 (mean |ΔY| of the most changed block between key frames; noise-only
    differences measure 2–5, a ticking clock 20+); ``min_keyframes`` 2 for blurred / covered / frozen (a
    5 s defect always spans two key frames of a 2 s GOP), 1 for black; ``gap_tolerance`` 1 s between frames;
    minimum format 1280×720, 15 fps, 1 Mb/s (§17: the picture is clear).
    """

    black_luma: float = 32.0
    black_max_std: float = 10.0
    cover_max_std: float = 14.0
    blur_ratio: float = 0.45
    baseline_percentile: float = 75.0
    baseline_sharpness: float | None = None
    frozen_max_block_diff: float = 12.0
    min_keyframes: int = 2
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
    wall_seconds: float
    cpu_seconds: float

    @property
    def usable(self) -> bool:
        return not self.findings


class _Key(msgspec.Struct):
    t: float
    mean: float
    std: float
    sharp: float
    diff: float  # largest block mean |ΔY| to the previous key frame (inf for the first)


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


def _features(frame: Any, prev: npt.NDArray[np.uint8] | None) -> tuple[float, float, float, float, Any]:
    plane = frame.planes[0]
    h, w = frame.height, frame.width
    y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
    half = y[: h // 4 * 4 : 2, : w // 4 * 4 : 2]
    q = half[0::2, 0::2].astype(np.uint16)
    q += half[1::2, 0::2]
    q += half[0::2, 1::2]
    q += half[1::2, 1::2]
    small = q.astype(np.float32) * np.float32(0.25)
    mean = float(small.mean())
    std = float(small.std())
    c = small[1:-1, 1:-1]
    lap = np.abs(4 * c - small[:-2, 1:-1] - small[2:, 1:-1] - small[1:-1, :-2] - small[1:-1, 2:])
    # sharpness: the strongest edge in each block of a 9 × 16 grid, 75th percentile over the blocks, so a
    # small sharp overlay (the burned-in clock) cannot make a blurred or covered picture look sharp
    by, bx = 9, 16
    lh, lw = lap.shape[0] // by * by, lap.shape[1] // bx * bx
    if lh and lw:
        block_max = lap[:lh, :lw].reshape(by, lh // by, bx, lw // bx).max(axis=(1, 3))
        sharp = float(np.percentile(block_max, 75))
    else:
        sharp = float(lap.max()) if lap.size else 0.0
    diff = float("inf")
    # the difference is taken at half size without averaging: the burned-in clock's digits must stay crisp
    # enough that two key frames 2 s apart always differ (6 -> 8 changes only a few pixels)
    if prev is not None and prev.shape == half.shape:
        d = np.abs(np.subtract(half, prev, dtype=np.int16))
        gy, gx = _GRID
        hh, ww = d.shape[0] // gy * gy, d.shape[1] // gx * gx
        if hh and ww:
            sums = d[:hh, :ww].reshape(gy, hh // gy, gx, ww // gx).sum(axis=(1, 3), dtype=np.int32)
            diff = float(sums.max()) / ((hh // gy) * (ww // gx))
        else:
            diff = float(d.max())
    return mean, std, sharp, diff, np.ascontiguousarray(half)


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
        keys: list[_Key] = []
        prev: npt.NDArray[np.uint8] | None = None
        decode_errors: list[float] = []
        truncated_reason = ""

        def take(frames: Iterable[Any]) -> None:
            nonlocal prev
            for fr in frames:
                if fr.pts is None:
                    continue
                mean, std, sharp, diff, small = _features(fr, prev)
                prev = small
                keys.append(_Key(fr.pts * tb, mean, std, sharp, diff))

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
            if pkt.is_keyframe:
                try:
                    take(ctx.decode(pkt))
                except av.error.FFmpegError:
                    decode_errors.append(pkt.pts * tb)
        with contextlib.suppress(av.error.FFmpegError):
            take(ctx.decode(None))
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
        end = round(claimed, 3) if claimed and claimed > duration else rel(t_end)
        why = f"the container claims {claimed:.2f} s, frames end at {duration:.2f} s" if claimed else "file cut short"
        findings.append(Finding(kind="corrupt", start=rel(t_end), end=end, detail=f"{why} {truncated_reason}".strip()))
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

    # --- picture (key frames)
    baseline = 0.0
    if keys:
        keys.sort(key=lambda k: k.t)
        ts = [k.t for k in keys]
        black = [k.mean < cfg.black_luma and k.std < cfg.black_max_std for k in keys]
        structured = [k.sharp for k, b in zip(keys, black, strict=True) if not b and k.std >= cfg.cover_max_std]
        if cfg.baseline_sharpness is not None:
            baseline = cfg.baseline_sharpness
        elif structured:
            baseline = float(np.percentile(structured, cfg.baseline_percentile))
        covered = [not b and k.std < cfg.cover_max_std for k, b in zip(keys, black, strict=True)]
        blurred = [
            not b and not c and k.sharp < cfg.blur_ratio * baseline
            for k, b, c in zip(keys, black, covered, strict=True)
        ]
        # frozen: key frame i equals key frame i-1; the run of equal key frames is i-1 .. j
        same = [
            i > 0 and not black[i] and not covered[i] and not black[i - 1] and keys[i].diff < cfg.frozen_max_block_diff
            for i in range(len(keys))
        ]

        def edge_before(i: int) -> float:
            return (ts[i - 1] + ts[i]) / 2 if i > 0 else t0

        def edge_after(i: int) -> float:
            return (ts[i] + ts[i + 1]) / 2 if i + 1 < len(ts) else t_end

        for kind, flags, minimum in (
            ("black", black, 1),
            ("covered", covered, cfg.min_keyframes),
            ("blurred", blurred, cfg.min_keyframes),
        ):
            for a, b in _runs(flags):
                if b - a + 1 < minimum:
                    continue
                vals = keys[a : b + 1]
                detail = (
                    f"mean luma {np.mean([k.mean for k in vals]):.0f}, sharpness "
                    f"{np.median([k.sharp for k in vals]):.1f} vs baseline {baseline:.1f}"
                )
                findings.append(Finding(kind=kind, start=rel(edge_before(a)), end=rel(edge_after(b)), detail=detail))
        for a, b in _runs(same):
            first = a - 1  # key frame a equals a-1: the frozen picture is shown from key frame a-1 on
            if b - first + 1 < max(2, cfg.min_keyframes):
                continue
            worst = max(keys[i].diff for i in range(a, b + 1))
            findings.append(
                Finding(
                    kind="frozen",
                    start=rel(edge_before(first)),
                    end=rel(edge_after(b)),
                    detail=f"{b - first + 1} identical key frames (max block change {worst:.1f})",
                )
            )
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
        baseline_sharpness=round(baseline, 2),
        wall_seconds=round(time.perf_counter() - wall0, 3),
        cpu_seconds=round(time.thread_time() - cpu0, 3),
    )


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
