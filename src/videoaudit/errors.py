"""Errors of the video engine. Each carries ``reason``: what ffprobe/ffmpeg/the decoder said."""

from __future__ import annotations

__all__ = [
    "AudioOnly",
    "EmptyFile",
    "NotAVideo",
    "ProbeTimeout",
    "Truncated",
    "VideoError",
]


class VideoError(Exception):
    """A file that cannot be used as a recording. ``reason`` holds the tool's own words."""

    code = "video-error"

    def __init__(self, path: str, message: str, reason: str = "") -> None:
        super().__init__(f"{path}: {message}" + (f" ({reason})" if reason else ""))
        self.path = path
        self.message = message
        self.reason = reason


class EmptyFile(VideoError):
    """Zero bytes."""

    code = "empty-file"


class NotAVideo(VideoError):
    """Not a media file ffprobe understands, a still image, or no video stream at all."""

    code = "not-a-video"


class AudioOnly(NotAVideo):
    """A media file with audio streams but no video stream."""

    code = "audio-only"


class Truncated(VideoError):
    """The file ends before its own index or claimed duration says it should (an interrupted upload/copy).
    ``claimed_duration``: the seconds the container claims, ``None`` when its index is missing (then the file
    cannot be placed on a timeline). :func:`videoaudit.analyse` of a truncated file that opens gives the part
    that decodes (``QualityReport.decodable``)."""

    code = "truncated"

    def __init__(self, path: str, message: str, reason: str = "", claimed_duration: float | None = None) -> None:
        super().__init__(path, message, reason)
        self.claimed_duration = claimed_duration


class ProbeTimeout(VideoError):
    """ffprobe/ffmpeg did not finish within its time limit (and was killed)."""

    code = "probe-timeout"
