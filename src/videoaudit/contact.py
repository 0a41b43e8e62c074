"""Contact sheet: one frame every N seconds of a recording as a JPEG grid, each tile stamped with its time.

Frames come from PyAV by seeking (the key frame at or before each time, so a sheet of an hour costs a few
hundred key-frame decodes, not a full decode). The stamp is drawn with a built-in 5×7 bitmap font (no font
files needed); the JPEG is encoded in-process with PyAV's MJPEG encoder.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoaudit.quality import _open

__all__ = ["contact_sheet"]

_GLYPHS = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    " ": ("00000",) * 7,
}


def _stamp(img: npt.NDArray[np.uint8], text: str, x: int, y: int, scale: int) -> None:
    """Draw ``text`` in white on a black box at (x, y) of an RGB image."""
    w = (6 * len(text) + 1) * scale
    h = 9 * scale
    img[y : y + h, x : x + w] = (img[y : y + h, x : x + w] // 4).astype(np.uint8)
    for i, ch in enumerate(text):
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        bits = np.array([[c == "1" for c in row] for row in glyph], dtype=bool)
        big = np.kron(bits, np.ones((scale, scale), dtype=bool))
        gx, gy = x + (1 + 6 * i) * scale, y + scale
        region = img[gy : gy + big.shape[0], gx : gx + big.shape[1]]
        region[big[: region.shape[0], : region.shape[1]]] = 255


def _label(offset: float, start: datetime | None) -> str:
    if start is not None:
        return (start + timedelta(seconds=offset)).strftime("%Y-%m-%d %H:%M:%S")
    s = int(offset)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def contact_sheet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    every: float = 60.0,
    columns: int = 6,
    tile_width: int = 320,
    start: datetime | None = None,
    quality: int = 5,
    max_tiles: int = 400,
) -> Path:
    """Write a JPEG grid to ``out``: one tile every ``every`` seconds, ``columns`` wide, ``tile_width`` px each,
    stamped with the time into the file (or the wall-clock time when ``start`` is given). Returns ``out``.
    Raises the :mod:`videoaudit.errors` errors for files that are not video."""
    import av

    if every <= 0:
        raise ValueError("every must be > 0")
    container = _open(str(path))
    tiles: list[tuple[float, npt.NDArray[np.uint8]]] = []
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        tb = float(stream.time_base)
        duration = float(stream.duration * tb) if stream.duration else (container.duration or 0) / 1e6
        t0 = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        w = stream.codec_context.width or 1
        h = stream.codec_context.height or 1
        tile_h = max(2, round(tile_width * h / w / 2) * 2)
        count = min(max_tiles, max(1, math.floor(duration / every) + 1 if duration else 1))
        for i in range(count):
            t = i * every
            container.seek(int((t0 + t) / tb), stream=stream, backward=True, any_frame=False)
            frame: Any = None
            try:
                for fr in container.decode(stream):
                    if fr.pts is None:
                        continue
                    frame = fr
                    if fr.pts * tb >= t0 + t - 1e-3:
                        break
            except av.error.FFmpegError:
                pass
            if frame is None:
                continue
            rgb = frame.reformat(width=tile_width, height=tile_h, format="rgb24").to_ndarray()
            tiles.append((frame.pts * tb - t0, np.ascontiguousarray(rgb)))
    finally:
        container.close()
    if not tiles:
        raise ValueError(f"{path}: no frame could be decoded for the contact sheet")
    rows = math.ceil(len(tiles) / columns)
    cols = min(columns, len(tiles))
    gap = 4
    sheet = np.full((rows * (tile_h + gap) + gap, cols * (tile_width + gap) + gap, 3), 32, dtype=np.uint8)
    scale = max(1, tile_width // 160)
    for n, (t, img) in enumerate(tiles):
        r, c = divmod(n, columns)
        y, x = gap + r * (tile_h + gap), gap + c * (tile_width + gap)
        sheet[y : y + tile_h, x : x + tile_width] = img
        _stamp(sheet, _label(t, start), x + scale, y + scale, scale)
    sheet = sheet[: sheet.shape[0] // 2 * 2, : sheet.shape[1] // 2 * 2]
    enc: Any = av.CodecContext.create("mjpeg", "w")
    enc.width = sheet.shape[1]
    enc.height = sheet.shape[0]
    enc.pix_fmt = "yuvj420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"qmin": str(quality), "qmax": str(quality)}
    vf = av.VideoFrame.from_ndarray(sheet, format="rgb24").reformat(format="yuvj420p")
    data = b"".join(bytes(p) for p in [*enc.encode(vf), *enc.encode(None)])
    out_path = Path(out)
    out_path.write_bytes(data)
    return out_path
