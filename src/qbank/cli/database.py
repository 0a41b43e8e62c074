"""`qbank db …`: the database."""

from __future__ import annotations

import click

from qbank.cli.common import load_cli_settings


@click.group(help="Database.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply every migration.")
def db_upgrade() -> None:
    from qbank.db import upgrade

    upgrade(load_cli_settings().database_url)
    click.echo("migrations applied")


