"""Small test clips generated with ffmpeg lavfi sources, cached per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def _between(spans: list[tuple[float, float]]) -> str:
    return "+".join(f"between(t,{a},{b})" for a, b in spans) or "0"


def defects_clip(
    out: Path,
    *,
    duration: int = 60,
    still: tuple[float, float] | None = (44.0, 56.0),
    black: tuple[float, float] | None = (5.3, 10.7),
    frozen: tuple[float, float] | None = (15.3, 22.5),
    blurred: tuple[float, float] | None = (26.1, 32.9),
    covered: tuple[float, float] | None = (35.5, 41.2),
    size: str = "640x360",
) -> Path:
    """Moving test pattern + sensor noise + burned-in clock; defects at the given times; GOP 2 s at 25 fps."""
    chain: list[str] = []
    n = 0

    def freeze(a: float, b: float) -> None:
        nonlocal n
        chain.append(
            f"split[a{n}][b{n}];[a{n}][b{n}]freezeframes=first={round(a * 25)}:last={round(b * 25) - 1}"
            f":replace={round(a * 25)}"
        )
        n += 1

    if still:
        freeze(*still)
    chain.append(f"gblur=sigma=6:enable='{_between([blurred] if blurred else [])}'")
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=0x3a3026@1:t=fill:enable='{_between([covered] if covered else [])}'")
    chain.append("noise=alls=8:allf=t")
    chain.append(
        f"drawtext=fontfile={FONT}:text='%{{pts\\:hms}}':x=10:y=10:fontsize=24:fontcolor=white:box=1:boxcolor=black"
    )
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black@1:t=fill:enable='{_between([black] if black else [])}'")
    if frozen:
        freeze(*frozen)
    graph = "[0:v]" + ",".join(chain) + "[out]"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={size}:r=25:d={duration}",
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-b:v",
            "1500k",
            "-maxrate",
            "1500k",
            "-bufsize",
            "1500k",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-metadata",
            "creation_time=2025-06-14T01:00:00Z",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    return out


# the corpus generator of the benchmark (scenes, defects, codecs, GOPs) — one generator for both
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "video"))
from corpus import Clip, Defect, generate, kind_of  # noqa: E402

__all__ = ["Clip", "Defect", "defects_clip", "generate", "kind_of"]
