"""The one place that runs ffprobe/ffmpeg (command lines built with ffmpeg-python where it helps).

ffmpeg-python 0.2.0 is unmaintained and its ``probe(..., timeout=)`` does not time anything out (it becomes
ffprobe's ``-timeout`` option), so every call here goes through :func:`subprocess.run` with a real timeout.
Errors raise :class:`ffmpeg.Error`-compatible information: the reason is ffprobe's stderr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from videoaudit.errors import ProbeTimeout

FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"


class ToolFailed(Exception):
    """A tool exited non-zero; ``stderr`` is its message (what ``ffmpeg.Error.stderr`` would hold)."""

    def __init__(self, cmd: str, returncode: int, stderr: str) -> None:
        super().__init__(f"{cmd} exited with {returncode}: {stderr.strip()[-500:]}")
        self.returncode = returncode
        self.stderr = stderr


def _run(args: list[str], path: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child
        raise ProbeTimeout(path, f"{args[0]} took longer than {timeout:.0f} s") from exc


def ffprobe_json(path: str, timeout: float, *extra: str) -> dict[str, Any]:
    """``ffprobe -show_format -show_streams -of json`` (the command ffmpeg-python's ``probe`` runs)."""
    args = [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", *extra, "--", path]
    proc = _run(args, path, timeout)
    if proc.returncode != 0:
        raise ToolFailed("ffprobe", proc.returncode, proc.stderr.decode("utf-8", "replace"))
    data: dict[str, Any] = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    return data


def keyframe_times(path: str, timeout: float, seconds: float = 20.0) -> list[float]:
    """Presentation times of the key packets in the first ``seconds`` of the first video stream."""
    args = [
        FFPROBE,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-read_intervals",
        f"%+{seconds:g}",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        "--",
        path,
    ]
    proc = _run(args, path, timeout)
    out: list[float] = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        parts = line.split(",")
        if len(parts) >= 2 and "K" in parts[1]:
            try:
                out.append(float(parts[0]))
            except ValueError:
                continue
    return sorted(out)


def copy_pass(path: str, timeout: float) -> str:
    """``ffmpeg -v error -i PATH -map 0:v:0 -c copy -f null -``: reads every packet without decoding; returns
    stderr (``partial file`` there means the file ends before its index says)."""
    import ffmpeg  # ffmpeg-python, only to build the command line

    args = (
        ffmpeg.input(path)
        .output("-", f="null", c="copy", map="0:v:0")
        .global_args("-v", "error", "-nostdin")
        .compile(cmd=FFMPEG)
    )
    proc = _run(list(args), path, timeout)
    return proc.stderr.decode("utf-8", "replace")
