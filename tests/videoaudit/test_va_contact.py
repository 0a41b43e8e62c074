from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from videoaudit import EmptyFile, contact_sheet


def test_contact_sheet_is_a_jpeg_grid(defects_clip: Path, tmp_path: Path) -> None:
    out = contact_sheet(
        defects_clip,
        tmp_path / "sheet.jpg",
        every=10,
        columns=3,
        tile_width=160,
        start=datetime(2025, 6, 14, 9, 0, tzinfo=UTC),
    )
    data = out.read_bytes()
    assert data[:2] == b"\xff\xd8"
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
    # 60 s every 10 s -> 6 tiles (0..50) plus the end -> 7 tiles: 3 columns, 3 rows
    assert frame.width == 3 * 164 + 4
    assert frame.height > 2 * 90


def test_contact_sheet_bad_input(small_clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(EmptyFile):
        contact_sheet(small_clips["empty"], tmp_path / "x.jpg")
    with pytest.raises(ValueError):
        contact_sheet(small_clips["ok"], tmp_path / "x.jpg", every=0)
