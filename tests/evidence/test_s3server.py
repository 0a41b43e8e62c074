from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from minio import Minio

from evidence import LocalS3Server, S3ServerError


def test_server_accepts_put_and_reports_endpoint(s3server: LocalS3Server) -> None:
    assert s3server.running
    host, port = s3server.endpoint.split(":")
    assert host == "127.0.0.1" and int(port) == s3server.port
    c = Minio(s3server.endpoint, s3server.access_key, s3server.secret_key, secure=False)
    if not c.bucket_exists("smoke"):
        c.make_bucket("smoke")
    c.put_object("smoke", "k", io.BytesIO(b"abc"), 3)
    assert c.get_object("smoke", "k").read() == b"abc"


def test_wrong_credentials_are_refused(s3server: LocalS3Server) -> None:
    c = Minio(s3server.endpoint, "nobody", "wrong-secret-000", secure=False, region="us-east-1")
    with pytest.raises(Exception, match=r"(?i)access|signature|denied|invalid"):
        c.list_buckets()


def test_stop_restart_keeps_data_and_stops_by_pid(tmp_path: Path) -> None:
    srv = LocalS3Server(tmp_path / "d", access_key="k" * 8, secret_key="s" * 16)
    with srv:
        pid = srv.pid
        assert pid is not None
        c = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False)
        c.make_bucket("keep")
        c.put_object("keep", "x", io.BytesIO(b"kept"), 4)
    assert not srv.running and srv.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with LocalS3Server(tmp_path / "d", access_key="k" * 8, secret_key="s" * 16) as again:
        c = Minio(again.endpoint, again.access_key, again.secret_key, secure=False)
        assert c.get_object("keep", "x").read() == b"kept"


def test_server_that_dies_gives_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'fatal: cannot open volume' >&2\nexit 3\n")
    fake.chmod(0o755)
    srv = LocalS3Server(tmp_path / "d", weed_binary=str(fake), start_timeout=10)
    with pytest.raises(S3ServerError) as info:
        srv.start()
    assert "exited with code 3" in str(info.value)
    assert "cannot open volume" in info.value.log_tail
    assert not srv.running


def test_server_that_never_answers_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'starting slowly'\nexec sleep 60\n")
    fake.chmod(0o755)
    srv = LocalS3Server(tmp_path / "d", weed_binary=str(fake), start_timeout=1.5)
    with pytest.raises(S3ServerError, match="accepted no PUT within") as info:
        srv.start()
    assert "starting slowly" in info.value.log_tail
    assert not srv.running
