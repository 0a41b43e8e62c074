"""Generated exam-room footage with injected defects at known times (shared by the benchmark).

The picture: ``testsrc2`` (moving), sensor noise on every frame, a camera-burned clock. Defects:
- ``still``   the scene stops moving but the feed is live (noise, clock run on) — must NOT be flagged;
- ``black``   signal loss: pure black frames, no clock;
- ``covered`` lens covered: dark, nearly uniform picture (sensor noise and clock still on);
- ``blurred`` defocus: gaussian blur of the scene (noise and clock on top);
- ``frozen``  the feed repeats one frame (clock frozen too).
Keyframe every 2 s (fixed GOP, no scene-cut keyframes), as IP cameras do; defects start anywhere in a GOP.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
KINDS = ("black", "frozen", "blurred", "covered")


@dataclass
class Defect:
    kind: str  # black / frozen / blurred / covered / still
    start: float
    end: float


def schedule(duration: float, seed: int, *, count: int = 24, still: int = 6) -> list[Defect]:
    """Non-overlapping defects 3–30 s long (each kind in turn) plus ``still`` still-but-live stretches."""
    rng = random.Random(seed)
    out: list[Defect] = []
    kinds = [KINDS[i % len(KINDS)] for i in range(count)] + ["still"] * still
    rng.shuffle(kinds)
    slot = duration / (len(kinds) + 1)
    for i, kind in enumerate(kinds):
        length = rng.uniform(3.0, 30.0) if kind != "still" else rng.uniform(20.0, 60.0)
        length = min(length, slot - 10)
        start = slot * (i + 0.5) + rng.uniform(0, slot - length - 5)
        start = round(start, 2)
        out.append(Defect(kind, start, round(start + length, 2)))
    return out


def _between(defs: list[Defect], kind: str) -> str:
    parts = [f"between(t,{d.start:.3f},{d.end:.3f})" for d in defs if d.kind == kind]
    return "+".join(parts) if parts else "0"


def filtergraph(width: int, height: int, fps: int, defects: list[Defect]) -> str:
    """A -filter_complex graph from [0:v] to [out]."""
    chain: list[str] = []
    n = 0

    def freeze(f0: int, f1: int) -> None:
        nonlocal n
        # freezeframes takes the replacement frame from its second input
        chain.append(f"split[fa{n}][fb{n}];[fa{n}][fb{n}]freezeframes=first={f0}:last={f1}:replace={f0}")
        n += 1

    for d in defects:  # still-but-live: the scene stops, noise and clock go on
        if d.kind == "still":
            freeze(round(d.start * fps), round(d.end * fps) - 1)
    blur = _between(defects, "blurred")
    chain.append(f"gblur=sigma=8:enable='{blur}'")
    cover = _between(defects, "covered")
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=0x3a3026@1:t=fill:enable='{cover}'")
    chain.append("noise=alls=8:allf=t")
    size = max(16, height // 22)
    chain.append(
        f"drawtext=fontfile={FONT}:text='%{{pts\\:gmtime\\:1750000000\\:%Y-%m-%d %H\\\\\\:%M\\\\\\:%S}}':"
        f"x={size}:y={size}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6"
    )
    black = _between(defects, "black")
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black@1:t=fill:enable='{black}'")
    for d in defects:
        if d.kind == "frozen":
            freeze(round(d.start * fps), round(d.end * fps) - 1)
    return "[0:v]" + ",".join(chain) + "[out]"


def generate(
    out: Path,
    *,
    width: int,
    height: int,
    duration: float,
    defects: list[Defect],
    fps: int = 25,
    bitrate: str = "4M",
    preset: str = "ultrafast",
    threads: int = 0,
) -> Path:
    """Encode the clip (H.264, yuv420p, keyframe every 2 s) and write ``<out>.truth.json``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    vf = filtergraph(width, height, fps, defects)
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=s={width}x{height}:r={fps}:d={duration}",
        "-filter_complex",
        vf,
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-g",
        str(2 * fps),
        "-keyint_min",
        str(2 * fps),
        "-sc_threshold",
        "0",
        "-b:v",
        bitrate,
        "-maxrate",
        bitrate,
        "-bufsize",
        bitrate,
        "-pix_fmt",
        "yuv420p",
        "-threads",
        str(threads),
        "-movflags",
        "+faststart",
        str(out),
    ]
    subprocess.run(cmd, check=True)
    truth = {
        "width": width,
        "height": height,
        "fps": fps,
        "duration": duration,
        "defects": [asdict(d) for d in defects],
    }
    out.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1))
    return out


CLIPS = {
    # name: (width, height, bitrate, seed, defects?)
    "hour1080": (1920, 1080, "4M", 1, True),
    "hour720": (1280, 720, "2M", 2, True),
    "clean1080": (1920, 1080, "4M", 3, False),
}


def prepare(out_dir: Path, duration: float = 3600.0, names: tuple[str, ...] = tuple(CLIPS)) -> dict[str, Path]:
    """Generate the benchmark clips once (skipped when the clip and its truth file exist)."""
    paths: dict[str, Path] = {}
    for name in names:
        width, height, bitrate, seed, with_defects = CLIPS[name]
        path = out_dir / f"{name}_{int(duration)}s.mp4"
        if not (path.exists() and path.with_suffix(".truth.json").exists()):
            per_hour = duration / 3600.0
            count = max(8, round(24 * per_hour)) if with_defects else 0
            defects = schedule(duration, seed, count=count, still=max(3, round(6 * per_hour)))
            tmp = path.with_name("partial-" + path.name)
            generate(tmp, width=width, height=height, duration=duration, defects=defects, bitrate=bitrate)
            tmp.with_suffix(".truth.json").replace(path.with_suffix(".truth.json"))
            tmp.replace(path)
        paths[name] = path
    return paths


if __name__ == "__main__":
    import sys

    prepare(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0)
