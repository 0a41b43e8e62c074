"""Shared fixtures: a real local S3 server per test process, the service on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.processes import stop_process
from qbank.devtools.serving import ServeFailed, start_serve
from qbank.server.logging import configure_logging

os.environ.setdefault("QBANK_LOG_LEVEL", "WARNING")
# The apps tests run in this process log as `qbank serve` does (plain, redacted), not through structlog's default
# renderer, which highlights every frame of an unhandled error's traceback: seconds per 500 answer.
configure_logging("INFO")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from evidence import LocalS3Server

    server = LocalS3Server(tmp_path_factory.mktemp("s3"), access_key="qbanktest", secret_key="qbank-test-secret-1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pg_admin_url() -> str | None:
    return os.environ.get("QBANK_TEST_PG_URL")


def _run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop in a worker thread (safe whatever loop the caller has)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _pg_execute(dsn: dict[str, Any], sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def new_pg_database(prefix: str = "qbank_test") -> Iterator[str]:
    """A new PostgreSQL database on the test server (QBANK_TEST_PG_URL), dropped afterwards."""
    from sqlalchemy.engine import make_url

    admin = pg_admin_url()
    if not admin:
        pytest.fail("QBANK_TEST_PG_URL is not set: run the tests through scripts/test, "
                    "which finds or starts PostgreSQL")
    url = make_url(admin)
    name = f"{prefix}_{secrets.token_hex(6)}"
    dsn = dict(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
               database=url.database or "postgres")
    _run(_pg_execute(dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        _run(_pg_execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgresql_database_url() -> Iterator[str]:
    """A PostgreSQL database for this test process, dropped afterwards."""
    with new_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'qbank.db'}"


TEST_VIDEO_QUALITY = '{"min_width": 320, "min_height": 240, "min_bit_rate": 200000}'


def service_settings(database_url: str, s3_server: object, data_dir: Path, **overrides: str) -> object:
    from qbank.settings import load_settings

    return load_settings({
        "QBANK_DATA_DIR": str(data_dir),
        "QBANK_DATABASE_URL": database_url,
        "QBANK_S3_ENDPOINT": s3_server.endpoint,  # type: ignore[attr-defined]
        "QBANK_S3_ACCESS_KEY": s3_server.access_key,  # type: ignore[attr-defined]
        "QBANK_S3_SECRET_KEY": s3_server.secret_key,  # type: ignore[attr-defined]
        "QBANK_TOKEN_SECRET": "test-token-secret",
        "QBANK_LOG_LEVEL": "WARNING",
        "QBANK_JOB_LEASE_S": "10",  # jobs of a killed runner are taken back within seconds
        # test clips are small: lower the format minimums (documented defaults: 1280×720, 1 Mb/s)
        "QBANK_VIDEO_QUALITY": TEST_VIDEO_QUALITY,
        **overrides,  # e.g. QBANK_S3_ENDPOINT="": the service's own local S3 server
    })


def service_env(data: Path, s3_server: Any, **overrides: str) -> dict[str, str]:
    """The environment of a `qbank serve` on SQLite in ``data`` and the tests' S3 server (``QBANK_S3_ENDPOINT=""``
    in ``overrides``: the service's own local S3 server)."""
    return {**os.environ, "QBANK_DATA_DIR": str(data), "QBANK_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'q.db'}",
            "QBANK_S3_ENDPOINT": s3_server.endpoint, "QBANK_S3_ACCESS_KEY": s3_server.access_key,
            "QBANK_S3_SECRET_KEY": s3_server.secret_key, "QBANK_TOKEN_SECRET": "test-token-secret",
            "QBANK_LOG_LEVEL": "WARNING", "QBANK_VIDEO_QUALITY": TEST_VIDEO_QUALITY, "QBANK_JOB_LEASE_S": "10",
            **overrides}


def start_service(env: dict[str, str], log_path: Path, timeout: float = 60,
                  cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`qbank serve` as a real HTTP server on a loopback port it picks itself; returns it and its URL once /health
    answers (fails the test with its log when it exits or does not answer in time)."""
    try:
        return start_serve(env, log_path, timeout=timeout, cwd=cwd)
    except ServeFailed as exc:
        raise AssertionError(str(exc)) from None


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    """Stop a `qbank serve` by its pid: SIGTERM, SIGKILL after 15 s."""
    stop_process(proc.pid, 15)
    proc.wait()


@contextlib.contextmanager
def running_service(data: Path, s3_server: Any, **overrides: str) -> Iterator[tuple[str, dict[str, str]]]:
    """`qbank serve` (SQLite in ``data``, the tests' S3 server); yields its URL and environment, and stops it by
    its pid."""
    env = service_env(data, s3_server, **overrides)
    proc, url = start_service(env, data / "serve.log", timeout=40)
    try:
        yield url, env
    finally:
        stop_service(proc)
