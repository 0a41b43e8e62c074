"""The centre's topology on one machine, as separate processes: a SeaweedFS cluster (master, volume servers, filer,
S3 gateway), N × `qbank serve` and M × `qbank worker` on one PostgreSQL database and one Redis queue. What the
scale-out test and the soak benchmark run against, and a worked example of the README's operator section.

Every instance and worker gets its own data directory (spool, scratch, logs) but the same database, queue, S3
credentials, token secret and centre signing key — what N machines behind a load balancer share."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.processes import stop_process
from evidence.s3cluster import SeaweedCluster
from qbank.devtools.serving import QBANK, ServeFailed, start_serve, tail


@dataclass
class Member:
    """One `qbank serve` or `qbank worker` process: its name, data dir, log, and (a service) its URL."""

    name: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    url: str = ""

    @property
    def log(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Topology:
    root: Path
    database_url: str
    redis_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    cluster: SeaweedCluster | None = None
    services: list[Member] = field(default_factory=list)
    workers: list[Member] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self, services: int = 2, workers: int = 2) -> Topology:
        self.root.mkdir(parents=True, exist_ok=True)
        self.cluster = SeaweedCluster(self.root / "seaweedfs", access_key="qbank" + secrets.token_hex(4),
                                      secret_key=secrets.token_urlsafe(24)).start()
        key = self.root / "centre_ed25519.pem"
        key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key.chmod(0o600)
        self.env = {**os.environ, "QBANK_DATABASE_URL": self.database_url, "QBANK_S3_ENDPOINT": self.cluster.endpoint,
                    "QBANK_S3_ACCESS_KEY": self.cluster.access_key, "QBANK_S3_SECRET_KEY": self.cluster.secret_key,
                    "QBANK_JOB_QUEUE_URL": self.redis_url, "QBANK_JOB_QUEUE_NAME": "qbank-" + secrets.token_hex(4),
                    "QBANK_TOKEN_SECRET": secrets.token_urlsafe(32), "QBANK_CENTRE_KEY_FILE": str(key),
                    **self.extra_env}
        subprocess.run([QBANK, "db", "upgrade"], env=self.member_env(self.root / "cli"), check=True,
                       capture_output=True, timeout=300)
        for i in range(workers):
            self.start_worker(f"worker{i}")
        for i in range(services):
            self.start_service(f"serve{i}")
        return self

    def member_env(self, data_dir: Path) -> dict[str, str]:
        data_dir.mkdir(parents=True, exist_ok=True)
        return {**self.env, "QBANK_DATA_DIR": str(data_dir)}

    def _spawn(self, name: str, args: list[str]) -> Member:
        data_dir = self.root / name
        env = self.member_env(data_dir)
        with (data_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([QBANK, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        return Member(name=name, data_dir=data_dir, proc=proc)

    def start_service(self, name: str, timeout: float = 90) -> Member:
        """One more `qbank serve`, once it answers /health/ready (on a port it picked itself)."""
        data_dir = self.root / name
        try:
            proc, url = start_serve(self.member_env(data_dir), data_dir / f"{name}.log", ready_path="/health/ready",
                                    timeout=timeout)
        except ServeFailed as exc:
            raise RuntimeError(f"{name}: {exc}") from None
        member = Member(name=name, data_dir=data_dir, proc=proc, url=url)
        self.services = [m for m in self.services if m.name != name] + [member]
        return member

    def start_worker(self, name: str) -> Member:
        member = self._spawn(name, ["worker"])
        self.workers = [m for m in self.workers if m.name != name] + [member]
        return member

    def report(self) -> str:
        """Which members are alive, and each one's last log lines: what a failed run needs to be understood."""
        return "\n".join(f"--- {m.name} ({'alive' if m.alive() else f'exited {m.proc.returncode}'}) {m.url}\n"
                         f"{tail(m.log, 1500)}" for m in [*self.services, *self.workers])

    def cli(self, *args: str) -> str:
        """Run a `qbank` command against the topology's database; its stdout."""
        done = subprocess.run([QBANK, *args], env=self.member_env(self.root / "cli"), capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"qbank {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    @staticmethod
    def kill(member: Member) -> None:
        """kill -9, as a crash does."""
        os.kill(member.proc.pid, signal.SIGKILL)
        member.proc.wait(30)

    def stop(self) -> None:
        """Stop every process by its own pid: services and workers (SIGTERM, SIGKILL after 20 s), then the cluster."""
        for member in [*self.services, *self.workers]:
            if member.alive():
                stop_process(member.proc.pid, 20)
            with contextlib.suppress(subprocess.TimeoutExpired):
                member.proc.wait(5)
        if self.cluster is not None:
            self.cluster.stop(grace=5)
