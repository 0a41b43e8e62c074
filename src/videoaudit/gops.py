"""Between key frames: decoding the frames of a GOP, to place an edge to the frame where the picture turns, and to
look into a stretch of near-empty predicted frames, where a repeated picture can hide from the key frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from videoaudit.pictures import half_luma


class Refiner:
    """Decodes the frames between two key frames (seek to the first, decode on), to place an edge."""

    def __init__(self, path: str, step: float) -> None:
        import av

        self.container = av.open(path, metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        ctx = self.stream.codec_context
        ctx.thread_count = 1
        ctx.thread_type = "NONE"
        ctx.options = {"skip_loop_filter": "all"}
        self.tb = float(self.stream.time_base) if self.stream.time_base else 1.0 / 90000
        self.step = step
        self.decoded = 0

    def close(self) -> None:
        self.container.close()

    def frames(self, t_a: float, t_b: float) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
        """Half-size luma of the frames from ``t_a`` to ``t_b`` (both key frames), one every ``step`` s and
        the last, in decoding order (cameras send no B-frames; a reordered frame only blurs the edge by one)."""
        import av

        eps = 1e-4
        next_t = t_a
        self.container.seek(round(t_a / self.tb), stream=self.stream, backward=True, any_frame=False)
        try:
            for pkt in self.container.demux(self.stream):
                for fr in pkt.decode():
                    if fr.pts is None:
                        continue
                    self.decoded += 1
                    t = fr.pts * self.tb
                    if t < t_a - eps:
                        continue
                    if t > t_b + eps:
                        return
                    if t >= next_t - eps or t >= t_b - eps:
                        yield t, np.ascontiguousarray(half_luma(fr))
                        next_t = t + self.step
        except av.error.FFmpegError:
            return


def split(flags: Sequence[bool], rising: bool) -> int:
    """Where a run of ``flags`` turns (False→True when ``rising``), robust to odd frames: the index that
    disagrees with the fewest flags."""
    want = [not f if rising else f for f in flags]  # True where a frame belongs before the edge
    before_bad = 0
    after_bad = sum(1 for w in want if w)
    best, best_i = after_bad, 0
    for i, w in enumerate(want):
        before_bad += 0 if w else 1
        after_bad -= 1 if w else 0
        if before_bad + after_bad < best:
            best, best_i = before_bad + after_bad, i + 1
    return best_i


def flag_runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """The runs of True in ``flags``: (first index, last index) each."""
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


def quiet_runs(times: Sequence[float], sizes: Sequence[int], keys: Sequence[bool], share: float,
               min_s: float, window: float = 1.0) -> list[tuple[float, float]]:
    """Where a repeated picture may sit between key frames: stretches of at least ``min_s`` seconds in which
    most predicted frames (over ``window`` seconds) are at most ``share`` of the file's median predicted frame —
    a repeat costs the encoder next to nothing, a live picture its noise and motion. Most, not all: on a still
    picture a rate-controlled encoder spends spare bits now and then to refine it. Key frames do not count."""
    frames = sorted((t, s) for t, s, k in zip(times, sizes, keys, strict=True) if not k)
    if len(frames) < 10:
        return []
    limit = share * float(np.median([s for _, s in frames]))
    ts = np.asarray([t for t, _ in frames])
    tiny = np.cumsum([0] + [1 if s <= limit else 0 for _, s in frames])
    lo = np.searchsorted(ts, ts - window / 2, side="left")
    hi = np.searchsorted(ts, ts + window / 2, side="right")
    quiet = (tiny[hi] - tiny[lo]) * 2 > hi - lo
    return [(float(ts[a]), float(ts[b])) for a, b in flag_runs(quiet.tolist()) if ts[b] - ts[a] >= min_s]


def repeated(refiner: Refiner, seed: float, reach: float,
             same: Callable[[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], bool],
             ) -> tuple[float, float, npt.NDArray[np.uint8]] | None:
    """The stretch around ``seed`` (up to ``reach`` seconds either side, one frame every ``refiner.step`` s)
    in which the frames repeat the one at ``seed``: the times of its first and last sampled frame and the first
    one's picture; None when no frame but the seed's does (a single odd frame is passed over)."""
    frames = list(refiner.frames(max(0.0, seed - reach), seed + reach))
    at = next((i for i, (t, _) in enumerate(frames) if t >= seed - 1e-4), None)
    if at is None:
        return None
    ref = frames[at][1]
    alike = [same(ref, h) for _, h in frames]

    def walk(step: int) -> int:
        i = at
        while 0 <= i + step < len(frames) and (alike[i + step] or (
                0 <= i + 2 * step < len(frames) and alike[i + 2 * step])):
            i += step
        return i

    first, last = walk(-1), walk(1)
    return (frames[first][0], frames[last][0], frames[first][1]) if last > first else None
