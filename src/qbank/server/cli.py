"""The `qbank` command: serving and working here; every domain's command group from :mod:`qbank.cli`."""

from __future__ import annotations

import asyncio
import socket

import click

from qbank.cli.audit import audit
from qbank.cli.banks import bank, export_file, import_file
from qbank.cli.common import load_cli_settings
from qbank.cli.database import db
from qbank.cli.items import items
from qbank.cli.panels import assignments, draw
from qbank.cli.papers import papers, site
from qbank.cli.recordings import recordings, video_audit_command
from qbank.cli.station import station
from qbank.cli.tokens import token
from qbank.settings import Settings

LISTENING = "qbank: listening on"  # the line that names the URL (what qbank.devtools.serving reads)


@click.group(help="Question bank, paper assembly and video audit service. Settings come from QBANK_* variables.")
def main() -> None:
    pass


@main.command(help="Run the HTTP service (migrations applied first; starts a local S3 server when "
                   "QBANK_S3_ENDPOINT is empty).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="0: any free port (the line "
              "'qbank: listening on URL' says which)")
def serve(host: str, port: int) -> None:
    import uvicorn

    from qbank.db import upgrade
    from qbank.server.app import create_app
    from qbank.server.logging import configure_logging

    settings = load_cli_settings()
    configure_logging(settings.log_level, secrets=(settings.token_secret, settings.s3_secret_key))
    click.echo("qbank settings:")
    for name, value in settings.masked().items():
        click.echo(f"  {name} = {value}")
    # the port is held from here on: nothing else can take it while migrations run, and with --port 0 whoever
    # started us learns the port this process holds, not one another process may take after a probe
    listener = listen(host, port)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{listener.getsockname()[1]}"
    take_over_local_s3(settings)
    upgrade(settings.database_url)
    click.echo(f"migrations applied; API docs at {url}/schema")
    click.echo(f"{LISTENING} {url}")
    # log_config=None: uvicorn's loggers go through the service's redacting handler, not handlers of their own
    # proxy_headers=False: X-Forwarded-* are believed only from QBANK_TRUSTED_PROXIES (qbank.lib.proxies)
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level.lower(), log_config=None,
                            proxy_headers=False)
    uvicorn.Server(config).run(sockets=[listener])


def listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=2048)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@main.command(help="Run a job worker: takes jobs from the SAQ queue at QBANK_JOB_QUEUE_URL (Redis) until stopped.")
def worker() -> None:
    from qbank.jobs.worker import run_worker
    from qbank.server.domains import STARTUP_CHECKS, job_kinds
    from qbank.server.logging import configure_logging

    settings = load_cli_settings()
    if not settings.job_queue_url:
        raise click.ClickException("QBANK_JOB_QUEUE_URL is empty: set it to the Redis URL the service enqueues to")
    configure_logging(settings.log_level, secrets=(settings.token_secret, settings.s3_secret_key))
    click.echo(f"qbank worker: taking jobs from {settings.masked()['job_queue_url']}")
    asyncio.run(run_worker(settings, job_kinds(), STARTUP_CHECKS))


def take_over_local_s3(settings: Settings) -> None:
    """Before serving on the embedded S3 server: stop the one a killed service left running on this data dir, or
    say in one line what else holds it."""
    from evidence import LocalS3Server, S3ServerError

    if settings.s3_endpoint:
        return
    server = LocalS3Server(settings.data_dir / "s3")
    try:
        server.take_over()
    except S3ServerError as exc:
        raise click.ClickException(str(exc)) from exc
    if server.reclaimed is not None:
        click.echo(f"stopped the local S3 server (pid {server.reclaimed.pid}) that a killed qbank left running")


for command in (token, db, bank, import_file, export_file, video_audit_command, recordings, papers, site, assignments,
                draw, audit, station, items):
    main.add_command(command)
