from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from minio import Minio

from evidence import LocalS3Server, S3ServerError, running_server
from evidence.processes import Process, stop_process


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


# ----------------------------------------------------------------------------------- crashes of the launcher
LAUNCHER = """
import io, os, sys, time
from minio import Minio
from evidence import LocalS3Server
srv = LocalS3Server(sys.argv[1], access_key="k" * 8, secret_key="s" * 16).start()
c = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False, region="us-east-1")
c.make_bucket("kept")
c.put_object("kept", "x", io.BytesIO(b"kept"), 4)
print(srv.pid, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), 9)  # what kill -9 of the service does: the launcher dies, weed mini stays
time.sleep(120)
"""


def launch(data_dir: Path, then: str) -> tuple[subprocess.Popen[bytes], int]:
    """A launcher process that starts a server on ``data_dir``, stores an object, then SIGKILLs itself
    (``then="kill"``) or keeps running (``"live"``); returns it and the server's pid."""
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(data_dir), then], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip(), "the launcher did not start its server"
    if then == "kill":
        proc.wait(30)
    return proc, int(line)


def gone(pid: int) -> bool:
    return Process.of(pid) is None


def test_start_after_the_launcher_was_killed_stops_its_stale_server(tmp_path: Path) -> None:
    _, stale = launch(tmp_path / "d", "kill")
    assert not gone(stale), "weed mini outlives a launcher killed with SIGKILL"
    srv = LocalS3Server(tmp_path / "d", access_key="k" * 8, secret_key="s" * 16)
    with srv:  # the same start again: it works, after stopping the stale server by its pid
        assert srv.reclaimed is not None and srv.reclaimed.pid == stale
        assert gone(stale) and srv.pid != stale
        c = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False)
        assert c.get_object("kept", "x").read() == b"kept"


def test_a_data_dir_held_by_a_live_launcher_is_refused_in_one_line(tmp_path: Path) -> None:
    proc, pid = launch(tmp_path / "d", "live")
    try:
        found = running_server(tmp_path / "d")
        assert found is not None and found.pid == pid and found.owner == proc.pid
        with pytest.raises(S3ServerError) as info:
            LocalS3Server(tmp_path / "d").start()
        message = str(info.value)
        assert "\n" not in message and f"process {proc.pid}" in message and "in use" in message
        assert not gone(pid), "a server another live process runs is never stopped"
    finally:
        proc.kill()
        proc.wait()
        stop_process(pid)


def test_an_unrecorded_weed_on_the_data_dir_is_named_not_killed(tmp_path: Path) -> None:
    _, stray = launch(tmp_path / "d", "kill")
    (tmp_path / "d" / "weed-server.json").unlink()  # as after a launcher that kept no record
    try:
        with pytest.raises(S3ServerError) as info:
            LocalS3Server(tmp_path / "d").start()
        message = str(info.value)
        assert "\n" not in message and f"process {stray}" in message and "weed" in message
        assert not gone(stray)
    finally:
        stop_process(stray)


def test_restart_after_the_server_died_keeps_its_port_and_data(tmp_path: Path) -> None:
    with LocalS3Server(tmp_path / "d", access_key="k" * 8, secret_key="s" * 16) as srv:
        c = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False)
        c.make_bucket("keep")
        c.put_object("keep", "x", io.BytesIO(b"kept"), 4)
        first, port = srv.pid, srv.port
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while srv.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.running and srv.exit_code == -signal.SIGKILL
        srv.restart()
        assert srv.running and srv.pid != first and srv.port == port
        assert c.get_object("keep", "x").read() == b"kept"
