"""Fixtures of the video engine tests: clips made with ffmpeg once per test session (per xdist worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def clipdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def defects_clip(clipdir: Path) -> Path:
    from clips import defects_clip as make

    return make(clipdir / "defects.mp4")


@pytest.fixture(scope="session")
def clean_clip(clipdir: Path) -> Path:
    from clips import defects_clip as make

    return make(
        clipdir / "clean.mp4", duration=40, black=None, frozen=None, blurred=None, covered=None, still=(10.0, 30.0)
    )


@pytest.fixture(scope="session")
def small_clips(clipdir: Path) -> dict[str, Path]:
    """ok (faststart), truncated faststart, truncated plain, empty, text, audio-only, png, ts cut short."""

    def run(*args: str) -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)

    d = clipdir
    run(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=6",
        "-c:v",
        "libx264",
        "-g",
        "50",
        "-movflags",
        "+faststart",
        "-metadata",
        "creation_time=2025-06-14T01:00:00Z",
        str(d / "ok.mp4"),
    )
    run("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6", "-c:v", "libx264", "-g", "50", str(d / "plain.mp4"))
    data = (d / "ok.mp4").read_bytes()
    (d / "trunc_fast.mp4").write_bytes(data[: len(data) // 2])
    plain = (d / "plain.mp4").read_bytes()
    (d / "trunc_plain.mp4").write_bytes(plain[: len(plain) // 2])
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("这不是视频 / not a video\n" * 50)
    run("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", str(d / "audio.m4a"))
    run("-f", "lavfi", "-i", "testsrc2=s=320x240:r=1:d=1", "-frames:v", "1", str(d / "still.png"))
    return {
        p.stem: p
        for p in d.iterdir()
        if p.stem in ("ok", "plain", "trunc_fast", "trunc_plain", "empty", "notes", "audio", "still")
    }
