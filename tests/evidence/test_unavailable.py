"""An S3 server that is stopped, frozen or failing: the archive says so (StoreUnavailable) within its timeouts,
hands out no link it cannot confirm, and removes the multipart uploads a crashed process left behind."""

from __future__ import annotations

import concurrent.futures
import io
import os
import signal
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from evidence import LocalS3Server, ObjectNotFound, RetentionArchive, StoreUnavailable

EXAM = date(2025, 6, 14)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[LocalS3Server]:
    """A server of this test alone, which it may stop or freeze."""
    server = LocalS3Server(tmp_path / "s3", access_key="k" * 8, secret_key="s" * 16).start()
    try:
        yield server
    finally:
        if server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


def archive_on(server: LocalS3Server, **kw: Any) -> RetentionArchive:
    a = RetentionArchive(server.endpoint, server.access_key, server.secret_key, bucket="evidence-down", **kw)
    a.ensure_bucket()
    return a


def returns_within(seconds: float, fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` in a thread; the exception it raised (None if none), or fail when it is still running after
    ``seconds``: a call that hangs is the defect under test, not a slow one."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(fn)
    try:
        return future.exception(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"the call still hangs after {seconds} s")
    finally:
        pool.shutdown(wait=False)


def test_a_stopped_server_is_reported_unavailable(private_server: LocalS3Server) -> None:
    archive = archive_on(private_server)
    stored = archive.put_bytes("media", b"evidence", exam_date=EXAM)
    private_server.stop()
    for call in (lambda: archive.stat(stored.key), lambda: archive.put_bytes("media", b"more", exam_date=EXAM),
                 lambda: archive.get(stored.key), archive.ping):
        error = returns_within(30, call)
        assert isinstance(error, StoreUnavailable), error
        assert "the S3 server is unavailable" in str(error)


def test_a_frozen_server_times_out_instead_of_hanging(private_server: LocalS3Server) -> None:
    archive = archive_on(private_server, connect_timeout=1, read_timeout=1.5)
    stored = archive.put_bytes("media", b"frozen evidence", exam_date=EXAM)
    assert private_server.pid is not None
    os.kill(private_server.pid, signal.SIGSTOP)  # connections are accepted, nothing is answered
    error = returns_within(30, lambda: archive.stat(stored.key))
    assert isinstance(error, StoreUnavailable) and "timed out" in error.reason, error
    os.kill(private_server.pid, signal.SIGCONT)
    assert archive.stat(stored.key).sha256 == stored.sha256


def test_a_confirmed_link_is_only_made_for_an_object_the_server_holds(private_server: LocalS3Server) -> None:
    archive = archive_on(private_server)
    stored = archive.put_bytes("media", b"linked evidence", exam_date=EXAM)
    assert "X-Amz-Signature" in archive.presigned_get(stored.key, confirm=True)
    with pytest.raises(ObjectNotFound):
        archive.presigned_get("media/00/" + "0" * 64, confirm=True)
    private_server.stop()
    assert archive.presigned_get(stored.key)  # signing alone asks nobody
    with pytest.raises(StoreUnavailable):
        archive.presigned_get(stored.key, confirm=True)


def test_stale_multipart_uploads_are_aborted_with_their_bytes(private_server: LocalS3Server) -> None:
    archive = archive_on(private_server)
    client = archive.client
    upload_id = client._create_multipart_upload(archive.bucket, "recordings/ab/left-over", {})
    client._upload_part(archive.bucket, "recordings/ab/left-over", b"x" * (5 << 20), None, upload_id, 1)
    assert archive.abort_stale_uploads(timedelta(hours=1)) == (0, 0), "a fresh upload is still being written"
    assert archive.abort_stale_uploads(timedelta(0)) == (1, 5 << 20)
    assert client._list_multipart_uploads(archive.bucket).uploads == []
    stream = io.BytesIO(b"after")
    assert archive.put("media", stream, exam_date=EXAM).size == 5
