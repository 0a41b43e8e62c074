from __future__ import annotations

from pathlib import Path

import pytest

from videoaudit import NotAVideo, QualityConfig, analyse, analyse_many
from videoaudit.errors import AudioOnly, EmptyFile, Truncated

LOOSE = QualityConfig(min_width=0, min_height=0, min_fps=0, min_bit_rate=0)
TRUTH = {"black": (5.3, 10.7), "frozen": (15.3, 22.5), "blurred": (26.1, 32.9), "covered": (35.5, 41.2)}


def test_defects_found_with_edges_within_two_seconds(defects_clip: Path) -> None:
    report = analyse(defects_clip, LOOSE)
    got = {f.kind: f for f in report.findings}
    assert set(got) == set(TRUTH), report.findings
    for kind, (a, b) in TRUTH.items():
        assert abs(got[kind].start - a) <= 2.0, (kind, got[kind])
        assert abs(got[kind].end - b) <= 2.0, (kind, got[kind])
    # the still-but-live stretch 44–56 s is not reported
    assert not [f for f in report.findings if f.end > 43.0]
    assert report.keyframes_decoded == 30 and report.packets == 1500
    assert not report.usable


def test_clean_clip_with_still_room_has_no_finding(clean_clip: Path) -> None:
    report = analyse(clean_clip, LOOSE)
    assert report.findings == [] and report.usable


def test_format_minimums_are_about_the_recording_not_the_timeline(clean_clip: Path) -> None:
    report = analyse(clean_clip, QualityConfig(min_fps=30, min_bit_rate=50_000_000))
    assert report.findings == [] and report.usable
    assert [f.kind for f in report.recording_findings] == ["low_resolution", "low_fps", "low_bit_rate"]
    assert report.recording_findings[0].detail == "640×360 < 1280×720"
    assert not report.truncated and report.decodable == pytest.approx(40, abs=0.1)
    assert report.claimed_duration == pytest.approx(40, abs=0.1)


def test_truncated_faststart_gives_the_decodable_part_and_a_corrupt_finding(small_clips: dict[str, Path]) -> None:
    report = analyse(small_clips["trunc_fast"], LOOSE)
    assert report.truncated and report.claimed_duration == pytest.approx(6.0, abs=0.1)
    assert 0 < report.decodable < 5.5
    assert [f.kind for f in report.findings] == ["corrupt"]
    assert report.findings[0].start == pytest.approx(report.decodable, abs=0.05)
    assert report.findings[0].end == pytest.approx(6.0, abs=0.1)


@pytest.mark.parametrize(("name", "error"), [("empty", EmptyFile), ("notes", NotAVideo), ("audio", AudioOnly)])
def test_bad_files(small_clips: dict[str, Path], name: str, error: type) -> None:
    with pytest.raises(error):
        analyse(small_clips[name])


def test_gap_in_timestamps(tmp_path: Path, small_clips: dict[str, Path]) -> None:
    import subprocess

    out = tmp_path / "gap.ts"
    # 3 s of video, then a 4 s jump in the timestamps, then 3 s more
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=6",
            "-vf",
            "setpts='if(gte(N,75),PTS+4/TB,PTS)'",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-f",
            "mpegts",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    report = analyse(out, LOOSE)
    gaps = [f for f in report.findings if f.kind == "gap"]
    assert (
        len(gaps) == 1 and gaps[0].start == pytest.approx(3.0, abs=0.1) and gaps[0].end == pytest.approx(7.0, abs=0.1)
    )


def test_analyse_many_in_parallel(defects_clip: Path, small_clips: dict[str, Path]) -> None:
    out = analyse_many([defects_clip, small_clips["notes"], small_clips["ok"]], LOOSE, workers=2)
    assert isinstance(out[1], NotAVideo)
    assert not isinstance(out[0], Exception) and len(out[0].findings) == 4
    assert not isinstance(out[2], Exception) and out[2].findings == []


def test_per_camera_baseline_catches_a_wholly_blurred_file(defects_clip: Path) -> None:
    sharp = analyse(defects_clip, LOOSE).baseline_sharpness
    # with the camera's baseline from an earlier recording, a recording blurred throughout is caught
    cfg = QualityConfig(min_width=0, min_height=0, min_fps=0, min_bit_rate=0, baseline_sharpness=sharp * 10)
    kinds = {f.kind for f in analyse(defects_clip, cfg).findings}
    assert "blurred" in kinds


def test_mp4_without_its_index_is_truncated_with_no_claim(small_clips: dict[str, Path]) -> None:
    with pytest.raises(Truncated) as info:
        analyse(small_clips["trunc_plain"], LOOSE)
    assert info.value.claimed_duration is None and "Invalid data" in info.value.reason
    assert str(small_clips["trunc_plain"]) not in info.value.reason  # the decoder's words, not the server path


def test_truncated_matroska_keeps_its_claimed_span(tmp_path: Path) -> None:
    import subprocess

    full = tmp_path / "full.mkv"
    args = ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=8", "-c:v", "libx264", "-g", "25", str(full)]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args],
        check=True,
        timeout=60,
    )
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    report = analyse(cut, LOOSE)
    assert report.truncated and report.claimed_duration == pytest.approx(8.0, abs=0.1)
    assert [(f.kind, f.start, f.end) for f in report.findings] == [("corrupt", report.decodable, 8.0)]


def test_a_key_frame_cut_in_two_by_the_truncation_starts_the_one_corrupt_stretch(tmp_path: Path) -> None:
    """Cut in the middle of an HEVC key frame's bytes: that frame does not decode, and it is where the corrupt stretch
    begins (it was also a corrupt finding of its own, 0.03 s long, inside the same fact)."""
    import subprocess

    full = tmp_path / "full.mp4"
    args = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=8", "-c:v", "libx265", "-preset", "ultrafast",
            "-x265-params", "keyint=25:min-keyint=25:scenecut=0:log-level=error", "-tag:v", "hvc1",
            "-movflags", "+faststart", str(full)]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)
    packets = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,pos,size,flags",
         "-of", "csv=p=0", str(full)], capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    keys = [(float(t), int(pos), int(size)) for t, size, pos, flags in (line.split(",")[:4] for line in packets)
            if flags.startswith("K")]
    t_key, pos, size = keys[len(keys) // 2]  # a key frame half-way
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: pos + size // 2])
    report = analyse(cut, LOOSE)
    corrupt = [f for f in report.findings if f.kind == "corrupt"]
    assert report.truncated and len(corrupt) == 1, report.findings
    assert corrupt[0].start == pytest.approx(t_key, abs=0.05) and corrupt[0].end == pytest.approx(8.0, abs=0.1)
