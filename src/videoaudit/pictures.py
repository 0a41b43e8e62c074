"""What one decoded picture measures: its luma at half size (no scaler), the mean, structure, detail, grain and
uniformity the quality rules read, and the block difference of two pictures the frozen rule reads."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

GRID = (27, 48)  # blocks of the difference of two pictures
STRUCTURE = 8.0  # a block's luma standard deviation at which it shows a shape rather than a flat surface


class Pic(msgspec.Struct):
    """What one decoded picture measures (luma; see :func:`measure`)."""

    t: float
    mean: float
    std: float
    detail: float  # high-frequency energy (mean |Laplacian|) per block, 90th percentile over the blocks
    grain: float  # the same, 10th percentile: the flattest blocks hold only noise
    spread: float  # 90th percentile of |block mean - median block mean|: 0 for a uniform picture
    edge: float = 0.0  # how crisp its shapes are: median over blocks with structure of detail above the grain per
    # unit of the block's contrast (content-independent: a blur lowers it, a plainer view does not); 0 without
    # structure (fewer than 3 blocks with contrast above the noise)
    dmed: float = float("inf")  # median block mean |ΔY| to the previous key frame (inf for the first)
    dmax: float = float("inf")  # largest block mean |ΔY| (the burned-in clock's digits)


def half_luma(frame: Any) -> npt.NDArray[np.uint8]:
    """Every other row and column of the luma plane (a view, no copy, no scaler)."""
    plane = frame.planes[0]
    h, w = frame.height, frame.width
    y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
    return y[: h // 4 * 4 : 2, : w // 4 * 4 : 2]


def measure(t: float, half: npt.NDArray[np.uint8]) -> Pic:
    """Mean, structure, sharpness, detail, grain, uniformity and crispness of one picture, at a quarter of its
    size (2×2 averages of ``half``) on a 9 × 16 grid of blocks: the burned-in clock covers a few blocks only, so
    the percentiles and the median over the blocks ignore it."""
    q = half[0::2, 0::2].astype(np.uint16)
    q += half[1::2, 0::2]
    q += half[0::2, 1::2]
    q += half[1::2, 1::2]
    small = q.astype(np.float32) * np.float32(0.25)
    mean = float(small.mean())
    std = float(small.std())
    c = small[1:-1, 1:-1]
    lap = np.abs(4 * c - small[:-2, 1:-1] - small[2:, 1:-1] - small[1:-1, :-2] - small[1:-1, 2:])
    by, bx = 9, 16
    lh, lw = lap.shape[0] // by * by, lap.shape[1] // bx * bx
    if not (lh and lw):
        v = float(lap.max()) if lap.size else 0.0
        return Pic(t=t, mean=mean, std=std, detail=v, grain=v, spread=std)
    blocks = lap[:lh, :lw].reshape(by, lh // by, bx, lw // bx)
    energy = blocks.mean(axis=(1, 3))
    detail, grain = (float(x) for x in np.percentile(energy, [90, 10]))
    inner = small[1 : lh + 1, 1 : lw + 1]
    means = inner.reshape(by, lh // by, bx, lw // bx).mean(axis=(1, 3))
    spread = float(np.percentile(np.abs(means - np.median(means)), 90))
    squares = (inner * inner).reshape(by, lh // by, bx, lw // bx).mean(axis=(1, 3))
    contrast = np.sqrt(np.maximum(squares - means * means, 0.0))
    shaped = contrast > max(STRUCTURE, grain)  # above the sensor noise (its contrast is about the grain)
    edge = float(np.median((energy[shaped] - grain) / contrast[shaped])) if np.count_nonzero(shaped) >= 3 else 0.0
    return Pic(t=t, mean=mean, std=std, detail=detail, grain=grain, spread=spread, edge=max(edge, 0.0))


def diff(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """Median and largest block mean |ΔY| of two half-size pictures on a 27 × 48 grid. Taken at half size
    without averaging: the burned-in clock's digits stay crisp enough that two key frames 2 s apart always
    differ (6 -> 8 changes only a few pixels)."""
    if a.shape != b.shape:
        return float("inf"), float("inf")
    d = np.abs(np.subtract(a, b, dtype=np.int16))
    gy, gx = GRID
    hh, ww = d.shape[0] // gy * gy, d.shape[1] // gx * gx
    if not (hh and ww):
        return float(np.median(d)), float(d.max())
    sums = d[:hh, :ww].reshape(gy, hh // gy, gx, ww // gx).sum(axis=(1, 3), dtype=np.int32)
    n = (hh // gy) * (ww // gx)
    return float(np.median(sums)) / n, float(sums.max()) / n
