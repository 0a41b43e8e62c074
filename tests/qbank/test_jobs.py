"""Jobs run inside the service (embedded default) and through SAQ on Redis to a `qbank worker` process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from typing import Any

import anyio.to_thread
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import service_settings
from tests.qbank.helpers import Api, make_bank, wait_job

REDIS_URL = os.environ.get("QBANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_in_process_job_with_progress_and_result(api: Api) -> None:
    await make_bank(api)
    admin = await api.admin()
    r = await api.client.post("/api/v1/audit/verify-jobs", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    job = await wait_job(api, r.json()["id"], admin)
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert job["result"]["ok"] is True and job["result"]["entries"] >= 3
    assert "entries checked" in job["message"]
    other = await api.headers("supervisor")
    assert (await api.client.get(f"/api/v1/jobs/{job['id']}", headers=other)).status_code == 404  # not probed
    assert (await api.client.get("/api/v1/jobs/nosuchjob", headers=admin)).status_code == 404


def redis_available() -> bool:
    import socket
    from urllib.parse import urlparse

    url = urlparse(REDIS_URL)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_available() and not os.environ.get("CI"), reason=f"no Redis at {REDIS_URL}")
async def test_jobs_through_saq_and_a_worker_process(database_url: str, s3_server: Any,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    from qbank.db import upgrade
    from qbank.server.app import create_app

    queue = f"qbank-test-{secrets.token_hex(4)}"
    settings = service_settings(database_url, s3_server, tmp_path_factory.mktemp("queue"))
    env = {k: v for k, v in os.environ.items()}
    env.update({"QBANK_DATA_DIR": str(settings.data_dir), "QBANK_DATABASE_URL": database_url,  # type: ignore[attr-defined]
                "QBANK_S3_ENDPOINT": s3_server.endpoint, "QBANK_S3_ACCESS_KEY": s3_server.access_key,
                "QBANK_S3_SECRET_KEY": s3_server.secret_key, "QBANK_TOKEN_SECRET": "test-token-secret",
                "QBANK_JOB_QUEUE_URL": REDIS_URL, "QBANK_JOB_QUEUE_NAME": queue})
    from qbank.settings import load_settings

    queued_settings = load_settings(env)
    await anyio.to_thread.run_sync(upgrade, database_url)
    app = create_app(queued_settings)
    worker = subprocess.Popen([sys.executable, "-m", "qbank", "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        async with AsyncTestClient(app=app) as client:
            from sqlalchemy.ext.asyncio import async_sessionmaker

            from qbank.db import create_engine

            engine = create_engine(database_url)
            maker = async_sessionmaker(engine, expire_on_commit=False)
            helper = Api(client=client, app=app, backend="queue", db=maker)
            admin = await helper.admin()
            r = await client.post("/api/v1/audit/verify-jobs", headers=admin)
            assert r.status_code == 202
            job = await wait_job(helper, r.json()["id"], admin, timeout=60)
            assert job["status"] == "succeeded" and job["result"]["ok"] is True
            await engine.dispose()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            out, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            out, _ = worker.communicate()
    assert b"taking jobs from" in out, out.decode(errors="replace")[-2000:]
