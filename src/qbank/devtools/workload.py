"""The centre's work over HTTP, as the scale-out test and the soak benchmark drive it: a client that spreads requests
over N instances like a load balancer (and goes to the next instance when one does not answer), and the steps of an
exam session — a bank written and reviewed, a session with sites, keys and candidates, recordings uploaded."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import subprocess
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from paperbuild import sealing

UNANSWERED = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
WORDS = ("电阻", "电容", "电感", "电压", "电流", "功率", "频率", "相位", "绝缘", "接地", "短路", "熔断", "变压器",
         "继电器", "导线", "开关", "负载", "电源", "仪表", "照明", "电机", "线圈", "磁场", "保护")


class Centre:
    """The API behind ``urls``: requests go round-robin; one whose instance does not answer (refused, or the
    connection dropped) goes to the next instance, as behind a load balancer."""

    def __init__(self, urls: Iterable[str], token: str, timeout: float = 120) -> None:
        self.urls = list(urls)
        self._next = itertools.cycle(range(len(self.urls)))
        self.client = httpx.Client(timeout=timeout)
        self.admin = {"Authorization": f"Bearer {token}"}
        self.unanswered = 0  # requests an instance did not answer, sent again to the next one

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        last: Exception | None = None
        for _ in range(2 * len(self.urls)):
            url = self.urls[next(self._next)]
            try:
                return self.client.request(method, url + path, headers=headers or self.admin, **kw)
            except UNANSWERED as exc:
                self.unanswered += 1
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"no instance answered {method} {path}: {last}")

    def ok(self, method: str, path: str, status: int | tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        r = self.request(method, path, **kw)
        wanted = (status,) if isinstance(status, int) else status
        if r.status_code not in wanted:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def token(self, role: str, name: str, site: str | None = None, occupations: tuple[str, ...] = ()) -> dict[str, str]:
        created = self.ok("POST", "/api/v1/tokens", json={"name": name, "role": role, "site": site,
                                                          "occupations": list(occupations)})
        return {"Authorization": f"Bearer {created['token']}"}

    def wait_job(self, job_id: str, timeout: float = 300, headers: dict[str, str] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.ok("GET", f"/api/v1/jobs/{job_id}", headers=headers)
            if job["status"] in ("succeeded", "failed"):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(0.3)


def occupation_code(rng: random.Random) -> str:
    s = f"{rng.randrange(10**7):07d}"
    return f"{s[0]}-{s[1:3]}-{s[3:5]}-{s[5:7]}"


BLUEPRINT = {"scopes": [
    {"code": "01", "name": "基础知识", "weight": 60, "children": [
        {"code": "01.01", "name": "电工基础", "weight": 30, "points": [
            {"code": f"{i:03d}", "name": f"鉴定点{i}", "importance": "X"} for i in (1, 4, 7, 10)]},
        {"code": "01.02", "name": "安全知识", "weight": 30, "points": [
            {"code": f"{i:03d}", "name": f"鉴定点{i}", "importance": "X"} for i in (2, 5, 8, 11)]}]},
    {"code": "02", "name": "相关知识", "weight": 40, "points": [
        {"code": f"{i:03d}", "name": f"鉴定点{i}", "importance": "X" if i < 12 else "Y"} for i in (3, 6, 9, 12)]}]}
LAYOUT = {"name": "小卷", "duration_minutes": 30, "facility_min": 0.5, "facility_max": 0.75,
          "sections": [{"type": "single_choice", "count": 10, "points_per_item": 5},
                       {"type": "true_false", "count": 10, "points_per_item": 5}]}


def item(occupation: str, i: int, rng: random.Random) -> dict[str, Any]:
    """An item on point ``i % 12 + 1`` with a stem of its own (no near-duplicates)."""
    stem = "、".join(rng.sample(WORDS, 6)) + f"之间的关系（第{i}题）哪一项正确？"
    kind = "true_false" if i % 2 else "single_choice"
    options = ["正确", "错误"] if kind == "true_false" else [f"{w}{i}" for w in rng.sample(WORDS, 4)]
    return {"occupation_code": occupation, "level": 3, "type": kind, "stem": stem, "options": options,
            "answer": [rng.choice("AB" if kind == "true_false" else "ABCD")], "point_code": f"{i % 12 + 1:03d}",
            "facility": round(rng.uniform(0.5, 0.75), 3), "difficulty": "中等"}


def write_item(centre: Centre, body: dict[str, Any], writer: dict[str, str], reviewer: dict[str, str]) -> int:
    """Write, submit and approve one item; its id."""
    item_id = int(centre.ok("POST", "/api/v1/items", json=body, headers=writer)["id"])
    centre.ok("POST", f"/api/v1/items/{item_id}/submit", headers=writer)
    centre.ok("POST", f"/api/v1/items/{item_id}/approve", headers=reviewer)
    return item_id


def make_bank(centre: Centre, items: int = 60, seed: int = 1) -> tuple[str, int]:
    """An occupation with a blueprint, the small layout and ``items`` approved items; its code and layout id."""
    rng = random.Random(seed)
    code = occupation_code(rng)
    centre.ok("POST", "/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]})
    centre.ok("POST", f"/api/v1/occupations/{code}/levels/3/blueprints", json=BLUEPRINT)
    layout_id = int(centre.ok("POST", f"/api/v1/occupations/{code}/levels/3/layouts", json=LAYOUT)["id"])
    writer = centre.token("author", f"命题人{seed}", occupations=(code,))
    reviewer = centre.token("reviewer", f"审题人{seed}", occupations=(code,))
    for i in range(items):
        write_item(centre, item(code, i, rng), writer, reviewer)
    return code, layout_id


class Exam:
    """A session with one theory room per site (camera view ``front``), candidates, and each site's token and key."""

    def __init__(self, centre: Centre, occupation: str, sites: int = 2, per_site: int = 3, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.sites = [f"S{rng.randrange(10**8):08d}" for _ in range(sites)]
        rooms, candidates = [], []
        for k, site in enumerate(self.sites):
            centre.ok("POST", "/api/v1/sites", json={"code": site, "name": f"考点{site}"})
            rooms.append({"site": site, "code": "T1", "kind": "theory", "desks": per_site, "camera_views": ["front"]})
            candidates += [{"number": f"C{rng.randrange(10**9):09d}{k}{d}", "name": f"考生{k}{d}",
                            "room": f"{site}/T1", "desk": d + 1} for d in range(per_site)]
        body = {"occupation_code": occupation, "level": 3, "title": "理论考试", "date": "2026-12-03",
                "start": "09:00:00", "end": "10:30:00", "grace_minutes": 15, "rooms": rooms, "candidates": candidates}
        self.session_id = int(centre.ok("POST", "/api/v1/sessions", json=body)["id"])
        self.tokens = {site: centre.token("site", f"site-{site}", site=site) for site in self.sites}
        self.keys = {site: X25519PrivateKey.generate() for site in self.sites}
        for site, key in self.keys.items():
            public = base64.b64encode(sealing.raw_public(key.public_key())).decode()
            centre.ok("PUT", f"/api/v1/sites/{site}/public-key", json={"public_key": public},
                      headers=self.tokens[site])


def upload_recording(centre: Centre, exam: Exam, site: str, start: datetime, body: bytes | Iterator[bytes],
                     sha256: str | None = None) -> httpx.Response:
    """Upload a recording of the site's room (with ``sha256``: streamed straight through to the archive)."""
    headers = exam.tokens[site] | {"Content-Type": "video/mp4"} | ({"X-Content-SHA256": sha256} if sha256 else {})
    return centre.request("POST", f"/api/v1/sessions/{exam.session_id}/recordings", headers=headers, content=body,
                          params={"room": f"{site}/T1", "view": "front", "start": start.isoformat()})


def make_clip(path: Path, seconds: int, size: str = "320x240", seed: int = 0) -> Path:
    """A moving test pattern with sensor noise (H.264, 25 fps): a usable room picture; ``seed`` makes the bytes
    differ from clip to clip."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:d={seconds}",
                    "-vf", f"noise=alls=12:allf=t+u:all_seed={seed}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-b:v", "600k", "-g", "50", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
