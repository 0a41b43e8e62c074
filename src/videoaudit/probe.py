"""Probe a recording with ffprobe: duration, start, codec, size, frame rate, bit rate, keyframe interval."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

from videoaudit import _ff
from videoaudit.errors import AudioOnly, EmptyFile, NotAVideo, Truncated

__all__ = ["VideoInfo", "probe"]

_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif", "tiff_pipe", "apng")
_IMAGE_CODECS = ("png", "mjpeg", "bmp", "gif", "webp", "tiff")


class VideoInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`probe` found. Times in seconds; ``start`` is timezone-aware UTC or ``None``."""

    path: str
    size_bytes: int
    format_name: str
    duration: float
    start: datetime | None  # claimed start, else the container's creation_time
    start_source: str | None  # "claimed" / "container" / None
    codec: str
    width: int
    height: int
    fps: float
    bit_rate: int | None  # bits per second: the video stream's, else the container's
    keyframe_interval: float | None  # median seconds between keyframes in the first 20 s
    has_audio: bool


def _fraction(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return 0.0


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _creation_time(tags: dict[str, str]) -> datetime | None:
    raw = tags.get("creation_time") or tags.get("CREATION_TIME")
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def looks_like_mp4(path: str) -> bool:
    """An ISO-BMFF box header at the start (``ftyp``, ``mdat``, ...): an MP4 whose index did not arrive."""
    with open(path, "rb") as f:
        head = f.read(12)
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"mdat", b"moov", b"free", b"wide", b"skip")


def _reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return "; ".join(lines[-3:])


def probe(
    path: str | os.PathLike[str],
    *,
    claimed_start: datetime | None = None,
    timeout: float = 30.0,
    check_complete: bool = True,
) -> VideoInfo:
    """Probe ``path``.

    Raises :class:`EmptyFile` (0 bytes), :class:`NotAVideo` (not media, a still image, zero/negative duration),
    :class:`AudioOnly`, :class:`Truncated` (index missing, or — with ``check_complete`` — packets missing that
    the index promises: a faststart MP4 cut short still claims its full duration, only a read of every packet,
    without decoding, shows it), :class:`ProbeTimeout` (each subprocess is killed after ``timeout`` s).
    Every error's ``reason`` holds the tool's words. ``claimed_start`` (e.g. from the upload form or the
    file name) wins over the container's ``creation_time``.
    """
    p = str(path)
    try:
        size = Path(p).stat().st_size
    except FileNotFoundError as exc:
        raise NotAVideo(p, "file not found") from exc
    if size == 0:
        raise EmptyFile(p, "file is empty (0 bytes)")
    try:
        data = _ff.ffprobe_json(p, timeout)
    except _ff.ToolFailed as exc:
        reason = _reason(exc.stderr)
        low = exc.stderr.lower()
        if ("moov atom not found" in low and looks_like_mp4(p)) or "partial file" in low:
            raise Truncated(p, "file is truncated: its index is missing", reason) from exc
        raise NotAVideo(p, "not a video ffprobe can read", reason) from exc
    fmt: dict[str, Any] = data.get("format") or {}
    streams: list[dict[str, Any]] = data.get("streams") or []
    video = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    format_name = str(fmt.get("format_name", ""))
    if not video:
        if audio:
            raise AudioOnly(p, "audio only, no video stream", f"streams: {[s.get('codec_name') for s in audio]}")
        raise NotAVideo(p, "no video stream", f"format {format_name or 'unknown'}")
    v = video[0]
    codec = str(v.get("codec_name", ""))
    if format_name in _IMAGE_FORMATS or (codec in _IMAGE_CODECS and _float(fmt.get("duration")) is None):
        raise NotAVideo(p, "a still image, not a video", f"format {format_name}, codec {codec}")
    duration = _float(v.get("duration")) or _float(fmt.get("duration"))
    if duration is None or duration <= 0:
        raise NotAVideo(p, "zero or unknown duration", f"duration {fmt.get('duration')!r}")
    fps = _fraction(v.get("avg_frame_rate")) or _fraction(v.get("r_frame_rate"))
    bit_rate = _float(v.get("bit_rate")) or _float(fmt.get("bit_rate"))
    if check_complete:
        stderr = _ff.copy_pass(p, timeout)
        if "partial file" in stderr or "Invalid data" in stderr or "truncat" in stderr.lower():
            raise Truncated(
                p, "file is truncated: packets missing that its index promises", _reason(stderr), float(duration)
            )
    keys = _ff.keyframe_times(p, timeout)
    gaps = sorted(b - a for a, b in itertools.pairwise(keys) if b > a)
    key_interval = gaps[len(gaps) // 2] if gaps else None
    start: datetime | None
    source: str | None
    if claimed_start is not None:
        if claimed_start.tzinfo is None:
            raise ValueError("claimed_start must be timezone-aware")
        start, source = claimed_start.astimezone(UTC), "claimed"
    else:
        start = _creation_time({**(fmt.get("tags") or {}), **(v.get("tags") or {})})
        source = "container" if start else None
    return VideoInfo(
        path=p,
        size_bytes=size,
        format_name=format_name,
        duration=float(duration),
        start=start,
        start_source=source,
        codec=codec,
        width=int(v.get("width") or 0),
        height=int(v.get("height") or 0),
        fps=round(fps, 3),
        bit_rate=int(bit_rate) if bit_rate else None,
        keyframe_interval=round(key_interval, 3) if key_interval else None,
        has_audio=bool(audio),
    )
