"""Recordings in words: why a file is not usable, the finding kinds and the video audit's reasons in each language
the service speaks (one table per language: the API's reasons are English, the review page's its own language)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import videoaudit
from qbank.lib.problems import without_paths

Lang = Literal["zh", "en"]


def video_error_words(exc: videoaudit.VideoError) -> str:
    """Why a file is not usable, in the engine's and the tool's words, without the server's paths."""
    words = f"{exc.code}: {exc.message}" + (f" ({exc.reason})" if exc.reason else "")
    return without_paths(words, (exc.path, "the file"))


# Finding kinds (picture findings, recording-level notes) and coverage reasons in words.
KIND_WORDS: dict[Lang, dict[str, str]] = {
    "zh": {"black": "黑屏", "frozen": "画面冻结", "blurred": "画面模糊", "covered": "镜头遮挡", "gap": "录像内中断",
           "truncated": "文件截断", "decode_error": "解码错误", "low_resolution": "分辨率不足", "low_fps": "帧率不足",
           "low_bit_rate": "码率不足", "corrupt": "文件损坏", "not recorded": "无录像", "no recording": "整段无录像",
           "unusable": "不可用", "probe-timeout": "检测超时", "not-a-video": "不是可用的视频", "audio-only": "只有音频",
           "empty-file": "空文件", "video-error": "无法读取"},
    "en": {"black": "black", "frozen": "frozen", "blurred": "blurred", "covered": "covered", "gap": "gap in file",
           "truncated": "truncated", "decode_error": "decode error", "low_resolution": "resolution too low",
           "low_fps": "frame rate too low", "low_bit_rate": "bit rate too low", "corrupt": "corrupt file",
           "not recorded": "not recorded", "no recording": "no recording at all", "unusable": "unusable",
           "probe-timeout": "probe timed out", "not-a-video": "not a usable video", "audio-only": "audio only",
           "empty-file": "empty file", "video-error": "unreadable"},
}

# The video audit's sentences.
PHRASES: dict[Lang, dict[str, str]] = {
    "en": {
        "view": "{room} {view}: ", "and": "; ", "list": ", ", "seconds": "s",
        "gap": "gap {span}",
        "finding": "{kind} {span}",
        "corrupt": "corrupt from {start} to {end} (recording {recording}{why})",
        "outside": "{room}: recording {recording} ({view}, {span}) lies outside the session window {window}",
        "extends": "{room}: recording {recording} ({view}, {span}) lies partly outside the session window {window}; "
                   "only {inside} counts",
        "unplaced": "{room}: recording {recording} ({view}) is corrupt and its length is unknown, so it is not on "
                    "the timeline ({why})",
        "note": "{room}: recording {recording} ({view}): {kind}{detail}",
        "waiting": "{n} recording(s) still being analysed",
        "lost": "recording {recording}: its analysis did not finish ({why}); run it again with "
                "POST /api/v1/recordings/{recording}/analysis",
        "lost_job": "its job was lost", "no_reason": "no reason recorded",
    },
    "zh": {
        "view": "{room} {view}：", "and": "；", "list": "、", "seconds": "秒",
        "gap": "无录像 {span}",
        "finding": "{kind} {span}",
        "corrupt": "自 {start} 起文件损坏，至 {end}（录像 {recording}{why}）",
        "outside": "{room}：录像 {recording}（{view}，{span}）完全不在考试时段 {window} 内",
        "extends": "{room}：录像 {recording}（{view}，{span}）部分超出考试时段 {window}，只计入 {inside}",
        "unplaced": "{room}：录像 {recording}（{view}）文件损坏且时长未知，无法放上时间轴（{why}）",
        "note": "{room}：录像 {recording}（{view}）：{kind}{detail}",
        "waiting": "{n} 个录像仍在分析中",
        "lost": "录像 {recording} 的分析未完成（{why}）；可用 POST /api/v1/recordings/{recording}/analysis 重新分析",
        "lost_job": "其分析任务已丢失", "no_reason": "未记录原因",
    },
}


def kind_words(kinds: str, lang: Lang) -> str:
    """Finding kinds (one, or comma-separated) in words; an unknown kind is shown with spaces, never as a code."""
    words = KIND_WORDS[lang]
    return PHRASES[lang]["list"].join(words.get(k, k.replace("_", " ")) for k in kinds.split(",") if k)


def hms(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%H:%M:%S")


def span_words(start: datetime, end: datetime, tz: ZoneInfo, lang: Lang) -> str:
    return f"{hms(start, tz)}–{hms(end, tz)} ({(end - start).total_seconds():.0f} {PHRASES[lang]['seconds']})"


@dataclass(frozen=True)
class RecordingFacts:
    """What the reasons say about a stored recording: its claimed start and length (None: unknown)."""

    start: datetime
    duration: float | None


def reasons_in_words(report: videoaudit.CoverageReport, recordings: dict[str, RecordingFacts], tz: ZoneInfo,
                     lang: Lang) -> list[str]:
    """Why the audit fails, view by view (gaps, then each finding with its own kind and times, never merged), and
    what a supervisor must know about single recordings: outside or partly outside the window, corrupt and not
    placed, below the format minimums."""
    say = PHRASES[lang]
    out: list[str] = []
    for room in report.rooms:
        for view in room.views:
            head = say["view"].format(room=room.room, view=view.view)
            if not view.passes:
                if not view.covered:
                    parts = [KIND_WORDS[lang]["no recording"]]
                else:
                    parts = [say["gap"].format(span=span_words(g.start, g.end, tz, lang)) for g in view.gaps]
                    parts += [finding_words(f, view, tz, lang) for f in view.findings]
                    if not view.findings:  # an engine without per-kind findings: the union, by its reasons
                        parts += [say["finding"].format(kind=kind_words(u.reason or "unusable", lang),
                                                        span=span_words(u.start, u.end, tz, lang))
                                  for u in view.unusable]
                out.append(head + say["and"].join(parts))
            out += recording_words(room.room, view, recordings, report.window, tz, lang)
    return out


def corrupt_words(reason: str, lang: Lang) -> str:
    """Why a file is corrupt, by the code its reason starts with ("truncated: …"), in words; the tool's own words
    stay in the recording's note and its ``corrupt_reason``."""
    code = reason.split(":", 1)[0].strip()
    return KIND_WORDS[lang].get(code) or KIND_WORDS[lang]["corrupt"]


def finding_words(f: videoaudit.FindingSpan, view: videoaudit.ViewCoverage, tz: ZoneInfo, lang: Lang) -> str:
    say = PHRASES[lang]
    if f.kind == "corrupt":
        why = next((n.detail for n in view.recording_notes if n.recording == f.recording and n.kind == "corrupt"), "")
        why = ("：" if lang == "zh" else ": ") + corrupt_words(why, lang) if why else ""
        return say["corrupt"].format(start=hms(f.start, tz), end=hms(f.end, tz), recording=f.recording, why=why)
    return say["finding"].format(kind=kind_words(f.kind, lang), span=span_words(f.start, f.end, tz, lang))


_TOOL_PREFIX = re.compile(r"\[[\w,]+ @ 0x[0-9a-f]+\] ")  # ffmpeg's "[mov,mp4 @ 0x55d…] " before its words


def short(text: str, limit: int = 120) -> str:
    """A tool's words cut to one readable line (without ffmpeg's component and memory address prefixes)."""
    text = " ".join(_TOOL_PREFIX.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def recording_words(room: str, view: videoaudit.ViewCoverage, recordings: dict[str, RecordingFacts],
                    window: videoaudit.Interval, tz: ZoneInfo, lang: Lang) -> list[str]:
    say = PHRASES[lang]
    win = f"{hms(window.start, tz)}–{hms(window.end, tz)}"
    out: list[str] = []

    def span_of(rec_id: str) -> tuple[datetime, datetime] | None:
        facts = recordings.get(rec_id)
        if facts is None or not facts.duration:
            return None
        return facts.start, facts.start + timedelta(seconds=facts.duration)

    for rec_id in view.outside:
        span = span_of(rec_id)
        if span:
            out.append(say["outside"].format(room=room, recording=rec_id, view=view.view, window=win,
                                             span=f"{hms(span[0], tz)}–{hms(span[1], tz)}"))
    for rec_id in view.extends_outside:
        span = span_of(rec_id)
        if span:
            inside = f"{hms(max(span[0], window.start), tz)}–{hms(min(span[1], window.end), tz)}"
            out.append(say["extends"].format(room=room, recording=rec_id, view=view.view, window=win, inside=inside,
                                             span=f"{hms(span[0], tz)}–{hms(span[1], tz)}"))
    for rec_id in view.unplaced:
        why = next((n.detail for n in view.recording_notes if n.recording == rec_id and n.kind == "corrupt"), "")
        out.append(say["unplaced"].format(room=room, recording=rec_id, view=view.view, why=corrupt_words(why, lang)))
    for note in view.recording_notes:
        if note.kind == "corrupt":
            continue  # said with its "corrupt from …" stretch, or as not placed
        detail = f" ({note.detail})" if note.detail else ""
        out.append(say["note"].format(room=room, recording=note.recording, view=view.view,
                                      kind=kind_words(note.kind, lang), detail=detail))
    return out

