"""Reconciliation: jobs whose runner died are taken back and run once more (or fail saying why), analyses lost
to a killed service are re-queued at the next start, an admin runs an analysis again, and what killed processes
left on disk and in S3 is removed at start."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from evidence import LocalS3Server
from qbank.db import upgrade
from qbank.jobs.models import Job
from qbank.lib.actors import Actor, Role
from qbank.papers.models import Paper
from qbank.recordings.models import Recording
from qbank.server.cli import main
from tests.conftest import service_env, service_settings, start_service, stop_service
from tests.qbank.helpers import (
    Api,
    audit_count,
    blueprint_body,
    make_exam,
    make_paper_bank,
    new_occupation_code,
    site_headers,
    wait_job,
)
from tests.videoaudit.clips import defects_clip

START = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ADMIN = Actor(token_id=0, name="reconcile-test", role=Role.admin)

# A runner that claims a job and dies at once (SIGKILL), as a worker or service does when it is killed mid-run.
# It reads the job id once it is ready, so that it claims the job the moment the job is stored.
CLAIM_AND_DIE = """
import asyncio, os, signal, sys
from qbank.db import Database
from qbank.jobs.kinds import JobEnv, JobKinds
from qbank.jobs.services import claim
from qbank.settings import load_settings

async def go():
    database, engine = Database.open(sys.argv[1])
    env = JobEnv(settings=load_settings(), database=database, kinds=JobKinds([]))
    print("ready", flush=True)
    job_id = sys.stdin.readline().strip()
    assert await claim(env, job_id) is not None, "nothing to claim"
    print(env.runner, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(go())
"""


class DoomedRunner:
    """Another process that will claim a job and then be killed with SIGKILL."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        env = {**os.environ, "QBANK_DATA_DIR": str(data_dir), "QBANK_TOKEN_SECRET": "test-token-secret"}
        self.proc = subprocess.Popen([sys.executable, "-c", CLAIM_AND_DIE, database_url], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready", self.proc.communicate(timeout=30)

    def claim_and_die(self, job_id: str) -> str:
        """Its runner identity, once it claimed ``job_id`` and was killed."""
        out, err = self.proc.communicate(job_id + "\n", timeout=60)
        assert self.proc.returncode == -9, err
        return out.strip()


async def stored_assembly(api: Api) -> tuple[str, int]:
    """An assembly job stored (queued) but handed to no runner, as the moment before a runner takes it."""
    from qbank.papers.jobs import request_assembly
    from qbank.papers.schemas import AssemblyIn
    from qbank.sessions.models import ExamSession

    bank, layout_id = await make_paper_bank(api)
    exam = await make_exam(api, bank)
    request = msgspec.convert({"layout_id": layout_id, "mode": "parallel", "forms": 2, "seed": 7,
                               "time_limit_s": 5}, AssemblyIn)
    async with api.db() as db, db.begin():
        session = await db.get(ExamSession, exam.session_id)
        assert session is not None
        job = await request_assembly(db, ADMIN, session, request)
    return job.id, exam.session_id


async def test_a_job_whose_runner_was_killed_is_taken_back_and_runs_once(api: Api, tmp_path: Path) -> None:
    doomed = await anyio.to_thread.run_sync(DoomedRunner, api.app.state.settings.database_url, tmp_path)
    job_id, _ = await stored_assembly(api)
    dead = await anyio.to_thread.run_sync(doomed.claim_and_die, job_id)
    async with api.db() as db:
        row = await db.get(Job, job_id)
        # the dead runner holds it, unless the service already took it back (its supervisor may be that quick)
        assert row is not None and ((row.runner == dead and row.attempts == 1) or row.attempts == 2), row.runner
    # the running service notices that the runner is gone and runs the job again, in its own runner
    job = await wait_job(api, job_id, timeout=90)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    async with api.db() as db:
        papers = (await db.scalars(select(Paper).where(Paper.job_id == job_id))).all()
        assert [p.id for p in papers] == [job["result"]["paper_id"]], "one paper for the job, not two"
    assert await audit_count(api, "paper.assemble", job["result"]["paper_id"]) == 1


async def test_a_job_whose_runner_died_on_its_last_attempt_fails_saying_why(api: Api, tmp_path: Path) -> None:
    doomed = await anyio.to_thread.run_sync(DoomedRunner, api.app.state.settings.database_url, tmp_path)
    job_id, session_id = await stored_assembly(api)
    attempts = api.app.state.settings.job_attempts
    async with api.db() as db, db.begin():  # it already ran and was taken back all but once
        await db.execute(update(Job).where(Job.id == job_id).values(attempts=attempts - 1))
    dead = await anyio.to_thread.run_sync(doomed.claim_and_die, job_id)
    job = await wait_job(api, job_id, timeout=90)
    assert job["status"] == "failed" and job["attempts"] == attempts
    assert dead in job["error"]["detail"] and "stopped while running it" in job["error"]["detail"]
    async with api.db() as db:
        assert await db.scalar(select(func.count()).select_from(Paper).where(Paper.session_id == session_id)) == 0


# ----------------------------------------------------------------------------------------- a killed service
def sqlite_value(db_path: Path, sql: str, *args: Any) -> Any:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as con:
        row = con.execute(sql, args).fetchone()
    return row[0] if row else None


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(interval)


def cli_token(env: dict[str, str], role: str = "admin") -> dict[str, str]:
    qbank = str(Path(sys.executable).with_name("qbank"))
    done = subprocess.run([qbank, "token", "create", "--role", role, "--name", f"{role}-reconcile"], env=env,
                          capture_output=True, text=True, check=True)
    return {"Authorization": f"Bearer {done.stdout.strip()}"}


def exam_room(url: str, admin: dict[str, str]) -> tuple[int, str]:
    """An occupation, a site and a session with one theory room (views front and back); its id and room."""
    code, site = new_occupation_code(), f"K{int(time.time() * 1000) % 10**8:08d}"
    with httpx.Client(base_url=url, headers=admin, timeout=60) as c:
        assert c.post("/api/v1/occupations", json={"code": code, "name": "电工", "levels": [3]}).status_code == 201
        assert c.post(f"/api/v1/occupations/{code}/levels/3/blueprints", json=blueprint_body()).status_code == 201
        assert c.post("/api/v1/sites", json={"code": site, "name": "考点"}).status_code == 201
        r = c.post("/api/v1/sessions", json={
            "occupation_code": code, "level": 3, "title": "录像", "date": "2026-12-03", "start": "09:00:00",
            "end": "09:10:00", "rooms": [{"site": site, "code": "T1", "kind": "theory", "desks": 1,
                                         "camera_views": ["front", "back"]}]})
        assert r.status_code == 201, r.text
        return int(r.json()["id"]), f"{site}/T1"


def upload(url: str, admin: dict[str, str], session_id: int, room: str, view: str, clip: Path) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/v1/sessions/{session_id}/recordings", content=clip.read_bytes(), timeout=120,
                   params={"room": room, "view": view, "start": START.isoformat()},
                   headers=admin | {"Content-Type": "video/mp4"})
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


def analysed(url: str, admin: dict[str, str], recording_id: int, timeout: float = 120) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(httpx.get(f"{url}/api/v1/recordings/{recording_id}", headers=admin, timeout=30).json())
        return found["status"] in ("analysed", "corrupt")

    wait_for(f"recording {recording_id} analysed", done, timeout, 0.5)
    return found


@pytest.mark.slow
def test_an_analysis_killed_with_the_service_is_analysed_once_after_the_next_start(
        tmp_path: Path, s3_server: LocalS3Server) -> None:
    clip = defects_clip(tmp_path / "room.mp4", duration=240, still=None, black=(30.0, 60.0), frozen=None,
                        blurred=None, covered=None, size="640x360")
    data = tmp_path / "data"
    data.mkdir()
    db = data / "q.db"
    env = service_env(data, s3_server)
    proc, url = start_service(env, data / "serve.log")
    try:
        admin = cli_token(env)
        session_id, room = exam_room(url, admin)
        rec = upload(url, admin, session_id, room, "front", clip)
        wait_for("the analysis running", lambda: sqlite_value(
            db, "SELECT status FROM recording WHERE id = ?", rec["id"]) == "analysing", 60, 0.01)
        os.kill(proc.pid, 9)  # kill -9 of the service during the analysis
        proc.wait(10)
    finally:
        stop_service(proc)
    job_id = rec["job_id"]
    assert sqlite_value(db, "SELECT status FROM job WHERE id = ?", job_id) == "running", "killed mid-run"
    assert sqlite_value(db, "SELECT status FROM recording WHERE id = ?", rec["id"]) == "analysing"

    # the same start command, with one attempt per job: the lost job fails saying why, the recording is re-queued
    proc, url = start_service({**env, "QBANK_JOB_ATTEMPTS": "1"}, data / "serve.log")
    try:
        done = analysed(url, admin, rec["id"])
        assert done["status"] == "analysed" and done["job_id"] != job_id
        old = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=admin).json()
        assert old["status"] == "failed" and "stopped while running it" in old["error"]["detail"]
        new = httpx.get(f"{url}/api/v1/jobs/{done['job_id']}", headers=admin).json()
        assert new["status"] == "succeeded" and new["attempts"] == 1
        control = analysed(url, admin, upload(url, admin, session_id, room, "back", clip)["id"])
        assert done["findings"] == control["findings"] and [f["kind"] for f in done["findings"]] == ["black"]
        audit = httpx.get(f"{url}/api/v1/sessions/{session_id}/video-audit", headers=admin).json()
        assert audit["pending"] == [] and not any("analys" in r for r in audit["reasons"]), audit["reasons"]
    finally:
        stop_service(proc)


# ----------------------------------------------------------------------------------------- running it again
@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return defects_clip(tmp_path_factory.mktemp("reconcile-clips") / "short.mp4", duration=30, still=None,
                        black=(10.0, 16.0), frozen=None, blurred=None, covered=None, size="320x240")


async def uploaded_recording(api: Api, clip: Path) -> tuple[dict[str, Any], dict[str, str]]:
    bank, _ = await make_paper_bank(api, types=["single_choice"] * 3)
    exam = await make_exam(api, bank, per_site=1, n_sites=1, register_keys=False)
    site = exam.sites[0]
    mine = await site_headers(api, site)
    r = await api.client.post(f"/api/v1/sessions/{exam.session_id}/recordings", content=clip.read_bytes(),
                              params={"room": f"{site}/T1", "view": "front", "start": START.isoformat()},
                              headers=mine | {"Content-Type": "video/mp4"})
    assert r.status_code == 201, r.text
    assert (await wait_job(api, r.json()["job_id"], timeout=90))["status"] == "succeeded"
    rec = (await api.client.get(f"/api/v1/recordings/{r.json()['id']}", headers=mine)).json()
    return rec, mine


async def test_an_admin_runs_an_analysis_again_and_its_findings_are_replaced(api: Api, short_clip: Path) -> None:
    rec, mine = await uploaded_recording(api, short_clip)
    assert [f["kind"] for f in rec["findings"]] == ["black"]
    path = f"/api/v1/recordings/{rec['id']}/analysis"
    assert (await api.client.post(path, headers=mine)).status_code == 403
    assert (await api.client.post(path, headers=await api.headers("supervisor"))).status_code == 403
    r = await api.client.post(path, headers=await api.admin())
    assert r.status_code == 202, r.text
    assert (await api.client.post(path, headers=await api.admin())).status_code == 409  # one at a time
    job = await wait_job(api, r.json()["id"], timeout=90)
    assert job["status"] == "succeeded" and job["subject"] == f"recording:{rec['id']}"
    again = (await api.client.get(f"/api/v1/recordings/{rec['id']}", headers=mine)).json()
    assert again["findings"] == rec["findings"] and again["job_id"] == job["id"], "replaced, not added to"
    assert await audit_count(api, "recording.reanalyse", rec["id"]) == 1
    assert (await api.client.post("/api/v1/recordings/999999999/analysis",
                                  headers=await api.admin())).status_code == 404

    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_S3_ACCESS_KEY": settings.s3_access_key,
           "QBANK_S3_SECRET_KEY": settings.s3_secret_key, "QBANK_TOKEN_SECRET": "test-token-secret",
           "QBANK_VIDEO_QUALITY": msgspec.json.encode(settings.video_quality).decode()}
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(
        main, ["recordings", "reanalyse", str(rec["id"])], env=env))
    assert result.exit_code == 0, result.output
    assert f"recording {rec['id']}: analysed, 1 finding(s)" in result.stdout
    assert f"data directory {settings.data_dir}" in result.stderr  # every command says where it works
    final = (await api.client.get(f"/api/v1/recordings/{rec['id']}", headers=mine)).json()
    assert final["findings"] == rec["findings"] and await audit_count(api, "recording.reanalyse", rec["id"]) == 2


async def test_each_camera_view_is_judged_by_its_own_thresholds(api: Api, short_clip: Path) -> None:
    """QBANK_VIDEO_QUALITY's "views": a view's overrides apply to its recordings only (e.g. a camera's own
    baselines from an earlier analysis of it)."""
    rec, mine = await uploaded_recording(api, short_clip)  # view "front", 320×240
    assert rec["recording_findings"] == []
    settings = api.app.state.settings
    env = {"QBANK_DATABASE_URL": settings.database_url, "QBANK_DATA_DIR": str(settings.data_dir),
           "QBANK_S3_ENDPOINT": settings.s3_endpoint, "QBANK_S3_ACCESS_KEY": settings.s3_access_key,
           "QBANK_S3_SECRET_KEY": settings.s3_secret_key, "QBANK_TOKEN_SECRET": "test-token-secret"}

    async def reanalysed(views: dict[str, Any]) -> dict[str, Any]:
        quality = msgspec.json.encode(settings.video_quality | {"views": views}).decode()
        result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(
            main, ["recordings", "reanalyse", str(rec["id"])], env=env | {"QBANK_VIDEO_QUALITY": quality}))
        assert result.exit_code == 0, result.output
        return dict((await api.client.get(f"/api/v1/recordings/{rec['id']}", headers=mine)).json())

    other = await reanalysed({"back": {"min_width": 1280, "min_height": 720}})
    assert other["recording_findings"] == [] and other["findings"] == rec["findings"]
    own = await reanalysed({"front": {"min_width": 1280, "min_height": 720}})
    assert [f["kind"] for f in own["recording_findings"]] == ["low_resolution"], own
    assert own["findings"] == rec["findings"]  # the picture findings stay as they were


async def test_the_same_bytes_again_restart_an_analysis_that_was_lost(api: Api, short_clip: Path) -> None:
    rec, mine = await uploaded_recording(api, short_clip)
    async with api.db() as db, db.begin():  # what a lost analysis leaves: waiting, its job failed
        await db.execute(update(Recording).where(Recording.id == rec["id"]).values(status="uploaded", findings=[]))
        await db.execute(update(Job).where(Job.id == rec["job_id"]).values(
            status="failed", error={"detail": "its runner stopped"}))
    session_id = rec["session_id"]
    audit = (await api.client.get(f"/api/v1/sessions/{session_id}/video-audit", headers=mine)).json()
    assert any(f"recording {rec['id']}: its analysis did not finish (its runner stopped)" in r
               for r in audit["reasons"]), audit["reasons"]
    r = await api.client.post(f"/api/v1/sessions/{session_id}/recordings", content=short_clip.read_bytes(),
                              params={"room": rec["room"], "view": "front", "start": START.isoformat()},
                              headers=mine | {"Content-Type": "video/mp4"})
    assert r.status_code == 200 and r.json()["already_stored"] and r.json()["job_id"] != rec["job_id"], r.text
    assert (await wait_job(api, r.json()["job_id"], timeout=90))["status"] == "succeeded"
    done = (await api.client.get(f"/api/v1/recordings/{rec['id']}", headers=mine)).json()
    assert done["status"] == "analysed" and done["findings"] == rec["findings"]


# ----------------------------------------------------------------------------------------- leftovers
async def test_leftovers_older_than_the_leftover_age_are_removed_at_start(tmp_path: Path,
                                                                         s3_server: LocalS3Server) -> None:
    data = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'q.db'}"
    settings = service_settings(url, s3_server, data, QBANK_LEFTOVER_AGE_S="5")
    from evidence import STAGING_PREFIX, RetentionArchive

    archive = RetentionArchive(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, "qbank-evidence")
    await anyio.to_thread.run_sync(archive.ensure_bucket)
    key = f"recordings/ab/left-over-{time.time_ns()}"
    client = archive.client
    upload_id = client._create_multipart_upload(archive.bucket, key, {})
    client._upload_part(archive.bucket, key, b"x" * (5 << 20), None, upload_id, 1)
    # a site's parts joined, then the service killed before it checked and locked them
    staged = f"{STAGING_PREFIX}recordings/{time.time_ns()}"
    client.put_object(archive.bucket, staged, io.BytesIO(b"s" * 1000), 1000)
    await asyncio.sleep(6)  # older than the leftover age
    fresh = f"{STAGING_PREFIX}recordings/{time.time_ns()}"
    client.put_object(archive.bucket, fresh, io.BytesIO(b"f" * 10), 10)
    old = time.time() - 7200
    (data / "spool").mkdir(parents=True)
    (data / "spool" / "upload-old").write_bytes(b"o" * 1000)
    os.utime(data / "spool" / "upload-old", (old, old))
    (data / "spool" / "upload-fresh").write_bytes(b"f" * 10)
    stale = data / "scratch" / "tmp-killed"
    stale.mkdir(parents=True)
    (stale / "recording.mp4").write_bytes(b"v" * 5000)
    for p in (stale / "recording.mp4", stale):
        os.utime(p, (old, old))
    (data / "scratch" / "tmp-working").mkdir()

    from qbank.server.app import create_app

    await anyio.to_thread.run_sync(upgrade, url)
    async with AsyncTestClient(app=create_app(settings)):  # type: ignore[arg-type]
        pass
    assert sorted(p.name for p in (data / "spool").iterdir()) == ["upload-fresh"]
    assert sorted(p.name for p in (data / "scratch").iterdir()) == ["tmp-working"]
    left = client._list_multipart_uploads(archive.bucket, prefix=key).uploads
    assert left == [], "the stale multipart upload was aborted"
    names = [o.object_name for o in client.list_objects(archive.bucket, prefix=STAGING_PREFIX, recursive=True,
                                                        include_version=True)]
    assert staged not in names and fresh in names, names


def test_removing_old_entries_counts_them_and_their_bytes(tmp_path: Path) -> None:
    from qbank.storage import remove_old_entries

    old = time.time() - 100
    (tmp_path / "a").write_bytes(b"a" * 300)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"b" * 700)
    for p in (tmp_path / "a", tmp_path / "d" / "b", tmp_path / "d"):
        os.utime(p, (old, old))
    (tmp_path / "new").write_bytes(b"n")
    assert remove_old_entries(tmp_path, 50) == (2, 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["new"]
    assert remove_old_entries(tmp_path / "missing", 50) == (0, 0)

