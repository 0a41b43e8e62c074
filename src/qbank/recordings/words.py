"""Recordings in words: why a file is not usable, and the finding kinds in each language the service speaks."""

from __future__ import annotations

import videoaudit
from qbank.lib.problems import without_paths


def video_error_words(exc: videoaudit.VideoError) -> str:
    """Why a file is not usable, in the engine's and the tool's words, without the server's paths."""
    words = f"{exc.code}: {exc.message}" + (f" ({exc.reason})" if exc.reason else "")
    return without_paths(words, (exc.path, "the file"))
