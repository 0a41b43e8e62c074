"""Starting `qbank serve` as a process and knowing its URL for sure: it listens on a port the kernel picks
(``--port 0``) and names it in its output. A port probed free beforehand can be taken by another process before the
service binds it, and a health check would then be answered by that other process."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from evidence.processes import stop_process
from qbank.server.cli import LISTENING

QBANK = str(Path(sys.executable).with_name("qbank"))
URL_LINE = re.compile(rf"^{re.escape(LISTENING)} (http://\S+)$", re.MULTILINE)


class ServeFailed(RuntimeError):
    """`qbank serve` exited or did not answer in time; the message ends with its log's tail."""


def start_serve(env: Mapping[str, str], log_path: Path, *, ready_path: str = "/health", timeout: float = 60,
                cwd: Path | None = None, host: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], str]:
    """`qbank serve` on a free port of ``host``, its output appended to ``log_path``; returns the process and its
    URL once ``ready_path`` answers 200. Stops it (by its pid) and raises :class:`ServeFailed` when it exits first
    or does not answer within ``timeout`` seconds."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        proc = subprocess.Popen([QBANK, "serve", "--host", host, "--port", "0"], env=dict(env), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
    deadline = time.monotonic() + timeout
    url = ""
    while True:
        if proc.poll() is not None:
            raise ServeFailed(f"qbank serve exited with {proc.returncode}:\n{tail(log_path)}")
        if not url:
            with log_path.open("rb") as log:
                log.seek(offset)
                found = URL_LINE.search(log.read().decode(errors="replace"))
            url = found[1] if found else ""
        if url:
            try:
                if httpx.get(url + ready_path, timeout=2).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            stop_process(proc.pid, 15)
            raise ServeFailed(f"qbank serve did not answer {ready_path} within {timeout} s:\n{tail(log_path)}")
        time.sleep(0.2)


def tail(log_path: Path, size: int = 3000) -> str:
    return log_path.read_text(errors="replace")[-size:] if log_path.exists() else "(no log)"
