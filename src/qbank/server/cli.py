"""The `qbank` command: serving and working here; every domain's command group from :mod:`qbank.cli`."""

from __future__ import annotations

import asyncio

import click

from qbank.cli.banks import bank, export_file, import_file
from qbank.cli.common import load_cli_settings
from qbank.cli.database import db
from qbank.cli.panels import assignments, draw
from qbank.cli.papers import papers, site
from qbank.cli.recordings import video_audit_command
from qbank.cli.station import station
from qbank.cli.tokens import token


@click.group(help="Question bank, paper assembly and video audit service. Settings come from QBANK_* variables.")
def main() -> None:
    pass


@main.command(help="Run the HTTP service (migrations applied first; starts a local S3 server when "
                   "QBANK_S3_ENDPOINT is empty).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    import uvicorn

    from qbank.db import upgrade
    from qbank.server.app import create_app
    from qbank.server.logging import configure_logging

    settings = load_cli_settings()
    configure_logging(settings.log_level)
    click.echo("qbank settings:")
    for name, value in settings.masked().items():
        click.echo(f"  {name} = {value}")
    upgrade(settings.database_url)
    click.echo(f"migrations applied; API docs at http://{host}:{port}/schema")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@main.command(help="Run a job worker: takes jobs from the SAQ queue at QBANK_JOB_QUEUE_URL (Redis) until stopped.")
def worker() -> None:
    from qbank.jobs.worker import run_worker
    from qbank.server.domains import job_kinds
    from qbank.server.logging import configure_logging

    settings = load_cli_settings()
    if not settings.job_queue_url:
        raise click.ClickException("QBANK_JOB_QUEUE_URL is empty: set it to the Redis URL the service enqueues to")
    configure_logging(settings.log_level)
    click.echo(f"qbank worker: taking jobs from {settings.masked()['job_queue_url']}")
    asyncio.run(run_worker(settings, job_kinds()))


for command in (token, db, bank, import_file, export_file, video_audit_command, papers, site, assignments, draw,
                station):
    main.add_command(command)
