from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from videoaudit import AudioOnly, EmptyFile, NotAVideo, ProbeTimeout, Truncated, _ff, probe


def test_probe_reports_format_and_start(small_clips: dict[str, Path]) -> None:
    info = probe(small_clips["ok"])
    assert (info.codec, info.width, info.height, info.fps) == ("h264", 320, 240, 25.0)
    assert info.duration == pytest.approx(6.0, abs=0.1)
    assert info.keyframe_interval == pytest.approx(2.0)
    assert info.start == datetime(2025, 6, 14, 1, 0, tzinfo=UTC) and info.start_source == "container"
    assert info.bit_rate and info.bit_rate > 0 and not info.has_audio
    claimed = datetime(2025, 6, 14, 9, 0, tzinfo=UTC)
    info2 = probe(small_clips["ok"], claimed_start=claimed)
    assert info2.start == claimed and info2.start_source == "claimed"


@pytest.mark.parametrize(
    ("name", "error", "reason"),
    [
        ("empty", EmptyFile, ""),
        ("notes", NotAVideo, "Invalid data"),
        ("audio", AudioOnly, "aac"),
        ("still", NotAVideo, "png"),
        ("trunc_plain", Truncated, "moov atom not found"),
        ("trunc_fast", Truncated, "partial file"),
    ],
)
def test_bad_files_give_specific_errors(small_clips: dict[str, Path], name: str, error: type, reason: str) -> None:
    with pytest.raises(error) as info:
        probe(small_clips[name])
    assert reason in info.value.reason
    assert str(small_clips[name]) in str(info.value)
    if name == "trunc_fast":  # the index survives: the span the file claims is known
        assert info.value.claimed_duration == pytest.approx(6.0, abs=0.1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotAVideo):
        probe(tmp_path / "nope.mp4")


def test_subprocess_time_limit_really_kills(tmp_path: Path) -> None:
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)  # ffprobe blocks forever opening a FIFO nobody writes
    with pytest.raises(ProbeTimeout):
        _ff.ffprobe_json(str(fifo), 1.0)
