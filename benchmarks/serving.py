"""`qbank serve` for benchmarks: a free loopback port, wait until it answers, stop it by its process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_qbank(env: dict[str, str], log: IO[bytes] | int = subprocess.DEVNULL,
                timeout: float = 90) -> tuple[subprocess.Popen[bytes], str]:
    """Start the service (its own session, so its children stop with it); returns the process and its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qbank", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"qbank serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"qbank serve did not answer /health within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class RssSampler:
    """Samples the RSS of a process (and of it plus its children) every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.05, leave_out: tuple[str, ...] = ("weed",)) -> None:
        self.proc = psutil.Process(pid)
        self.leave_out = leave_out  # children not counted by name: the S3 server a service started itself
        self.interval = interval
        self.peak = 0
        self.peak_tree = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            rss = self.proc.memory_info().rss
            tree = rss
            for child in self.proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.name() not in self.leave_out:
                        tree += child.memory_info().rss
            self.peak = max(self.peak, rss)
            self.peak_tree = max(self.peak_tree, tree)
            self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self.peak = self.peak_tree = 0

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
