"""Starting, as an operator does it: the same start command after `kill -9` of the service works (the stale local
S3 server it left is stopped), a second service on the same data directory is refused in one line, every CLI
command works on one data directory whatever the working directory and says which, and the scripts install what
they should (apt waits for its lock; `scripts/serve` installs the service only)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from evidence import LocalS3Server, running_server
from evidence.processes import Process
from tests.conftest import service_env, start_service, stop_service

ROOT = Path(__file__).resolve().parents[2]
QBANK = str(Path(sys.executable).with_name("qbank"))
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 80


def gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while Process.of(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def token(env: dict[str, str], cwd: Path | None = None, name: str = "admin") -> str:
    done = subprocess.run([QBANK, "token", "create", "--role", "admin", "--name", name], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_same_start_command_works_after_kill_9_and_a_second_service_is_refused(
        tmp_path: Path, s3_server: LocalS3Server) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = service_env(data, s3_server, QBANK_S3_ENDPOINT="")  # the embedded default: its own weed mini
    first, _ = start_service(env, data / "serve.log")
    stale = running_server(data / "s3")
    assert stale is not None and stale.owner == first.pid
    os.kill(first.pid, 9)
    first.wait(10)
    assert Process.of(stale.pid) is not None, "weed mini outlives the killed service"

    second, url = start_service(env, data / "serve.log")  # the same command again
    try:
        assert gone(stale.pid), "the stale local S3 server was stopped by its pid"
        now = running_server(data / "s3")
        assert now is not None and now.owner == second.pid and now.pid != stale.pid
        headers = {"Authorization": f"Bearer {token(env)}"}
        r = httpx.post(f"{url}/api/v1/media", files={"file": ("x.png", PNG, "image/png")}, headers=headers,
                       timeout=60)
        assert r.status_code == 201, r.text

        third = subprocess.run([QBANK, "serve", "--port", "1"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert third.returncode != 0
        error = [line for line in third.stderr.splitlines() if line.startswith("Error:")]
        assert len(error) == 1 and f"is in use: process {second.pid}" in error[0], third.stderr
        assert "Traceback" not in third.stderr and "Traceback" not in third.stdout
        assert running_server(data / "s3") == now, "the running service's S3 server is left alone"
    finally:
        stop_service(second)
    assert gone(now.pid) and running_server(data / "s3") is None


def test_every_command_uses_one_data_directory_whatever_the_working_directory(
        tmp_path: Path, s3_server: LocalS3Server) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("QBANK_DATA_DIR", "QBANK_DATABASE_URL", "QBANK_TOKEN_SECRET", "XDG_DATA_HOME")}
    env |= {"HOME": str(home), "QBANK_S3_ENDPOINT": s3_server.endpoint, "QBANK_S3_ACCESS_KEY": s3_server.access_key,
            "QBANK_S3_SECRET_KEY": s3_server.secret_key}
    there = home / ".local" / "share" / "qbank"
    tokens = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        done = subprocess.run([QBANK, "token", "create", "--role", "admin", "--name", f"from-{name}"], env=env,
                              cwd=cwd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"data directory {there}" in done.stderr and f"{there / 'qbank.db'}" in done.stderr
        assert not (cwd / "var").exists()
        tokens.append(done.stdout.strip())
    with sqlite3.connect(there / "qbank.db") as con:
        assert con.execute("SELECT count(*) FROM api_token").fetchone()[0] == 2
    serve_dir = tmp_path / "c"
    serve_dir.mkdir()
    proc, url = start_service(env, tmp_path / "serve.log", cwd=serve_dir)
    try:
        for t in tokens:  # tokens the CLI printed are accepted by the service started elsewhere
            assert httpx.get(f"{url}/api/v1/tokens", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    finally:
        stop_service(proc)


FAKE_PYTHON = """#!/bin/sh
# stands in for python3 -m venv .venv: a venv whose pip and qbank record how they were called
mkdir -p .venv/bin
printf '#!/bin/sh\\necho "pip $*" >> "$SETUP_LOG"\\n' > .venv/bin/pip
printf '#!/bin/sh\\necho "qbank $*" >> "$SETUP_LOG"\\n' > .venv/bin/qbank
printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/python
chmod +x .venv/bin/pip .venv/bin/qbank .venv/bin/python
"""
FAKE_APT = """#!/bin/sh
echo "apt-get $*" >> "$SETUP_LOG"
"""


def test_setup_waits_for_the_apt_lock_and_serve_installs_only_the_service(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for script in ("setup", "serve"):
        shutil.copy(ROOT / "scripts" / script, project / "scripts" / script)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "env", "sha256sum", "cut", "rm", "touch", "id", "dirname", "mkdir", "chmod", "cat"):
        real = shutil.which(tool)
        assert real is not None, tool
        (bin_dir / tool).symlink_to(real)
    for name, text in (("python3", FAKE_PYTHON), ("apt-get", FAKE_APT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "setup.log"
    env = {"PATH": str(bin_dir), "SETUP_LOG": str(log), "HOME": str(tmp_path)}  # no ffmpeg on this PATH

    def run(*args: str) -> list[str]:
        log.write_text("")
        done = subprocess.run(["bash", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return log.read_text().splitlines()

    calls = run("scripts/serve", "--port", "9000")
    apt = [c for c in calls if c.startswith("apt-get")]
    assert apt and all("-o DPkg::Lock::Timeout=600" in c for c in apt), calls
    assert any(c.endswith("install -y -qq ffmpeg") for c in apt), calls
    assert "pip install -q -e ." in calls and not any("[dev]" in c for c in calls), calls
    assert calls[-1] == "qbank serve --port 9000"
    assert run("scripts/setup") == [c for c in calls if c.startswith("apt-get")], "the service is installed once"
    calls = run("scripts/setup", "--dev")
    assert "pip install -q -e .[dev]" in calls, calls
    env["QBANK_APT_LOCK_TIMEOUT"] = "30"
    assert all("DPkg::Lock::Timeout=30" in c for c in run("scripts/setup") if c.startswith("apt-get"))


def test_a_video_threshold_the_engine_does_not_know_is_refused_in_one_line(tmp_path: Path) -> None:
    # thresholds renamed by the detail-based rules (issue 13) must not be ignored silently
    env = {k: v for k, v in os.environ.items() if not k.startswith("QBANK_")}
    env |= {"QBANK_DATA_DIR": str(tmp_path), "QBANK_VIDEO_QUALITY": '{"cover_max_std": 14}'}
    done = subprocess.run([QBANK, "token", "create", "--role", "admin", "--name", "x"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and not done.stdout
    assert "QBANK_VIDEO_QUALITY" in done.stderr and "cover_max_std" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "qbank.db").exists()


@pytest.mark.parametrize(("views", "words"), [
    ('{"views": ["front"]}', '"views" must map a camera view'),
    ('{"views": {"front": 24.5}}', '"views" must map a camera view'),
    ('{"views": {"front": {"baseline_sharpnes": 24.5}}}', "view 'front'"),
    ('{"views": {"back": {"blur_edge_ratio": "half"}}}', "view 'back'"),
])
def test_per_view_video_thresholds_that_cannot_be_used_are_refused_in_one_line(tmp_path: Path, views: str,
                                                                               words: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QBANK_")}
    env |= {"QBANK_DATA_DIR": str(tmp_path), "QBANK_VIDEO_QUALITY": views}
    done = subprocess.run([QBANK, "token", "create", "--role", "admin", "--name", "x"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and not done.stdout
    assert "QBANK_VIDEO_QUALITY" in done.stderr and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "qbank.db").exists()
