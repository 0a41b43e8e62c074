"""Scale-out as it would run: a SeaweedFS cluster as separate processes (master, two volume servers, filer, S3
gateway with Object Lock), two `qbank serve` and two `qbank worker` on PostgreSQL and Redis. An exam session end to
end (items, assembly, sealing, package fetches, uploads, analysis, video audit) while one worker is killed with
SIGKILL during an analysis and one service instance during an upload: the survivors finish every job exactly once,
no upload is lost or duplicated, and the audit trail verifies."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from paperbuild import sealing
from qbank.devtools.topology import Member, Topology
from qbank.devtools.workload import Centre, Exam, make_bank, sha256_of, upload_recording
from tests.conftest import TEST_VIDEO_QUALITY, new_pg_database
from tests.videoaudit.clips import defects_clip

pytestmark = [pytest.mark.scaleout, pytest.mark.pg]
REDIS_URL = os.environ.get("QBANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    import asyncpg

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with new_pg_database("qbank_scaleout") as database_url:
        topo = Topology(tmp_path_factory.mktemp("centre"), database_url, REDIS_URL,
                        extra_env={"QBANK_JOB_LEASE_S": "6", "QBANK_VIDEO_QUALITY": TEST_VIDEO_QUALITY,
                                   "QBANK_LOG_LEVEL": "INFO"})
        try:
            yield topo.start(services=2, workers=2)
        finally:
            topo.stop()


def slow_body(data: bytes, sent: threading.Event, chunk: int = 256 << 10) -> Iterator[bytes]:
    """The bytes in chunks, a little at a time; ``sent`` is set once half of them are out."""
    for i in range(0, len(data), chunk):
        if i >= len(data) // 2:
            sent.set()
        yield data[i:i + chunk]
        time.sleep(0.05)


def runner_pid(database_url: str, job_id: str) -> int | None:
    rows = query(database_url, f"SELECT status, runner FROM job WHERE id = '{job_id}'")
    if not rows or rows[0][0] != "running" or not rows[0][1]:
        return None
    return int(str(rows[0][1]).rsplit(":", 2)[1])


def test_a_session_end_to_end_survives_a_killed_worker_and_a_killed_instance(topology: Topology,
                                                                              tmp_path: Path) -> None:
    admin_token = topology.cli("token", "create", "--role", "admin", "--name", "评价中心").strip()
    centre = Centre([m.url for m in topology.services], admin_token)
    db = topology.database_url

    occupation, layout_id = make_bank(centre, items=60)
    exam = Exam(centre, occupation, sites=2, per_site=3)
    job = centre.ok("POST", f"/api/v1/sessions/{exam.session_id}/papers",
                    json={"layout_id": layout_id, "forms": 2, "seed": 3, "time_limit_s": 10})
    assert centre.wait_job(job["id"])["status"] == "succeeded"
    centre.ok("POST", f"/api/v1/sessions/{exam.session_id}/seal", status=200)
    centre_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(
        centre.ok("GET", "/api/v1/centre-key")["public_key"]))
    for site in exam.sites:  # each site fetches its package from either instance, signed by the one centre key
        r = centre.request("GET", f"/api/v1/sessions/{exam.session_id}/package", headers=exam.tokens[site],
                           follow_redirects=True)  # to the S3 server (httpx drops the token: another origin)
        assert r.status_code == 200, r.text
        sealing.open_site_share(sealing.verify(r.content, centre_key), exam.keys[site])

    clips = [defects_clip(tmp_path / f"room{i}.mp4", duration=30, still=None, frozen=None, blurred=None,
                          covered=None, black=(5.0 + i, 10.0 + i), size="320x240") for i in range(3)]
    long_clip = defects_clip(tmp_path / "long.mp4", duration=240, still=None, frozen=None, blurred=None,
                             covered=None, black=(60.0, 90.0), size="640x360")
    uploaded: dict[str, int] = {}  # sha256 -> recording id, for every upload the service confirmed

    # kill -9 of a worker while it analyses
    r = upload_recording(centre, exam, exam.sites[0], START, long_clip.read_bytes())
    assert r.status_code == 201, r.text
    uploaded[sha256_of(long_clip.read_bytes())] = r.json()["id"]
    long_job = r.json()["job_id"]
    deadline = time.monotonic() + 120
    while (pid := runner_pid(db, long_job)) is None:
        assert time.monotonic() < deadline, "the analysis never ran"
        time.sleep(0.02)
    victim = next(w for w in topology.workers if w.proc.pid == pid)
    Topology.kill(victim)

    # kill -9 of a service instance while it receives an upload (streamed straight through to the archive)
    data = clips[0].read_bytes()  # sent slowly
    sha = sha256_of(data)
    target: Member = topology.services[1]
    half = threading.Event()
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = centre.client.post(
                f"{target.url}/api/v1/sessions/{exam.session_id}/recordings", content=slow_body(data, half),
                params={"room": f"{exam.sites[1]}/T1", "view": "front", "start": START.isoformat()},
                headers=exam.tokens[exam.sites[1]] | {"Content-Type": "video/mp4", "X-Content-SHA256": sha})
        except Exception as exc:  # the instance died under it
            outcome["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    assert half.wait(60)
    Topology.kill(target)
    sender.join(60)
    assert "error" in outcome, outcome  # the client saw the instance go; it sends the upload again
    r = upload_recording(centre, exam, exam.sites[1], START, data, sha256=sha)
    assert r.status_code in (200, 201), r.text
    uploaded[sha] = r.json()["id"]
    for i, clip in enumerate(clips[1:], start=1):
        site = exam.sites[i % 2]
        r = upload_recording(centre, exam, site, START + timedelta(minutes=30 * i), clip.read_bytes())
        assert r.status_code == 201, r.text
        uploaded[sha256_of(clip.read_bytes())] = r.json()["id"]

    # the survivors finish every job, each once
    for recording_id in uploaded.values():
        deadline = time.monotonic() + 240
        while centre.ok("GET", f"/api/v1/recordings/{recording_id}")["status"] not in ("analysed", "corrupt"):
            assert time.monotonic() < deadline, f"recording {recording_id} was not analysed"
            time.sleep(0.5)
    jobs = query(db, "SELECT id, kind, status, attempts, subject FROM job ORDER BY created_at")
    assert all(status == "succeeded" for _, _, status, _, _ in jobs), jobs
    retried = {job_id: attempts for job_id, _, _, attempts, _ in jobs if attempts > 1}
    assert retried == {long_job: 2}, retried
    analyses = [subject for _, kind, _, _, subject in jobs if kind == "recording_analysis"]
    assert sorted(analyses) == sorted(f"recording:{i}" for i in uploaded.values()), "one analysis per recording"
    assert query(db, "SELECT count(*) FROM paper") == [(1,)]

    # no upload lost or duplicated
    stored = query(db, f"SELECT sha256, id FROM recording WHERE session_id = {exam.session_id}")
    assert dict(stored) == uploaded
    long = centre.ok("GET", f"/api/v1/recordings/{uploaded[sha256_of(long_clip.read_bytes())]}")
    assert [f["kind"] for f in long["findings"]] == ["black"]
    audit = centre.ok("GET", f"/api/v1/sessions/{exam.session_id}/video-audit")
    assert audit["pending"] == [] and audit["recordings"] == len(uploaded)
    assert centre.ok("GET", "/api/v1/audit/verify")["ok"] is True
    survivors = [m for m in (*topology.services, *topology.workers) if m is not victim and m is not target]
    assert all(m.alive() for m in survivors)
