"""Helpers for the exam-station tests: a sealed exam on a real `qbank serve`, and `qbank station serve` as a real
process that can be stopped, killed with SIGKILL and started again on the same database."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.qbank.helpers import (
    LAYOUT,
    Api,
    Bank,
    get_package,
    make_paper_bank,
    make_site,
    site_headers,
    time_travel,
    wait_job,
)

QBANK = str(Path(sys.executable).with_name("qbank"))


async def live_api(url: str, env: dict[str, str], secret: str) -> tuple[Api, Any]:
    """The test helpers' Api over real HTTP to a running `qbank serve`, with its own database for set-up; returns
    the Api and the engine to dispose."""
    from qbank.db import create_engine

    engine = create_engine(env["QBANK_DATABASE_URL"])
    client = httpx.AsyncClient(base_url=url, timeout=60)
    state = SimpleNamespace(settings=SimpleNamespace(token_secret=secret))
    api = Api(client=client, app=SimpleNamespace(state=state), backend="sqlite",  # type: ignore[arg-type]
              db=async_sessionmaker(engine, expire_on_commit=False))
    return api, engine


@dataclass
class SealedExam:
    url: str
    session_id: int
    site: str
    token: str
    key: Path
    package: Path
    candidates: list[dict[str, Any]]  # number, name, room, desk, id_tail
    bank: Bank
    layout_id: int

    def candidate(self, room: str, desk: int) -> dict[str, Any]:
        return next(c for c in self.candidates if c["room"] == room and c["desk"] == desk)


def tiny_png(width: int = 8, height: int = 6) -> bytes:
    """A small PNG made here: a red-to-blue gradient, for an item's picture."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def shade(k: int, n: int) -> int:
        return 255 * k // max(n - 1, 1)

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (255 - shade(x, width), shade(y, height),
                                                                      shade(x, width)))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def illustrate(api: Api, bank: Bank, image: bytes) -> str:
    """Upload ``image`` and show it with every item of the bank (set-up: the versions' content and digest)."""
    from sqlalchemy import select

    from qbank.items.models import Item, ItemVersion
    from qbank.lib.digest import digest

    r = await api.client.post("/api/v1/media", files={"file": ("circuit.png", image, "image/png")},
                              headers=await api.admin())
    assert r.status_code in (200, 201), r.text
    key = str(r.json()["key"])
    async with api.db() as db, db.begin():
        versions = (await db.scalars(select(ItemVersion).join(Item, Item.id == ItemVersion.item_id)
                                     .where(Item.occupation_code == bank.occupation))).all()
        for v in versions:
            v.content = {**v.content, "media": [key]}
            v.digest = digest(v.content)
    return key


def id_tail(rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(5)) + rng.choice("0123456789X")


async def sealed_exam(api: Api, url: str, folder: Path, *, rooms: dict[str, int], duration_minutes: int = 60,
                      starts_in: timedelta = timedelta(minutes=-1), length: timedelta = timedelta(hours=2),
                      bank: tuple[Bank, int] | None = None, image: bytes | None = None) -> SealedExam:
    """A session at one new site whose window opens ``starts_in`` from now, its theory rooms with these many
    candidates (each with an id tail), assembled on a layout of ``duration_minutes``, sealed, the package
    downloaded; the site's key made with `qbank site keygen` and registered. ``image``: every question shows it."""
    admin = await api.admin()
    made_bank, layout_id = bank or await make_paper_bank(api)
    if image is not None:
        await illustrate(api, made_bank, image)
    if duration_minutes != LAYOUT["duration_minutes"]:
        layout = {**LAYOUT, "name": f"{duration_minutes} min", "duration_minutes": duration_minutes}
        r = await api.client.post(f"/api/v1/occupations/{made_bank.occupation}/levels/3/layouts", json=layout,
                                  headers=admin)
        assert r.status_code == 201, r.text
        layout_id = int(r.json()["id"])
    site = await make_site(api)
    key = folder / f"{site}.key"
    made = subprocess.run([QBANK, "site", "keygen", "-o", str(key)], capture_output=True, text=True, check=True)
    signing = re.search(r"signing key: (\S+)", made.stderr)
    assert signing, made.stderr
    headers = await site_headers(api, site)
    r = await api.client.put(f"/api/v1/sites/{site}/public-key", json={"public_key": made.stdout.strip()},
                             headers=headers)
    assert r.status_code == 200, r.text
    rng = random.Random(site)
    candidates = [{"number": f"C{rng.randrange(10**9):09d}{k:03d}", "name": f"考生{room}-{d + 1}", "room": room,
                   "desk": d + 1, "id_tail": id_tail(rng)}
                  for k, (room, n) in enumerate(rooms.items()) for d in range(n)]
    body = {"occupation_code": made_bank.occupation, "level": 3, "title": "理论机考", "date": "2026-12-03",
            "start": "09:00:00", "end": "11:00:00", "grace_minutes": 15,
            "rooms": [{"site": site, "code": room, "kind": "theory", "desks": n, "camera_views": ["front"]}
                      for room, n in rooms.items()],
            "candidates": [{**c, "room": f"{site}/{c['room']}"} for c in candidates]}
    r = await api.client.post("/api/v1/sessions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    session_id = int(r.json()["id"])
    await time_travel(api, session_id, starts_in, length)  # before sealing: the package's header says the window
    r = await api.client.post(f"/api/v1/sessions/{session_id}/papers", headers=admin,
                              json={"layout_id": layout_id, "mode": "parallel", "forms": 2, "seed": 7,
                                    "time_limit_s": 5})
    assert r.status_code == 202, r.text
    job = await wait_job(api, r.json()["id"])
    assert job["status"] == "succeeded", job
    r = await api.client.post(f"/api/v1/sessions/{session_id}/seal", headers=admin)
    assert r.status_code == 200, r.text
    r = await get_package(api, session_id, headers)
    assert r.status_code == 200, r.text
    package = folder / f"package-{session_id}-{site}.json"
    package.write_bytes(r.content)
    return SealedExam(url=url, session_id=session_id, site=site, token=headers["Authorization"].split()[1], key=key,
                      package=package, candidates=candidates, bank=made_bank, layout_id=layout_id)


def cards_codes(pdf: bytes) -> dict[str, Any]:
    """The codes a cards PDF embeds for machines (the JSON file ``cards.json``)."""
    found = re.search(rb"/Type /EmbeddedFile /Subtype /application#2Fjson /Length (\d+) >>\nstream\n", pdf)
    assert found, "no embedded cards.json"
    start = found.end()
    return dict(json.loads(pdf[start:start + int(found[1])]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StationProcess:
    """`qbank station serve` for a sealed exam, on its own database in ``folder``."""

    exam: SealedExam
    folder: Path
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    centre: str = ""  # another centre URL (e.g. one nothing answers at: the site offline)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.folder / "station.sqlite3"

    def command(self) -> list[str]:
        return [QBANK, "station", "serve", "--package", str(self.exam.package), "--key", str(self.exam.key),
                "--centre", self.centre or self.exam.url, "--token", self.exam.token, "--db", str(self.db),
                "--host", "127.0.0.1", "--port", str(self.port), *self.extra]

    def start(self, wait_release: bool = True, timeout: float = 60) -> dict[str, Any]:
        self.starts += 1
        log = (self.folder / f"station-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200 and (r.json()["release"] or not wait_release):
                    return dict(r.json())
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.2)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("station-*.log")))

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/health", timeout=5).json())
