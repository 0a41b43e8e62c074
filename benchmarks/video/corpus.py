"""Generated camera footage with ground truth (issue 13): scenes a real exam room gives, defects at known times.

One clip = a scene, a codec (H.264 / HEVC), a size, a frame rate, a GOP, optional sensor noise and a burned-in
clock, and defects. Everything is made by ffmpeg's lavfi sources and filters, so it is reproducible from the
spec (and a seed, for the corpus of the benchmark). Shared by the engine's unit tests
(``tests/videoaudit/clips.py``) and the corpus benchmark (``bench.py``).

Scenes (none may give a finding):
- ``bright``   the moving test picture (testsrc2);
- ``dim``      the same, dark and of low contrast (eq);
- ``lowcontrast`` the issue's sharp, low-contrast live picture: ``life`` with pale colours (+ noise);
- ``ir``       infrared-style greyscale (hue=s=0), flat contrast;
- ``still``    a still room: one picture, the feed live (noise; with or without the clock);
- ``exposure`` auto-exposure steps: brightness jumps up and down every few seconds;
- ``pan``      a slow pan over a still picture;
- ``partial``  a third of the picture occluded throughout.

Defects (``Defect``): ``black`` (signal lost: black, no clock), ``covered_dark`` / ``covered_bright`` (a hand or
paper on the lens: uniform, the camera's noise and clock still on), ``blurred`` (defocus), ``frozen`` (the feed
repeats one frame, clock and noise frozen too). Truncation and gaps are made on the encoded file
(:func:`truncate`, ``gap`` in the spec).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
SCENES = ("bright", "dim", "lowcontrast", "ir", "still", "exposure", "pan", "partial")
DEFECTS = ("black", "covered_dark", "covered_bright", "blurred", "frozen")


def kind_of(defect: str) -> str:
    """The finding kind a defect must give."""
    return "covered" if defect.startswith("covered") else defect


@dataclass
class Defect:
    kind: str  # one of DEFECTS
    start: float
    end: float


@dataclass
class Clip:
    scene: str = "bright"
    codec: str = "h264"  # h264 / hevc
    width: int = 640
    height: int = 360
    fps: int = 25
    gop: float = 2.0  # seconds between key frames (fixed GOP, as IP cameras do)
    duration: float = 30.0
    noise: int = 8  # sensor noise strength (ffmpeg noise filter, temporal); 0 = none
    clock: bool = True  # burned-in clock
    bitrate: str = "1500k"
    defects: list[Defect] = field(default_factory=list)
    gap: tuple[float, float] | None = None  # no frames from .. to (timestamps jump)


def _between(spans: list[Defect], kinds: tuple[str, ...]) -> str:
    parts = [f"between(t,{d.start:.3f},{d.end:.3f})" for d in spans if d.kind in kinds]
    return "+".join(parts) if parts else "0"


def _source(c: Clip) -> tuple[str, list[str]]:
    """The lavfi input and the scene's filters."""
    size = f"{c.width}x{c.height}"
    base = f"testsrc2=s={size}:r={c.fps}:d={c.duration}"
    if c.scene == "bright":
        return base, []
    if c.scene == "dim":
        return base, ["eq=brightness=-0.25:contrast=0.35"]
    if c.scene == "lowcontrast":
        life = f"life=size={size}:rate={c.fps}:ratio=0.3:life_color=#F0E0C0:death_color=#708090:mold=0"
        return life, [f"trim=duration={c.duration}"]
    if c.scene == "ir":
        return base, ["hue=s=0", "eq=contrast=0.6"]
    n = round(c.duration * c.fps)
    still = f"split[sa][sb];[sa][sb]freezeframes=first=0:last={n}:replace=0"
    if c.scene == "still":
        return base, [still]
    if c.scene == "exposure":
        steps = "+".join(f"between(t,{a},{a + 4})" for a in range(3, int(c.duration), 9))
        return base, [f"eq=brightness=0.18:contrast=1.15:enable='{steps}'"]
    if c.scene == "pan":
        big = f"testsrc2=s={2 * c.width}x{c.height}:r={c.fps}:d={c.duration}"
        return big, [
            still,
            f"crop=w={c.width}:h={c.height}:x='min(t*{c.width / c.duration:.3f},{c.width})':y=0",
        ]
    if c.scene == "partial":
        return base, ["drawbox=x=0:y=0:w=iw/3:h=ih:color=0x2a2a2a@1:t=fill"]
    raise ValueError(f"unknown scene {c.scene!r}")


def filtergraph(c: Clip) -> tuple[str, str]:
    """The lavfi input and a -filter_complex graph from [0:v] to [out]."""
    src, chain = _source(c)
    n = 0

    def freeze(a: float, b: float) -> None:
        nonlocal n
        f0, f1 = round(a * c.fps), round(b * c.fps) - 1
        chain.append(f"split[fa{n}][fb{n}];[fa{n}][fb{n}]freezeframes=first={f0}:last={f1}:replace={f0}")
        n += 1

    d = c.defects
    chain.append(f"gblur=sigma=8:enable='{_between(d, ('blurred',))}'")
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=0x3a3026@1:t=fill:enable='{_between(d, ('covered_dark',))}'")
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=0xe4ddd0@1:t=fill:enable='{_between(d, ('covered_bright',))}'")
    if c.noise:
        chain.append(f"noise=alls={c.noise}:allf=t")
    if c.clock:
        size = max(16, c.height // 22)
        chain.append(
            f"drawtext=fontfile={FONT}:text='%{{pts\\:gmtime\\:1750000000\\:%Y-%m-%d %H\\\\\\:%M\\\\\\:%S}}':"
            f"x={size}:y={size}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6"
        )
    chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black@1:t=fill:enable='{_between(d, ('black',))}'")
    for x in d:
        if x.kind == "frozen":
            freeze(x.start, x.end)
    if c.gap:
        a, b = c.gap
        chain.append(f"select='not(between(t,{a},{b}))'")  # frames dropped, timestamps kept: a gap
    return src, "[0:v]" + ",".join(chain) + "[out]"


def _double(rate: str) -> str:
    """Twice a rate like "1500k" / "3M": the encoder's buffer. One second of buffer starves the key frames of
    long GOPs (x264 then writes flat grey key frames), which no camera does."""
    num = rate.rstrip("kKmM")
    return f"{2 * float(num):g}{rate[len(num) :]}"


def generate(c: Clip, out: Path, *, threads: int = 1) -> Path:
    """Encode ``c`` to ``out`` (MP4, faststart) and write ``<out>.truth.json``; skipped when both exist and the
    truth is this spec's."""
    truth_path = out.with_suffix(".truth.json")
    spec = json.dumps(asdict(c), indent=1)
    if out.exists() and truth_path.exists() and truth_path.read_text() == spec:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src, graph = filtergraph(c)
    g = max(1, round(c.gop * c.fps))
    if c.codec == "hevc":
        codec = ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"]
        codec += ["-x265-params", f"keyint={g}:min-keyint={g}:scenecut=0:log-level=error:pools={threads}"]
    else:
        codec = ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(g), "-keyint_min", str(g)]
        codec += ["-sc_threshold", "0", "-threads", str(threads)]
    rate = ["-b:v", c.bitrate, "-maxrate", c.bitrate, "-bufsize", _double(c.bitrate)]
    tmp = out.with_name("partial-" + out.name)
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-filter_complex", graph, "-map", "[out]"]
    cmd += [*codec, *rate, "-pix_fmt", "yuv420p", "-t", str(c.duration), "-fps_mode", "passthrough"]
    cmd += ["-movflags", "+faststart", str(tmp)]
    subprocess.run(cmd, check=True, timeout=1800)
    tmp.replace(out)
    truth_path.write_text(spec)
    return out


def truncate(src: Path, out: Path, fraction: float) -> float:
    """Cut ``src`` after ``fraction`` of its bytes; returns the time its frames end (the truth: the start of the
    corrupt stretch), from the full file's packet table: the end of the last packet wholly before the cut."""
    data = src.read_bytes()
    cut = int(len(data) * fraction)
    out.write_bytes(data[:cut])
    entries = "packet=pts_time,duration_time,pos,size"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "csv=p=0", str(src)],
        capture_output=True,
        text=True,
        check=True,
    )
    end = 0.0
    for line in probe.stdout.splitlines():
        pts, dur, size, pos = [*line.split(","), "", "", "", ""][:4]
        try:
            if int(pos) + int(size) <= cut:
                end = max(end, float(pts) + float(dur))
        except ValueError:
            continue
    return end
