"""Processes on this machine, as the local S3 server's launcher needs to know them (Linux ``/proc``).

A process id alone can be reused, so a process is named by its id **and** its start time (field 22 of
``/proc/PID/stat``, clock ticks since boot): a recorded pair that no longer matches is a process that is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Process", "lock_holders", "processes_using_dir", "stop_process"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    """One process: its id, start time (``None`` when unknown) and command line."""

    pid: int
    started: int | None
    argv: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> Process | None:
        """The live process ``pid`` (``None`` when it does not exist or is a zombie)."""
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
            raw = (_PROC / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if not fields or fields[0] in ("Z", "X"):
            return None
        started = int(fields[19]) if len(fields) > 19 else None
        return cls(pid, started, tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a))

    @classmethod
    def this(cls) -> Process:
        found = cls.of(os.getpid())
        return found if found is not None else cls(os.getpid(), None, ())

    def same_as(self, pid: int, started: int | None) -> bool:
        return self.pid == pid and (started is None or self.started is None or self.started == started)

    @property
    def command(self) -> str:
        """The command line, shortened to one readable line."""
        text = " ".join(" ".join(self.argv).split()) or f"pid {self.pid}"  # arguments may hold newlines
        return text if len(text) <= 120 else text[:117] + "..."

    def is_weed_on(self, data_dir: Path) -> bool:
        """Whether this is a SeaweedFS ``weed`` process whose ``-dir`` is ``data_dir``."""
        if not self.argv or Path(self.argv[0]).name != "weed":
            return False
        wanted = str(data_dir.resolve())
        return any(a.startswith("-dir=") and os.path.realpath(a[5:]) == wanted for a in self.argv[1:])


def stop_process(pid: int, grace: float = 10.0) -> None:
    """SIGTERM ``pid``, SIGKILL after ``grace`` seconds; returns once it is gone (it need not be our child)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for sig_after in (grace, 5.0):
        deadline = time.monotonic() + sig_after
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
            if Process.of(pid) is None:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _lock_files(data_dir: Path, depth: int = 3) -> dict[int, Path]:
    """Inodes of the LevelDB ``LOCK`` files under ``data_dir`` (SeaweedFS's filer store keeps them there)."""
    found: dict[int, Path] = {}
    base = len(data_dir.parts)
    for root, dirs, files in os.walk(data_dir):
        if len(Path(root).parts) - base >= depth:
            dirs[:] = []
        for name in files:
            if name == "LOCK":
                with contextlib.suppress(OSError):
                    path = Path(root) / name
                    found[path.stat().st_ino] = path
    return found


def lock_holders(data_dir: Path) -> list[Process]:
    """Processes that hold a lock (``/proc/locks``) on a ``LOCK`` file under ``data_dir``."""
    inodes = _lock_files(data_dir)
    if not inodes:
        return []
    try:
        lines = (_PROC / "locks").read_text().splitlines()
    except OSError:
        return []
    pids: set[int] = set()
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1957 fe:00:2146564 0 EOF" (a "->" marks a waiter: skip those)
        if len(parts) < 6 or parts[1] == "->":
            continue
        with contextlib.suppress(ValueError, IndexError):
            if int(parts[5].rsplit(":", 1)[1]) in inodes:
                pids.add(int(parts[4]))
    return [p for pid in sorted(pids) if (p := Process.of(pid)) is not None]


def processes_using_dir(data_dir: Path) -> list[Process]:
    """``weed`` processes running on ``data_dir`` and any process holding a lock file in it, this one excepted."""
    found: dict[int, Process] = {p.pid: p for p in lock_holders(data_dir)}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) not in found:
            proc = Process.of(int(entry.name))
            if proc is not None and proc.is_weed_on(data_dir):
                found[proc.pid] = proc
    found.pop(os.getpid(), None)
    return [found[pid] for pid in sorted(found)]
