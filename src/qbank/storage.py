"""Object storage for evidence: the configured S3 server, or a local one the service starts, watches and restarts.

While the store is down (its local server died and is being restarted, or the configured server did not answer at
start) :meth:`EvidenceStore.available` raises :class:`evidence.StoreUnavailable`, which the API answers with 503.
At start, files in the spool and scratch directories and multipart uploads that nothing touched for
``QBANK_LEFTOVER_AGE_S`` are removed (:func:`sweep_leftovers`): what a killed process left behind. (Unchecked bytes
a direct recording upload joined under its content key are found through its database row: the recordings domain's
start-up check, :func:`qbank.recordings.direct.remove_unchecked_versions`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
import structlog

from evidence import LocalS3Server, RetentionArchive, S3ServerError, StoreUnavailable, running_server
from qbank.settings import Settings

log = structlog.get_logger("qbank.storage")
WATCH_INTERVAL_S = 1.0


@dataclass
class EvidenceStore:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    bucket: str
    archive: RetentionArchive
    down: str | None = None  # why the store cannot be used now (None: it can)

    def available(self) -> RetentionArchive:
        """The archive, or :class:`StoreUnavailable` while the store is known to be down."""
        if self.down is not None:
            raise StoreUnavailable("the store", self.down)
        return self.archive

    async def ping(self) -> None:
        """Ask the S3 server (bounded by the archive's timeouts); raises when it does not answer."""
        await anyio.to_thread.run_sync(self.available().ping)


def spool_dir(settings: Settings) -> Path:
    return settings.data_dir / "spool"


def scratch_base(settings: Settings) -> Path:
    return settings.data_dir / "scratch"


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            with contextlib.suppress(OSError):
                newest = max(newest, child.lstat().st_mtime)
    return newest


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    return path.lstat().st_size


def remove_old_entries(directory: Path, older_than_s: float) -> tuple[int, int]:
    """Remove the entries of ``directory`` (files, or directories with everything in them) that nothing wrote to
    for ``older_than_s`` seconds; returns how many and their bytes. Blocking."""
    if not directory.is_dir():
        return 0, 0
    cutoff = time.time() - older_than_s
    count = size = 0
    for entry in directory.iterdir():
        try:
            if _newest_mtime(entry) >= cutoff:
                continue  # still in use
            bytes_ = _size(entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        count += 1
        size += bytes_
    return count, size


async def sweep_leftovers(settings: Settings, store: EvidenceStore | None) -> dict[str, int]:
    """Remove what killed processes left: spool files, scratch directories, incomplete multipart uploads, staged
    objects never locked, all untouched for ``settings.leftover_age_s``; logs and returns the counts and bytes."""
    age = float(settings.leftover_age_s)
    spool = await anyio.to_thread.run_sync(remove_old_entries, spool_dir(settings), age)
    scratch = await anyio.to_thread.run_sync(remove_old_entries, scratch_base(settings), age)
    uploads = staged = (0, 0)
    if store is not None:
        try:
            archive = store.available()
            uploads = await anyio.to_thread.run_sync(archive.abort_stale_uploads, timedelta(seconds=age))
            staged = await anyio.to_thread.run_sync(archive.remove_stale_staged, timedelta(seconds=age))
        except StoreUnavailable as exc:
            log.warning("could not look for incomplete uploads: the store is unavailable", reason=exc.reason)
    counts = {"spool_files": spool[0], "spool_bytes": spool[1], "scratch_dirs": scratch[0],
              "scratch_bytes": scratch[1], "uploads": uploads[0], "upload_bytes": uploads[1], "staged": staged[0],
              "staged_bytes": staged[1]}
    log.info("removed leftovers older than the leftover age", age_s=settings.leftover_age_s, **counts)
    return counts


def _archive(settings: Settings, endpoint: str) -> RetentionArchive:
    return RetentionArchive(
        endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket, secure=settings.s3_secure,
        retention_years=settings.retention_years, public_endpoint=settings.s3_public_endpoint or None,
        spool_dir=spool_dir(settings), connect_timeout=settings.s3_connect_timeout_s,
        read_timeout=settings.s3_read_timeout_s, presign_max=timedelta(minutes=60))  # no link outlives an hour


async def _ensure_bucket(store: EvidenceStore) -> bool:
    try:
        await anyio.to_thread.run_sync(store.archive.ensure_bucket)
    except StoreUnavailable as exc:
        store.down = f"the S3 server at {store.endpoint} does not answer ({exc.reason})"
        return False
    store.down = None
    return True


async def supervise(store: EvidenceStore, server: LocalS3Server | None) -> None:
    """Keep the store usable: restart the local S3 server when it dies (on its port, so the archive's endpoint
    stays), and set the bucket up once a server that did not answer at start does."""
    delay = WATCH_INTERVAL_S
    while True:
        await asyncio.sleep(delay)
        if server is not None and not server.running:
            pid, code = server.pid, server.exit_code
            store.down = f"the local S3 server (pid {pid}) exited with code {code}; it is being restarted"
            log.error("the local S3 server died; restarting it", pid=pid, exit_code=code, log_tail=server.log_tail(10))
            try:
                await anyio.to_thread.run_sync(server.restart)
            except S3ServerError as exc:
                log.error("the local S3 server did not restart; trying again", error=str(exc),
                          log_tail=exc.log_tail)
                delay = min(delay * 2, 30.0)
                continue
            log.info("restarted the local S3 server", pid=server.pid, endpoint=server.endpoint)
            store.down = "the bucket is not set up yet"
        if store.down is not None:
            delay = WATCH_INTERVAL_S if await _ensure_bucket(store) else min(delay * 2, 30.0)
            if store.down is None:
                log.info("the evidence store is available", endpoint=store.endpoint)


@asynccontextmanager
async def evidence_store(settings: Settings, *, attach: bool = False) -> AsyncIterator[EvidenceStore]:
    """The evidence store for this process: the configured S3 server, or the local one. With ``attach`` (workers,
    the CLI) a local server that another live process (the service) runs on this data dir is used instead of
    starting one."""
    server: LocalS3Server | None = None
    endpoint = settings.s3_endpoint
    if not endpoint:
        running = running_server(settings.data_dir / "s3") if attach else None
        if running is not None:
            endpoint = running.endpoint
            log.info("using the local S3 server of process", owner=running.owner, endpoint=endpoint)
        else:
            server = LocalS3Server(settings.data_dir / "s3", access_key=settings.s3_access_key,
                                   secret_key=settings.s3_secret_key)
            await anyio.to_thread.run_sync(server.start)
            endpoint = server.endpoint
            if server.reclaimed is not None:
                log.warning("stopped the local S3 server a killed process left running", pid=server.reclaimed.pid)
            log.info("started the local S3 server", endpoint=endpoint, pid=server.pid, data_dir=str(server.data_dir))
    spool_dir(settings).mkdir(parents=True, exist_ok=True)
    store = EvidenceStore(endpoint=endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                          secure=settings.s3_secure, bucket=settings.s3_bucket, archive=_archive(settings, endpoint))
    watcher: asyncio.Task[None] | None = None
    try:
        if not await _ensure_bucket(store):
            log.error("the evidence store is unavailable at start; requests that need it answer 503", reason=store.down)
        watcher = asyncio.get_running_loop().create_task(supervise(store, server))
        yield store
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if server is not None:
            await anyio.to_thread.run_sync(server.stop)
            log.info("stopped the local S3 server", endpoint=endpoint)
