"""Dependencies that fail: the S3 server stopped, frozen, or the service's own local one killed, and a full disk.
The service answers 503 (problem details, Retry-After, a plain message) or 507 naming the full place — never 500,
never a 200 that breaks off, never a link or a "play" for what the store cannot serve — and nothing is half-stored.
Readiness (`/health/ready`) says which dependency is down, while `/health` (liveness) stays ok."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from evidence import LocalS3Server, running_server
from tests.conftest import service_settings
from tests.qbank.helpers import (
    Api,
    assemble,
    audit_count,
    make_exam,
    make_paper_bank,
    new_occupation_code,
    site_headers,
    wait_job,
)
from tests.videoaudit.clips import defects_clip

START = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4\n% outage scan\n%%EOF\n"


@contextlib.asynccontextmanager
async def service(data_dir: Path, s3: LocalS3Server, **overrides: str) -> AsyncIterator[Api]:
    """The app on SQLite in ``data_dir`` with the S3 server ``s3`` (``QBANK_S3_ENDPOINT=""``: its own)."""
    from qbank.db import create_engine, upgrade
    from qbank.server.app import create_app

    url = f"sqlite+aiosqlite:///{data_dir / 'q.db'}"
    settings = service_settings(url, s3, data_dir, **overrides)
    await anyio.to_thread.run_sync(upgrade, url)
    app = create_app(settings)  # type: ignore[arg-type]
    engine = create_engine(url)
    try:
        async with AsyncTestClient(app=app, timeout=60) as client:
            yield Api(client=client, app=app, backend="sqlite", db=async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def own_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    """An S3 server of this module alone, which its tests stop, freeze and start again."""
    server = LocalS3Server(tmp_path_factory.mktemp("own-s3"), access_key="outage01", secret_key="outage-secret-1")
    server.start()
    try:
        yield server
    finally:
        if server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return defects_clip(tmp_path_factory.mktemp("outage-clips") / "room.mp4", duration=20, black=None, frozen=None,
                        blurred=None, covered=None, still=None, size="320x240")


@pytest.fixture(scope="module")
async def outage_api(own_s3: LocalS3Server, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with service(tmp_path_factory.mktemp("outage-data"), own_s3, QBANK_S3_CONNECT_TIMEOUT_S="1",
                       QBANK_S3_READ_TIMEOUT_S="2") as api:
        yield api


async def within(seconds: float, request: Awaitable[httpx.Response]) -> httpx.Response:
    """The answer, or fail when there is none after ``seconds`` (a request that hangs is the defect here)."""
    try:
        return await asyncio.wait_for(request, seconds)
    except TimeoutError:
        pytest.fail(f"no answer after {seconds} s")


def assert_unavailable(r: httpx.Response, dependency: str = "object store") -> None:
    assert r.status_code == 503, (r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["extra"]["dependency"] == dependency and "not answering" in body["detail"], body


async def upload_recording(api: Api, session_id: int, room: str, content: bytes,
                           headers: dict[str, str]) -> httpx.Response:
    return await api.client.post(f"/api/v1/sessions/{session_id}/recordings",
                                 params={"room": room, "view": "front", "start": START.isoformat()},
                                 content=content, headers=headers | {"Content-Type": "video/mp4"})


async def wait_ready(api: Api, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (r := await api.client.get("/health/ready")).status_code != 200:
        assert loop.time() < deadline, r.text
        await asyncio.sleep(0.3)


async def test_with_s3_stopped_every_request_that_needs_it_answers_503(outage_api: Api, own_s3: LocalS3Server,
                                                                      clip: Path) -> None:
    api = outage_api
    admin = await api.admin()
    ready = (await api.client.get("/health/ready")).json()
    assert ready["status"] == "ready" and ready["s3"]["status"] == "ok" and ready["database"]["status"] == "ok"
    assert ready["redis"] is None and ready["s3"]["latency_ms"] >= 0
    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank)
    assert (await assemble(api, exam, layout_id))["status"] == "succeeded"
    assert (await api.client.post(f"/api/v1/sessions/{exam.session_id}/seal", headers=admin)).status_code == 200
    unsealed = await make_exam(api, bank)
    assert (await assemble(api, unsealed, layout_id))["status"] == "succeeded"
    site = exam.sites[0]
    mine = await site_headers(api, site)
    r = await upload_recording(api, exam.session_id, f"{site}/T1", clip.read_bytes(), mine)
    assert r.status_code == 201, r.text
    recording = r.json()
    assert (await wait_job(api, recording["job_id"]))["status"] == "succeeded"
    links_before = await audit_count(api, "recording.link", recording["id"])

    own_s3.stop()
    try:
        assert_unavailable(await within(30, api.client.post(
            "/api/v1/media", files={"file": ("a.png", PNG, "image/png")}, headers=admin)))
        assert_unavailable(await within(30, upload_recording(api, exam.session_id, f"{site}/T1",
                                                             clip.read_bytes() + b"\0", mine)))
        assert_unavailable(await within(30, api.client.post(
            f"/api/v1/sessions/{exam.session_id}/records", params={"category": "sign_in_sheet"}, content=PDF,
            headers=admin | {"Content-Type": "application/pdf"})))
        assert_unavailable(await within(30, api.client.get("/api/v1/admin/retention", headers=admin)))
        assert_unavailable(await within(30, api.client.post(f"/api/v1/sessions/{unsealed.session_id}/seal",
                                                            headers=admin)))
        package = await within(30, api.client.get(f"/api/v1/sessions/{exam.session_id}/package", headers=mine))
        assert_unavailable(package)  # not a 200 with a Content-Length that then breaks off
        for what in ("link", "contact-sheet"):
            assert_unavailable(await within(30, api.client.get(f"/api/v1/recordings/{recording['id']}/{what}",
                                                               headers=admin)))
        assert await audit_count(api, "recording.link", recording["id"]) == links_before, "no play was recorded"
        assert (await api.client.get("/health")).status_code == 200  # liveness: the process is fine
        r = await api.client.get("/health/ready")
        assert r.status_code == 503 and r.json()["s3"]["status"] == "down" and r.json()["database"]["status"] == "ok"
        r = await api.client.get(f"/api/v1/sessions/{exam.session_id}/recordings", headers=admin)
        assert [x["id"] for x in r.json()] == [recording["id"]], "the refused upload left no recording"
    finally:
        own_s3.restart()
    await wait_ready(api)
    r = await api.client.post(f"/api/v1/sessions/{unsealed.session_id}/seal", headers=admin)
    assert r.status_code == 200, "the refused seal stored nothing: it seals now"
    r = await api.client.get(f"/api/v1/recordings/{recording['id']}/link", headers=admin)
    assert r.status_code == 200 and await audit_count(api, "recording.link", recording["id"]) == links_before + 1


async def test_with_s3_frozen_requests_answer_503_within_the_timeouts(outage_api: Api, own_s3: LocalS3Server,
                                                                     clip: Path) -> None:
    api = outage_api
    admin = await api.admin()
    r = await api.client.post("/api/v1/media", files={"file": ("b.png", PNG + b"b", "image/png")}, headers=admin)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert own_s3.pid is not None
    os.kill(own_s3.pid, signal.SIGSTOP)  # it accepts connections and answers nothing
    try:
        assert_unavailable(await within(60, api.client.get("/api/v1/media/link", params={"key": key},
                                                           headers=admin)))
        assert_unavailable(await within(60, api.client.post(
            "/api/v1/media", files={"file": ("c.png", PNG + b"c", "image/png")}, headers=admin)))
        r = await within(60, api.client.get("/health/ready"))
        assert r.status_code == 503 and r.json()["s3"]["status"] == "down"
    finally:
        os.kill(own_s3.pid, signal.SIGCONT)
    await wait_ready(api)


async def test_the_service_restarts_its_own_s3_server_and_answers_503_meanwhile(
        tmp_path: Path, s3_server: LocalS3Server) -> None:
    async with service(tmp_path, s3_server, QBANK_S3_ENDPOINT="") as api:
        admin = await api.admin()
        r = await api.client.post("/api/v1/media", files={"file": ("d.png", PNG + b"d", "image/png")},
                                  headers=admin)
        assert r.status_code == 201, r.text
        first = running_server(tmp_path / "s3")
        assert first is not None and first.owner == os.getpid()
        os.kill(first.pid, signal.SIGKILL)
        r = await within(30, api.client.post("/api/v1/media", files={"file": ("e.png", PNG + b"e", "image/png")},
                                             headers=admin))
        assert_unavailable(r)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while True:  # restarted by the service: the same request succeeds again
            r = await api.client.post("/api/v1/media", files={"file": ("e.png", PNG + b"e", "image/png")},
                                      headers=admin)
            if r.status_code == 201:
                break
            assert_unavailable(r)
            assert loop.time() < deadline, "the local S3 server was not restarted"
            await asyncio.sleep(0.5)
        again = running_server(tmp_path / "s3")
        assert again is not None and again.pid != first.pid and again.endpoint == first.endpoint
        r = await api.client.get("/api/v1/media/link", params={"key": r.json()["key"]}, headers=admin)
        assert r.status_code == 200


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (a disk that fills up); skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = disk / "ballast"
    with contextlib.suppress(OSError), ballast.open("wb") as f:
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
    with contextlib.suppress(OSError), ballast.open("ab") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    return ballast


def blueprint(points: int, version: int = 0) -> dict[str, Any]:
    return {"scopes": [{"code": "01", "name": "基础知识", "weight": 100, "points": [
        {"code": f"{i + 1:03d}", "name": f"鉴定点{i + 1}（第{version}版）：" + "说明" * 40, "importance": "X"}
        for i in range(points)]}]}


async def test_a_full_disk_answers_507_naming_the_place_and_stores_nothing(tmp_path: Path,
                                                                          s3_server: LocalS3Server) -> None:
    with small_disk(tmp_path / "disk", "48m") as disk:
        async with service(disk, s3_server) as api:
            admin = await api.admin()
            code = new_occupation_code()
            r = await api.client.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]},
                                      headers=admin)
            assert r.status_code == 201, r.text
            site = (await api.client.post("/api/v1/sites", json={"code": "FULL01", "name": "满盘考点"},
                                          headers=admin)).json()["code"]
            body = {"occupation_code": code, "level": 3, "title": "满盘", "date": "2026-12-03", "start": "09:00:00",
                    "end": "10:00:00", "rooms": [{"site": site, "code": "T1", "kind": "theory", "desks": 1,
                                                 "camera_views": ["front"]}]}
            session_id = (await api.client.post("/api/v1/sessions", json=body, headers=admin)).json()["id"]
            free = shutil.disk_usage(disk).free
            big = secrets.token_bytes(free + (8 << 20))  # more than the disk holds: the spool fills it
            r = await upload_recording(api, session_id, f"{site}/T1", big, admin)
            assert r.status_code == 507, r.text
            assert r.json()["extra"]["path"] == "spool" and "spool" in r.json()["detail"]
            assert not any((disk / "spool").iterdir()), "the partial spool file was removed"
            r = await api.client.get(f"/api/v1/sessions/{session_id}/recordings", headers=admin)
            assert r.json() == []

            ballast = fill(disk)
            stored = 0
            for version in range(80):  # the database's log reuses the room it has, then needs more
                r = await api.client.post(f"/api/v1/occupations/{code}/levels/3/blueprints",
                                          json=blueprint(400, version), headers=admin)
                if r.status_code != 201:
                    break
                stored += 1
            assert r.status_code == 507, (r.status_code, r.text[:300])
            assert r.json()["extra"]["path"] == "data" and "data" in r.json()["detail"]
            ballast.unlink()
            r = await api.client.get(f"/api/v1/occupations/{code}/levels/3/blueprints", headers=admin)
            assert r.status_code == 200 and len(r.json()) == stored, "the refused blueprint was not half-stored"
            r = await api.client.post(f"/api/v1/occupations/{code}/levels/3/blueprints",
                                      json=blueprint(400, 99), headers=admin)
            assert r.status_code == 201, r.text[:300]
