"""The identity of a process that runs jobs: ``host|boot|pid-namespace:pid:token``, and whether such a process is
gone. A pid means something only on its machine, since its boot and within its pid namespace, so those are part of
the name; the token tells two lives of one pid apart."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from pathlib import Path


def this_machine() -> str:
    boot = ""
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    pidns = ""
    with contextlib.suppress(OSError):
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    return f"{socket.gethostname()}|{boot}|{pidns}"


def runner_identity() -> str:
    return f"{this_machine()}:{os.getpid()}:{secrets.token_hex(3)}"


def gone_from_here(runner: str) -> bool:
    """True when ``runner`` was a process of this machine that no longer exists (or is a zombie)."""
    parts = runner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != this_machine() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2:].startswith("Z")
    return False
