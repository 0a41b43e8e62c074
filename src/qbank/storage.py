"""Object storage for evidence: the configured S3 server, or a local one the service starts and stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread
import structlog

from evidence import LocalS3Server, RetentionArchive
from qbank.settings import Settings

log = structlog.get_logger("qbank.storage")


@dataclass
class EvidenceStore:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    bucket: str
    archive: RetentionArchive


@asynccontextmanager
async def evidence_store(settings: Settings) -> AsyncIterator[EvidenceStore]:
    server: LocalS3Server | None = None
    endpoint = settings.s3_endpoint
    if not endpoint:
        server = LocalS3Server(settings.data_dir / "s3", access_key=settings.s3_access_key,
                               secret_key=settings.s3_secret_key)
        await anyio.to_thread.run_sync(server.start)
        endpoint = server.endpoint
        log.info("started the local S3 server", endpoint=endpoint, pid=server.pid, data_dir=str(server.data_dir))
    try:
        archive = RetentionArchive(
            endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket, secure=settings.s3_secure,
            retention_years=settings.retention_years, public_endpoint=settings.s3_public_endpoint or None,
            spool_dir=settings.data_dir / "spool", presign_max=timedelta(minutes=60))  # no link outlives an hour
        (settings.data_dir / "spool").mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(archive.ensure_bucket)
        yield EvidenceStore(endpoint=endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                            secure=settings.s3_secure, bucket=settings.s3_bucket, archive=archive)
    finally:
        if server is not None:
            await anyio.to_thread.run_sync(server.stop)
            log.info("stopped the local S3 server", endpoint=endpoint)
