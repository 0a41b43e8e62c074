"""Recordings through the service: a 2 GB upload against `minio` fput_object, and a session's audit time.

Usage:
    .venv/bin/python benchmarks/recordings.py [--out benchmarks/out] [--size-gb 2.0] [--rooms 4] [--views 2]
                                              [--minutes 30] [--skip-upload] [--skip-session] [--readme]

What it does (all on 127.0.0.1, every process it starts is stopped by its pid):
1. starts one local S3 server (SeaweedFS, ``evidence.LocalS3Server``) and ``qbank serve`` as a subprocess on
   it (temporary QBANK_DATA_DIR, SQLite); tokens come from ``qbank token create``, the occupation, blueprint,
   site and sessions from the API;
2. builds a ~2 GB H.264 MP4 by concatenating (``ffmpeg -f concat -c copy``) copies of the video benchmark's
   clean 1080p 4 Mb/s clip (benchmarks/video/footage.py), uploads it with a streaming httpx client in a second
   process, and uploads the same file with ``Minio.fput_object`` to an Object Lock bucket of the same server
   with COMPLIANCE retention (before and after the service's upload); samples the service's RSS every 50 ms;
3. uploads rooms × views recordings of generated 30-minute 720p footage (footage.py, one clip per defect
   layout, per-view variants remuxed with ``-metadata comment=…`` so each has its own bytes) and polls
   ``GET /api/v1/sessions/{id}/video-audit`` until nothing is pending; reads the analysis jobs' times.
Footage is cached in --out (gitignored). Prints a Markdown table; ``--readme`` writes it into
benchmarks/README.md under "Recordings through the service".
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent / "video"))

from footage import generate, prepare, schedule
from serving import RssSampler

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
README = ROOT / "benchmarks" / "README.md"
HEADING = "## Recordings through the service"
NOTES_MARK = "<!-- notes below are kept by --readme -->"
CHUNK = 1 << 20
TZ_OFFSET = "+08:00"  # the service's default zone, Asia/Shanghai
DATE = "2026-12-03"


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


# ---------------------------------------------------------------------------------------------- footage
def big_file(out: Path, size_gb: float) -> Path:
    """A playable MP4 of at least ``size_gb`` GB: copies of the clean 1080p 600 s clip, concatenated (no re-encode)."""
    clip = prepare(out, 600.0, ("clean1080",))["clean1080"]
    copies = max(1, math.ceil(size_gb * 1e9 / clip.stat().st_size))
    path = out / f"rec_big_clean1080_{copies}x600s.mp4"
    if path.exists():
        return path
    say(f"building {path.name}: {copies} × {clip.name} (-c copy)")
    listing = out / "rec_big_concat.txt"
    listing.write_text("".join(f"file '{clip.resolve()}'\n" for _ in range(copies)))
    tmp = path.with_name("partial-" + path.name)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    "-movflags", "+faststart", str(tmp)], check=True)
    tmp.replace(path)
    listing.unlink()
    return path


def quick_file(out: Path, size_gb: float) -> Path:
    """A playable MP4 of at least ``size_gb`` GB made in a minute or two (for --direct): a 60 s 720p clip of
    noisy test pattern at ~20 Mb/s (x264 ultrafast), copies concatenated (no re-encode)."""
    clip = out / "rec_quick_720p_60s.mp4"
    if not clip.exists():
        say(f"generating {clip.name}")
        tmp = clip.with_name("partial-" + clip.name)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                        "-t", "60", "-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
                        "-b:v", "20M", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)], check=True)
        tmp.replace(clip)
    copies = max(1, math.ceil(size_gb * 1e9 / clip.stat().st_size))
    path = out / f"rec_quick_{copies}x60s.mp4"
    if not path.exists():
        listing = out / "rec_quick_concat.txt"
        listing.write_text("".join(f"file '{clip.resolve()}'\n" for _ in range(copies)))
        tmp = path.with_name("partial-" + path.name)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c",
                        "copy", "-movflags", "+faststart", str(tmp)], check=True)
        tmp.replace(path)
        listing.unlink()
    return path


def layouts(out: Path, minutes: int) -> dict[str, Path]:
    """One clip per defect layout: 'defects' (footage.py's hour720 layout) and 'clean' (still stretches only)."""
    duration = minutes * 60.0
    t0 = time.monotonic()
    defects = prepare(out, duration, ("hour720",))["hour720"]
    clean = out / f"rec_clean720_{int(duration)}s.mp4"
    if not clean.exists():
        say(f"generating {clean.name} (720p 2 Mb/s, {minutes} min)")
        tmp = clean.with_name("partial-" + clean.name)
        generate(tmp, width=1280, height=720, duration=duration, bitrate="2M",
                 defects=schedule(duration, 4, count=0, still=max(3, round(6 * duration / 3600))))
        tmp.with_suffix(".truth.json").replace(clean.with_suffix(".truth.json"))
        tmp.replace(clean)
    say(f"footage ready in {time.monotonic() - t0:.0f} s")
    return {"defects": defects, "clean": clean}


def variant(source: Path, out: Path, tag: str) -> Path:
    """The same picture with other bytes: a remux with a comment tag (``-c copy``)."""
    path = out / "rec_variants" / f"{source.stem}_{tag}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("partial-" + path.name)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-map", "0", "-c", "copy",
                        "-metadata", f"comment=recordings benchmark {tag}", "-movflags", "+faststart", "-f", "mp4",
                        str(tmp)], check=True)
        tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------- memory
# ---------------------------------------------------------------------------------------------- the service
class Service:
    """``qbank serve`` on a free port with its data in ``data_dir``, on the given S3 server."""

    def __init__(self, data_dir: Path, s3: Any) -> None:
        self.data_dir = data_dir
        self.env = dict(os.environ) | {
            "QBANK_DATA_DIR": str(data_dir), "QBANK_S3_ENDPOINT": s3.endpoint, "QBANK_S3_ACCESS_KEY": s3.access_key,
            "QBANK_S3_SECRET_KEY": s3.secret_key, "QBANK_TOKEN_SECRET": "recordings-benchmark-secret",
            "QBANK_LOG_LEVEL": "WARNING"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = data_dir / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(VENV_BIN / "qbank"), *args], env=self.env, capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise RuntimeError(f"qbank {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout.strip()

    def start(self) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(VENV_BIN / "qbank"), "serve", "--port", str(self.port)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qbank serve exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError("qbank serve did not answer /health within 120 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait(10)


def check(r: httpx.Response, *codes: int) -> Any:
    if r.status_code not in codes:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}")
    return r.json()


def make_session(api: httpx.Client, admin: dict[str, str], occupation: str, site: str, rooms: int,
                 views: list[str], start: str, end: str) -> int:
    body = {"occupation_code": occupation, "level": 3, "title": "录像基准", "date": DATE, "start": start, "end": end,
            "rooms": [{"site": site, "code": f"T{101 + i}", "kind": "theory", "desks": 30, "camera_views": views}
                      for i in range(rooms)]}
    return int(check(api.post("/api/v1/sessions", json=body, headers=admin), 201)["id"])


def setup_bank(api: httpx.Client, admin: dict[str, str]) -> tuple[str, str]:
    """An occupation with a level-3 blueprint, and one site."""
    stamp = int(time.time()) % 10**7
    code = f"{stamp // 10**6}-{stamp // 10**4 % 100:02d}-{stamp // 100 % 100:02d}-{stamp % 100:02d}"
    check(api.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [5, 4, 3, 2, 1]},
                   headers=admin), 201)
    points = [{"code": f"{i + 1:03d}", "name": f"鉴定点{i + 1}", "importance": "X"} for i in range(6)]
    blueprint = {"scopes": [{"code": "01", "name": "基础知识", "weight": 100, "points": points}]}
    check(api.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json=blueprint, headers=admin), 201)
    site = f"BENCH{stamp:07d}"
    check(api.post("/api/v1/sites", json={"code": site, "name": "基准考点"}, headers=admin), 201)
    return code, site


# ---------------------------------------------------------------------------------------------- uploads
def client_main(url: str, path: str, token: str) -> None:
    """The uploading process: streams the file with httpx, prints timings as JSON."""
    size = os.path.getsize(path)
    sent: list[float] = []
    t0 = time.perf_counter()

    def body() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        sent.append(time.perf_counter() - t0)

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "video/mp4", "Content-Length": str(size)}
    if os.environ.get("BENCH_DECLARE_DIGEST", "1") == "1":
        # the site states the file's SHA-256 (a recorder has it when it closes the file; hashed here before the
        # clock starts), so the service streams the body to the archive while it arrives
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        headers["X-Content-SHA256"] = digest.hexdigest()
        t0 = time.perf_counter()
    with httpx.Client(timeout=httpx.Timeout(3600, connect=10)) as c:
        r = c.post(url, content=body(), headers=headers)
    total = time.perf_counter() - t0
    print(json.dumps({"status": r.status_code, "total_s": total, "sent_s": sent[0] if sent else None,
                      "body": r.json() if r.headers.get("content-type", "").startswith("application/") else r.text}))


def direct_client_main(url: str, token: str, session_id: str, room: str, view: str, start: str, path: str) -> None:
    """The site's side of an upload straight to storage (what `qbank site upload` runs, without its bar): the
    SHA-256 is taken before the clock starts (a recorder has it when it closes the file); prints the time of the
    parts (first PUT → last part stored) and of the complete step (the service's check and lock) as JSON."""
    import asyncio

    from qbank.station.package import Centre
    from qbank.station.recording_upload import file_sha256, send_recording

    file = Path(path)
    sha256 = file_sha256(file)
    marks: dict[str, float] = {}

    def progress(done: int, total: int, skipped: int) -> None:
        marks.setdefault("first", time.perf_counter())
        if done == total:
            marks["last_byte"] = time.perf_counter()

    async def work() -> dict[str, Any]:
        async with Centre(url, token, timeout=3600) as centre:
            return await send_recording(centre, int(session_id), file, room=room, view=view,
                                        start=datetime.fromisoformat(start), sha256=sha256, progress=progress)

    t0 = time.perf_counter()
    rec = asyncio.run(work())
    t_end = time.perf_counter()
    print(json.dumps({"parts_s": marks["last_byte"] - t0, "complete_s": t_end - marks["last_byte"],
                      "total_s": t_end - t0, "body": rec}))


def direct_upload(svc: Service, session_id: int, token: str, room: str, view: str, start: str, path: Path
                  ) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--direct-client", svc.url, token, str(session_id), room, view,
                           start, str(path)], capture_output=True, text=True, timeout=3600, env=svc.env)
    if done.returncode:
        raise RuntimeError(f"direct upload client failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def upload(svc: Service, session_id: int, token: str, room: str, view: str, start: str, path: Path
           ) -> dict[str, Any]:
    params = httpx.QueryParams({"room": room, "view": view, "start": start})
    url = f"{svc.url}/api/v1/sessions/{session_id}/recordings?{params}"
    done = subprocess.run([sys.executable, __file__, "--client", url, str(path), token], capture_output=True,
                          text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"upload client failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] not in (200, 201):
        raise RuntimeError(f"upload of {path.name} answered {result['status']}: {result['body']}")
    return result


def fput_baseline(s3: Any, path: Path, bucket: str, name: str) -> float:
    from minio import Minio
    from minio.commonconfig import COMPLIANCE
    from minio.retention import Retention

    client = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False, region="us-east-1")
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket, object_lock=True)
    until = (datetime.now(UTC) + timedelta(days=5 * 366)).replace(microsecond=0)
    t0 = time.perf_counter()
    client.fput_object(bucket, name, str(path), content_type="video/mp4", retention=Retention(COMPLIANCE, until))
    return time.perf_counter() - t0


def archive_put_alone(s3: Any, path: Path, bucket: str) -> float:
    """The service's archive put on its own (same class and settings, another bucket so nothing is deduplicated)."""
    from evidence import RetentionArchive

    archive = RetentionArchive(s3.endpoint, s3.access_key, s3.secret_key, bucket)
    archive.ensure_bucket()
    t0 = time.perf_counter()
    archive.put("recordings", path, size=path.stat().st_size, content_type="video/mp4")
    return time.perf_counter() - t0


def wait_job(api: httpx.Client, headers: dict[str, str], job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = check(api.get(f"/api/v1/jobs/{job_id}", headers=headers), 200)
        if job["status"] in ("succeeded", "failed", "done", "error", "cancelled") or job["finished_at"]:
            return job
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} not finished within {timeout} s")


def job_times(job: dict[str, Any]) -> tuple[float, float]:
    """(queued, running) seconds of a finished job."""
    created, started, finished = (datetime.fromisoformat(job[k]) for k in ("created_at", "started_at", "finished_at"))
    return (started - created).total_seconds(), (finished - started).total_seconds()


# ---------------------------------------------------------------------------------------------- parts
def bench_upload(svc: Service, s3: Any, sampler: RssSampler, api: httpx.Client, admin: dict[str, str],
                 occupation: str, site: str, site_token: str, files: list[Path]) -> dict[str, Any]:
    """Per file: the service's upload (then its analysis), RetentionArchive.put alone, fput_object; one
    fput_object before the first, so each service upload has a baseline just before and just after it."""
    size = files[0].stat().st_size
    mb = size / 1e6
    say(f"2 GB part: {len(files)} × {size / 1e9:.2f} GB ({files[0].name}…); load {load()}")
    session_id = make_session(api, admin, occupation, site, 1, ["front"], "09:00:00", "10:30:00")
    for path in files:  # warm the page cache so neither side pays the first disk read
        with path.open("rb") as f:
            while f.read(8 * CHUNK):
                pass
    fput = [fput_baseline(s3, files[0], "baseline-locked", "fput-0.mp4")]
    say(f"fput_object: {fput[-1]:.1f} s ({mb / fput[-1]:.0f} MB/s); load {load()}")
    runs: list[dict[str, Any]] = []
    for k, path in enumerate(files, 1):
        sampler.reset()
        rss_before = sampler.proc.memory_info().rss
        start = f"{DATE}T09:{k - 1:02d}:00{TZ_OFFSET}"
        load_at = load()
        res = upload(svc, session_id, site_token, f"{site}/T101", "front", start, path)
        peak, peak_tree = sampler.peak, sampler.peak_tree
        svc_s, sent_s = res["total_s"], res["sent_s"]
        say(f"#{k} service upload: {svc_s:.1f} s ({mb / svc_s:.0f} MB/s), body sent after {sent_s:.1f} s; "
            f"peak RSS {peak / 2**20:.0f} MiB (with children {peak_tree / 2**20:.0f} MiB); load {load()}")
        rec = res["body"]
        job = wait_job(api, admin, rec["job_id"], 3600)
        _, ran = job_times(job)
        say(f"#{k} analysis of the recording: {ran:.1f} s ({job['status']}); load {load()}")
        alone = archive_put_alone(s3, path, "archive-alone")
        say(f"#{k} RetentionArchive.put alone: {alone:.1f} s ({mb / alone:.0f} MB/s); load {load()}")
        fput.append(fput_baseline(s3, path, "baseline-locked", f"fput-{k}.mp4"))
        say(f"#{k} fput_object: {fput[-1]:.1f} s ({mb / fput[-1]:.0f} MB/s); load {load()}")
        base = (fput[-2] + fput[-1]) / 2
        runs.append({"service_s": svc_s, "sent_s": sent_s, "fput_s": [fput[-2], fput[-1]], "ratio": base / svc_s,
                     "archive_put_s": alone, "rss_before": rss_before, "peak_rss": peak, "peak_rss_tree": peak_tree,
                     "analysis_s": ran, "duration": rec.get("duration"), "load": load_at})
    return {"size": size, "runs": runs, "samples": sampler.samples}


def bench_direct(svc: Service, s3: Any, api: httpx.Client, admin: dict[str, str], occupation: str, site: str,
                 site_token: str, files: list[Path]) -> dict[str, Any]:
    """Per file: fput_object, the direct upload, the streamed upload, fput_object again (own bytes each, so
    nothing is deduplicated: each file is used once per path, in its own session)."""
    size = files[0].stat().st_size
    mb = size / 1e6
    say(f"direct part: {len(files)} × {size / 1e9:.2f} GB; load {load()}")
    for path in files:
        with path.open("rb") as f:
            while f.read(8 * CHUNK):
                pass
    runs: list[dict[str, Any]] = []
    for k, path in enumerate(files, 1):
        load_at = load()
        os.sync()  # each path starts with none of the last one's bytes still to be written back
        before = fput_baseline(s3, path, "baseline-locked", f"direct-fput-{k}a.mp4")
        say(f"#{k} fput_object: {before:.1f} s ({mb / before:.0f} MB/s)")
        sid = make_session(api, admin, occupation, site, 1, ["front"], "09:00:00", "10:30:00")
        start = f"{DATE}T09:00:00{TZ_OFFSET}"
        os.sync()
        d = direct_upload(svc, sid, site_token, f"{site}/T101", "front", start, path)
        say(f"#{k} direct: parts {d['parts_s']:.1f} s ({mb / d['parts_s']:.0f} MB/s), complete (check + lock) "
            f"{d['complete_s']:.1f} s")
        wait_job(api, admin, d["body"]["job_id"], 3600)
        sid2 = make_session(api, admin, occupation, site, 1, ["front"], "09:00:00", "10:30:00")
        other = variant(path, path.parent, f"streamed{k}")  # own bytes: the direct upload's are stored already
        os.sync()
        streamed = upload(svc, sid2, site_token, f"{site}/T101", "front", start, other)
        say(f"#{k} streamed through the service: {streamed['total_s']:.1f} s")
        wait_job(api, admin, streamed["body"]["job_id"], 3600)
        os.sync()
        after = fput_baseline(s3, path, "baseline-locked", f"direct-fput-{k}b.mp4")
        say(f"#{k} fput_object again: {after:.1f} s ({mb / after:.0f} MB/s); load {load()}")
        base = (before + after) / 2
        runs.append({"fput_s": [before, after], "parts_s": d["parts_s"], "complete_s": d["complete_s"],
                     "streamed_s": streamed["total_s"], "ratio": base / d["parts_s"],
                     "complete_ratio": d["complete_s"] / d["parts_s"], "streamed_ratio": base / streamed["total_s"],
                     "load": load_at})
    return {"size": size, "runs": runs}


def warm_memory(gb: float) -> None:
    """Touch ``gb`` of memory once, page by page, in a child process that exits and gives it back."""
    started = time.perf_counter()
    code = (f"n = int({gb} * 2**30); b = bytearray(n); b[::4096] = b'\\x01' * len(range(0, n, 4096))")
    subprocess.run([sys.executable, "-c", code], check=True)
    say(f"touched {gb:g} GB of memory once in {time.perf_counter() - started:.1f} s")


def direct_report(direct: dict[str, Any]) -> str:
    mb = direct["size"] / 1e6
    lines = ["| run (load 1/5 min) | `fput_object` before / after | direct: parts | **ratio** (target ≥ 0.95) "
             "| complete: check + lock | **÷ upload** (target ≤ 0.3) | streamed through the service (ratio) |",
             "|---|---|---|---|---|---|---|"]
    for k, r in enumerate(direct["runs"], 1):
        f1, f2 = r["fput_s"]
        lines.append(f"| {k} ({r['load']}) | {f1:.1f} s / {f2:.1f} s | {r['parts_s']:.1f} s "
                     f"({mb / r['parts_s']:.0f} MB/s) | **{r['ratio']:.2f}** | {r['complete_s']:.1f} s "
                     f"| **{r['complete_ratio']:.2f}** | {r['streamed_s']:.1f} s ({r['streamed_ratio']:.2f}) |")
    return "\n".join(lines)


def bench_session(svc: Service, sampler: RssSampler, api: httpx.Client, admin: dict[str, str], occupation: str,
                  site: str, site_token: str, out: Path, rooms: int, views: int, minutes: int) -> dict[str, Any]:
    clips = layouts(out, minutes)
    names = ["front", "back", "left", "right", "wide", "door", "desk", "ceiling"][:views]
    end = f"{9 + minutes // 60:02d}:{minutes % 60:02d}:00"
    session_id = make_session(api, admin, occupation, site, rooms, names, "09:00:00", end)
    plan = []
    for i in range(rooms):
        for j, view in enumerate(names):
            layout = "defects" if j % 2 == 0 else "clean"
            plan.append((f"{site}/T{101 + i}", view, layout, variant(clips[layout], out, f"r{i + 1}_{view}")))
    say(f"session part: session {session_id}, {len(plan)} recordings of {minutes} min 720p; load {load()}")
    sampler.reset()
    t_first = time.monotonic()
    uploads = []
    for room, view, layout, path in plan:
        res = upload(svc, session_id, site_token, room, view, f"{DATE}T09:00:00{TZ_OFFSET}", path)
        uploads.append((room, view, layout, path, res))
        say(f"  {room} {view} ({layout}, {path.stat().st_size / 1e6:.0f} MB): {res['total_s']:.1f} s")
    t_last = time.monotonic()
    audit: dict[str, Any] = {}
    deadline = t_last + 3600
    while time.monotonic() < deadline:
        audit = check(api.get(f"/api/v1/sessions/{session_id}/video-audit", headers=admin), 200)
        if not audit["pending"] and audit["recordings"] == len(plan):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError("the audit still had pending recordings after 3600 s")
    t_done = time.monotonic()
    jobs = []
    for room, view, layout, path, res in uploads:
        job = wait_job(api, admin, res["body"]["job_id"], 60)
        queued, ran = job_times(job)
        rec = check(api.get(f"/api/v1/recordings/{res['body']['id']}", headers=admin), 200)
        jobs.append({"room": room, "view": view, "layout": layout, "upload_s": res["total_s"], "queued_s": queued,
                     "analysis_s": ran, "status": rec["status"], "findings": len(rec["findings"]),
                     "size": path.stat().st_size})
    say(f"audit complete {t_done - t_last:.1f} s after the last upload ({t_done - t_first:.1f} s after the first); "
        f"passes={audit['passes']}; load {load()}")
    return {"session_id": session_id, "recordings": len(plan), "minutes": minutes,
            "upload_total_s": t_last - t_first, "after_last_s": t_done - t_last, "after_first_s": t_done - t_first,
            "passes": audit["passes"], "reasons": len(audit["reasons"]), "jobs": jobs, "peak_rss": sampler.peak,
            "peak_rss_tree": sampler.peak_tree}


# ---------------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace, up: dict[str, Any] | None, ses: dict[str, Any] | None, loads: list[str]) -> str:
    cmd = "python benchmarks/recordings.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in (("size_gb", args.size_gb), ("repeat", args.repeat),
                                                     ("rooms", args.rooms),
                                                     ("views", args.views), ("minutes", args.minutes)))
    lines = [f"`{cmd}` (`--help` for the options; `--readme` rewrites this section). Machine: "
             f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, SQLite, one local "
             f"SeaweedFS (`weed mini`) for the service and the baseline; load average (1/5 min) during the run: "
             f"{', '.join(loads)} (other engineers' tests and benchmarks shared the machine).", ""]
    if up:
        mb = up["size"] / 1e6
        runs = up["runs"]
        lines += [
            "| run (load 1/5 min at its start) | `fput_object` before / after | through the service | of which body "
            "received + spooled | ratio (target ≥ 0.8) | `RetentionArchive.put` alone | service peak RSS "
            "(target < 300 MB) |",
            "|---|---|---|---|---|---|---|"]
        for k, r in enumerate(runs, 1):
            f1, f2 = r["fput_s"]
            lines.append(
                f"| {k} ({r['load']}) | {f1:.1f} s / {f2:.1f} s ({mb / f1:.0f} / {mb / f2:.0f} MB/s) "
                f"| {r['service_s']:.1f} s ({mb / r['service_s']:.0f} MB/s) | {r['sent_s']:.1f} s "
                f"| **{r['ratio']:.2f}** | {r['archive_put_s']:.1f} s ({mb / r['archive_put_s']:.0f} MB/s) "
                f"| **{r['peak_rss'] / 2**20:.0f} MiB** (idle before {r['rss_before'] / 2**20:.0f}; with children "
                f"{r['peak_rss_tree'] / 2**20:.0f}) |")
        ratios = sorted(r["ratio"] for r in runs)
        analyses = ", ".join(f"{r['analysis_s']:.0f}" for r in runs)
        lines += [
            "",
            f"File: {up['size'] / 1e9:.2f} GB playable H.264 MP4 ({runs[0]['duration'] or 0:.0f} s of 1080p 4 Mb/s "
            f"25 fps: copies of the video benchmark's clean clip joined with `ffmpeg -f concat -c copy`; each run "
            f"uploads another remux of it, so nothing is deduplicated), in the page cache. Service: `POST "
            f"…/recordings` from a second process (httpx, streaming body); its RSS sampled every 50 ms (psutil; "
            f"children = the probe's ffprobe). Baseline: `minio` `fput_object` of the same "
            f"file to an Object Lock bucket of the same server with COMPLIANCE retention (SDK defaults: 5 MiB "
            f"parts, 3 in flight); ratio = mean of the baselines just before and just after ÷ service time; "
            f"median ratio {ratios[len(ratios) // 2]:.2f}. The service's time is receive-and-spool, probe, "
            f"archive put (pre-hash, then 16 MiB parts × 3 in flight), one after the other. Each recording's "
            f"analysis job took {analyses} s (waited for before the next "
            f"measurement).", ""]
    if ses:
        lines += [
            f"| session of {ses['recordings']} recordings × {ses['minutes']} min | figure |", "|---|---|",
            f"| uploads, one after another | {ses['upload_total_s']:.1f} s |",
            f"| **last upload → complete audit (nothing pending)** | **{ses['after_last_s']:.1f} s** |",
            f"| first upload → complete audit | {ses['after_first_s']:.1f} s |",
            f"| service peak RSS (with children) | {ses['peak_rss'] / 2**20:.0f} MiB "
            f"({ses['peak_rss_tree'] / 2**20:.0f} MiB) |", "",
            "| room | view | footage | MB | upload | queued | analysis | status | findings |",
            "|---|---|---|---|---|---|---|---|---|"]
        for j in ses["jobs"]:
            lines.append(f"| {j['room'].split('/')[1]} | {j['view']} | {j['layout']} | {j['size'] / 1e6:.0f} "
                         f"| {j['upload_s']:.1f} s | {j['queued_s']:.1f} s | {j['analysis_s']:.1f} s | {j['status']} "
                         f"| {j['findings']} |")
        lines += ["", f"Footage: benchmarks/video/footage.py, 1280×720 H.264 2 Mb/s 25 fps, 2 s GOP, "
                      f"{ses['minutes']} min; two layouts (\"defects\": footage.py's hour720 defects — black, frozen, "
                      f"blurred, covered — and still stretches; \"clean\": still stretches only), each recording a "
                      f"remux of its layout with its own `-metadata comment=…` (own bytes, own SHA-256). "
                      f"Verdict: {'pass' if ses['passes'] else 'fail'} ({ses['reasons']} reasons; the defects are "
                      f"meant to fail it).", ""]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replace the generated part of this benchmark's section; hand-written notes after NOTES_MARK stay."""
    content = README.read_text()
    section = f"{HEADING}\n\n{text.rstrip()}\n"
    if HEADING in content:
        before, rest = content.split(HEADING, 1)
        nxt = rest.find("\n## ")
        old = rest[:nxt] if nxt >= 0 else rest
        if NOTES_MARK in old:
            section += "\n" + NOTES_MARK + old.split(NOTES_MARK, 1)[1].rstrip() + "\n"
        after = rest[nxt + 1:] if nxt >= 0 else ""
        content = before + section + ("\n" + after if after else "")
    else:
        content = content.rstrip() + "\n\n" + section
    README.write_text(content)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:])
        return
    if len(sys.argv) == 9 and sys.argv[1] == "--direct-client":
        direct_client_main(*sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out", help="footage cache (gitignored)")
    p.add_argument("--size-gb", type=float, default=2.0, help="size of the big recording, GB (10^9 bytes)")
    p.add_argument("--repeat", type=int, default=3, help="big uploads (each with its own bytes)")
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--views", type=int, default=2, help="camera views per room (1–8)")
    p.add_argument("--minutes", type=int, default=30, help="length of each session recording")
    p.add_argument("--skip-upload", action="store_true", help="skip the 2 GB upload")
    p.add_argument("--skip-session", action="store_true", help="skip the session audit")
    p.add_argument("--direct", action="store_true", help="only the upload straight to storage, beside the "
                                                         "streamed upload and fput_object (no session part)")
    p.add_argument("--readme", action="store_true", help="write the figures into benchmarks/README.md")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: print (and with --readme write) the figures of a saved recordings.json")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory (S3 data, service log)")
    p.add_argument("--warm-memory-gb", type=float, default=0.0, metavar="GB",
                   help="first touch this much memory once (in a child process that then exits) before measuring: "
                        "in a VM a page the guest never used costs a fault on the host (here ~4 s per GB written "
                        "to a new file, 0.3-0.5 s into pages used before), which a long-running server has paid")
    args = p.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        text = report(args, saved["upload"], saved["session"], saved["load"])
        print(text)
        if args.readme:
            write_readme(text)
        return
    from evidence import LocalS3Server

    args.out.mkdir(parents=True, exist_ok=True)
    if args.warm_memory_gb > 0:
        warm_memory(args.warm_memory_gb)
    loads = [load()]
    files: list[Path] = []
    if not args.skip_upload:
        big = quick_file(args.out, args.size_gb) if args.direct else big_file(args.out, args.size_gb)
        files = [big] + [variant(big, args.out, f"rep{k}") for k in range(2, args.repeat + 1)]
    if not args.skip_session and not args.direct:
        layouts(args.out, args.minutes)
    tmp = Path(tempfile.mkdtemp(prefix="qbank-recbench-"))
    say(f"data in {tmp}; load {load()}")
    s3 = LocalS3Server(tmp / "s3", volume_size_limit_mb=1024)
    svc: Service | None = None
    up = ses = None
    try:
        s3.start()
        say(f"S3 server pid {s3.pid} at {s3.endpoint}")
        svc = Service(tmp / "data", s3)
        admin_token = svc.cli("token", "create", "--role", "admin", "--name", "bench-admin")
        svc.start()
        assert svc.proc is not None
        say(f"qbank serve pid {svc.proc.pid} at {svc.url}")
        with httpx.Client(base_url=svc.url, timeout=60) as api, RssSampler(svc.proc.pid) as sampler:
            admin = {"Authorization": f"Bearer {admin_token}"}
            occupation, site = setup_bank(api, admin)
            site_token = svc.cli("token", "create", "--role", "site", "--site", site, "--name", f"site-{site}")
            if files and args.direct:
                direct = bench_direct(svc, s3, api, admin, occupation, site, site_token, files)
                text = direct_report(direct)
                (args.out / "recordings-direct.json").write_text(json.dumps(direct, indent=1))
                print()
                print(text)
                return
            if files:
                up = bench_upload(svc, s3, sampler, api, admin, occupation, site, site_token, files)
                loads.append(load())
            if not args.skip_session:
                ses = bench_session(svc, sampler, api, admin, occupation, site, site_token, args.out, args.rooms,
                                    args.views, args.minutes)
                loads.append(load())
    finally:
        if svc is not None:
            svc.stop()
        s3.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, up, ses, loads)
    (args.out / "recordings.json").write_text(json.dumps({"upload": up, "session": ses, "load": loads}, indent=1))
    print()
    print(text)
    if args.readme:
        write_readme(text)
        say(f"figures written to {README}")


if __name__ == "__main__":
    main()
