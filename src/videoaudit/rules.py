"""The thresholds of the picture analysis, the findings it gives, and the rules that judge one picture against
the recording's own baselines (:class:`Model`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from videoaudit.pictures import Pic


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


class Model(msgspec.Struct):
    """The recording's own baselines (robust over all its key frames) and the per-picture rules."""

    cfg: QualityConfig
    detail_base: float
    grain: float
    frozen_floor: float
    edge_base: float = 0.0
    frozen_cap: float = math.inf  # the largest block change two key frames of one repeated picture may show

    @classmethod
    def of(cls, cfg: QualityConfig, keys: Sequence[Pic]) -> Model:
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
