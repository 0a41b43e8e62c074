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
(:class:`Model`): its grain (median) and its detail baseline (75th percentile), so a dim, low-contrast or
infrared camera is compared with itself. Per key frame (thresholds in :class:`QualityConfig`):

* **black** – mean luma below ``black_luma`` and no structure;
* **covered** – the detail above the grain falls below ``cover_detail_ratio`` of the baseline's (only noise
  left) *and* the picture is uniform: a hand, cloth or paper, dark or bright. A sharp low-contrast scene keeps
  its detail; a lens covered by a third keeps the detail of the rest: neither is covered;
* **blurred** – the same loss of detail, the picture not uniform (the scene's shapes still there), and its
  shapes soft: detail per unit of each block's contrast (**crispness**) at most half the camera's — a pan to a
  plainer part of the room loses detail but not crispness;
* **frozen** – consecutive key frames that differ by no more than the encoder's floor (from the grain,
  clamped: a repeated picture differs by ≈ 0–1.5 in its median block and ≈ 2–4 in its most changed block,
  live sensor noise by ≈ 3–4 everywhere, a live clock by 20+ in its block) and, in their most changed block,
  by less than the file's own key frames mostly do (a still room without a clock), clock or no clock.

Edges: the key frames give the stretches; an edge between two key frames at most 2 s apart is their midpoint
(error ≤ 1 s); further apart (GOPs of 4–10 s, or the last key frame before the end), only that GOP is decoded
(seek to the key frame before, decode on, stop a second after the picture has turned) and the edge placed on
the frame that turns, sampled every ``edge_step`` s (``QualityReport.edge_frames_decoded`` says what it cost).
A freeze shorter than two GOPs holds fewer than two key frames; its predicted frames are mostly near-empty
(their sizes come with the demux), and such a stretch is decoded out to where its frames stop repeating
(:mod:`videoaudit.stretches`). A black, covered or blurred stretch shorter than a GOP may hold no key frame at
all and is then not seen: the price of not decoding every frame. All times are seconds from the first frame.
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
from videoaudit.pictures import Pic, diff, half_luma, measure
from videoaudit.rules import Finding, Model, QualityConfig, RecordingFinding
from videoaudit.stretches import between_keys, picture_findings

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

# picture findings: each a stretch of the timeline; one per kind per stretch, kinds never merged
FINDING_KINDS = ("black", "frozen", "blurred", "covered", "gap", "corrupt")
# format minimums: about the whole recording, shown beside the timeline, never painted over it
RECORDING_FINDING_KINDS = ("low_resolution", "low_fps", "low_bit_rate")


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
    model: Model | None = None
    refine_frames = 0
    if keys:
        keys.sort(key=lambda k: k.t)
        model = Model.of(cfg, keys)
        picture, refine_frames = picture_findings(p, keys, model, t0, t_end)
        hidden, hidden_frames = between_keys(p, model, [x * tb for x in pts_list], sizes, key_flags, picture)
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
